"""Reminder state (its SQL in bot/reminders/store.py): the scan that finds what is due, delivery bookkeeping, button actions.

No Telegram here. The Telegram layer (handlers/reminders.py) calls, on every tick:
`scan()` → edit the messages of what changed → `pending()` → send → `record_message()` after each
accepted message → `complete_round()`; then `due_escalations()` the same way. Buttons call
`claim()`, `done()`, `snooze()`. A shipping breach closed with a BREACH_OUTCOMES outcome keeps a
`watch_until`; the scan fires it again (`repeats` + 1, a new round) if the order still qualifies
then (issue 11). `open_claims()` is the handover prompt's view of a person's claimed reminders.

Delivery bookkeeping — why "mark right after each message" and not "record intent first":
every message Telegram accepts is recorded (one transaction: the message row, one item per
reminder it carries, keyed by (reminder, purpose, round, chat)) immediately after the send
returns, before the next send. A reminder stays `pending` until every recipient of its round has
such an item; a restart recomputes who still lacks it and sends only to them. So a crash at any
point loses nothing (an unrecorded send is simply sent again), and the one window that can
duplicate a message is between Telegram accepting it and that transaction committing. Writing an
intent row before sending would not shrink that window: after a crash an intent without a
message id is ambiguous (sent or not?), and since losing a reminder is worse than repeating one
it would have to be re-sent anyway — the same duplicate, with one more write per message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, from_ts, to_ts
from bot.db import Database
from bot.reminders.rules import (
    BREACH_OUTCOMES,
    CLOSED_STATES,
    ESCALATION_REPEAT,
    OPEN_STATES,
    RuleBook,
    due_queries,
    outcomes_for,
    resolution_reason,
)
from bot.reminders.store import ReminderStore

#: The longest text a reminder message shows per field (the limits at the door are bot/orders/limits.py).
DISPLAY_MAX = {"order_no": 64, "shop": 60, "buyer": 40, "item_title": 80}


@dataclass(frozen=True)
class ReminderView:
    """A reminder with the order fields its messages show."""

    id: int
    order_id: int
    rule: str
    stage: str
    due_at: int
    deadline_at: int | None
    state: str
    round: int
    first_sent_at: int | None
    sent_at: int | None
    claimed_by: int | None
    claimed_at: int | None
    snoozed_by: int | None
    snoozed_until: int | None
    done_by: int | None
    done_at: int | None
    outcome: str | None
    resolved_at: int | None
    resolved_reason: str | None
    escalations: int
    escalated_at: int | None
    created_at: int
    followup_outcome: str | None  # a breach closed while unshipped: what the agent did
    watch_until: int | None  # …and when the scan looks again
    repeats: int  # times this reminder fired again because the order was still unshipped
    platform: str
    order_no: str
    shop: str
    amount_cents: int | None
    buyer: str
    item_title: str
    order_status: str
    order_created_at: int | None
    order_paid_at: int | None
    position: int | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ReminderView:
        """From a row selected as VIEW_COLUMNS (optionally followed by the item's position).
        Texts longer than DISPLAY_MAX (data stored before the limits at the door) are shortened
        with …, so composing a message never fails on data."""
        view = cls(*row)
        long = {k: n for k, n in DISPLAY_MAX.items() if isinstance(getattr(view, k), str) and len(getattr(view, k)) > n}
        if long:
            view = replace(view, **{k: getattr(view, k)[: n - 1] + "…" for k, n in long.items()})
        return view

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def claimable(self) -> bool:
        return self.is_open and self.claimed_by is None

    @property
    def tail(self) -> str:
        """The last digits of the order number, enough to tell orders apart on a button."""
        return self.order_no[-6:]

    def overdue_seconds(self, now: int) -> int:
        return max(0, now - self.due_at)

    def seconds_to_deadline(self, now: int) -> int | None:
        return None if self.deadline_at is None else self.deadline_at - now


@dataclass
class ScanResult:
    created: int = 0
    resolved: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    woken: list[int] = field(default_factory=list)
    repeated: list[int] = field(default_factory=list)
    carried: int = 0

    @property
    def changed(self) -> list[int]:
        """Reminders whose existing messages no longer tell the truth and must be edited."""
        return [*self.resolved, *self.superseded, *self.reopened, *self.woken, *self.repeated]


@dataclass(frozen=True)
class MessageRow:
    id: int
    chat_id: int
    message_id: int
    kind: str
    rule: str | None
    part: int
    parts: int
    total: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> MessageRow:
        return cls(row["id"], row["chat_id"], row["message_id"], row["kind"], row["rule"], row["part"], row["parts"],
                   row["total"])


@dataclass(frozen=True)
class ActionResult:
    """What a button press did: ok, or the label code of the refusal (with its parameters)."""

    ok: bool
    reminder: ReminderView | None
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def _ts(moment: datetime | int | None) -> int:
    if isinstance(moment, int):
        return moment
    return to_ts(moment)


class ReminderEngine:
    def __init__(self, db: Database, clock: Clock, book: RuleBook, *, escalate_minutes: int = 30,
                 breach_repeat_hours: float = 4.0) -> None:
        self.db = db
        self.clock = clock
        self.book = book
        self.escalate_after = timedelta(minutes=escalate_minutes)
        self.repeat_after = timedelta(hours=breach_repeat_hours)
        self._checked_all = False  # the first scan re-checks every open reminder
        self.store = ReminderStore(db)

    @classmethod
    def from_settings(cls, db: Database, clock: Clock, settings: Any) -> ReminderEngine:
        return cls(db, clock, RuleBook.from_settings(settings), escalate_minutes=settings.kefu_escalate_minutes,
                   breach_repeat_hours=getattr(settings, "kefu_breach_repeat_hours", 4.0))

    def now(self) -> datetime:
        return self.clock.now()

    # --- the scan --------------------------------------------------------------------------------

    async def scan(self, now: datetime | None = None) -> ScanResult:
        """Record every stage that fell due (catching up after downtime), close what no longer
        applies, reopen what applies again, wake snoozed reminders. One transaction."""
        now = now or self.now()
        ts = to_ts(now)
        result = ScanResult()
        async with self.db.transaction() as conn:
            existing = await self.store.max_id(conn)  # rows above this id are recorded by this scan
            for query in due_queries(self.book, now):
                result.created += await self.store.record_due(conn, query, ts)
            if result.created:
                result.carried = await self._carry_claims(conn, ts, existing)
            everything = not self._checked_all
            result.resolved = await self._resolve(conn, ts, existing, everything)
            result.reopened = await self._reopen(conn, ts, everything)
            await self.store.forget_order_changes(conn)
            if result.created or result.reopened:
                result.superseded = await self._supersede(conn, ts, 0 if result.reopened else existing)
            result.woken = await self._wake(conn, ts)
            result.repeated = await self._repeat(conn, ts)
        self._checked_all = True
        return result

    async def _carry_claims(self, conn, ts: int, existing: int) -> int:
        """A breach whose warning someone claimed starts out claimed by them: they are on it."""
        return await self.store.carry_claims(conn, ts, existing)

    async def _resolve(self, conn, ts: int, existing: int, everything: bool) -> list[int]:
        rows = await self.store.no_longer_due(conn, existing, everything)
        changes = []
        for row in rows:
            reason = resolution_reason(row["rule"], row["status"], bool(row["refunding"]), bool(row["presale"]),
                                       bool(row["on_hold"]))
            if reason is not None:
                changes.append((reason, row["id"]))
        await self._close_as_resolved(conn, changes, ts)
        return [rid for _, rid in changes]

    async def _close_as_resolved(self, conn, changes: Sequence[tuple[str, int]], ts: int) -> None:
        if not changes:
            return
        await self.store.close_as_resolved(conn, changes, ts)

    async def _reopen(self, conn, ts: int, everything: bool) -> list[int]:
        """A refund that ended (the only way an order qualifies again) reopens its reminder."""
        ids = await self.store.to_reopen(conn, everything)
        if ids:
            await self.store.reopen(conn, ids, ts)
            await self._events(conn, ids, ts, None, "reopened")
        return ids

    async def _supersede(self, conn, ts: int, after_id: int) -> list[int]:
        """An open warning whose breach has arrived is closed: the breach reminder takes over."""
        ids = await self.store.superseded(conn, after_id)
        await self._close_as_resolved(conn, [("superseded", rid) for rid in ids], ts)
        return ids

    async def _wake(self, conn, ts: int) -> list[int]:
        ids = await self.store.to_wake(conn, ts)
        if ids:
            await self.store.wake(conn, ids, ts)
            await self._events(conn, ids, ts, None, "woken")
        return ids

    async def _repeat(self, conn, ts: int) -> list[int]:
        """A breach closed while the order was unshipped (watch_until set): still unshipped when the
        time comes → it fires again as a new round, unclaimed, marked as a repeat. Otherwise the
        watch simply ends."""
        ids = await self.store.to_repeat(conn, ts)
        if ids:
            await self.store.repeat(conn, ids, ts)
            await self._events(conn, ids, ts, None, "repeat")
        await self.store.end_watches(conn, ts)
        return ids

    async def _events(self, conn, ids: Iterable[int], ts: int, actor: int | None, action: str, detail: str = "") -> None:
        await self.store.add_events(conn, ids, ts, actor, action, detail)

    # --- delivery bookkeeping --------------------------------------------------------------------

    async def pending(self) -> list[ReminderView]:
        """Reminders whose current round some recipient has not received yet, oldest first."""
        return [ReminderView.from_row(r) for r in await self.store.pending()]

    async def delivered(self, reminders: Sequence[ReminderView], purpose: str) -> set[tuple[int, int]]:
        """(reminder id, chat id) pairs that already hold the current round (notify) or the next
        escalation (escalate) of these reminders."""
        if not reminders:
            return set()
        rows = await self.store.delivered(purpose)
        wanted = {r.id for r in reminders}
        return {(row[0], row[1]) for row in rows if row[0] in wanted}

    async def record_message(
        self,
        *,
        chat_id: int,
        message_id: int | None,
        kind: str,
        purpose: str,
        items: Sequence[tuple[ReminderView, int | None]],
        rule: str | None = None,
        part: int = 1,
        parts: int = 1,
        total: int = 1,
        now: datetime | int | None = None,
    ) -> int:
        """Record one message Telegram accepted and the reminders it carries (call right after sending).
        `message_id` None: sent but unconfirmed (id unknown); recorded as delivered, never edited
        (the store keeps a negative sentinel id, left out of `messages_showing`)."""
        ts = _ts(now or self.now())
        async with self.db.transaction(on_loop=True) as conn:
            row_id = await self.store.add_message(conn, chat_id, message_id, kind, rule, part, parts, total, ts)
            rows = []
            for view, position in items:
                if purpose == "notify":
                    round_no = view.round
                elif purpose == "escalate":
                    round_no = view.escalations + 1
                else:
                    round_no = 0
                rows.append((row_id, view.id, chat_id, purpose, round_no, position))
            await self.store.add_message_items(conn, rows)
            if purpose == "notify":
                await self.store.mark_first_sent(conn, [view.id for view, _ in items], ts)
        return int(row_id)

    async def complete_round(self, chats: Sequence[int], now: datetime | int | None = None) -> list[int]:
        """Pending reminders that every one of `chats` now holds become sent (or claimed)."""
        if not chats:
            return []
        ts = _ts(now or self.now())
        async with self.db.transaction() as conn:
            ids = await self.store.round_held_by_all(conn, chats)
            await self.store.mark_sent(conn, ids, ts)
        return ids

    async def due_escalations(self, now: datetime | None = None) -> list[ReminderView]:
        """Delivered, unclaimed, open reminders past KEFU_ESCALATE_MINUTES and not escalated in the last hour."""
        now = now or self.now()
        ts = to_ts(now)
        rows = await self.store.escalations_due(
            ts - int(self.escalate_after.total_seconds()), ts - int(ESCALATION_REPEAT.total_seconds())
        )
        return [ReminderView.from_row(r) for r in rows]

    async def complete_escalation(
        self, reminders: Sequence[ReminderView], chats: Sequence[int], now: datetime | int | None = None
    ) -> list[int]:
        """Count an escalation as done for the reminders every one of `chats` was told about
        (all of them when there is no supervisor to tell)."""
        ts = _ts(now or self.now())
        wanted = [r.id for r in reminders]
        async with self.db.transaction() as conn:
            if chats:
                done = await self.store.escalation_held_by_all(conn, chats)
                ids = [rid for rid in wanted if rid in done]
            else:
                ids = wanted
            await self.store.mark_escalated(conn, ids, ts)
            await self._events(conn, ids, ts, None, "escalated", ",".join(map(str, chats)))
        return ids

    # --- messages to edit ------------------------------------------------------------------------

    async def messages_showing(self, reminder_ids: Sequence[int]) -> list[MessageRow]:
        found: dict[int, MessageRow] = {}
        ids = list(dict.fromkeys(reminder_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.store.messages_showing(chunk)
            for row in rows:
                found[row["id"]] = MessageRow.from_row(row)
        return sorted(found.values(), key=lambda m: m.id)

    async def message_items(self, message_row: int) -> list[ReminderView]:
        rows = await self.store.message_items(message_row)
        return [ReminderView.from_row(r) for r in rows]

    async def message_by_telegram_id(self, chat_id: int, message_id: int) -> MessageRow | None:
        row = await self.store.message_by_telegram_id(chat_id, message_id)
        return None if row is None else MessageRow.from_row(row)

    # --- lookups for /reminders and the buttons --------------------------------------------------

    async def get(self, reminder_id: int) -> ReminderView | None:
        row = await self.store.view(reminder_id)
        return ReminderView.from_row(row) if row else None

    async def open_overview(self, person_id: int, limit: int = 15) -> tuple[list[ReminderView], int, list[ReminderView], int]:
        """(mine, how many mine, the team's, how many the team's): open reminders, oldest first.

        Mine: claimed by the person. The team's: every other open reminder, claimed or not."""
        mine = await self.store.open_claimed_by(person_id, limit)
        team = await self.store.open_not_claimed_by(person_id, limit)
        counts = await self.store.open_counts(person_id)
        return (
            [ReminderView.from_row(r) for r in mine],
            int(counts[0]),
            [ReminderView.from_row(r) for r in team],
            int(counts[1]),
        )

    # --- button actions (checked, then recorded) -------------------------------------------------

    async def claim(self, reminder_id: int, actor: int, now: datetime | None = None) -> ActionResult:
        ts = to_ts(now or self.now())
        async with self.db.transaction(on_loop=True) as conn:
            view = await self._load(conn, reminder_id)
            refusal = self._refusal(view, actor, supervisor=True)  # anyone may take an unclaimed one
            if refusal is None and view.claimed_by == actor:
                refusal = ("already_yours", {})
            elif refusal is None and view.claimed_by is not None:
                refusal = ("claimed_by_other", {"who": view.claimed_by})
            if refusal is not None:
                await self._refused(conn, view, actor, "claim", refusal[0], ts)
                return ActionResult(False, view, refusal[0], refusal[1])
            changed = await self.store.claim(conn, reminder_id, actor, ts)
            assert changed == 1  # checked above inside the same transaction
            await self._events(conn, [reminder_id], ts, actor, "claim")
            return ActionResult(True, await self._load(conn, reminder_id))

    async def done(self, reminder_id: int, actor: int, outcome: str, *, supervisor: bool = False,
                   now: datetime | None = None) -> ActionResult:
        ts = to_ts(now or self.now())
        async with self.db.transaction(on_loop=True) as conn:
            view = await self._load(conn, reminder_id)
            refusal = self._refusal(view, actor, supervisor)
            if refusal is None and outcome not in outcomes_for(view.rule, view.stage):
                refusal = ("bad_outcome", {"outcome": outcome})
            if refusal is not None:
                await self._refused(conn, view, actor, "done", refusal[0], ts)
                return ActionResult(False, view, refusal[0], refusal[1])
            if outcome in BREACH_OUTCOMES:
                # The order is still unshipped (else the scan would have resolved the reminder):
                # record what was done and keep watching; still unshipped later → it fires again.
                watch = ts + int(self.repeat_after.total_seconds())
                await self.store.done_watching(conn, reminder_id, outcome, watch, actor, ts)
            else:
                await self.store.done(conn, reminder_id, outcome, actor, ts)
            await self._events(conn, [reminder_id], ts, actor, "done", outcome)
            return ActionResult(True, await self._load(conn, reminder_id))

    async def snooze(self, reminder_id: int, actor: int, until: datetime, *, supervisor: bool = False,
                     now: datetime | None = None) -> ActionResult:
        ts = to_ts(now or self.now())
        until_ts = to_ts(until)
        async with self.db.transaction(on_loop=True) as conn:
            view = await self._load(conn, reminder_id)
            refusal = self._refusal(view, actor, supervisor)
            if refusal is None and until_ts <= ts:
                refusal = ("snooze_in_past", {})
            if refusal is not None:
                await self._refused(conn, view, actor, "snooze", refusal[0], ts)
                return ActionResult(False, view, refusal[0], refusal[1])
            await self.store.snooze(conn, reminder_id, actor, until_ts, ts)
            await self._events(conn, [reminder_id], ts, actor, "snooze", str(until_ts))
            return ActionResult(True, await self._load(conn, reminder_id))

    async def record(self, reminder_id: int, actor: int | None, action: str, detail: str = "",
                     now: datetime | None = None) -> None:
        """Record a press that changes nothing (查看话术, opening a card, a refused button)."""
        ts = to_ts(now or self.now())
        async with self.db.transaction(on_loop=True) as conn:
            await self._events(conn, [reminder_id], ts, actor, action, detail)

    async def events(self, reminder_id: int) -> list[sqlite3.Row]:
        return await self.store.events(reminder_id)

    async def _load(self, conn, reminder_id: int) -> ReminderView | None:
        row = await self.store.view_in(conn, reminder_id)
        return ReminderView.from_row(row) if row else None

    @staticmethod
    def _refusal(view: ReminderView | None, actor: int, supervisor: bool) -> tuple[str, dict] | None:
        """Shared checks: the reminder exists and is open; someone else's claim binds agents."""
        if view is None:
            return ("not_found", {})
        if view.state in CLOSED_STATES:
            return (f"already_{view.state}", {"who": view.done_by, "reason": view.resolved_reason or ""})
        if view.claimed_by is not None and view.claimed_by != actor and not supervisor:
            return ("claimed_by_other", {"who": view.claimed_by})
        return None

    async def _refused(self, conn, view: ReminderView | None, actor: int, action: str, code: str, ts: int) -> None:
        if view is not None:
            await self._events(conn, [view.id], ts, actor, "refused", f"{action}:{code}")


# --- someone leaves the team ----------------------------------------------------------------------


async def release_claims(db: Database, person_id: int, now: datetime | int) -> list[int]:
    """A deactivated person's open reminders go back to unclaimed, in the state they would have
    had without the claim, so delivery and escalation carry on by the normal rules."""
    ts = _ts(now)
    store = ReminderStore(db)
    async with db.transaction() as conn:
        ids = await store.open_claim_ids(conn, person_id)
        if not ids:
            return []
        await store.release(conn, ids, ts, person_id)
    return ids


# --- a person's open claims: the handover prompt (contract with bot.handover) ---------------------


async def open_claims(db: Database, tg_id: int) -> list[ReminderView]:
    """The open reminders claimed by this person, oldest due first: what they still have to finish
    before handing over. Each has `order_no`, `rule` (unpaid / unshipped) and `stage`
    (remind / warn / breach). The handover prompt (bot/handover/claims.py) lists them."""
    rows = await ReminderStore(db).open_claimed_by(tg_id)
    return [ReminderView.from_row(r) for r in rows]


# --- one order's reminders: the /order card --------------------------------------------------------


async def order_reminders(db: Database, order_id: int, limit: int = 20) -> list[ReminderView]:
    """The reminders raised for one order, oldest first (the latest `limit`): read-only, for the
    order card's history. The (order_id, rule, stage) unique index finds them."""
    rows = await ReminderStore(db).of_order(order_id, limit)
    return [ReminderView.from_row(r) for r in reversed(rows)]


# --- what is due, without sending: the CLI and the import summary --------------------------------


@dataclass(frozen=True)
class DueItem:
    order_id: int
    platform: str
    order_no: str
    shop: str
    status: str
    amount_cents: int | None
    created_at: int | None
    paid_at: int | None
    rule: str
    stage: str
    due_at: int
    deadline_at: int | None
    reminder_id: int | None
    reminder_state: str | None

    def to_json(self, tz) -> dict[str, Any]:
        def iso(ts: int | None) -> str | None:
            return None if ts is None else from_ts(ts).astimezone(tz).isoformat()

        return {
            "order_no": self.order_no,
            "platform": self.platform,
            "shop": self.shop,
            "rule": self.rule,
            "stage": self.stage,
            "due_at": iso(self.due_at),
            "deadline_at": iso(self.deadline_at),
            "status": self.status,
            "amount": None if self.amount_cents is None else f"{self.amount_cents / 100:.2f}",
            "created_at": iso(self.created_at),
            "paid_at": iso(self.paid_at),
            "reminder_id": self.reminder_id,
            "reminder_state": self.reminder_state,
        }


async def list_due(db: Database, book: RuleBook, now: datetime) -> list[DueItem]:
    """Every (order, rule, stage) due at `now` that is not done, oldest due first.

    The same conditions the scan uses; includes those the scan has not recorded yet
    (reminder_state None), so it answers "what is due at that moment" for any moment."""
    items: list[DueItem] = []
    store = ReminderStore(db)
    for query in due_queries(book, now):
        stage = query.stage
        rows = await store.due(query)
        items.extend(
            DueItem(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], stage.rule, stage.stage,
                    row[8], row[9], row[10], row[11])
            for row in rows
        )
    items.sort(key=lambda i: (i.due_at, i.order_no))
    return items


async def count_due(db: Database, book: RuleBook, now: datetime) -> int:
    total = 0
    store = ReminderStore(db)
    for query in due_queries(book, now):
        total += await store.count_due(query)
    return total


async def due_count(db: Database, now: datetime | int, settings: Any) -> int:
    """How many orders are due for a reminder at `now` and not done (for the import summary).

    An order counts once: unshipped orders are due for their latest stage only."""
    moment = from_ts(now) if isinstance(now, int) else now
    return await count_due(db, RuleBook.from_settings(settings), moment)


# --- a working shift with nobody on duty (issue 11) -------------------------------------------------


async def note_unstaffed_once(db: Database, occurrence: str, now: datetime | int) -> bool:
    """True the first time for this shift occurrence (`day:2026-11-23T08:30+08:00`): the admins are
    told once per shift that nobody is assigned to it, however many ticks find it so."""
    return await ReminderStore(db).note_unstaffed(occurrence, _ts(now))
