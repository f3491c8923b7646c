"""The handover book (交接本) in Telegram: /handover (/jj), /handovers, /handover_stats, /cancel,
the `ho:` buttons, and the shift-change tick (pre-end prompts, start-of-shift digests, alerts
to supervisors for items nobody took over).

Domain rules live in bot/handover/; this module parses, calls the service, renders, sends.
Every copy of an item card is remembered (handover_cards), so a take-over, a resolution or an
edit updates all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.clock import to_ts
from bot.handover import (
    KINDS,
    Attachment,
    HandoverError,
    Item,
    OrderRef,
    age_minutes,
    claimed_reminders,
    occurrence_key,
    prompts_due,
    running_windows,
    window_for_key,
)
from bot.handover.text import guess_kind, parse_date
from bot.people import Person, Role, UserError
from bot.recipients import Notify, recipients
from bot.services import Services
from handlers import callbacks, outbox, pending, routing
from handlers.common import arg_text, button, keyboard, label, user_errors
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import answer_callback, deliver, reply
from handlers.ticker import add_tick_hook

log = logging.getLogger(__name__)

FEATURE = "handover"
#: How long /handover alone waits for the item's text (handlers/pending.py keeps the wait).
PENDING_TTL = timedelta(minutes=15)
CAPTION_COMMAND = re.compile(r"^/(handover|jj)(@\w+)?(\s|$)", re.IGNORECASE)
LIST_LIMIT = 30
LIST_BUTTONS = 10
ALERT_LIMIT = 20
STATS_DEFAULT_DAYS = 7
STATS_MAX_DAYS = 31


# --- plumbing --------------------------------------------------------------------------------
def _labels(target: Target) -> dict:
    return services_of(target).renderer.labels[FEATURE]


def _now(target: Target) -> int:
    return to_ts(services_of(target).clock.now())


def _render(target: Target, template: str, **values: Any) -> str:
    return services_of(target).renderer.render(f"handover/{template}", **values)


async def _names(target: Target) -> dict[int, str]:
    return {p.tg_id: p.name for p in await services_of(target).people.all()}


async def _error_text(context: KefuContext, exc: UserError) -> str:
    if not isinstance(exc, HandoverError):
        return label(context, f"errors.{exc.code}", **exc.params)
    params = dict(exc.params)
    if "by" in params:
        person = await context.svc.people.get(params["by"]) if params["by"] else None
        params["by_name"] = person.name if person else str(params["by"])
    return label(context, f"handover.errors.{exc.code}", **params)


def _after_error(context: KefuContext, exc: UserError) -> None:
    if isinstance(exc, HandoverError) and exc.code not in ("empty_text", "text_too_long", "note_too_long"):
        _clear_pending(context)  # the thing waited for cannot happen any more


#: A refusal from the service becomes its Chinese message (an alert under a button).
handover_errors = user_errors(text=_error_text, after=_after_error)


# --- waiting for the user's next message (handlers/pending.py) -------------------------------
def _pending(context: KefuContext) -> dict | None:
    return pending.get(context, FEATURE, PENDING_TTL)


def _set_pending(context: KefuContext, action: str, **values: Any) -> None:
    pending.start(context, FEATURE, action, **values)


def _clear_pending(context: KefuContext) -> None:
    pending.clear(context, FEATURE)


# --- cards -----------------------------------------------------------------------------------
@dataclass
class CardContext:
    """What rendering a batch of cards needs besides the items: names, stored orders, now."""

    names: dict[int, str]
    orders: dict[str, OrderRef]
    now: int
    order_button: bool


async def card_context(target: Target, items: list[Item]) -> CardContext:
    return CardContext(
        names=await _names(target),
        orders=await services_of(target).handover.orders(i.order_no for i in items if i.order_no),
        now=_now(target),
        order_button="order" in target.bot_data.get("registered_commands", set()),
    )


def _is_late(target: Target, item: Item, occurrence: str) -> bool:
    """Written after the shift it is shown to had started (a later addition to its digest)."""
    if not occurrence:
        return False
    window = window_for_key(services_of(target).settings.shifts, occurrence, services_of(target).tz)
    return window is not None and item.created_at >= to_ts(window.start)


def render_card(target: Target, item: Item, cc: CardContext, *, author_view: bool = False,
                late: bool = False) -> tuple[str, InlineKeyboardMarkup | None]:
    values = {
        "item": item, "names": cc.names, "order": cc.orders.get(item.order_no or ""), "now": cc.now,
        "late": late, "age": age_minutes(item, cc.now), "editable": item.editable_at(cc.now),
    }
    text = _render(target, "logged.html" if author_view else "card.html", **values)
    return text, card_keyboard(target, item, cc, author_view=author_view)


def card_keyboard(target: Target, item: Item, cc: CardContext, *, author_view: bool = False) -> InlineKeyboardMarkup | None:
    names = _labels(target)["kinds"]
    rows: list[list] = []
    if item.is_open:
        if author_view and item.editable_at(cc.now):
            kinds = [
                button(target, "handover.buttons.kind", callbacks.HoKind(item.id, code).pack(), name=names[code],
                       current=code == item.kind)
                for code in KINDS
            ]
            rows += [kinds[:3], kinds[3:]]
            rows.append([button(target, "handover.buttons.edit", callbacks.HoEdit(item.id).pack()),
                         button(target, "handover.buttons.withdraw", callbacks.HoWithdraw(item.id).pack())])
        actions = []
        if not author_view and item.awaiting_takeover:
            actions.append(button(target, "handover.buttons.take", callbacks.HoTake(item.id).pack()))
        actions.append(button(target, "handover.buttons.resolve", callbacks.HoResolve(item.id).pack()))
        rows.append(actions)
    extras = []
    if item.attachment:
        extras.append(button(target, "handover.buttons.attachment", callbacks.HoAttachment(item.id).pack()))
    order_data = callbacks.order_card(item.order_no or "")
    if item.order_no in cc.orders and cc.order_button and order_data is not None:
        extras.append(button(target, "handover.buttons.order", order_data, order_no=item.order_no))
    extras.append(button(target, "handover.buttons.history", callbacks.HoView(item.id).pack()))
    rows.append(extras)
    return keyboard(rows)


async def refresh_cards(target: Target, item_id: int, *, skip: tuple[int, int] | None = None) -> None:
    """Re-render every message showing this item (the author's copy and each shift's copies), as
    bulk work, every chat on its own; `skip`: the (chat, message) already edited directly."""
    ho = services_of(target).handover
    item = await ho.require(item_id)
    cards = await ho.cards(item_id)
    if not cards:
        return
    cc = await card_context(target, [item])
    edits = []
    for card in cards:
        if skip is not None and (card.chat_id, card.message_id) == skip:
            continue
        text, markup = render_card(target, item, cc, author_view=card.occurrence == "",
                                   late=_is_late(target, item, card.occurrence))
        edits.append(outbox.edit(target, card.chat_id, card.message_id, text, reply_markup=markup,
                                 what=f"handover card {item_id}"))
    await asyncio.gather(*edits)


async def refresh_after_press(update: Update, context: KefuContext, item_id: int) -> None:
    """After a press (answered already): the pressed card now, directly; every other copy in the
    background through the outbox's bulk queue (issue 13)."""
    ho = services_of(context).handover
    message = update.callback_query.message if update.callback_query is not None else None
    pressed = None
    if message is not None:
        card = next((c for c in await ho.cards(item_id)
                     if (c.chat_id, c.message_id) == (message.chat.id, message.message_id)), None)
        if card is not None:
            item = await ho.require(item_id)
            cc = await card_context(context, [item])
            text, markup = render_card(context, item, cc, author_view=card.occurrence == "",
                                       late=_is_late(context, item, card.occurrence))
            await outbox.edit(context, card.chat_id, card.message_id, text, reply_markup=markup,
                              what=f"handover card {item_id}", bulk=False)
            pressed = (card.chat_id, card.message_id)
    outbox.in_background(context, refresh_cards(context.application, item_id, skip=pressed),
                         name="kefu-handover-fanout")


