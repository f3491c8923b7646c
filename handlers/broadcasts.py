"""Supervisor broadcasts: /broadcast, /broadcasts, /schedule, /schedules, the 收到 button, and
the tick work (resuming deliveries, scheduled announcements falling due, urgent re-notify).

Composing is one message edited step by step: audience → acknowledgement → urgent → pin
(only when a team group is configured) → silent → preview → 发送 / 取消. The draft lives in
SQLite and its id is in every button (`bc:<draft>:<action>[:<arg>…]`), so a restart in the
middle of composing loses nothing. Sending is in handlers/broadcast_delivery.py.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.broadcasts import (
    Audience,
    Broadcast,
    Content,
    Rule,
    WhenWords,
    next_run,
    parse_when,
)
from bot.broadcasts.model import CHOICES
from bot.broadcasts.service import CAPTION_LIMIT, TEXT_LIMIT
from bot.clock import from_ts, to_ts
from bot.people import Role, UserError
from handlers import callbacks, routing
from handlers.broadcast_delivery import (
    author_name,
    copy_text,
    excerpt,
    plain,
    running,
    send_copy_text,
    send_reminder,
    show_acknowledged,
    start_delivery,
)
from handlers.common import arg_text, button, keyboard, label, user_errors
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import answer_callback, edit_pressed, in_background, reply
from handlers.ticker import add_tick_hook

log = logging.getLogger(__name__)

PICK_PAGE_SIZE = 8
ROSTER_NAMES = 100
RECENT = 10
ROLE_CHOICES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
_COMMAND_WORD = re.compile(r"^/\S+\s*")
_ALERT_LIMIT = 200


# --- small helpers ---------------------------------------------------------------------------
async def _error_text(context: KefuContext, exc: UserError) -> str:
    """This feature's message (`broadcast.errors.<code>`), else the shared `errors.<code>`."""
    renderer = context.svc.renderer
    key = f"broadcast.errors.{exc.code}"
    return renderer.label(key if renderer.has_label(key) else f"errors.{exc.code}", **exc.params)


#: Refusals as messages; on a button the message is an alert, as plain text.
broadcast_errors = user_errors(text=_error_text, alert=lambda text: plain(text)[:_ALERT_LIMIT])


def _words(target: Target) -> WhenWords:
    return target.bot_data["broadcast_words"]


def _team_chat(target: Target) -> int | None:
    return target.bot_data["services"].settings.kefu_team_chat_id


def _args_html(message: Message) -> str:
    """What follows the command word, as Telegram HTML (the sender's bold/italic kept)."""
    text_html = (message.text_html if message.text else message.caption_html) or ""
    return _COMMAND_WORD.sub("", text_html, count=1).strip()


def content_from(source: Message, extra_html: str = "", *, own_caption: bool = True) -> Content:
    """The announcement a message makes: the replied-to one, or a photo/document captioned with
    the command itself (`own_caption=False`: its caption is the command, `extra_html` the rest).
    Text after the command becomes the caption of a photo or document, or goes in front of a
    replied text."""
    caption = (source.caption_html or "") if own_caption else ""
    if source.photo:
        return Content("photo", extra_html or caption, source.photo[-1].file_id)
    if source.document:
        return Content("document", extra_html or caption, source.document.file_id, source.document.file_name)
    if source.text:
        body = source.text_html
        return Content("text", f"{extra_html}\n\n{body}" if extra_html else body)
    raise UserError("unsupported_content")


def _command_content(message: Message, text_html: str, missing: str) -> Content:
    """What /broadcast or /schedule sends: the replied-to message, else the photo or document the
    command captions, else the text after the command; `missing` is the error when there is none."""
    if message.reply_to_message is not None:
        return content_from(message.reply_to_message, text_html)
    if message.photo or message.document:
        return content_from(message, text_html, own_caption=False)
    if text_html:
        return Content("text", text_html)
    raise UserError(missing)


