"""Reminders on Telegram: the tick that scans and delivers, the buttons, /reminders.

Every tick (handlers/ticker.py): scan (record what fell due, close what no longer applies) → edit
the messages of what changed → if somebody is on duty, deliver pending reminders to the agents
on duty and the team chat (one card, or one digest per rule when several are due) → escalate
unclaimed ones to supervisors. A shift is working but nobody of it is on duty (none assigned, or
all deactivated/unreachable): reminders go to the team chat and every supervisor and admin, and
the admins are told once per shift occurrence that nobody is assigned (issue 11: a due reminder
always reaches someone). No shift working (the night gap): everything waits and goes out as one
digest per rule at the next shift start. Delivery bookkeeping is in bot/reminders/engine.py.

Buttons (`rem:<action>:<id>[:<arg>]`): any registered agent may press (the guard has checked the
role); each press is checked here against the reminder's state and recorded by the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.clock import to_ts
from bot.people import Role
from bot.reminders import ReminderView
from bot.reminders.digest import group_by_rule, split_digest
from bot.reminders.engine import ActionResult, MessageRow, note_unstaffed_once
from bot.reminders.rules import RULES, outcomes_for, script_choice
from bot.recipients import Notify, due_reminder_chats
from bot.recipients import recipients as notify
from bot.shifts import current_windows, next_shift_start
from handlers import callbacks, outbox
from handlers.common import button, keyboard
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import Delivery, answer_callback, deliver
from handlers.ticker import add_tick_hook

log = logging.getLogger(__name__)
#: The per-reminder button of a list or digest, by what it does.
TAKE_BUTTONS = {"take": callbacks.RemTake, "claim": callbacks.RemClaim, "open": callbacks.RemOpen}

FEATURE = "reminders"
LIST_LIMIT = 15


# --- rendering -----------------------------------------------------------------------------------


class View:
    """Renders reminder messages (text and keyboard) at one moment with the team's names."""

    def __init__(self, target: Target, names: dict[int, str], now: int) -> None:
        self.target = target
        self.svc = services_of(target)
        self.names = names
        self.now = now

    @classmethod
    async def build(cls, target: Target) -> View:
        svc = services_of(target)
        names = {p.tg_id: p.name for p in await svc.people.all()}
        return cls(target, names, to_ts(svc.clock.now()))

    def _render(self, template: str, **values: Any) -> str:
        return self.svc.renderer.render(f"reminders/{template}", now=self.now, names=self.names, **values)

    def _button(self, key: str, data: str, **values: Any):
        return button(self.target, f"reminders.buttons.{key}", data, **values)

    def card(self, r: ReminderView) -> tuple[str, InlineKeyboardMarkup | None]:
        from bot.orders import platform_name

        text = self._render("card.html", r=r, platform=platform_name(r.platform))
        return text, self.card_keyboard(r)

    def card_keyboard(self, r: ReminderView) -> InlineKeyboardMarkup | None:
        if not r.is_open:
            return None
        first = [self._button("claim", callbacks.RemClaim(r.id).pack())] if r.claimable else []
        first.append(self._button("done", callbacks.RemDone(r.id).pack()))
        return keyboard([first, [self._button("snooze", callbacks.RemSnooze(r.id).pack()), self._button("script", callbacks.RemScript(r.id).pack())],
                         [button(self.target, "cases.buttons.open_case", callbacks.new_case("r", r.id))]])

    def outcome_keyboard(self, r: ReminderView) -> InlineKeyboardMarkup | None:
        rows = [[button(self.target, f"reminders.outcomes.{code}", callbacks.RemOutcome(r.id, code).pack())] for code in outcomes_for(r.rule, r.stage)]
        rows.append([self._button("back", callbacks.RemBack(r.id).pack())])
        return keyboard(rows)

    def snooze_keyboard(self, r: ReminderView) -> InlineKeyboardMarkup | None:
        shift = next_shift_start(self.svc.settings.shifts, self.svc.clock.now(), self.svc.tz)
        return keyboard([
            [self._button("later_1h", callbacks.RemLater(r.id, "1h").pack()), self._button("later_3h", callbacks.RemLater(r.id, "3h").pack())],
            [self._button("later_shift", callbacks.RemLater(r.id, "shift").pack(), time=self.svc.renderer.localtime(shift.start))],
            [self._button("back", callbacks.RemBack(r.id).pack())],
        ])

    def digest_text(self, items: Sequence[ReminderView], *, start: int, part: int, parts: int, unlisted: int,
                    total: int, rule: str | None, escalation: bool) -> str:
        return self._render(
            "digest.html", items=items, start=start, part=part, parts=parts, unlisted=unlisted, total=total,
            rule=rule, escalation=escalation, escalate_minutes=self.svc.settings.kefu_escalate_minutes,
            claimable=any(r.claimable for r in items),
        )

    def take_keyboard(self, items: Sequence[ReminderView], start: int, action: str = "take") -> InlineKeyboardMarkup | None:
        buttons = [
            self._button(action, TAKE_BUTTONS[action](r.id).pack(), n=start + index, tail=r.tail)
            for index, r in enumerate(items)
            if action == "open" or r.claimable
        ]
        return keyboard([buttons[i : i + 2] for i in range(0, len(buttons), 2)])

    def message(self, row: MessageRow, items: list[ReminderView]) -> tuple[str, InlineKeyboardMarkup | None]:
        """A recorded message re-rendered from the reminders' current state (for edits)."""
        if row.kind == "card":
            return self.card(items[0])
        listed = [r for r in items if r.position is not None]
        start = min((r.position for r in listed), default=1)
        text = self.digest_text(
            listed, start=start, part=row.part, parts=row.parts, unlisted=len(items) - len(listed),
            total=row_total(row, items), rule=row.rule, escalation=row.kind == "escalation",
        )
        return text, self.take_keyboard(listed, start)