def refresh_in_background(context: KefuContext, item_id: int) -> None:
    """After a typed change (answered already): every copy of the item, in the background."""
    outbox.in_background(context, refresh_cards(context.application, item_id), name="kefu-handover-fanout")


async def _send_author_card(update: Update, context: KefuContext, item: Item) -> None:
    cc = await card_context(context, [item])
    text, markup = render_card(context, item, cc, author_view=True)
    message = await reply(update, context, text, reply_markup=markup)
    if message is not None:
        await services_of(context).handover.record_card(item.id, "", message.chat_id, message.message_id)


# --- writing ---------------------------------------------------------------------------------
def _attachment_of(message: Message) -> Attachment | None:
    if message.photo:
        return Attachment(message.photo[-1].file_id, "photo")
    if message.document:
        return Attachment(message.document.file_id, "document", message.document.file_name)
    return None


async def _log(update: Update, context: KefuContext, text: str, *, kind: str | None,
               attachment: Attachment | None) -> None:
    person = context.person
    kind = kind or guess_kind(text, _labels(context)["kind_keywords"])
    item = await services_of(context).handover.log_item(person.tg_id, person.shift, text, kind=kind, attachment=attachment)
    _clear_pending(context)
    await _send_author_card(update, context, item)


async def _ask_for_text(update: Update, context: KefuContext, *, attachment: Attachment | None = None,
                        kind: str | None = None) -> None:
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        raise HandoverError("group_needs_text")
    _set_pending(context, "new", kind=kind, attachment=attachment.__dict__ if attachment else None)
    await reply(update, context, _render(context, "ask.html", kind=kind, attachment=attachment),
                reply_markup=_pending_kind_keyboard(context, kind))


