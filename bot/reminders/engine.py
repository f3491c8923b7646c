"""Reminder state in SQLite: the scan that finds what is due, delivery bookkeeping, button actions.

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
    NO_LONGER_DUE_SQL,
    OPEN_STATES,
    DueQuery,
    RuleBook,
    due_queries,
    outcomes_for,
    resolution_reason,
)

_OPEN_SQL = ", ".join(f"'{s}'" for s in OPEN_STATES)

_REMINDER_FIELDS = (
    "id", "order_id", "rule", "stage", "due_at", "deadline_at", "state", "round", "first_sent_at", "sent_at",
    "claimed_by", "claimed_at", "snoozed_by", "snoozed_until", "done_by", "done_at", "outcome", "resolved_at",
    "resolved_reason", "escalations", "escalated_at", "created_at", "followup_outcome", "watch_until", "repeats",
)
#: The columns of a ReminderView, in its field order (position, when wanted, is selected last).
VIEW_COLUMNS = ", ".join(
    [f"r.{name}" for name in _REMINDER_FIELDS]
    + ["o.platform", "o.order_no", "o.shop", "o.amount_cents", "o.buyer", "o.item_title", "o.status",
       "o.created_at", "o.paid_at"]
)
VIEW_FROM = "reminders r JOIN orders o ON o.id = r.order_id"

# The statements every scan and tick runs (benchmarks/reminders_scan.py prints their query plans).
#: Auto-resolve, every scan: open reminders of orders that changed since the last scan (the trigger
#: in migration 0004 lists them) and no longer qualify. Rows above the id bound were recorded by
#: this very scan from the orders as they are now.
RESOLVE_SQL = (  # CROSS JOIN keeps the short change list as the outer loop
    "SELECT r.id, r.rule, o.status, o.refunding, o.presale, o.on_hold FROM reminder_order_changes c"
    " CROSS JOIN reminders r ON r.order_id = c.order_id JOIN orders o ON o.id = c.order_id"
    f" WHERE r.state IN ({_OPEN_SQL}) AND r.id <= ? AND {NO_LONGER_DUE_SQL}"
)
#: The same over every open reminder: the first scan after a start (a safety net, not a need).
RESOLVE_ALL_SQL = (
    "SELECT r.id, r.rule, o.status, o.refunding, o.presale, o.on_hold FROM reminders r JOIN orders o ON o.id = r.order_id"
    f" WHERE r.state IN ({_OPEN_SQL}) AND r.id <= ? AND {NO_LONGER_DUE_SQL}"
)
#: A refund that ended (the only way an order qualifies again) reopens its reminder.
REOPEN_SQL = (  # unary + keeps SQLite on the order_id index (not every resolved-by-refund row)
    "SELECT r.id FROM reminder_order_changes c CROSS JOIN reminders r ON r.order_id = c.order_id"
    " JOIN orders o ON o.id = c.order_id"
    f" WHERE +r.state = 'resolved' AND +r.resolved_reason IN ('refunding', 'on_hold') AND NOT {NO_LONGER_DUE_SQL}"
)
REOPEN_ALL_SQL = (
    "SELECT r.id FROM reminders r JOIN orders o ON o.id = r.order_id"
    f" WHERE r.state = 'resolved' AND r.resolved_reason IN ('refunding', 'on_hold') AND NOT {NO_LONGER_DUE_SQL}"
)
#: Open warnings whose breach row has id > ? (recorded by this scan; 0 after a reopen: all).
SUPERSEDE_SQL = (
    "SELECT w.id FROM reminders b CROSS JOIN reminders w ON w.order_id = b.order_id"
    " AND w.rule = 'unshipped' AND w.stage = 'warn'"
    f" WHERE b.id > ? AND b.rule = 'unshipped' AND b.stage = 'breach' AND w.state IN ({_OPEN_SQL})"
)
WAKE_SQL = "SELECT id FROM reminders WHERE state = 'snoozed' AND snoozed_until <= ?"
#: Watched breaches whose time came and whose order still qualifies (still unshipped, no refund, …).
REPEAT_SQL = (
    "SELECT r.id FROM reminders r JOIN orders o ON o.id = r.order_id"
    f" WHERE r.watch_until IS NOT NULL AND r.watch_until <= ? AND r.state = 'done' AND NOT {NO_LONGER_DUE_SQL}"
)
PENDING_SQL = f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.state = 'pending' ORDER BY r.due_at, r.id"
ESCALATIONS_SQL = (
    f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM}"
    " WHERE r.state IN ('pending', 'sent', 'escalated') AND r.claimed_by IS NULL"
    " AND r.first_sent_at IS NOT NULL AND r.first_sent_at <= ?"
    " AND (r.escalated_at IS NULL OR r.escalated_at <= ?)"
    " ORDER BY r.due_at, r.id"
)


def record_due_sql(query: DueQuery, ts: int) -> tuple[str, tuple]:
    """INSERT … SELECT recording every order due for one stage and shop group that has no row yet."""
    stage = query.stage
    sql = (
        "INSERT INTO reminders (order_id, rule, stage, due_at, deadline_at, state, round, created_at, updated_at)"
        f" SELECT o.id, ?, ?, {query.due_at}, {query.deadline_at}, 'pending', 1, ?, ? FROM orders o"
        f" WHERE {query.where} AND NOT EXISTS (SELECT 1 FROM reminders x"
        "  WHERE x.order_id = o.id AND x.rule = ? AND x.stage = ?)"
    )
    params = (stage.rule, stage.stage, *query.due_params, *query.deadline_params, ts, ts,
              *query.where_params, stage.rule, stage.stage)
    return sql, params


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
            cursor = await conn.execute("SELECT coalesce(max(id), 0) FROM reminders")
            existing = (await cursor.fetchone())[0]  # rows above this id are recorded by this scan
            for query in due_queries(self.book, now):
                cursor = await conn.execute(*record_due_sql(query, ts))
                result.created += max(cursor.rowcount, 0)
            if result.created:
                result.carried = await self._carry_claims(conn, ts, existing)
            everything = not self._checked_all
            result.resolved = await self._resolve(conn, ts, existing, everything)
            result.reopened = await self._reopen(conn, ts, everything)
            await conn.execute("DELETE FROM reminder_order_changes")
            if result.created or result.reopened:
                result.superseded = await self._supersede(conn, ts, 0 if result.reopened else existing)
            result.woken = await self._wake(conn, ts)
            result.repeated = await self._repeat(conn, ts)
        self._checked_all = True
        return result

    async def _carry_claims(self, conn, ts: int, existing: int) -> int:
        """A breach whose warning someone claimed starts out claimed by them: they are on it."""
        cursor = await conn.execute(
            "UPDATE reminders SET claimed_by = (SELECT w.claimed_by FROM reminders w WHERE w.order_id = reminders.order_id"
            "   AND w.rule = 'unshipped' AND w.stage = 'warn'), claimed_at = ?, updated_at = ?"
            " WHERE state = 'pending' AND rule = 'unshipped' AND stage = 'breach' AND id > ? AND claimed_by IS NULL"
            " AND EXISTS (SELECT 1 FROM reminders w WHERE w.order_id = reminders.order_id AND w.rule = 'unshipped'"
            "   AND w.stage = 'warn' AND w.claimed_by IS NOT NULL)",
            (ts, ts, existing),
        )
        return max(cursor.rowcount, 0)

    async def _resolve(self, conn, ts: int, existing: int, everything: bool) -> list[int]:
        cursor = await conn.execute(RESOLVE_ALL_SQL if everything else RESOLVE_SQL, (existing,))
        rows = await cursor.fetchall()
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
        await conn.executemany(
            "UPDATE reminders SET state = 'resolved', resolved_reason = ?, resolved_at = ?, updated_at = ? WHERE id = ?",
            [(reason, ts, ts, rid) for reason, rid in changes],
        )
        await conn.executemany(
            "INSERT INTO reminder_events (reminder_id, at, actor, action, detail) VALUES (?, ?, NULL, 'resolved', ?)",
            [(rid, ts, reason) for reason, rid in changes],
        )

    async def _reopen(self, conn, ts: int, everything: bool) -> list[int]:
        """A refund that ended (the only way an order qualifies again) reopens its reminder."""
        cursor = await conn.execute(REOPEN_ALL_SQL if everything else REOPEN_SQL)
        ids = [row[0] for row in await cursor.fetchall()]
        if ids:
            await conn.executemany(
                "UPDATE reminders SET state = 'pending', round = round + 1, first_sent_at = NULL, sent_at = NULL,"
                " resolved_reason = NULL, resolved_at = NULL, updated_at = ? WHERE id = ?",
                [(ts, rid) for rid in ids],
            )
            await self._events(conn, ids, ts, None, "reopened")
        return ids

    async def _supersede(self, conn, ts: int, after_id: int) -> list[int]:
        """An open warning whose breach has arrived is closed: the breach reminder takes over."""
        cursor = await conn.execute(SUPERSEDE_SQL, (after_id,))
        ids = [row[0] for row in await cursor.fetchall()]
        await self._close_as_resolved(conn, [("superseded", rid) for rid in ids], ts)
        return ids

    async def _wake(self, conn, ts: int) -> list[int]:
        cursor = await conn.execute(WAKE_SQL, (ts,))
        ids = [row[0] for row in await cursor.fetchall()]
        if ids:
            await conn.executemany(
                "UPDATE reminders SET state = 'pending', round = round + 1, first_sent_at = NULL, sent_at = NULL,"
                " updated_at = ? WHERE id = ?",
                [(ts, rid) for rid in ids],
            )
            await self._events(conn, ids, ts, None, "woken")
        return ids

    async def _repeat(self, conn, ts: int) -> list[int]:
        """A breach closed while the order was unshipped (watch_until set): still unshipped when the
        time comes → it fires again as a new round, unclaimed, marked as a repeat. Otherwise the
        watch simply ends."""
        cursor = await conn.execute(REPEAT_SQL, (ts,))
        ids = [row[0] for row in await cursor.fetchall()]
        if ids:
            await conn.executemany(
                "UPDATE reminders SET state = 'pending', round = round + 1, repeats = repeats + 1, watch_until = NULL,"
                " first_sent_at = NULL, sent_at = NULL, claimed_by = NULL, claimed_at = NULL, done_by = NULL,"
                " done_at = NULL, escalated_at = NULL, updated_at = ? WHERE id = ?",
                [(ts, rid) for rid in ids],
            )
            await self._events(conn, ids, ts, None, "repeat")
        await conn.execute("UPDATE reminders SET watch_until = NULL WHERE watch_until <= ?", (ts,))
        return ids

    async def _events(self, conn, ids: Iterable[int], ts: int, actor: int | None, action: str, detail: str = "") -> None:
        await conn.executemany(
            "INSERT INTO reminder_events (reminder_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
            [(rid, ts, actor, action, detail) for rid in ids],
        )

    # --- delivery bookkeeping --------------------------------------------------------------------

    async def pending(self) -> list[ReminderView]:
        """Reminders whose current round some recipient has not received yet, oldest first."""
        return [ReminderView.from_row(r) for r in await self.db.fetchall(PENDING_SQL)]

    async def delivered(self, reminders: Sequence[ReminderView], purpose: str) -> set[tuple[int, int]]:
        """(reminder id, chat id) pairs that already hold the current round (notify) or the next
        escalation (escalate) of these reminders."""
        if not reminders:
            return set()
        round_expr = "r.round" if purpose == "notify" else "r.escalations + 1"
        state_cond = "r.state = 'pending'" if purpose == "notify" else f"r.state IN ({_OPEN_SQL})"
        rows = await self.db.fetchall(
            "SELECT i.reminder_id, i.chat_id FROM reminder_message_items i JOIN reminders r ON r.id = i.reminder_id"
            f" WHERE {state_cond} AND i.purpose = ? AND i.round = {round_expr}",
            (purpose,),
        )
        wanted = {r.id for r in reminders}
        return {(row[0], row[1]) for row in rows if row[0] in wanted}

    async def record_message(
        self,
        *,
        chat_id: int,
        message_id: int,
        kind: str,
        purpose: str,
        items: Sequence[tuple[ReminderView, int | None]],
        rule: str | None = None,
        part: int = 1,
        parts: int = 1,
        total: int = 1,
        now: datetime | int | None = None,
    ) -> int:
        """Record one message Telegram accepted and the reminders it carries (call right after sending)."""
        ts = _ts(now or self.now())
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO reminder_messages (chat_id, message_id, kind, rule, part, parts, total, sent_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (chat_id, message_id, kind, rule, part, parts, total, ts),
            )
            row_id = cursor.lastrowid
            rows = []
            for view, position in items:
                if purpose == "notify":
                    round_no = view.round
                elif purpose == "escalate":
                    round_no = view.escalations + 1
                else:
                    round_no = 0
                rows.append((row_id, view.id, chat_id, purpose, round_no, position))
            await conn.executemany(
                "INSERT OR IGNORE INTO reminder_message_items (message_row, reminder_id, chat_id, purpose, round, position)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            if purpose == "notify":
                await conn.executemany(
                    "UPDATE reminders SET first_sent_at = COALESCE(first_sent_at, ?) WHERE id = ? AND state = 'pending'",
                    [(ts, view.id) for view, _ in items],
                )
        return int(row_id)

    async def complete_round(self, chats: Sequence[int], now: datetime | int | None = None) -> list[int]:
        """Pending reminders that every one of `chats` now holds become sent (or claimed)."""
        if not chats:
            return []
        ts = _ts(now or self.now())
        marks = ", ".join("?" * len(chats))
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT i.reminder_id FROM reminder_message_items i JOIN reminders r ON r.id = i.reminder_id"
                f" WHERE r.state = 'pending' AND i.purpose = 'notify' AND i.round = r.round AND i.chat_id IN ({marks})"
                " GROUP BY i.reminder_id HAVING count(DISTINCT i.chat_id) >= ?",
                (*chats, len(set(chats))),
            )
            ids = [row[0] for row in await cursor.fetchall()]
            await conn.executemany(
                "UPDATE reminders SET state = CASE WHEN claimed_by IS NULL THEN 'sent' ELSE 'claimed' END,"
                " sent_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                [(ts, ts, rid) for rid in ids],
            )
        return ids

    async def due_escalations(self, now: datetime | None = None) -> list[ReminderView]:
        """Delivered, unclaimed, open reminders past KEFU_ESCALATE_MINUTES and not escalated in the last hour."""
        now = now or self.now()
        ts = to_ts(now)
        rows = await self.db.fetchall(
            ESCALATIONS_SQL,
            (ts - int(self.escalate_after.total_seconds()), ts - int(ESCALATION_REPEAT.total_seconds())),
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
                marks = ", ".join("?" * len(chats))
                cursor = await conn.execute(
                    "SELECT i.reminder_id FROM reminder_message_items i JOIN reminders r ON r.id = i.reminder_id"
                    f" WHERE r.state IN ({_OPEN_SQL}) AND i.purpose = 'escalate' AND i.round = r.escalations + 1"
                    f" AND i.chat_id IN ({marks}) GROUP BY i.reminder_id HAVING count(DISTINCT i.chat_id) >= ?",
                    (*chats, len(set(chats))),
                )
                done = {row[0] for row in await cursor.fetchall()}
                ids = [rid for rid in wanted if rid in done]
            else:
                ids = wanted
            await conn.executemany(
                "UPDATE reminders SET state = CASE WHEN state IN ('sent', 'escalated') THEN 'escalated' ELSE state END,"
                " escalations = escalations + 1, escalated_at = ?, updated_at = ? WHERE id = ?",
                [(ts, ts, rid) for rid in ids],
            )
            await self._events(conn, ids, ts, None, "escalated", ",".join(map(str, chats)))
        return ids

    # --- messages to edit ------------------------------------------------------------------------

    async def messages_showing(self, reminder_ids: Sequence[int]) -> list[MessageRow]:
        found: dict[int, MessageRow] = {}
        ids = list(dict.fromkeys(reminder_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.db.fetchall(
                "SELECT DISTINCT m.* FROM reminder_message_items i JOIN reminder_messages m ON m.id = i.message_row"
                f" WHERE i.reminder_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                found[row["id"]] = MessageRow.from_row(row)
        return sorted(found.values(), key=lambda m: m.id)

    async def message_items(self, message_row: int) -> list[ReminderView]:
        rows = await self.db.fetchall(
            f"SELECT {VIEW_COLUMNS}, i.position AS position FROM reminder_message_items i"
            " JOIN reminders r ON r.id = i.reminder_id JOIN orders o ON o.id = r.order_id"
            " WHERE i.message_row = ? ORDER BY i.position IS NULL, i.position, r.id",
            (message_row,),
        )
        return [ReminderView.from_row(r) for r in rows]

    async def message_by_telegram_id(self, chat_id: int, message_id: int) -> MessageRow | None:
        row = await self.db.fetchone(
            "SELECT * FROM reminder_messages WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        return None if row is None else MessageRow.from_row(row)

    # --- lookups for /reminders and the buttons --------------------------------------------------

    async def get(self, reminder_id: int) -> ReminderView | None:
        row = await self.db.fetchone(f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.id = ?", (reminder_id,))
        return ReminderView.from_row(row) if row else None

    async def open_overview(self, person_id: int, limit: int = 15) -> tuple[list[ReminderView], int, list[ReminderView], int]:
        """(mine, how many mine, the team's, how many the team's): open reminders, oldest first.

        Mine: claimed by the person. The team's: every other open reminder, claimed or not."""
        mine = await self.db.fetchall(
            f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.state IN ({_OPEN_SQL}) AND r.claimed_by = ?"
            " ORDER BY r.due_at, r.id LIMIT ?",
            (person_id, limit),
        )
        team = await self.db.fetchall(
            f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.state IN ({_OPEN_SQL}) AND r.claimed_by IS NOT ?"
            " ORDER BY r.due_at, r.id LIMIT ?",
            (person_id, limit),
        )
        counts = await self.db.fetchone(
            "SELECT count(*) FILTER (WHERE claimed_by = ?), count(*) FILTER (WHERE claimed_by IS NOT ?)"
            f" FROM reminders WHERE state IN ({_OPEN_SQL})",
            (person_id, person_id),
        )
        return (
            [ReminderView.from_row(r) for r in mine],
            int(counts[0]),
            [ReminderView.from_row(r) for r in team],
            int(counts[1]),
        )

    # --- button actions (checked, then recorded) -------------------------------------------------

    async def claim(self, reminder_id: int, actor: int, now: datetime | None = None) -> ActionResult:
        ts = to_ts(now or self.now())
        async with self.db.transaction() as conn:
            view = await self._load(conn, reminder_id)
            refusal = self._refusal(view, actor, supervisor=True)  # anyone may take an unclaimed one
            if refusal is None and view.claimed_by == actor:
                refusal = ("already_yours", {})
            elif refusal is None and view.claimed_by is not None:
                refusal = ("claimed_by_other", {"who": view.claimed_by})
            if refusal is not None:
                await self._refused(conn, view, actor, "claim", refusal[0], ts)
                return ActionResult(False, view, refusal[0], refusal[1])
            cursor = await conn.execute(
                "UPDATE reminders SET claimed_by = ?, claimed_at = ?, updated_at = ?,"
                " state = CASE WHEN state IN ('pending', 'sent', 'escalated') THEN 'claimed' ELSE state END"
                f" WHERE id = ? AND claimed_by IS NULL AND state IN ({_OPEN_SQL})",
                (actor, ts, ts, reminder_id),
            )
            assert cursor.rowcount == 1  # checked above inside the same transaction
            await self._events(conn, [reminder_id], ts, actor, "claim")
            return ActionResult(True, await self._load(conn, reminder_id))

    async def done(self, reminder_id: int, actor: int, outcome: str, *, supervisor: bool = False,
                   now: datetime | None = None) -> ActionResult:
        ts = to_ts(now or self.now())
        async with self.db.transaction() as conn:
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
                await conn.execute(
                    "UPDATE reminders SET state = 'done', outcome = NULL, followup_outcome = ?, watch_until = ?,"
                    " done_by = ?, done_at = ?, claimed_by = COALESCE(claimed_by, ?),"
                    " claimed_at = COALESCE(claimed_at, ?), updated_at = ? WHERE id = ?",
                    (outcome, watch, actor, ts, actor, ts, ts, reminder_id),
                )
            else:
                await conn.execute(
                    "UPDATE reminders SET state = 'done', outcome = ?, done_by = ?, done_at = ?,"
                    " claimed_by = COALESCE(claimed_by, ?), claimed_at = COALESCE(claimed_at, ?), updated_at = ? WHERE id = ?",
                    (outcome, actor, ts, actor, ts, ts, reminder_id),
                )
            await self._events(conn, [reminder_id], ts, actor, "done", outcome)
            return ActionResult(True, await self._load(conn, reminder_id))

    async def snooze(self, reminder_id: int, actor: int, until: datetime, *, supervisor: bool = False,
                     now: datetime | None = None) -> ActionResult:
        ts = to_ts(now or self.now())
        until_ts = to_ts(until)
        async with self.db.transaction() as conn:
            view = await self._load(conn, reminder_id)
            refusal = self._refusal(view, actor, supervisor)
            if refusal is None and until_ts <= ts:
                refusal = ("snooze_in_past", {})
            if refusal is not None:
                await self._refused(conn, view, actor, "snooze", refusal[0], ts)
                return ActionResult(False, view, refusal[0], refusal[1])
            await conn.execute(
                "UPDATE reminders SET state = 'snoozed', snoozed_by = ?, snoozed_until = ?, updated_at = ? WHERE id = ?",
                (actor, until_ts, ts, reminder_id),
            )
            await self._events(conn, [reminder_id], ts, actor, "snooze", str(until_ts))
            return ActionResult(True, await self._load(conn, reminder_id))

    async def record(self, reminder_id: int, actor: int | None, action: str, detail: str = "",
                     now: datetime | None = None) -> None:
        """Record a press that changes nothing (查看话术, opening a card, a refused button)."""
        ts = to_ts(now or self.now())
        async with self.db.transaction() as conn:
            await self._events(conn, [reminder_id], ts, actor, action, detail)

    async def events(self, reminder_id: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT * FROM reminder_events WHERE reminder_id = ? ORDER BY id", (reminder_id,)
        )

    async def _load(self, conn, reminder_id: int) -> ReminderView | None:
        cursor = await conn.execute(f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.id = ?", (reminder_id,))
        row = await cursor.fetchone()
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
    async with db.transaction() as conn:
        cursor = await conn.execute(
            f"SELECT id FROM reminders WHERE claimed_by = ? AND state IN ({_OPEN_SQL})", (person_id,)
        )
        ids = [row[0] for row in await cursor.fetchall()]
        if not ids:
            return []
        await conn.executemany(
            "UPDATE reminders SET claimed_by = NULL, claimed_at = NULL, updated_at = ?,"
            " state = CASE WHEN state != 'claimed' THEN state WHEN sent_at IS NULL THEN 'pending'"
            " WHEN escalations > 0 THEN 'escalated' ELSE 'sent' END WHERE id = ?",
            [(ts, rid) for rid in ids],
        )
        await conn.executemany(
            "INSERT INTO reminder_events (reminder_id, at, actor, action, detail) VALUES (?, ?, NULL, ?, ?)",
            [(rid, ts, "released", f"deactivated:{person_id}") for rid in ids],
        )
    return ids


# --- a person's open claims: the handover prompt (contract with bot.handover) ---------------------


async def open_claims(db: Database, tg_id: int) -> list[ReminderView]:
    """The open reminders claimed by this person, oldest due first: what they still have to finish
    before handing over. Each has `order_no`, `rule` (unpaid / unshipped) and `stage`
    (remind / warn / breach). The handover prompt (bot/handover/claims.py) lists them."""
    rows = await db.fetchall(
        f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.state IN ({_OPEN_SQL}) AND r.claimed_by = ?"
        " ORDER BY r.due_at, r.id",
        (tg_id,),
    )
    return [ReminderView.from_row(r) for r in rows]


# --- one order's reminders: the /order card --------------------------------------------------------


async def order_reminders(db: Database, order_id: int, limit: int = 20) -> list[ReminderView]:
    """The reminders raised for one order, oldest first (the latest `limit`): read-only, for the
    order card's history. The (order_id, rule, stage) unique index finds them."""
    rows = await db.fetchall(
        f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.order_id = ? ORDER BY r.id DESC LIMIT ?",
        (order_id, limit),
    )
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
    for query in due_queries(book, now):
        stage = query.stage
        rows = await db.fetchall(
            "SELECT o.id, o.platform, o.order_no, o.shop, o.status, o.amount_cents, o.created_at, o.paid_at,"
            f" {query.due_at} AS due_at, {query.deadline_at} AS deadline_at, r.id AS rid, r.state AS rstate"
            " FROM orders o LEFT JOIN reminders r ON r.order_id = o.id AND r.rule = ? AND r.stage = ?"
            f" WHERE {query.where} AND (r.state IS NULL OR r.state <> 'done')",
            (*query.due_params, *query.deadline_params, stage.rule, stage.stage, *query.where_params),
        )
        items.extend(
            DueItem(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], stage.rule, stage.stage,
                    row[8], row[9], row[10], row[11])
            for row in rows
        )
    items.sort(key=lambda i: (i.due_at, i.order_no))
    return items


async def count_due(db: Database, book: RuleBook, now: datetime) -> int:
    total = 0
    for query in due_queries(book, now):
        stage = query.stage
        row = await db.fetchone(
            "SELECT count(*) FROM orders o LEFT JOIN reminders r ON r.order_id = o.id AND r.rule = ? AND r.stage = ?"
            f" WHERE {query.where} AND (r.state IS NULL OR r.state <> 'done')",
            (stage.rule, stage.stage, *query.where_params),
        )
        total += int(row[0])
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
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT OR IGNORE INTO reminder_unstaffed_notes (occurrence, sent_at) VALUES (?, ?)", (occurrence, _ts(now))
        )
        return cursor.rowcount == 1