def row_total(row: MessageRow, items: Sequence[ReminderView]) -> int:
    return row.total or len(items)


# --- sending and recording -----------------------------------------------------------------------


async def _send_recorded(app: Application, chat_id: int, text: str, markup, *, kind: str, purpose: str,
                         items: Sequence[tuple[ReminderView, int | None]], rule: str | None = None,
                         part: int = 1, parts: int = 1, total: int = 1) -> Delivery:
    """Send one message and, the moment Telegram has accepted it, record what it carries. An
    unconfirmed send (outbox: one-message window) is recorded the same, with no Telegram id: the
    chat counts as served (never pushed twice), and the message is never edited."""
    delivery = await deliver(app, chat_id, text, reply_markup=markup)
    if delivery.ok:
        await services_of(app).reminders.record_message(
            chat_id=chat_id, message_id=delivery.message.message_id if delivery.message is not None else None,
            kind=kind, purpose=purpose, items=items,
            rule=rule, part=part, parts=parts, total=total, now=services_of(app).clock.now(),
        )
    return delivery


async def _send_batch(app: Application, view: View, chat_id: int, reminders: Sequence[ReminderView], *,
                      purpose: str) -> str:
    """Deliver reminders to one chat: a card for a lone one, else one digest per rule (escalations:
    always one list). Returns the worst outcome: sent, blocked (stop: unreachable) or failed."""
    if not reminders:
        return "sent"
    escalation = purpose == "escalate"
    if escalation:
        groups = {None: list(reminders)}
    else:  # 催付 first, then 发货, whatever fell due first
        by_rule = group_by_rule(reminders, lambda r: r.rule)
        groups = {rule: by_rule[rule] for rule in RULES if rule in by_rule}
    for rule, group in groups.items():
        if len(group) == 1 and not escalation:
            text, markup = view.card(group[0])
            delivery = await _send_recorded(app, chat_id, text, markup, kind="card", purpose=purpose,
                                            items=[(group[0], 1)], rule=rule)
            if not delivery.ok:
                return delivery.status
            continue
        total = len(group)
        def render(chunk, start, part, count, extra, total=total, rule=rule):
            return view.digest_text(chunk, start=start, part=part, parts=count, unlisted=extra, total=total,
                                    rule=rule, escalation=escalation)

        parts = split_digest(group, render)
        for digest in parts:
            items = [(r, digest.start + i) for i, r in enumerate(digest.items)] + [(r, None) for r in digest.unlisted]
            delivery = await _send_recorded(
                app, chat_id, digest.text, view.take_keyboard(digest.items, digest.start),
                kind="escalation" if escalation else "digest", purpose=purpose, items=items, rule=rule,
                part=digest.part, parts=digest.parts, total=total,
            )
            if not delivery.ok:
                return delivery.status
    return "sent"