def _pending_kind_keyboard(context: KefuContext, chosen: str | None) -> InlineKeyboardMarkup | None:
    names = _labels(context)["kinds"]
    kinds = [
        button(context, "handover.buttons.pending_kind", callbacks.HoPendingKind(code).pack(), name=names[code], current=code == chosen)
        for code in KINDS
    ]
    return keyboard([kinds[:3], kinds[3:]])


@handover_errors
async def handover_command(update: Update, context: KefuContext) -> None:
    """/handover <text> logs an item; /handover alone asks for it (with the kind buttons)."""
    text = arg_text(update)
    if text:
        await _log(update, context, text, kind=None, attachment=None)
    else:
        await _ask_for_text(update, context)


@handover_errors
async def attachment_message(update: Update, context: KefuContext) -> None:
    """A photo or file captioned `/handover ...`, or sent while the book waits for an item."""
    message = update.effective_message
    attachment = _attachment_of(message)
    caption = message.caption or ""
    state = _pending(context)
    if CAPTION_COMMAND.match(caption):
        text, kind = arg_text(update), None
    elif state is not None and state["action"] == "new":
        text, kind = caption.strip(), state.get("kind")
    else:
        raise HandoverError("media_needs_text")
    if text:
        await _log(update, context, text, kind=kind, attachment=attachment)
    else:
        await _ask_for_text(update, context, attachment=attachment, kind=kind)


async def pending_text(update: Update, context: KefuContext) -> None:
    """The next private text after /handover, 修改 or 已解决: the item, its new text, the note."""
    await _consume_pending_text(update, context)
    raise ApplicationHandlerStop  # consumed: not a script search, not "没看懂"


