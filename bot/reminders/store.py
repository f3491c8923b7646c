"""SQL of the reminders feature; the only module that writes its tables: reminders,
reminder_order_changes, reminder_messages, reminder_message_items, reminder_events
(0004_reminders.sql) and reminder_unstaffed_notes (0007). The trigger on `orders` in 0004 fills
reminder_order_changes; the scan here empties it.

A send whose answer timed out (the outbox's "one-message window": it may have arrived, it is not
sent again) is recorded like any other, so the tick counts that chat as served; its Telegram id
is unknown, and reminder_messages.message_id is NOT NULL UNIQUE(chat_id, message_id) (0004), so
it gets a sentinel: minus the row's own id (`add_message` with message_id None), negative and
unique, never a real Telegram id (those are positive). `messages_showing` leaves such rows out:
no edit is ever attempted on them; they only hold the delivery record.

It READS the orders table (the due conditions are SQL over its indexes, bot/reminders/rules.py)
but never writes it. The KPI read model (bot/kpi/store.py) reads these tables, never writes them.
Methods taking `conn` run inside the caller's transaction (ReminderEngine decides what happens).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from bot.db import Database, insert_id, insert_ignore_sql, placeholders
from bot.reminders.rules import NO_LONGER_DUE_SQL, OPEN_STATES, DueQuery

_OPEN_SQL = ", ".join(f"'{s}'" for s in OPEN_STATES)

REMINDER_FIELDS = (
    "id", "order_id", "rule", "stage", "due_at", "deadline_at", "state", "round", "first_sent_at", "sent_at",
    "claimed_by", "claimed_at", "snoozed_by", "snoozed_until", "done_by", "done_at", "outcome", "resolved_at",
    "resolved_reason", "escalations", "escalated_at", "created_at", "followup_outcome", "watch_until", "repeats",
)
#: The columns of a ReminderView, in its field order (position, when wanted, is selected last).
VIEW_COLUMNS = ", ".join(
    [f"r.{name}" for name in REMINDER_FIELDS]
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
_UNSTAFFED_SQL = insert_ignore_sql("reminder_unstaffed_notes", ("occurrence", "sent_at"))
_ITEMS_SQL = insert_ignore_sql(
    "reminder_message_items", ("message_row", "reminder_id", "chat_id", "purpose", "round", "position")
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


async def _ids(conn, sql: str, params: Sequence = ()) -> list[int]:
    cursor = await conn.execute(sql, params)
    return [row[0] for row in await cursor.fetchall()]


class ReminderStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the scan (inside its transaction) ------------------------------------------------------

    async def max_id(self, conn) -> int:
        cursor = await conn.execute("SELECT coalesce(max(id), 0) FROM reminders")
        return (await cursor.fetchone())[0]

    async def record_due(self, conn, query: DueQuery, ts: int) -> int:
        """Record the orders due for one stage and shop group; how many rows."""
        cursor = await conn.execute(*record_due_sql(query, ts))
        return max(cursor.rowcount, 0)

    async def carry_claims(self, conn, ts: int, existing: int) -> int:
        """A breach recorded after id `existing` starts claimed by whoever claimed its warning."""
        cursor = await conn.execute(
            "UPDATE reminders SET claimed_by = (SELECT w.claimed_by FROM reminders w WHERE w.order_id = reminders.order_id"
            "   AND w.rule = 'unshipped' AND w.stage = 'warn'), claimed_at = ?, updated_at = ?"
            " WHERE state = 'pending' AND rule = 'unshipped' AND stage = 'breach' AND id > ? AND claimed_by IS NULL"
            " AND EXISTS (SELECT 1 FROM reminders w WHERE w.order_id = reminders.order_id AND w.rule = 'unshipped'"
            "   AND w.stage = 'warn' AND w.claimed_by IS NOT NULL)",
            (ts, ts, existing),
        )
        return max(cursor.rowcount, 0)

    async def no_longer_due(self, conn, existing: int, everything: bool) -> list[sqlite3.Row]:
        """(id, rule, status, refunding, presale, on_hold) of open reminders whose order may no
        longer qualify: of changed orders, or of every order when `everything`."""
        cursor = await conn.execute(RESOLVE_ALL_SQL if everything else RESOLVE_SQL, (existing,))
        return list(await cursor.fetchall())

    async def close_as_resolved(self, conn, changes: Sequence[tuple[str, int]], ts: int) -> None:
        """(reason, id) pairs become resolved, each with a 'resolved' event."""
        await conn.executemany(
            "UPDATE reminders SET state = 'resolved', resolved_reason = ?, resolved_at = ?, updated_at = ? WHERE id = ?",
            [(reason, ts, ts, rid) for reason, rid in changes],
        )
        await conn.executemany(
            "INSERT INTO reminder_events (reminder_id, at, actor, action, detail) VALUES (?, ?, NULL, 'resolved', ?)",
            [(rid, ts, reason) for reason, rid in changes],
        )

    async def to_reopen(self, conn, everything: bool) -> list[int]:
        return await _ids(conn, REOPEN_ALL_SQL if everything else REOPEN_SQL)

    async def reopen(self, conn, ids: Sequence[int], ts: int) -> None:
        await conn.executemany(
            "UPDATE reminders SET state = 'pending', round = round + 1, first_sent_at = NULL, sent_at = NULL,"
            " resolved_reason = NULL, resolved_at = NULL, updated_at = ? WHERE id = ?",
            [(ts, rid) for rid in ids],
        )

    async def forget_order_changes(self, conn) -> None:
        await conn.execute("DELETE FROM reminder_order_changes")

    async def superseded(self, conn, after_id: int) -> list[int]:
        return await _ids(conn, SUPERSEDE_SQL, (after_id,))

    async def to_wake(self, conn, ts: int) -> list[int]:
        return await _ids(conn, WAKE_SQL, (ts,))

    async def wake(self, conn, ids: Sequence[int], ts: int) -> None:
        await conn.executemany(
            "UPDATE reminders SET state = 'pending', round = round + 1, first_sent_at = NULL, sent_at = NULL,"
            " updated_at = ? WHERE id = ?",
            [(ts, rid) for rid in ids],
        )

    async def to_repeat(self, conn, ts: int) -> list[int]:
        return await _ids(conn, REPEAT_SQL, (ts,))

    async def repeat(self, conn, ids: Sequence[int], ts: int) -> None:
        await conn.executemany(
            "UPDATE reminders SET state = 'pending', round = round + 1, repeats = repeats + 1, watch_until = NULL,"
            " first_sent_at = NULL, sent_at = NULL, claimed_by = NULL, claimed_at = NULL, done_by = NULL,"
            " done_at = NULL, escalated_at = NULL, updated_at = ? WHERE id = ?",
            [(ts, rid) for rid in ids],
        )

    async def end_watches(self, conn, ts: int) -> None:
        await conn.execute("UPDATE reminders SET watch_until = NULL WHERE watch_until <= ?", (ts,))

    async def add_events(self, conn, ids: Iterable[int], ts: int, actor: int | None, action: str, detail: str = "") -> None:
        await conn.executemany(
            "INSERT INTO reminder_events (reminder_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
            [(rid, ts, actor, action, detail) for rid in ids],
        )

    # -- delivery bookkeeping -------------------------------------------------------------------

    async def pending(self) -> list[sqlite3.Row]:
        return await self.db.fetchall(PENDING_SQL)

    async def delivered(self, purpose: str) -> list[sqlite3.Row]:
        """(reminder_id, chat_id) of the items holding the current round (notify) or the next
        escalation (escalate) of open reminders."""
        round_expr = "r.round" if purpose == "notify" else "r.escalations + 1"
        state_cond = "r.state = 'pending'" if purpose == "notify" else f"r.state IN ({_OPEN_SQL})"
        return await self.db.fetchall(
            "SELECT i.reminder_id, i.chat_id FROM reminder_message_items i JOIN reminders r ON r.id = i.reminder_id"
            f" WHERE {state_cond} AND i.purpose = ? AND i.round = {round_expr}",
            (purpose,),
        )

    async def add_message(self, conn, chat_id: int, message_id: int | None, kind: str, rule: str | None, part: int,
                          parts: int, total: int, ts: int) -> int:
        """The message's row id. `message_id` None (sent, id unknown): the sentinel -id (module doc)."""
        row_id = await insert_id(
            conn,
            "INSERT INTO reminder_messages (chat_id, message_id, kind, rule, part, parts, total, sent_at)"
            " VALUES (?, COALESCE(?, -1 - (SELECT coalesce(max(id), 0) FROM reminder_messages)), ?, ?, ?, ?, ?, ?)",
            (chat_id, message_id, kind, rule, part, parts, total, ts),
        )
        if message_id is None:  # the exact sentinel: minus the row's own id (unique, whatever id it got)
            await conn.execute("UPDATE reminder_messages SET message_id = -id WHERE id = ?", (row_id,))
        return row_id

    async def add_message_items(self, conn, rows: Sequence[tuple]) -> None:
        """(message_row, reminder_id, chat_id, purpose, round, position) rows; one already held is kept."""
        await conn.executemany(_ITEMS_SQL, rows)

    async def mark_first_sent(self, conn, ids: Iterable[int], ts: int) -> None:
        await conn.executemany(
            "UPDATE reminders SET first_sent_at = COALESCE(first_sent_at, ?) WHERE id = ? AND state = 'pending'",
            [(ts, rid) for rid in ids],
        )

    async def round_held_by_all(self, conn, chats: Sequence[int]) -> list[int]:
        """Pending reminders whose current round every one of `chats` holds."""
        marks = placeholders(chats)
        return await _ids(
            conn,
            "SELECT i.reminder_id FROM reminder_message_items i JOIN reminders r ON r.id = i.reminder_id"
            f" WHERE r.state = 'pending' AND i.purpose = 'notify' AND i.round = r.round AND i.chat_id IN ({marks})"
            " GROUP BY i.reminder_id HAVING count(DISTINCT i.chat_id) >= ?",
            (*chats, len(set(chats))),
        )

    async def mark_sent(self, conn, ids: Sequence[int], ts: int) -> None:
        await conn.executemany(
            "UPDATE reminders SET state = CASE WHEN claimed_by IS NULL THEN 'sent' ELSE 'claimed' END,"
            " sent_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
            [(ts, ts, rid) for rid in ids],
        )

    async def escalations_due(self, first_sent_by: int, last_escalated_by: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(ESCALATIONS_SQL, (first_sent_by, last_escalated_by))

    async def escalation_held_by_all(self, conn, chats: Sequence[int]) -> set[int]:
        """Open reminders whose next escalation every one of `chats` holds."""
        marks = placeholders(chats)
        return set(await _ids(
            conn,
            "SELECT i.reminder_id FROM reminder_message_items i JOIN reminders r ON r.id = i.reminder_id"
            f" WHERE r.state IN ({_OPEN_SQL}) AND i.purpose = 'escalate' AND i.round = r.escalations + 1"
            f" AND i.chat_id IN ({marks}) GROUP BY i.reminder_id HAVING count(DISTINCT i.chat_id) >= ?",
            (*chats, len(set(chats))),
        ))

    async def mark_escalated(self, conn, ids: Sequence[int], ts: int) -> None:
        await conn.executemany(
            "UPDATE reminders SET state = CASE WHEN state IN ('sent', 'escalated') THEN 'escalated' ELSE state END,"
            " escalations = escalations + 1, escalated_at = ?, updated_at = ? WHERE id = ?",
            [(ts, ts, rid) for rid in ids],
        )

    # -- messages to edit -----------------------------------------------------------------------

    async def messages_showing(self, reminder_ids: Sequence[int]) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT DISTINCT m.* FROM reminder_message_items i JOIN reminder_messages m ON m.id = i.message_row"
            " WHERE m.message_id > 0"  # a sentinel (sent, id unknown) cannot be edited
            f" AND i.reminder_id IN ({', '.join('?' * len(reminder_ids))})",
            list(reminder_ids),
        )

    async def message_items(self, message_row: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            f"SELECT {VIEW_COLUMNS}, i.position AS position FROM reminder_message_items i"
            " JOIN reminders r ON r.id = i.reminder_id JOIN orders o ON o.id = r.order_id"
            " WHERE i.message_row = ? ORDER BY i.position IS NULL, i.position, r.id",
            (message_row,),
        )

    async def message_by_telegram_id(self, chat_id: int, message_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone(
            "SELECT * FROM reminder_messages WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )

    # -- lookups --------------------------------------------------------------------------------

    async def view(self, reminder_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone(f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.id = ?", (reminder_id,))

    async def view_in(self, conn, reminder_id: int) -> sqlite3.Row | None:
        cursor = await conn.execute(f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.id = ?", (reminder_id,))
        return await cursor.fetchone()

    async def open_claimed_by(self, person_id: int, limit: int | None = None) -> list[sqlite3.Row]:
        sql = (f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.state IN ({_OPEN_SQL}) AND r.claimed_by = ?"
               " ORDER BY r.due_at, r.id")
        if limit is None:
            return await self.db.fetchall(sql, (person_id,))
        return await self.db.fetchall(sql + " LIMIT ?", (person_id, limit))

    async def open_not_claimed_by(self, person_id: int, limit: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.state IN ({_OPEN_SQL}) AND r.claimed_by IS NOT ?"
            " ORDER BY r.due_at, r.id LIMIT ?",
            (person_id, limit),
        )

    async def open_counts(self, person_id: int) -> tuple[int, int]:
        """(claimed by the person, not claimed by the person) among open reminders."""
        counts = await self.db.fetchone(
            "SELECT count(*) FILTER (WHERE claimed_by = ?), count(*) FILTER (WHERE claimed_by IS NOT ?)"
            f" FROM reminders WHERE state IN ({_OPEN_SQL})",
            (person_id, person_id),
        )
        return int(counts[0]), int(counts[1])

    async def of_order(self, order_id: int, limit: int) -> list[sqlite3.Row]:
        """The latest `limit` reminders of one order, newest first."""
        return await self.db.fetchall(
            f"SELECT {VIEW_COLUMNS} FROM {VIEW_FROM} WHERE r.order_id = ? ORDER BY r.id DESC LIMIT ?",
            (order_id, limit),
        )

    async def events(self, reminder_id: int) -> list[sqlite3.Row]:
        return await self.db.fetchall("SELECT * FROM reminder_events WHERE reminder_id = ? ORDER BY id", (reminder_id,))

    # -- button actions (inside the engine's transaction, after its checks) ----------------------

    async def claim(self, conn, reminder_id: int, actor: int, ts: int) -> int:
        cursor = await conn.execute(
            "UPDATE reminders SET claimed_by = ?, claimed_at = ?, updated_at = ?,"
            " state = CASE WHEN state IN ('pending', 'sent', 'escalated') THEN 'claimed' ELSE state END"
            f" WHERE id = ? AND claimed_by IS NULL AND state IN ({_OPEN_SQL})",
            (actor, ts, ts, reminder_id),
        )
        return cursor.rowcount

    async def done_watching(self, conn, reminder_id: int, followup: str, watch_until: int, actor: int, ts: int) -> None:
        """Done with a follow-up outcome, watched until `watch_until` (a breach still unshipped)."""
        await conn.execute(
            "UPDATE reminders SET state = 'done', outcome = NULL, followup_outcome = ?, watch_until = ?,"
            " done_by = ?, done_at = ?, claimed_by = COALESCE(claimed_by, ?),"
            " claimed_at = COALESCE(claimed_at, ?), updated_at = ? WHERE id = ?",
            (followup, watch_until, actor, ts, actor, ts, ts, reminder_id),
        )

    async def done(self, conn, reminder_id: int, outcome: str, actor: int, ts: int) -> None:
        await conn.execute(
            "UPDATE reminders SET state = 'done', outcome = ?, done_by = ?, done_at = ?,"
            " claimed_by = COALESCE(claimed_by, ?), claimed_at = COALESCE(claimed_at, ?), updated_at = ? WHERE id = ?",
            (outcome, actor, ts, actor, ts, ts, reminder_id),
        )

    async def snooze(self, conn, reminder_id: int, actor: int, until: int, ts: int) -> None:
        await conn.execute(
            "UPDATE reminders SET state = 'snoozed', snoozed_by = ?, snoozed_until = ?, updated_at = ? WHERE id = ?",
            (actor, until, ts, reminder_id),
        )

    # -- someone leaves the team ----------------------------------------------------------------

    async def open_claim_ids(self, conn, person_id: int) -> list[int]:
        return await _ids(conn, f"SELECT id FROM reminders WHERE claimed_by = ? AND state IN ({_OPEN_SQL})", (person_id,))

    async def release(self, conn, ids: Sequence[int], ts: int, person_id: int) -> None:
        """Unclaim, back to the state the reminder would have had without the claim; one event each."""
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

    # -- what is due, without sending ----------------------------------------------------------

    async def due(self, query: DueQuery) -> list[sqlite3.Row]:
        """Orders due for one stage and shop group, not done, with their reminder if recorded."""
        stage = query.stage
        return await self.db.fetchall(
            "SELECT o.id, o.platform, o.order_no, o.shop, o.status, o.amount_cents, o.created_at, o.paid_at,"
            f" {query.due_at} AS due_at, {query.deadline_at} AS deadline_at, r.id AS rid, r.state AS rstate"
            " FROM orders o LEFT JOIN reminders r ON r.order_id = o.id AND r.rule = ? AND r.stage = ?"
            f" WHERE {query.where} AND (r.state IS NULL OR r.state <> 'done')",
            (*query.due_params, *query.deadline_params, stage.rule, stage.stage, *query.where_params),
        )

    async def count_due(self, query: DueQuery) -> int:
        stage = query.stage
        row = await self.db.fetchone(
            "SELECT count(*) FROM orders o LEFT JOIN reminders r ON r.order_id = o.id AND r.rule = ? AND r.stage = ?"
            f" WHERE {query.where} AND (r.state IS NULL OR r.state <> 'done')",
            (stage.rule, stage.stage, *query.where_params),
        )
        return int(row[0])

    # -- a working shift with nobody on duty ----------------------------------------------------

    async def note_unstaffed(self, occurrence: str, ts: int) -> bool:
        """True the first time this occurrence is noted."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(_UNSTAFFED_SQL, (occurrence, ts))
            return cursor.rowcount == 1