async def notify_chats(app: Application) -> list[int]:
    """Private chats of the people on duty who can be reached, then the team chat if set.
    Empty when nobody is on duty: reminders are then held."""
    svc = services_of(app)
    return await notify(svc.people, Notify.ON_DUTY, team_chat=svc.settings.kefu_team_chat_id)


async def unstaffed_chats(app: Application) -> list[int]:
    """A shift is working and nobody of it can be reached: `Notify.UNSTAFFED` (the team chat,
    then every reachable supervisor and admin). Empty in the night gap (no shift working):
    reminders are then held for the next shift start, as before."""
    svc = services_of(app)
    return await notify(svc.people, Notify.UNSTAFFED, team_chat=svc.settings.kefu_team_chat_id)


async def recipients(app: Application) -> tuple[list[int], str]:
    """(chats that get due reminders now, why held when empty): "" when delivered, "night_gap"
    when no shift is working, "nobody" when even the fallback has no one to reach."""
    svc = services_of(app)
    return await due_reminder_chats(svc.people, svc.settings.kefu_team_chat_id)


async def recipient_names(app: Application) -> tuple[list[str], str]:
    """Who will receive due reminders now, as names (people) and 团队群 (the team chat), for the
    import summary; with the reason when nobody will."""
    svc = services_of(app)
    chats, held = await recipients(app)
    names = {p.tg_id: p.name for p in await svc.people.all()}
    team = svc.settings.kefu_team_chat_id
    shown = [
        svc.renderer.label("reminders.team_chat") if chat == team
        else names.get(chat) or svc.renderer.label("reminders.admin_id", id=chat)  # KEFU_ADMIN_IDS, no /start yet
        for chat in chats
    ]
    return shown, held


async def tell_admins_unstaffed(app: Application) -> None:
    """Tell the admins, once per shift occurrence, that a working shift has nobody on duty."""
    svc = services_of(app)
    now = svc.clock.now()
    staffed = {p.shift for p in await svc.people.on_duty() if p.blocked_at is None}
    admins = await notify(svc.people, Notify.ADMINS)
    for window in current_windows(svc.settings.shifts, now, svc.tz):
        if window.shift.name in staffed:
            continue
        key = f"{window.shift.name}:{window.start.astimezone(svc.tz).isoformat(timespec='minutes')}"
        if not await note_unstaffed_once(svc.db, key, now):
            continue
        text = svc.renderer.render(
            "reminders/unstaffed.html", shift=svc.renderer.shift_label(window.shift.name), shift_code=window.shift.name,
            start=window.start,
            end=window.end, team_chat=svc.settings.kefu_team_chat_id is not None,
        )
        for admin in admins:
            await deliver(app, admin, text)


async def escalation_chats(app: Application) -> list[int]:
    """Supervisors (and admins) on duty; if none is, every supervisor."""
    return await notify(services_of(app).people, Notify.SUPERVISORS_ON_DUTY)