@handover_errors
async def _consume_pending_text(update: Update, context: KefuContext) -> None:
    state = _pending(context)
    if state is None:
        raise HandoverError("pending_expired")
    text = update.effective_message.text or ""
    person = context.person
    ho = services_of(context).handover
    if state["action"] == "new":
        stored = state.get("attachment")
        await _log(update, context, text, kind=state.get("kind"), attachment=Attachment(**stored) if stored else None)
    elif state["action"] == "edit":
        item = await ho.edit_text(int(state["item_id"]), person.tg_id, text)
        _clear_pending(context)
        await reply(update, context, label(context, "handover.answers.edited", id=item.id))
        refresh_in_background(context, item.id)
    elif state["action"] == "resolve":
        item = await ho.resolve(int(state["item_id"]), person.tg_id, person.shift, note=text)
        _clear_pending(context)
        await reply(update, context, label(context, "handover.answers.resolved", id=item.id))
        refresh_in_background(context, item.id)
    else:
        _clear_pending(context)


async def cancel_command(update: Update, context: KefuContext) -> None:
    """/cancel: stop waiting for input, whichever feature was waiting."""
    pending.clear(context)
    await reply(update, context, label(context, "handover.cancelled"))


# --- buttons ---------------------------------------------------------------------------------
async def _button_new(update: Update, context: KefuContext) -> None:
    await answer_callback(update)
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        raise HandoverError("group_needs_text")
    await _ask_for_text(update, context)


async def _button_pending_kind(update: Update, context: KefuContext, kind: str) -> None:
    state = _pending(context)
    if kind not in KINDS:
        raise ValueError(kind)
    if state is None or state["action"] != "new":
        raise HandoverError("pending_expired")
    state["kind"] = kind
    name = _labels(context)["kinds"][kind]
    await answer_callback(update, label(context, "handover.answers.pending_kind", name=name))
    stored = state.get("attachment")
    await outbox.edit_pressed(update, context,
                              _render(context, "ask.html", kind=kind, attachment=Attachment(**stored) if stored else None),
                              reply_markup=_pending_kind_keyboard(context, kind))


async def _button_kind(update: Update, context: KefuContext, item_id: int, kind: str) -> None:
    item = await services_of(context).handover.set_kind(item_id, context.person.tg_id, kind)
    await answer_callback(update, label(context, "handover.answers.kind_set", name=_labels(context)["kinds"][item.kind]))
    await refresh_after_press(update, context, item.id)


async def _button_edit(update: Update, context: KefuContext, item_id: int) -> None:
    ho = services_of(context).handover
    item = await ho.require(item_id)
    await ho.check_editable(item.id, context.person.tg_id)
    _set_pending(context, "edit", item_id=item.id)
    await answer_callback(update, label(context, "handover.answers.ask_sent"))
    await deliver(context, context.person.tg_id, _render(context, "ask_edit.html", item=item))


async def _button_withdraw(update: Update, context: KefuContext, item_id: int) -> None:
    """↩️ 撤回 affects the people the item went to: ask once more before doing it."""
    item = await services_of(context).handover.check_editable(item_id, context.person.tg_id)
    markup = keyboard([[button(context, "handover.buttons.withdraw_yes", callbacks.HoWithdrawYes(item.id).pack(), id=item.id),
                        button(context, "handover.buttons.withdraw_no", callbacks.HoWithdrawNo(item.id).pack())],
                       [button(context, "handover.buttons.history", callbacks.HoView(item.id).pack())]])
    await outbox.edit_pressed_markup(update, context, markup)
    await answer_callback(update, label(context, "handover.answers.confirm_withdraw", id=item.id), alert=True)


async def _button_withdraw_cancelled(update: Update, context: KefuContext, item_id: int) -> None:
    await answer_callback(update)
    await refresh_after_press(update, context, item_id)


async def _button_withdraw_confirmed(update: Update, context: KefuContext, item_id: int) -> None:
    item = await services_of(context).handover.withdraw(item_id, context.person.tg_id)
    _clear_pending(context)
    await answer_callback(update, label(context, "handover.answers.withdrawn", id=item.id))
    await refresh_after_press(update, context, item.id)