def _check_length(context: KefuContext, content: Content) -> None:
    """Refuse now what Telegram would refuse at sending: the copy with the longest header."""
    worst = SimpleNamespace(urgent=True, schedule_id=None, body_html=content.body_html, ack_required=True,
                            number=999_999)
    text = copy_text(context, worst, context.person.name, acked_at=to_ts(context.svc.clock.now()))
    limit = CAPTION_LIMIT if content.is_media else TEXT_LIMIT
    if len(plain(text)) > limit:
        raise UserError("too_long", length=len(plain(text)), limit=limit)


def _require_private(update: Update) -> None:
    if update.effective_chat is None or update.effective_chat.type != ChatType.PRIVATE:
        raise UserError("private_only")


def _rule(broadcast: Broadcast) -> Rule | None:
    return Rule.decode(broadcast.schedule_rule) if broadcast.schedule_rule else None


def _rows(buttons: list[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


# --- composing -------------------------------------------------------------------------------
async def _new_draft(update: Update, context: KefuContext, content: Content,
                     schedule: tuple[Rule, str] | None = None) -> None:
    _check_length(context, content)
    svc = services_of(context).broadcasts
    draft = await svc.create_draft(context.person, content, pin_available=_team_chat(context) is not None,
                                   schedule=schedule)
    text, markup = await panel(context, draft)
    sent = await reply(update, context, text, reply_markup=markup)
    if sent is not None:
        await svc.set_panel(draft.id, sent.chat_id, sent.message_id)


@broadcast_errors
async def broadcast_command(update: Update, context: KefuContext) -> None:
    """/broadcast <text>, or /broadcast as a reply to the message to send."""
    _require_private(update)
    message = update.effective_message
    content = _command_content(message, _args_html(message), "usage_broadcast")
    await _new_draft(update, context, content)


@broadcast_errors
async def schedule_command(update: Update, context: KefuContext) -> None:
    """/schedule <when> <text>, or /schedule <when> as a reply to the message to send."""
    _require_private(update)
    message = update.effective_message
    args = arg_text(update)
    if not args:
        raise UserError("usage_schedule")
    rule, rest = parse_when(args, context.svc.clock.now(), context.svc.tz, _words(context))
    prefix = args[: len(args) - len(rest)] if rest else args
    args_html = _args_html(message)
    if args_html.startswith(prefix):
        rest_html = args_html[len(prefix):].strip()
    else:  # the time itself was formatted (bold…): keep the words, drop their formatting
        rest_html = html.escape(rest, quote=False)
    content = _command_content(message, rest_html, "schedule_no_text")
    await _new_draft(update, context, content, schedule=(rule, " ".join(prefix.split())))


async def panel(target: Target, draft: Broadcast, *, view: str | None = None, page: int = 0
                ) -> tuple[str, InlineKeyboardMarkup | None]:
    """The compose message for the draft's next step (or an explicit view: roles, pick)."""
    step = view or draft.next_choice()
    if step == "audience" and draft.audience_spec is not None and draft.audience_spec.kind == "people":
        step = "pick"
    if step is None:
        return await _preview(target, draft)
    svc = target.bot_data["services"]
    b = draft.id
    cancel = [button(target, "broadcast.buttons.cancel", callbacks.BcCancel(b).pack())]
    values: dict[str, Any] = {}
    if step == "audience":
        shifts = [button(target, "broadcast.buttons.aud_shift", callbacks.BcAudience(b, f"s{i}").pack(), name=_shift_name(target, s.name))
                  for i, s in enumerate(svc.settings.shifts)]
        rows = [
            [button(target, "broadcast.buttons.quick", callbacks.BcQuick(b).pack())],
            [button(target, "broadcast.buttons.aud_all", callbacks.BcAudience(b, "all").pack()),
             button(target, "broadcast.buttons.aud_duty", callbacks.BcAudience(b, "duty").pack())],
            *_rows(shifts, 2),
            [button(target, "broadcast.buttons.aud_role", callbacks.BcAudience(b, "r").pack()),
             button(target, "broadcast.buttons.aud_pick", callbacks.BcAudience(b, "p").pack())],
            cancel,
        ]
    elif step == "roles":
        roles = [button(target, "broadcast.buttons.role", callbacks.BcAudience(b, "r", r.code).pack(), name=svc.renderer.role_label(r))
                 for r in ROLE_CHOICES]
        rows = [roles, [button(target, "broadcast.buttons.back", callbacks.BcAudience(b, "back").pack())], cancel]
    elif step == "pick":
        rows, values = await _picker(target, draft, page)
        rows.append(cancel)
    else:
        code = {"ack_required": "ack", "urgent": "urg", "pin": "pin", "silent": "sil"}[step]
        name = {"ack_required": "ack", "urgent": "urgent", "pin": "pin", "silent": "silent"}[step]
        rows = [
            [button(target, f"broadcast.buttons.{name}_yes", callbacks.BcChoice(b, code, "1").pack()),
             button(target, f"broadcast.buttons.{name}_no", callbacks.BcChoice(b, code, "0").pack())],
            cancel,
        ]
    asked = [c for c in CHOICES if c != "pin" or _team_chat(target) is not None]  # no group: no pin question
    number = asked.index("audience" if step in ("roles", "pick") else step) + 1
    text = svc.renderer.render(
        "broadcasts/compose.html", b=draft, step=step, number=number, rule=_rule(draft), excerpt=excerpt(draft),
        renotify_minutes=svc.settings.kefu_urgent_renotify_minutes, **values,
    )
    return text, keyboard(rows)


def _shift_name(target: Target, name: str) -> str:
    return target.bot_data["services"].renderer.shift_label(name)


async def _picker(target: Target, draft: Broadcast, page: int) -> tuple[list[list[InlineKeyboardButton]], dict]:
    """People as toggle buttons (a ✅ on the chosen), a page at a time."""
    renderer = target.bot_data["services"].renderer
    people = await services_of(target).broadcasts.pickable(draft.author_id)
    chosen = set(draft.audience_spec.people) if draft.audience_spec else set()
    pages = max(1, -(-len(people) // PICK_PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = people[page * PICK_PAGE_SIZE : (page + 1) * PICK_PAGE_SIZE]
    on, off = renderer.label("broadcast.buttons.picked"), renderer.label("broadcast.buttons.unpicked")
    toggles = [
        InlineKeyboardButton(f"{on if p.tg_id in chosen else off} {p.name}", callback_data=callbacks.BcPick(draft.id, p.tg_id, page).pack())
        for p in shown
    ]
    rows = _rows(toggles, 2)
    nav = []
    if page > 0:
        nav.append(button(target, "broadcast.buttons.prev", callbacks.BcPage(draft.id, page - 1).pack()))
    if page < pages - 1:
        nav.append(button(target, "broadcast.buttons.next", callbacks.BcPage(draft.id, page + 1).pack()))
    rows.append(nav)
    rows.append([button(target, "broadcast.buttons.back", callbacks.BcAudience(draft.id, "back").pack()),
                 button(target, "broadcast.buttons.pick_done", callbacks.BcPickDone(draft.id).pack(), count=len(chosen))])
    return rows, {"picked": len(chosen), "page": page, "pages": pages}


async def _preview(target: Target, draft: Broadcast) -> tuple[str, InlineKeyboardMarkup | None]:
    svc = target.bot_data["services"]
    recipients = await services_of(target).broadcasts.resolve(draft)
    rule = _rule(draft)
    copy = copy_text(target, draft, await author_name(target, draft.author_id))
    text = svc.renderer.render(
        "broadcasts/preview.html", b=draft, copy=copy, recipients=recipients, rule=rule,
        next_run=next_run(rule, svc.clock.now(), svc.tz) if rule else None, now=svc.clock.now(),
        blocked=sum(1 for p in recipients if p.blocked_at),
    )
    go = "broadcast.buttons.save" if draft.is_schedule_draft else "broadcast.buttons.send"
    first = [button(target, go, callbacks.BcGo(draft.id).pack())] if recipients or draft.is_schedule_draft else []
    rows = [first + [button(target, "broadcast.buttons.redo", callbacks.BcRedo(draft.id).pack())],
            [button(target, "broadcast.buttons.cancel", callbacks.BcCancel(draft.id).pack())]]
    return text, keyboard(rows)


async def _show(update: Update, context: KefuContext, text: str, markup: InlineKeyboardMarkup | None,
                draft_id: int | None = None) -> None:
    """Edit the pressed message; if that fails, send a new one (and make it the draft's panel)."""
    if await edit_pressed(update, context, text, reply_markup=markup):
        return
    sent = await reply(update, context, text, reply_markup=markup)
    if sent is not None and draft_id is not None:
        await services_of(context).broadcasts.set_panel(draft_id, sent.chat_id, sent.message_id)


def _audience_from(context: KefuContext, pressed: callbacks.BcAudience) -> Audience | str:
    """The audience a button names, or the view to show instead ("roles", "pick", "audience")."""
    choice = pressed.choice
    if choice in ("all", "duty"):
        return Audience(choice)
    if choice.startswith("s") and choice[1:].isdigit():
        shifts = context.svc.settings.shifts
        index = int(choice[1:])
        if index >= len(shifts):
            raise UserError("bad_audience")
        return Audience("shift", shifts[index].name)
    if choice == "r":
        return Audience("role", pressed.role) if pressed.role is not None else "roles"
    if choice == "p":
        return Audience("people")
    if choice == "back":
        return "audience"
    raise UserError("bad_audience")


@broadcast_errors
async def broadcast_button(update: Update, context: KefuContext) -> None:
    """Every `bc:` button: composing steps (author only), rosters and reminders (supervisors)."""
    pressed = callbacks.BROADCAST.decode(update.callback_query.data)
    if pressed is None:
        await answer_callback(update, label(context, "broadcast.answers.button_expired"))
        return
    broadcast_id = pressed.broadcast_id
    if isinstance(pressed, callbacks.BcRoster):
        await _roster(update, context, broadcast_id, edit=pressed.refresh is not None)
        return
    if isinstance(pressed, callbacks.BcRemind):
        await _remind(update, context, broadcast_id)
        return
    svc = services_of(context).broadcasts
    person = context.person
    draft = await svc.draft_for(broadcast_id, person)
    view, page = None, 0
    if isinstance(pressed, callbacks.BcAudience):
        chosen = _audience_from(context, pressed)
        if isinstance(chosen, str):
            view = chosen
        else:
            draft = await svc.choose(draft.id, person, "audience", chosen)
    elif isinstance(pressed, callbacks.BcPick):
        page = pressed.page
        if pressed.tg_id not in {p.tg_id for p in await svc.pickable(draft.author_id)}:
            raise UserError("bad_audience")
        current = draft.audience_spec if draft.audience_spec and draft.audience_spec.kind == "people" else Audience("people")
        draft = await svc.choose(draft.id, person, "audience", current.toggled(pressed.tg_id))
        view = "pick"
    elif isinstance(pressed, callbacks.BcPage):
        page, view = pressed.page, "pick"
    elif isinstance(pressed, callbacks.BcPickDone):
        if draft.audience_spec is None or not draft.audience_spec.complete:
            raise UserError("pick_someone")
    elif isinstance(pressed, callbacks.BcChoice):
        draft = await svc.choose(draft.id, person, callbacks.BC_CHOICES[pressed.code], pressed.yes == "1")
    elif isinstance(pressed, callbacks.BcQuick):  # the common case in one tap: everyone, 收到 required, normal, ringing
        draft = await svc.choose(draft.id, person, "audience", Audience("all"))
        for name, value in (("ack_required", True), ("urgent", False), ("pin", False), ("silent", False)):
            if getattr(draft, name) is None:
                draft = await svc.choose(draft.id, person, name, value)
    elif isinstance(pressed, callbacks.BcRedo):
        draft = await svc.reset_choices(draft.id, person, pin_available=_team_chat(context) is not None)
    elif isinstance(pressed, callbacks.BcCancel):
        draft = await svc.cancel(draft.id, person)
        await _show(update, context, context.svc.renderer.render("broadcasts/cancelled.html", b=draft), None)
        await answer_callback(update, label(context, "broadcast.answers.cancelled"))
        return
    elif isinstance(pressed, callbacks.BcGo):
        await _go(update, context, draft)
        await answer_callback(update)
        return
    else:
        await answer_callback(update, label(context, "broadcast.answers.button_expired"))
        return
    text, markup = await panel(context, draft, view=view, page=page)
    await _show(update, context, text, markup, draft.id)
    await answer_callback(update)


async def _go(update: Update, context: KefuContext, draft: Broadcast) -> None:
    """发送 (start the background delivery) or 保存 (a schedule)."""
    svc = services_of(context).broadcasts
    renderer = context.svc.renderer
    if draft.is_schedule_draft:
        schedule = await svc.save_schedule(draft.id, context.person)
        rule = Rule.decode(schedule.rule)
        text = renderer.render(
            "broadcasts/schedule_saved.html", s=schedule, b=draft, rule=rule,
            weekday=from_ts(schedule.next_run).astimezone(context.svc.tz).weekday(),
        )
        await _show(update, context, text, None)
        return
    broadcast = await svc.start_sending(draft.id, context.person)
    counts = await svc.counts(broadcast.id)
    await _show(update, context, renderer.render("broadcasts/progress.html", b=broadcast, counts=counts,
                                                 state="sending"), None, broadcast.id)
    start_delivery(context.application, broadcast.id)


# --- rosters, reminders, acknowledgement -------------------------------------------------------
@broadcast_errors
async def broadcasts_command(update: Update, context: KefuContext) -> None:
    """/broadcasts: recent broadcasts with their counts, a button for each one's roster."""
    svc = services_of(context).broadcasts
    items = await svc.recent(RECENT)
    authors = {b.author_id: await author_name(context, b.author_id) for b, _ in items}
    text = context.svc.renderer.render(
        "broadcasts/list.html", items=items, authors=authors, excerpts={b.id: excerpt(b, 40) for b, _ in items}
    )
    buttons = [button(context, "broadcast.buttons.roster", callbacks.BcRoster(b.id).pack(), number=b.number) for b, _ in items]
    await reply(update, context, text, reply_markup=keyboard(_rows(buttons, 3)))


async def _roster(update: Update, context: KefuContext, broadcast_id: int, *, edit: bool) -> None:
    svc = services_of(context).broadcasts
    broadcast = await svc.require(broadcast_id)
    recipients = await svc.roster(broadcast_id)
    acked = [r for r in recipients if r.acked_at is not None]
    waiting = [r for r in recipients if r.status == "sent" and r.acked_at is None]
    text = context.svc.renderer.render(
        "broadcasts/roster.html", b=broadcast, author=await author_name(context, broadcast.author_id),
        excerpt=excerpt(broadcast), acked=acked, waiting=waiting, limit=ROSTER_NAMES,
        sent=[r for r in recipients if r.status == "sent"],
        unreachable=[r for r in recipients if r.status == "blocked"],
        failed=[r for r in recipients if r.status == "failed"],
        pending=sum(1 for r in recipients if r.status in ("pending", "sending")),
    )
    rows = []
    if broadcast.ack_required and waiting:
        rows.append([button(context, "broadcast.buttons.remind", callbacks.BcRemind(broadcast.id).pack(), count=len(waiting))])
    rows.append([button(context, "broadcast.buttons.refresh", callbacks.BcRoster(broadcast.id, "r").pack())])
    if edit:
        await _show(update, context, text, keyboard(rows))
    else:
        await reply(update, context, text, reply_markup=keyboard(rows))
    await answer_callback(update)


async def _remind(update: Update, context: KefuContext, broadcast_id: int) -> None:
    """Remind the rest: everyone who got the copy and has not pressed 收到 (on duty or not)."""
    svc = services_of(context).broadcasts
    broadcast = await svc.require(broadcast_id)
    waiting = await svc.unacked(broadcast_id) if broadcast.ack_required else []
    if not waiting:
        await answer_callback(update, label(context, "broadcast.answers.nobody_to_remind"), alert=True)
        return
    key = f"remind-{broadcast_id}"
    if key in running(context.application):
        await answer_callback(update, label(context, "broadcast.answers.remind_running"))
        return
    chat_id = update.effective_chat.id
    running(context.application)[key] = context.application.create_task(
        _remind_all(context.application, broadcast, waiting, chat_id), name=key
    )
    await answer_callback(update, label(context, "broadcast.answers.reminding", count=len(waiting)))


async def _remind_all(app: Application, broadcast: Broadcast, waiting: list, chat_id: int) -> None:
    svc = services_of(app).broadcasts
    sent, unreachable = [], []
    try:
        for recipient in waiting:
            delivery = await send_reminder(app, broadcast, recipient)
            await svc.mark_notified(broadcast.id, recipient.tg_id, renotify=False)
            (sent if delivery.ok else unreachable).append(recipient.name)
        text = app.bot_data["services"].renderer.render(
            "broadcasts/reminded.html", b=broadcast, sent=sent, unreachable=unreachable
        )
        await send_copy_text(app, chat_id, text)
    finally:
        running(app).pop(f"remind-{broadcast.id}", None)


@broadcast_errors
async def ack_button(update: Update, context: KefuContext) -> None:
    """收到 (`ack:<broadcast>`): record who and when, then show it on the copy."""
    query = update.callback_query
    pressed = callbacks.ACK.decode(query.data)
    if pressed is None:
        await answer_callback(update, label(context, "broadcast.answers.button_expired"))
        return
    broadcast_id = pressed.broadcast_id
    pressed = query.message if isinstance(query.message, Message) else None
    recipient, recorded = await services_of(context).broadcasts.acknowledge(
        broadcast_id, context.person.tg_id, pressed.message_id if pressed else None
    )
    # the presser has their answer first; their copy (and the reminder pressed) change after, through the outbox
    await answer_callback(update, label(context, "broadcast.answers.acked" if recorded else "broadcast.answers.already_acked"))
    if recorded:
        broadcast = await services_of(context).broadcasts.get(broadcast_id)
        in_background(context, show_acknowledged(context.application, broadcast, recipient, pressed),
                      name="kefu-ack-fanout")


# --- schedules -------------------------------------------------------------------------------
async def _schedules_view(target: Target, confirm: int | None = None) -> tuple[str, InlineKeyboardMarkup | None]:
    svc = target.bot_data["services"]
    items = await services_of(target).broadcasts.schedules()
    rules = {s.id: Rule.decode(s.rule) for s, _ in items}
    weekdays = {s.id: from_ts(s.next_run).astimezone(svc.tz).weekday() for s, _ in items if s.next_run}
    text = svc.renderer.render(
        "broadcasts/schedules.html", items=items, rules=rules, weekdays=weekdays,
        excerpts={s.id: excerpt(t, 40) for s, t in items}, confirm=confirm,
    )
    rows = []
    for s, _ in items:
        if confirm == s.id:
            rows.append([button(target, "broadcast.buttons.delete_confirm", callbacks.ScheduleAction(s.id, "dd").pack(), id=s.id),
                         button(target, "broadcast.buttons.list", callbacks.ScheduleAction(0, "list").pack())])
            continue
        toggle = ("resume", "r") if s.paused else ("pause", "p")
        rows.append([button(target, f"broadcast.buttons.{toggle[0]}", callbacks.ScheduleAction(s.id, toggle[1]).pack(), id=s.id),
                     button(target, "broadcast.buttons.delete", callbacks.ScheduleAction(s.id, "d").pack(), id=s.id)])
    return text, keyboard(rows)


@broadcast_errors
async def schedules_command(update: Update, context: KefuContext) -> None:
    text, markup = await _schedules_view(context)
    await reply(update, context, text, reply_markup=markup)


@broadcast_errors
async def schedule_button(update: Update, context: KefuContext) -> None:
    """`sch:<id>:p|r|d|dd` pause, resume, ask to delete, delete; `sch:0:list` back to the list."""
    pressed = callbacks.SCHEDULE.decode(update.callback_query.data)
    if pressed is None:
        await answer_callback(update, label(context, "broadcast.answers.button_expired"))
        return
    schedule_id, action = pressed.schedule_id, pressed.action
    svc = services_of(context).broadcasts
    answer, confirm = None, None
    if action == "p":
        await svc.set_paused(schedule_id, True)
        answer = label(context, "broadcast.answers.paused", id=schedule_id)
    elif action == "r":
        await svc.set_paused(schedule_id, False)
        answer = label(context, "broadcast.answers.resumed", id=schedule_id)
    elif action == "d":
        confirm = schedule_id
    elif action == "dd":
        await svc.delete_schedule(schedule_id)
        answer = label(context, "broadcast.answers.deleted", id=schedule_id)
    text, markup = await _schedules_view(context, confirm)
    await _show(update, context, text, markup)
    await answer_callback(update, answer)


# --- tick work -------------------------------------------------------------------------------
async def resume_deliveries(app: Application) -> None:
    """Broadcasts a stop or crash interrupted carry on from their pending rows."""
    for broadcast in await services_of(app).broadcasts.unfinished():
        start_delivery(app, broadcast.id)


async def fire_schedules(app: Application) -> None:
    """Scheduled announcements falling due start; those missed beyond grace are reported."""
    renderer = app.bot_data["services"].renderer
    for fired in await services_of(app).broadcasts.fire_due():
        if fired.broadcast is not None:
            start_delivery(app, fired.broadcast.id)
        if fired.missed:
            text = renderer.render(
                "broadcasts/missed.html", s=fired.schedule, rule=Rule.decode(fired.schedule.rule),
                missed=[to_ts(t) for t in fired.missed],
                fired=fired.broadcast.sent_at if fired.broadcast else None,
            )
            await send_copy_text(app, fired.schedule.author_id, text)


async def renotify_urgent(app: Application) -> None:
    """Urgent broadcasts: remind those on duty who have not acknowledged, every
    KEFU_URGENT_RENOTIFY_MINUTES, at most three times."""
    svc = services_of(app).broadcasts
    minutes = app.bot_data["services"].settings.kefu_urgent_renotify_minutes
    for broadcast, recipient in await svc.due_renotifies(timedelta(minutes=minutes)):
        await send_reminder(app, broadcast, recipient, round=recipient.renotify_count + 1)
        await svc.mark_notified(broadcast.id, recipient.tg_id, renotify=True)


# --- wiring ----------------------------------------------------------------------------------
CAPTION_COMMAND = re.compile(r"^/(broadcast|schedule)(@\w+)?(\s|$)", re.IGNORECASE)


async def captioned_media(update: Update, context: KefuContext) -> None:
    """A photo or document captioned `/broadcast …` or `/schedule <when> …`: that file is the
    announcement. Consumed here, so no other handler takes it for an order export."""
    caption = update.effective_message.caption or ""
    command = CAPTION_COMMAND.match(caption).group(1).lower()
    await (broadcast_command if command == "broadcast" else schedule_command)(update, context)
    raise ApplicationHandlerStop


def register(app: Application) -> None:
    app.add_handler(CommandHandler("broadcast", broadcast_command))
    app.add_handler(CommandHandler("broadcasts", broadcasts_command))
    app.add_handler(CommandHandler("schedule", schedule_command))
    app.add_handler(CommandHandler("schedules", schedules_command))
    app.add_handler(CallbackQueryHandler(broadcast_button, pattern=callbacks.BROADCAST.pattern))
    app.add_handler(CallbackQueryHandler(ack_button, pattern=callbacks.ACK.pattern))
    app.add_handler(CallbackQueryHandler(schedule_button, pattern=callbacks.SCHEDULE.pattern))
    media = filters.UpdateType.MESSAGE & (filters.PHOTO | filters.Document.ALL) & filters.CaptionRegex(CAPTION_COMMAND)
    routing.add_first(app, MessageHandler(media, captioned_media))  # ahead of order exports


async def on_startup(app: Application) -> None:
    services = services_of(app)
    app.bot_data["broadcast_words"] = WhenWords.from_labels(services.renderer.labels["broadcast"]["when"])
    for hook in (resume_deliveries, fire_schedules, renotify_urgent):
        add_tick_hook(app, hook)