async def _send_to_chats(app: Application, view: View, chats: Sequence[int], reminders: Sequence[ReminderView],
                         purpose: str) -> list[int]:
    """Send each chat the reminders it has not had yet for `purpose`; the chats that are not blocked."""
    have = await services_of(app).reminders.delivered(reminders, purpose)
    # Every chat on its own (the outbox paces each and the overall budget): a slow or
    # rate-limited chat delays only its own messages, not the rest of the team (issue 13); a
    # chat whose delivery fails is backed off and never aborts the tick for the others (issue 12).
    now = to_ts(services_of(app).clock.now())
    _failures = _backoff(app)

    async def serve(chat_id: int) -> bool:
        todo = [r for r in reminders if (r.id, chat_id) not in have]
        if not todo:
            return True
        if not _failures.due(chat_id, purpose, now):
            return True  # backing off: still a recipient, retried when its time comes
        try:
            status = await _send_batch(app, view, chat_id, todo, purpose=purpose)
        except Exception as exc:  # noqa: BLE001 - one chat's failure never aborts the tick for the others
            wait = _failures.failed(chat_id, purpose, now)
            log.exception("reminders for chat %s (%s) failed; retry in %s s", chat_id, purpose, wait)
            from handlers.errors import report_job_error

            await report_job_error(app, exc)
            # below HOLD_ROUND failures it counts as a recipient (the round stays open and this
            # chat is retried soon); after that it is left out like a blocked chat, so the others'
            # round completes (escalation runs) and this chat still gets what it lacks later
            return _failures.failures(chat_id, purpose) < _Backoff.HOLD_ROUND
        _failures.succeeded(chat_id, purpose)
        return status != "blocked"

    # Every chat finishes before anything is raised (what was sent is recorded message by
    # message, so a crash here repeats nothing); then the first hard failure (a crash) is raised.
    served = await asyncio.gather(*(serve(chat_id) for chat_id in chats), return_exceptions=True)
    for outcome in served:
        if isinstance(outcome, BaseException):
            raise outcome
    return [chat_id for chat_id, ok in zip(chats, served, strict=True) if ok]


class _Backoff:
    """Per (chat, purpose) failures of composing or sending (not Telegram's per-chat pacing, which
    is the outbox's): retried after 1, 2, 4 … minutes, at most an hour; in memory (a restart retries
    at once, which is what a restart is for)."""

    FIRST, MAX = 60, 3600
    #: Failures after which a chat no longer holds the round open for everybody.
    HOLD_ROUND = 3

    def __init__(self) -> None:
        self._state: dict[tuple[int, str], tuple[int, int]] = {}  # → (failures, next attempt)

    def due(self, chat_id: int, purpose: str, now: int) -> bool:
        state = self._state.get((chat_id, purpose))
        return state is None or now >= state[1]

    def failed(self, chat_id: int, purpose: str, now: int) -> int:
        failures = self._state.get((chat_id, purpose), (0, 0))[0] + 1
        wait = min(self.MAX, self.FIRST * 2 ** (failures - 1))
        self._state[(chat_id, purpose)] = (failures, now + wait)
        return wait

    def failures(self, chat_id: int, purpose: str) -> int:
        return self._state.get((chat_id, purpose), (0, 0))[0]

    def succeeded(self, chat_id: int, purpose: str) -> None:
        self._state.pop((chat_id, purpose), None)


def _backoff(app: Application) -> _Backoff:
    return app.bot_data.setdefault("reminder_backoff", _Backoff())


async def deliver_pending(app: Application, chats: Sequence[int], view: View) -> None:
    engine = services_of(app).reminders
    pending = await engine.pending()
    if not pending:
        return
    served = await _send_to_chats(app, view, chats, pending, "notify")
    await engine.complete_round(served, services_of(app).clock.now())


async def escalate(app: Application, view: View) -> list[int]:
    """Tell supervisors about unclaimed reminders; returns the ids counted as escalated."""
    engine = services_of(app).reminders
    due = await engine.due_escalations(services_of(app).clock.now())
    if not due:
        return []
    chats = await escalation_chats(app)
    served = await _send_to_chats(app, view, chats, due, "escalate")
    return await engine.complete_escalation(due, served, services_of(app).clock.now())