async def _button_take(update: Update, context: KefuContext, item_id: int, source: str | None = None) -> None:
    person = context.person
    item = await services_of(context).handover.take_over(item_id, person.tg_id, person.shift,
                                            supervisor=person.role >= Role.SUPERVISOR)
    await answer_callback(update, label(context, "handover.answers.taken", id=item.id))
    await refresh_after_press(update, context, item.id)
    if source == "l":
        await _show_open_list(update, context, edit=True)


async def _button_resolve(update: Update, context: KefuContext, item_id: int) -> None:
    item = await services_of(context).handover.require(item_id)
    services_of(context).handover.check_open(item)
    _set_pending(context, "resolve", item_id=item.id)
    await answer_callback(update, label(context, "handover.answers.ask_sent"))
    markup = keyboard([[button(context, "handover.buttons.resolve_no_note", callbacks.HoResolveNoNote(item.id).pack())]])
    await deliver(context, context.person.tg_id, _render(context, "ask_note.html", item=item), reply_markup=markup)


async def _button_resolve_without_note(update: Update, context: KefuContext, item_id: int) -> None:
    person = context.person
    item = await services_of(context).handover.resolve(item_id, person.tg_id, person.shift)
    state = _pending(context)
    if state is not None and state.get("item_id") == item.id:
        _clear_pending(context)
    await answer_callback(update, label(context, "handover.answers.resolved", id=item.id))
    await outbox.edit_pressed_markup(update, context, None)
    await refresh_after_press(update, context, item.id)


async def _button_view(update: Update, context: KefuContext, item_id: int) -> None:
    ho = services_of(context).handover
    item = await ho.require(item_id)
    cc = await card_context(context, [item])
    await answer_callback(update)
    text = _render(context, "detail.html", item=item, names=cc.names, order=cc.orders.get(item.order_no or ""),
                   now=cc.now, late=False, age=age_minutes(item, cc.now), history=await ho.history(item.id))
    await reply(update, context, text, reply_markup=card_keyboard(context, item, cc))


async def _button_attachment(update: Update, context: KefuContext, item_id: int) -> None:
    item = await services_of(context).handover.require(item_id)
    if item.attachment is None:
        raise ValueError("no attachment")
    chat_id = update.effective_chat.id
    caption = label(context, "handover.attachment_caption", id=item.id)
    try:
        kind = "photo" if item.attachment.type == "photo" else "document"
        await outbox.deliver_file(context, chat_id, kind, item.attachment.file_id, "", caption)
    except BadRequest as exc:
        log.info("attachment of handover %s not sent: %s", item.id, exc)
        await answer_callback(update, label(context, "handover.answers.attachment_gone"), alert=True)
        return
    await answer_callback(update)


BUTTONS = {
    callbacks.HoNew: _button_new,
    callbacks.HoPendingKind: _button_pending_kind,
    callbacks.HoKind: _button_kind,
    callbacks.HoEdit: _button_edit,
    callbacks.HoWithdraw: _button_withdraw,
    callbacks.HoWithdrawYes: _button_withdraw_confirmed,
    callbacks.HoWithdrawNo: _button_withdraw_cancelled,
    callbacks.HoTake: _button_take,
    callbacks.HoResolve: _button_resolve,
    callbacks.HoResolveNoNote: _button_resolve_without_note,
    callbacks.HoView: _button_view,
    callbacks.HoAttachment: _button_attachment,
}


@handover_errors
async def button_pressed(update: Update, context: KefuContext) -> None:
    """Every `ho:` button (handlers/callbacks.py `Ho*`); anything malformed or outdated gets a
    short "button expired"."""
    pressed = callbacks.HANDOVER.decode(update.callback_query.data)
    handle = BUTTONS.get(type(pressed))
    if handle is None:
        await answer_callback(update, label(context, "handover.answers.stale"), alert=True)
        return
    try:
        await handle(update, context, *(getattr(pressed, f.name) for f in dataclasses.fields(pressed)))
    except (ValueError, KeyError, TypeError):
        await answer_callback(update, label(context, "handover.answers.stale"), alert=True)


