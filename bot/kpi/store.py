"""The KPI's reads of other features' tables: SQL over orders, reminders, reminder_events,
reminder_messages/items, handover_items/deliveries, broadcasts/recipients and users. It only READS
them and never writes them (the KPI's own tables: kpi_nudges and kpi_sent here; the read model's
in bot/kpi/readmodel_store.py). The in-memory measures (the reference) recompute from these records; the
read model derives its stored facts from the same reads. Volume is handled in SQL where it matters:
shipping lateness over every paid order is grouped by (shop, 15-minute slot of the deadline) in
SQLite, the per-event reads are limited to the period by indexed time columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.db import Database, insert_ignore_sql, placeholders
from bot.reminders import RuleBook

#: Reminders are selected by due time this much before the period (a push can come later than the
#: due time: held in the night gap, snoozed, bot down) and filtered by their first push.
PUSH_LAG = 3 * 86400
#: An order's shipping deadline counts when it is at most this long after its payment (a platform's
#: own 承诺发货时间 further out than this is not counted); so orders paid this long before the period
#: start can still have their deadline in it.
DEADLINE_REACH = 30 * 86400
SLOT = 900  # seconds: the deadline grouping; exact local days for every zone with 15-minute offsets

ACTOR_ACTIONS = ("claim", "done", "snooze", "script")


@dataclass(frozen=True)
class ReminderRow:
    id: int
    rule: str
    stage: str
    due_at: int
    deadline_at: int | None
    state: str
    claimed_by: int | None
    claimed_at: int | None
    done_at: int | None
    resolved_at: int | None
    resolved_reason: str | None
    escalations: int
    first_push: int | None
    shop: str
    amount_cents: int | None
    order_status: str
    paid_at: int | None
    shipped_at: int | None


class KpiStore:
    def __init__(self, db: Database, book: RuleBook) -> None:
        self.db = db
        self.book = book

    async def reminders(self, start: int, end: int) -> list[ReminderRow]:
        return await self.reminders_where("r.due_at >= ? AND r.due_at < ?", (start - PUSH_LAG, end))

    async def reminders_where(self, cond: str, params: tuple) -> list[ReminderRow]:
        rows = await self.db.fetchall(
            "SELECT r.id, r.rule, r.stage, r.due_at, r.deadline_at, r.state, r.claimed_by, r.claimed_at, r.done_at,"
            " r.resolved_at, r.resolved_reason, r.escalations,"
            # round 1 keeps its first push in first_sent_at (a re-send after a restart never moves it);
            # a later round (snooze, reopen, repeat) reset it, so the first push is looked up then
            " CASE WHEN r.round = 1 AND r.first_sent_at IS NOT NULL THEN r.first_sent_at ELSE"
            " COALESCE((SELECT min(m.sent_at) FROM reminder_message_items i JOIN reminder_messages m ON m.id = i.message_row"
            "   WHERE i.reminder_id = r.id AND i.purpose = 'notify'), r.first_sent_at) END AS first_push,"
            " o.shop, o.amount_cents, o.status, o.paid_at, o.shipped_at"
            f" FROM reminders r JOIN orders o ON o.id = r.order_id WHERE {cond}",
            params,
        )
        return [ReminderRow(*tuple(row)) for row in rows]

    async def reminder_actions(self, start: int, end: int) -> dict[int, list[tuple[int, int, str]]]:
        """Per reminder, the presses by people (claim, done, snooze, script) as (at, actor, action)."""
        return await self.reminder_actions_where("r.due_at >= ? AND r.due_at < ?", (start - PUSH_LAG, end))

    async def reminder_actions_where(self, cond: str, params: tuple) -> dict[int, list[tuple[int, int, str]]]:
        marks = placeholders(ACTOR_ACTIONS)
        rows = await self.db.fetchall(
            "SELECT e.reminder_id, e.at, e.actor, e.action FROM reminders r"
            " JOIN reminder_events e ON e.reminder_id = r.id"
            f" WHERE {cond} AND e.actor IS NOT NULL AND e.action IN ({marks})"
            " ORDER BY e.reminder_id, e.at, e.id",
            (*params, *ACTOR_ACTIONS),
        )
        result: dict[int, list[tuple[int, int, str]]] = {}
        for row in rows:
            result.setdefault(row[0], []).append((row[1], row[2], row[3]))
        return result

    async def shipping_slots(self, start: int, end: int, now: int) -> list[tuple[str, int, int, int, int]]:
        """(shop, deadline slot start, due, late, unknown) for paid orders whose shipping deadline
        falls in [start, min(end, now)). Late: shipped after the deadline, or still unshipped (no open
        refund, not held) past it. Unknown: shipped with no ship time in the export (not counted)."""
        stop = min(end, now)
        if stop <= start:
            return []
        result: list[tuple[str, int, int, int, int]] = []
        for thresholds, shop_cond, shop_params in self.book.groups():
            breach = thresholds.seconds("unshipped")
            deadline = f"COALESCE(o.ship_by, COALESCE(o.ship_from, o.paid_at) + {int(breach)})"
            rows = await self.db.fetchall(
                f"SELECT o.shop, ({deadline}) / {SLOT} * {SLOT} AS slot, count(*),"
                f" sum(CASE WHEN o.shipped_at > {deadline} THEN 1"
                "          WHEN o.status IN ('paid_unshipped', 'partially_shipped') AND o.refunding = 0 AND o.on_hold = 0"
                "          THEN 1 ELSE 0 END),"
                " sum(CASE WHEN o.status IN ('shipped', 'completed') AND o.shipped_at IS NULL THEN 1 ELSE 0 END)"
                " FROM orders o"
                " WHERE o.status IN ('paid_unshipped', 'partially_shipped', 'shipped', 'completed')"
                f" AND o.paid_at >= ? AND o.paid_at < ? AND o.presale = 0 AND {shop_cond}"
                f" AND {deadline} >= ? AND {deadline} < ? AND {deadline} <= o.paid_at + {DEADLINE_REACH}"
                " AND NOT (o.status IN ('paid_unshipped', 'partially_shipped') AND (o.refunding = 1 OR o.on_hold = 1))"
                " GROUP BY o.shop, slot",
                (start - DEADLINE_REACH, stop, *shop_params, start, stop),
            )
            result += [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        return result

    async def shipping_cases(self, start: int, end: int, now: int, near_miss_s: int) -> list[Any]:
        """Paid orders whose shipping deadline falls in [start, min(end, now)) and that were shipped
        late or less than `near_miss_s` before it, or are still unshipped (no open refund, not held);
        at most 400 per threshold group, earliest deadline first."""
        stop = min(end, now)
        rows: list[Any] = []
        for thresholds, shop_cond, shop_params in self.book.groups():
            breach = int(thresholds.seconds("unshipped"))
            deadline = f"COALESCE(o.ship_by, COALESCE(o.ship_from, o.paid_at) + {breach})"
            rows += await self.db.fetchall(
                f"SELECT o.platform, o.order_no, o.shop, o.amount_cents, o.status, o.shipped_at, {deadline} AS deadline"
                " FROM orders o WHERE o.status IN ('paid_unshipped', 'partially_shipped', 'shipped', 'completed')"
                f" AND o.paid_at >= ? AND o.paid_at < ? AND o.presale = 0 AND {shop_cond}"
                f" AND {deadline} >= ? AND {deadline} < ?"
                f" AND (o.shipped_at > {deadline} - ? OR (o.shipped_at IS NULL AND o.status IN"
                "      ('paid_unshipped', 'partially_shipped') AND o.refunding = 0 AND o.on_hold = 0))"
                " ORDER BY deadline LIMIT 400",
                (start - 30 * 86400, stop, *shop_params, start, stop, near_miss_s),
            )
        return rows

    async def handover_deliveries(self, start: int, end: int) -> list[Any]:
        return await self.db.fetchall(
            "SELECT d.item_id, d.occurrence, d.occurrence_start, d.delivered_at, d.taken_by, d.taken_at,"
            " i.status, i.resolved_at, i.withdrawn_at, i.urgent, i.occurrence AS written_in"
            " FROM handover_deliveries d JOIN handover_items i ON i.id = d.item_id"
            " WHERE d.occurrence_start >= ? AND d.occurrence_start < ?",
            (start, end),
        )

    async def handover_items(self, start: int, end: int) -> list[Any]:
        """Items written in the period with how many shifts they were handed to."""
        return await self.db.fetchall(
            "SELECT i.id, i.occurrence, i.created_at, i.status, i.author_id,"
            " (SELECT count(*) FROM handover_deliveries d WHERE d.item_id = i.id) AS handed"
            " FROM handover_items i WHERE i.created_at >= ? AND i.created_at < ? AND i.status <> 'withdrawn'",
            (start, end),
        )

    async def ack_recipients(self, start: int, end: int) -> list[Any]:
        return await self.db.fetchall(
            "SELECT b.id, COALESCE(b.urgent, 0), r.tg_id, COALESCE(r.sent_at, b.sent_at), r.acked_at, u.shift"
            " FROM broadcasts b JOIN broadcast_recipients r ON r.broadcast_id = b.id"
            " LEFT JOIN users u ON u.tg_id = r.tg_id"
            " WHERE b.ack_required = 1 AND b.sent_at >= ? AND b.sent_at < ? AND r.status = 'sent'",
            (start, end),
        )

    async def people(self) -> dict[int, dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT tg_id, COALESCE(display_name, NULLIF(full_name, ''), username, CAST(tg_id AS TEXT)), role, shift, active"
            " FROM users"
        )
        return {r[0]: {"name": r[1], "role": r[2], "shift": r[3], "active": bool(r[4])} for r in rows}

    # --- nudges (its own table) -------------------------------------------------------------------

    async def unclaimed_payment_reminders(self, standard_id: str) -> list[Any]:
        """Open, delivered, unclaimed 催付 reminders not yet nudged for this standard. The clock is the
        current round's first push (a snoozed reminder that woke starts a new wait)."""
        return await self.db.fetchall(
            "SELECT r.id, r.first_sent_at, o.order_no, o.platform, o.shop, o.amount_cents FROM reminders r"
            " JOIN orders o ON o.id = r.order_id"
            " WHERE r.state IN ('pending', 'sent', 'escalated') AND r.rule = 'unpaid' AND r.claimed_by IS NULL"
            " AND r.first_sent_at IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM kpi_nudges n WHERE n.reminder_id = r.id AND n.standard_id = ?)",
            (standard_id,),
        )

    async def record_nudges(self, pairs: list[tuple[int, str]], at: int) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                insert_ignore_sql("kpi_nudges", ("reminder_id", "standard_id", "at")),
                [(rid, sid, at) for rid, sid in pairs],
            )

    async def nudged_between(self, start: int, end: int) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM kpi_nudges WHERE at >= ? AND at < ?", (start, end))
        return int(row[0])

    # --- scheduled sends (its own table) ----------------------------------------------------------

    async def last_sent(self, kind: str) -> str | None:
        row = await self.db.fetchone("SELECT max(key) FROM kpi_sent WHERE kind = ?", (kind,))
        return row[0] if row else None

    async def claim_send(self, kind: str, key: str, at: int) -> bool:
        """Record that `kind` for `key` is being sent; False when it was already (another tick, before a restart)."""
        return await self.db.execute(insert_ignore_sql("kpi_sent", ("kind", "key", "at")), (kind, key, at)) == 1

    # --- morning review ---------------------------------------------------------------------------

    async def refunds_opened(self, start: int, end: int) -> list[Any]:
        """Orders whose refund flag is on and that changed in the window (the last import that
        touched them is the best record of when a refund opened: orders keep no refund history)."""
        return await self.db.fetchall(
            "SELECT id, platform, order_no, shop, amount_cents, status FROM orders"
            " WHERE refunding = 1 AND updated_at >= ? AND updated_at < ? ORDER BY updated_at LIMIT 200",
            (start, end),
        )

    async def closed_unpaid(self, start: int, end: int, min_cents: int) -> list[Any]:
        return await self.db.fetchall(
            "SELECT id, platform, order_no, shop, amount_cents FROM orders"
            " WHERE status = 'closed' AND paid_at IS NULL AND amount_cents >= ? AND updated_at >= ? AND updated_at < ?"
            " ORDER BY amount_cents DESC LIMIT 200",
            (min_cents, start, end),
        )

    async def unclaimed_reminders(self, start: int, end: int) -> list[Any]:
        """Reminders pushed in the window that nobody ever claimed or closed."""
        return await self.db.fetchall(
            "SELECT r.id, r.rule, r.stage, r.state, o.order_no, o.platform, o.shop, o.amount_cents FROM reminders r"
            " JOIN orders o ON o.id = r.order_id"
            " WHERE r.due_at >= ? AND r.due_at < ? AND r.claimed_by IS NULL AND r.done_by IS NULL"
            " AND (r.first_sent_at IS NOT NULL OR r.sent_at IS NOT NULL"
            "      OR EXISTS (SELECT 1 FROM reminder_message_items i WHERE i.reminder_id = r.id AND i.purpose = 'notify'))"
            " ORDER BY r.due_at LIMIT 200",
            (start - PUSH_LAG, end),
        )

    async def open_handover_items(self, before: int) -> list[Any]:
        return await self.db.fetchall(
            "SELECT id, occurrence, text, kind, urgent, order_no, created_at FROM handover_items"
            " WHERE status = 'open' AND created_at < ? ORDER BY created_at LIMIT 200",
            (before,),
        )

    async def stuck_orders(self, now: int, unpaid_s: int, unshipped_s: int) -> list[Any]:
        """Orders in a state longer than usual: unpaid past `unpaid_s` since creation and not closed,
        paid and unshipped past `unshipped_s` since payment."""
        return await self.db.fetchall(
            "SELECT id, platform, order_no, shop, status, amount_cents, created_at, paid_at FROM ("
            " SELECT * FROM orders WHERE status = 'unpaid' AND created_at < ? AND created_at >= ?"
            " UNION ALL SELECT * FROM orders WHERE status IN ('paid_unshipped', 'partially_shipped')"
            "  AND paid_at < ? AND paid_at >= ? AND refunding = 0 AND presale = 0)"
            " ORDER BY COALESCE(paid_at, created_at) LIMIT 200",
            (now - unpaid_s, now - 30 * 86400, now - unshipped_s, now - 30 * 86400),
        )