async def refresh_messages(target: Target, reminder_ids: Sequence[int], view: View | None = None, *,
                           skip: tuple[int, int] | None = None) -> None:
    """Edit every message that shows these reminders so it tells their current state. The edits
    go out as bulk work, every chat on its own (a slow or rate-limited chat delays only itself);
    `skip`: the (chat, message) already edited directly (the pressed copy)."""
    if not reminder_ids:
        return
    engine = services_of(target).reminders
    view = view or await View.build(target)
    edits = []
    for row in await engine.messages_showing(reminder_ids):
        if skip is not None and (row.chat_id, row.message_id) == skip:
            continue
        items = await engine.message_items(row.id)
        if not items:
            continue
        text, markup = view.message(row, items)
        # Blocked, gone, flood: logged by the outbox; the state is in the database anyway.
        edits.append(outbox.edit(target, row.chat_id, row.message_id, text, reply_markup=markup, what="reminder message"))
    await asyncio.gather(*edits)


async def refresh_after_press(update: Update, context: KefuContext, reminder_ids: Sequence[int]) -> None:
    """After a press: the pressed copy now (a direct edit, the presser sees it at once), every
    other copy in the background through the outbox's bulk queue (issue 13: nobody waits for a
    fan-out to 50 people)."""
    if not reminder_ids:
        return
    engine = services_of(context).reminders
    message = update.callback_query.message if update.callback_query is not None else None
    pressed = None
    if message is not None:
        row = await engine.message_by_telegram_id(message.chat.id, message.message_id)
        if row is not None:
            items = await engine.message_items(row.id)
            if items:
                view = await View.build(context)
                text, markup = view.message(row, items)
                await outbox.edit(context, row.chat_id, row.message_id, text, reply_markup=markup,
                                  what="reminder message", bulk=False)
            pressed = (row.chat_id, row.message_id)
    outbox.in_background(context, refresh_messages(context.application, list(reminder_ids), skip=pressed),
                         name="kefu-reminder-fanout")


async def tick(app: Application) -> None:
    svc = services_of(app)
    async with svc.reminder_tick:
        result = await svc.reminders.scan(svc.clock.now())
        view = await View.build(app)
        await refresh_messages(app, result.changed, view)
        chats = await notify_chats(app)
        if not chats:
            chats = await unstaffed_chats(app)
            if not chats:
                return  # the night gap: hold everything for the next shift start
            if await svc.reminders.pending():
                await tell_admins_unstaffed(app)
        try:
            await deliver_pending(app, chats, view)
        except Exception as exc:  # noqa: BLE001 - escalation must still run; retried next tick
            log.exception("delivering pending reminders failed")
            from handlers.errors import report_job_error

            await report_job_error(app, exc)
        escalated = await escalate(app, await View.build(app))
        await refresh_messages(app, escalated)  # the agents' copies now say "已上报主管"


# --- buttons -------------------------------------------------------------------------------------


def _label(context: KefuContext, key: str, **values: Any) -> str:
    return context.svc.renderer.label(f"reminders.{key}", **values)


async def _refuse(update: Update, context: KefuContext, result: ActionResult) -> None:
    params = dict(result.params)
    names = {p.tg_id: p.name for p in await context.svc.people.all()}
    if "who" in params:
        params["who"] = names.get(params["who"], params["who"] or "")
    if params.get("reason"):
        params["reason"] = _label(context, f"reasons.{params['reason']}")
    await answer_callback(update, _label(context, f"errors.{result.code}", **params), alert=True)
    if result.reminder is not None and (result.code.startswith("already_") or result.code == "claimed_by_other"):
        await refresh_after_press(update, context, [result.reminder.id])  # the pressed copy was out of date


async def _send_card(update: Update, context: KefuContext, r: ReminderView) -> bool:
    """The full card with all buttons, in the presser's private chat (recorded, so it is kept up to date)."""
    view = await View.build(context)
    text, markup = view.card(r)
    delivery = await deliver(context, context.person.tg_id, text, reply_markup=markup)
    if not delivery.ok:
        await answer_callback(update, _label(context, "errors.private_failed"), alert=True)
        return False
    if delivery.message is not None:  # unconfirmed: sent once, not kept up to date
        await services_of(context).reminders.record_message(
            chat_id=context.person.tg_id, message_id=delivery.message.message_id, kind="card", purpose="detail",
            items=[(r, 1)], rule=r.rule, now=context.svc.clock.now(),
        )
    return True