# --- looking back ----------------------------------------------------------------------------
def _list_buttons(context: KefuContext, items: list[Item]) -> list[list]:
    """Per listed item: 接手 (when it waits for its shift), 解决 (while open), 详情."""
    rows = []
    for item in items[:LIST_BUTTONS]:
        row = []
        if item.awaiting_takeover and item.author_id != context.person.tg_id:
            row.append(button(context, "handover.buttons.take_n", callbacks.HoTake(item.id, "l").pack(), id=item.id))
        if item.is_open:
            row.append(button(context, "handover.buttons.resolve_n", callbacks.HoResolve(item.id).pack(), id=item.id))
        row.append(button(context, "handover.buttons.history_n", callbacks.HoView(item.id).pack(), id=item.id))
        rows.append(row)
    return rows


async def _show_open_list(update: Update, context: KefuContext, *, edit: bool = False) -> None:
    items = await services_of(context).handover.open_items()
    shown = items[:LIST_LIMIT]
    names = await _names(context)
    text = _render(context, "list.html", mode="open", items=shown, total=len(items), names=names, now=_now(context))
    rows = _list_buttons(context, shown)
    if edit and await outbox.edit_pressed(update, context, text, reply_markup=keyboard(rows)):
        return
    await reply(update, context, text, reply_markup=keyboard(rows))


@handover_errors
async def handovers_command(update: Update, context: KefuContext) -> None:
    """/handovers: the open items; /handovers <order no | keyword | date | kind>: search all."""
    query = arg_text(update)
    if not query:
        await _show_open_list(update, context)
        return
    labels = _labels(context)
    result = await services_of(context).handover.search(query, relative_days=labels["relative_days"], kind_names=labels["kinds"])
    names = await _names(context)
    await reply(update, context, _render(context, "list.html", mode=result.mode, value=result.value,
                                         items=result.items, total=result.total, names=names, now=_now(context)),
                reply_markup=keyboard(_list_buttons(context, list(result.items))))


@handover_errors
async def stats_command(update: Update, context: KefuContext) -> None:
    """/handover_stats [days | date]: per shift, written, handed, taken over (how fast), resolved."""
    arg = arg_text(update)
    now = context.svc.clock.now()
    tz = context.svc.tz
    if not arg:
        since, until = now - timedelta(days=STATS_DEFAULT_DAYS), now
    elif arg.isascii() and arg.isdigit() and len(arg) <= 6:
        days = int(arg)
        if not 1 <= days <= STATS_MAX_DAYS:
            raise HandoverError("stats_usage")
        since, until = now - timedelta(days=days), now
    else:
        day = parse_date(arg, now.astimezone(tz).date(), _labels(context)["relative_days"])
        if day is None:
            raise HandoverError("stats_usage")
        since = datetime.combine(day, datetime.min.time(), tz)
        until = min(now, since + timedelta(days=1) - timedelta(seconds=1))
    ho = services_of(context).handover
    stats = await ho.stats(since, until)
    rows = [s for s in stats if s.written or s.received or s.resolved]
    # A shift belongs to the day it starts on: a night shift to 01:00 is counted whole on its day,
    # so the header shows the shift-day (first start to last end), not midnight to midnight.
    shifts = context.svc.settings.shifts
    if stats:
        first = min(s.start for s in stats)
        last = max(s.start + 60 * ((sh.end - sh.start) % 1440 or 1440)
                   for s in stats for sh in shifts if sh.name == s.shift)
        shown_since, shown_until = datetime.fromtimestamp(first, tz), datetime.fromtimestamp(last, tz)
    else:
        shown_since, shown_until = since, until
    await reply(update, context, _render(context, "stats.html", stats=stats, rows=rows, quiet=len(stats) - len(rows),
                                         since=shown_since, until=shown_until, by_shift_day=bool(arg and not arg.isdigit()),
                                         open_count=len(await ho.open_items())))


# --- the shift-change tick -------------------------------------------------------------------
async def _shift_people(svc: Services, shift_name: str) -> list[Person]:
    return [p for p in await svc.people.all(active_only=True) if p.shift == shift_name and p.blocked_at is None]


async def send_prompts(app: Application, epoch: int) -> None:
    """KEFU_HANDOVER_PROMPT_MINUTES before a shift ends: write your handover; here is what you own.

    Sent once per person and shift occurrence; a prompt missed while the bot was down is sent
    late if the shift is still running, and dropped once it has ended (nobody is left to act)."""
    svc, ho = services_of(app), services_of(app).handover
    minutes = svc.settings.kefu_handover_prompt_minutes
    now = svc.clock.now()
    for window in prompts_due(svc.settings.shifts, now, svc.tz, minutes):
        if to_ts(window.end) - minutes * 60 < epoch:
            continue
        key = occurrence_key(window)
        names = None
        for person in await _shift_people(svc, window.shift.name):
            if await ho.notice_status(key, "prompt", person.tg_id) is not None:
                continue
            names = names or await _names(app)
            text = _render(
                app, "prompt.html", end=window.end, minutes_left=max(1, math.ceil((window.end - now).total_seconds() / 60)),
                claims=await claimed_reminders(svc.db, person.tg_id), owned=await ho.owned_by(person.tg_id),
                names=names, now=to_ts(now), cases=(cases := await svc.cases.open_cases_of(person.tg_id)),
            )
            markup = keyboard([[button(app, "handover.buttons.new", callbacks.HoNew().pack())], *_case_rows(app, cases)])
            delivery = await deliver(app, person.tg_id, text, reply_markup=markup)
            if delivery.status != "failed":  # a transient failure is retried on the next tick
                await ho.record_notice(key, "prompt", person.tg_id, delivery.status)


async def send_digests(app: Application, epoch: int) -> None:
    """At the start of each shift (or the first tick after it, if the bot was down): hand it
    every open item written before it began, and send its people the digest, one card per item.

    Runs on every tick while the shift lasts: items written later for the previous shift reach
    it as additions; people who did not get their copy (a network error) get it now."""
    svc, ho = services_of(app), services_of(app).handover
    now = to_ts(svc.clock.now())
    for window in running_windows(svc.settings.shifts, svc.clock.now(), svc.tz):
        start = to_ts(window.start)
        if start < epoch:
            continue
        key = occurrence_key(window)
        await ho.hand_over_to(window)
        people = await _shift_people(svc, window.shift.name)
        if not people:
            continue  # nobody on this shift: the items wait, and supervisors hear about them
        items = await ho.handed_items(key)
        orders = None
        cc = None
        cases = await _cases_left_by_other_shifts(svc, window.shift.name)
        for person in people:
            status = await ho.notice_status(key, "digest", person.tg_id)
            if status is None:
                if orders is None:
                    orders = await ho.due_orders(window)
                shown = cases if person.role >= Role.SUPERVISOR else []
                if not items and not orders and not shown:
                    await ho.record_notice(key, "digest", person.tg_id, "skipped")
                    continue
                text = _render(
                    app, "digest.html", key=key, start=start, now=now, total=len(items),
                    fresh=sum(1 for i in items if i.handed_count <= 1),
                    carried=sum(1 for i in items if i.handed_count > 1),
                    urgent=sum(1 for i in items if i.urgent), orders=orders[:LIST_LIMIT],
                    more=max(0, len(orders) - LIST_LIMIT), ack_minutes=svc.settings.kefu_handover_ack_minutes,
                    cases=shown, names=await _names(app),
                )
                delivery = await deliver(app, person.tg_id, text, reply_markup=keyboard(_case_rows(app, shown)))
                if delivery.status == "failed":
                    continue
                await ho.record_notice(key, "digest", person.tg_id, delivery.status)
                status = delivery.status
            if status == "blocked":
                continue
            for item in items:
                if await ho.has_card(item.id, key, person.tg_id):
                    continue
                cc = cc or await card_context(app, items)
                text, markup = render_card(app, item, cc, late=item.created_at >= start)
                delivery = await deliver(app, person.tg_id, text, reply_markup=markup)
                if delivery.status == "failed":
                    break
                await ho.record_card(item.id, key, person.tg_id, delivery.message.message_id if delivery.ok else 0)
                if delivery.status == "blocked":
                    break