async def _claim(update: Update, context: KefuContext, rid: int, arg: str, *, send_card: bool = False) -> None:
    engine = services_of(context).reminders
    result = await engine.claim(rid, context.person.tg_id, context.svc.clock.now())
    if not result.ok and not (send_card and result.code == "already_yours"):
        await _refuse(update, context, result)
        return
    private = update.effective_chat is not None and update.effective_chat.id == context.person.tg_id
    if send_card and not await _send_card(update, context, result.reminder):
        if result.ok:
            await refresh_after_press(update, context, [rid])
        return
    sent_elsewhere = send_card and not private
    # The presser first: the answer, their own copy; every other copy in the background.
    await answer_callback(update, _label(context, "answers.sent_private" if sent_elsewhere else "answers.claimed"))
    if result.ok:
        await refresh_after_press(update, context, [rid])


async def _take(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    await _claim(update, context, rid, arg, send_card=True)


async def _open(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    r = await services_of(context).reminders.get(rid)
    if r is None:
        await _refuse(update, context, ActionResult(False, None, "not_found"))
        return
    await services_of(context).reminders.record(rid, context.person.tg_id, "open", now=context.svc.clock.now())
    if await _send_card(update, context, r):
        await answer_callback(update)


def _may_act(context: KefuContext, r: ReminderView | None) -> ActionResult | None:
    """The engine's own checks, made early so a refused press does not open a sub-menu."""
    if r is None:
        return ActionResult(False, None, "not_found")
    if not r.is_open:
        return ActionResult(False, r, f"already_{r.state}", {"who": r.done_by, "reason": r.resolved_reason or ""})
    if r.claimed_by not in (None, context.person.tg_id) and context.person.role < Role.SUPERVISOR:
        return ActionResult(False, r, "claimed_by_other", {"who": r.claimed_by})
    return None


async def _sub_menu(update: Update, context: KefuContext, rid: int, which: str) -> None:
    engine = services_of(context).reminders
    r = await engine.get(rid)
    refusal = _may_act(context, r)
    if refusal is not None:
        if r is not None:
            await engine.record(r.id, context.person.tg_id, "refused", f"{which}:{refusal.code}", now=context.svc.clock.now())
        await _refuse(update, context, refusal)
        return
    view = await View.build(context)
    markup = view.outcome_keyboard(r) if which == "done" else view.snooze_keyboard(r)
    await outbox.edit_pressed_markup(update, context, markup)
    await answer_callback(update, _label(context, "answers.choose_outcome" if which == "done" else "answers.choose_snooze"))


async def _done(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    await _sub_menu(update, context, rid, "done")


async def _snooze(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    await _sub_menu(update, context, rid, "snooze")


async def _outcome(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    if arg == "no_action":  # on someone else's claimed order: ask once more
        r = await services_of(context).reminders.get(rid)
        if r is not None and r.is_open and r.claimed_by not in (None, context.person.tg_id):
            claimer = await context.svc.people.get(r.claimed_by)
            who = claimer.name if claimer else str(r.claimed_by)
            markup = keyboard([
                [button(context, "reminders.buttons.no_action_yes", callbacks.RemOutcome(rid, "nax").pack(), who=who)],
                [button(context, "reminders.buttons.back", callbacks.RemBack(rid).pack())],
            ])
            await outbox.edit_pressed_markup(update, context, markup)
            await answer_callback(update, _label(context, "answers.confirm_no_action", who=who), alert=True)
            return
    elif arg == "nax":
        arg = "no_action"
    result = await services_of(context).reminders.done(
        rid, context.person.tg_id, arg, supervisor=context.person.role >= Role.SUPERVISOR, now=context.svc.clock.now()
    )
    if not result.ok:
        await _refuse(update, context, result)
        return
    await answer_callback(update, _label(context, "answers.done", outcome=_label(context, f"outcomes.{arg}")))
    await refresh_after_press(update, context, [rid])


async def _later(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    svc = context.svc
    now = svc.clock.now()
    if arg == "1h":
        until = now + timedelta(hours=1)
    elif arg == "3h":
        until = now + timedelta(hours=3)
    elif arg == "shift":
        until = next_shift_start(svc.settings.shifts, now, svc.tz).start
    else:
        await answer_callback(update, _label(context, "errors.stale_button"), alert=True)
        return
    result = await services_of(context).reminders.snooze(
        rid, context.person.tg_id, until, supervisor=context.person.role >= Role.SUPERVISOR, now=now
    )
    if not result.ok:
        await _refuse(update, context, result)
        return
    await answer_callback(update, _label(context, "answers.snoozed", time=svc.renderer.localtime(until)))
    await refresh_after_press(update, context, [rid])


async def _back(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    r = await services_of(context).reminders.get(rid)
    if r is None:
        await _refuse(update, context, ActionResult(False, None, "not_found"))
        return
    await answer_callback(update)
    await refresh_after_press(update, context, [rid])


async def _script(update: Update, context: KefuContext, rid: int, arg: str) -> None:
    """查看话术: the 催付 / 发货延迟 script filled with this order, in the presser's private chat."""
    from bot.kb import pick_script
    from bot.orders import get_order

    svc = context.svc
    engine = services_of(context).reminders
    r = await engine.get(rid)
    if r is None:
        await _refuse(update, context, ActionResult(False, None, "not_found"))
        return
    kb = svc.kb.get()
    category, preferred = script_choice(r.rule, r.stage)
    script = pick_script(kb, category, preferred)
    if script is None:
        await answer_callback(update, _label(context, "errors.no_script"), alert=True)
        return
    order = await get_order(svc.db, r.order_no, r.platform)
    if order is None:
        await answer_callback(update, _label(context, "errors.no_order"), alert=True)
        return
    # one script view everywhere: the same message as /s (copy, 用了这条, 内部提示), counted once
    from handlers.scripts import send_script

    if not await send_script(context, context.person.tg_id, script, order_no=r.order_no, person=context.person,
                             source="reminder"):
        await answer_callback(update, _label(context, "errors.private_failed"), alert=True)
        return
    now = svc.clock.now()
    await engine.record(rid, context.person.tg_id, "script", script.id, now=now)
    private = update.effective_chat is not None and update.effective_chat.id == context.person.tg_id
    await answer_callback(update, None if private else _label(context, "answers.sent_private"))


ACTIONS = {
    callbacks.RemClaim: _claim,
    callbacks.RemTake: _take,
    callbacks.RemOpen: _open,
    callbacks.RemDone: _done,
    callbacks.RemOutcome: _outcome,
    callbacks.RemSnooze: _snooze,
    callbacks.RemLater: _later,
    callbacks.RemScript: _script,
    callbacks.RemBack: _back,
}


async def on_button(update: Update, context: KefuContext) -> None:
    pressed = callbacks.REMINDER.decode(update.callback_query.data)
    action = ACTIONS.get(type(pressed))
    if action is None:
        await answer_callback(update, _label(context, "errors.stale_button"), alert=True)
        return
    await action(update, context, pressed.rid, pressed.arg)


# --- /reminders ----------------------------------------------------------------------------------


async def list_command(update: Update, context: KefuContext) -> None:
    engine = services_of(context).reminders
    mine, mine_count, team, team_count = await engine.open_overview(context.person.tg_id, LIST_LIMIT)
    view = await View.build(context)
    text = view._render("list.html", mine=mine, mine_count=mine_count, team=team, team_count=team_count)
    from handlers.outbox import reply

    await reply(update, context, text, reply_markup=view.take_keyboard([*mine, *team], 1, action="open"))


# --- wiring --------------------------------------------------------------------------------------


async def on_startup(app: Application) -> None:
    add_tick_hook(app, tick)


def register(app: Application) -> None:
    app.add_handler(CommandHandler("reminders", list_command))
    app.add_handler(CallbackQueryHandler(on_button, pattern=callbacks.REMINDER.pattern))