async def _cases_left_by_other_shifts(svc: Services, shift_name: str) -> list:
    """Unfinished 售后 cases whose owners work another shift: the starting shift's supervisors see
    them in the digest (one line each, linking the card) until they are closed."""
    found = []
    for shift in svc.settings.shifts:
        if shift.name != shift_name:
            found += await svc.cases.open_cases_of_shift(shift.name)
    return sorted(found, key=lambda c: c.id)


def _case_rows(app: Application, cases: list) -> list:
    from handlers.cases import case_button

    buttons = [case_button(app, c) for c in cases[:LIST_BUTTONS]]
    return [buttons[i:i + 3] for i in range(0, len(buttons), 3)]


async def send_alerts(app: Application) -> None:
    """Items handed to a shift and not taken over KEFU_HANDOVER_ACK_MINUTES later: tell the
    supervisors (and admins), once per item and shift."""
    svc, ho = services_of(app), services_of(app).handover
    due = await ho.due_alerts()
    if not due:
        return
    supervisors = await recipients(svc.people, Notify.SUPERVISORS)
    names = await _names(app)
    for key, items in due.items():
        text = _render(app, "alert.html", key=key, items=items, names=names, now=to_ts(svc.clock.now()),
                       minutes=svc.settings.kefu_handover_ack_minutes, limit=ALERT_LIMIT)
        rows = [
            [button(app, "handover.buttons.take_n", callbacks.HoTake(i.id).pack(), id=i.id),
             button(app, "handover.buttons.resolve_n", callbacks.HoResolve(i.id).pack(), id=i.id)]
            for i in items[:LIST_BUTTONS]
        ]
        for chat_id in supervisors:
            await deliver(app, chat_id, text, reply_markup=keyboard(rows))
        await ho.mark_alerted(key, [i.id for i in items])


async def on_tick(app: Application) -> None:
    """Idempotent: what was sent for which shift occurrence is in SQLite, so a tick after a
    restart catches up without repeating anything."""
    epoch = await services_of(app).handover.epoch()
    await send_digests(app, epoch)  # a late digest (after downtime) before the end-of-shift prompt
    await send_prompts(app, epoch)
    await send_alerts(app)


# --- wiring ----------------------------------------------------------------------------------
def register(app: Application) -> None:
    app.add_handler(CommandHandler(["handover", "jj"], handover_command))
    app.add_handler(CommandHandler("handovers", handovers_command))
    app.add_handler(CommandHandler("handover_stats", stats_command))
    app.add_handler(CommandHandler("cancel", cancel_command))
    app.add_handler(CallbackQueryHandler(button_pressed, pattern=callbacks.HANDOVER.pattern))
    awaited = pending.Awaiting(app, FEATURE, PENDING_TTL)
    new_message = filters.UpdateType.MESSAGE
    media = filters.PHOTO | filters.Document.ALL
    routing.add_first(app, MessageHandler(
        new_message & media & (filters.CaptionRegex(CAPTION_COMMAND) | (filters.ChatType.PRIVATE & awaited)),
        attachment_message,
    ))
    app.add_handler(
        MessageHandler(new_message & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND & awaited, pending_text),
        group=routing.PENDING,
    )


async def on_startup(app: Application) -> None:
    await services_of(app).handover.ensure_epoch()
    add_tick_hook(app, on_tick)
