"""Read-only looks at the orders table for other features (through the orders face): is a number
a stored order, and which open orders reach their deadline within a time window.

The deadline itself is the reminders feature's rule (`bot.reminders.order_deadline`); callers pass
it in, so there is one definition of "when is this order due". If the table does not exist (a
database without migration 0002) every answer is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import from_ts, to_ts
from bot.db import Database
from bot.orders.model import PLATFORMS

UNPAID = "unpaid"
SHIPPING_STATUSES = ("paid_unshipped", "partially_shipped")
#: Every platform the orders table accepts: `platform IN (…)` puts lookups on its unique index.
ALL_PLATFORMS_SQL = ", ".join(f"'{p}'" for p in PLATFORMS)


@dataclass(frozen=True)
class OrderRef:
    order_no: str
    platform: str
    shop: str
    status: str


@dataclass(frozen=True)
class OrderClock:
    """What an order's deadline depends on (see bot.reminders.order_deadline)."""

    order_no: str
    platform: str
    shop: str
    status: str
    created_at: datetime | None
    paid_at: datetime | None
    ship_from: datetime | None
    ship_by: datetime | None
    presale: bool
    refunding: bool
    on_hold: bool


async def _orders_table_exists(db: Database) -> bool:
    return await db.table_exists("orders")


async def known_orders(db: Database, numbers: Iterable[str]) -> dict[str, OrderRef]:
    """The stored orders among these numbers (the most recently updated one per number)."""
    numbers = sorted({n for n in numbers if n})
    if not numbers or not await _orders_table_exists(db):
        return {}
    marks = ", ".join("?" for _ in numbers)
    # Naming every platform lets SQLite use the UNIQUE (platform, order_no) index; on the order
    # number alone it would scan the whole orders table.
    rows = await db.fetchall(
        f"SELECT order_no, platform, shop, status FROM orders WHERE platform IN ({ALL_PLATFORMS_SQL})"
        f" AND order_no IN ({marks}) ORDER BY updated_at ASC, id ASC",
        numbers,
    )
    return {r["order_no"]: OrderRef(r["order_no"], r["platform"], r["shop"], r["status"]) for r in rows}


def _when(value: int | None) -> datetime | None:
    return None if value is None else from_ts(value)


async def orders_due_within(
    db: Database,
    start: datetime,
    end: datetime,
    deadline: Callable[[OrderClock], datetime | None],
    *,
    shortest: timedelta,
    longest: timedelta,
    limit: int = 200,
) -> list[tuple[datetime, OrderClock]]:
    """Open orders (unpaid, or paid and not shipped) whose `deadline(order)` falls in
    [start, end), earliest first, as (deadline, order).

    `shortest` / `longest` bound the time from an order's clock start (created, or ship_from /
    paid) to its deadline over every shop: they only narrow the indexed pre-selection. An order's
    own promised deadline (ship_by) is selected by itself."""
    if not await _orders_table_exists(db):
        return []
    low, high = to_ts(start - longest), to_ts(end - shortest)
    base = "COALESCE(ship_from, paid_at)"
    ship_marks = ", ".join("?" for _ in SHIPPING_STATUSES)
    rows = await db.fetchall(
        "SELECT order_no, platform, shop, status, created_at, paid_at, ship_from, ship_by, presale, refunding,"
        " on_hold FROM orders WHERE status = ? AND created_at >= ? AND created_at < ?"
        " UNION ALL "
        "SELECT order_no, platform, shop, status, created_at, paid_at, ship_from, ship_by, presale, refunding,"
        f" on_hold FROM orders WHERE status IN ({ship_marks}) AND presale = 0 AND refunding = 0 AND on_hold = 0"
        f" AND ((ship_by IS NULL AND {base} >= ? AND {base} < ?) OR (ship_by >= ? AND ship_by < ?))",
        (UNPAID, low, high, *SHIPPING_STATUSES, low, high, to_ts(start), to_ts(end)),
    )
    due: list[tuple[datetime, OrderClock]] = []
    for r in rows:
        order = OrderClock(
            r["order_no"], r["platform"], r["shop"], r["status"], _when(r["created_at"]), _when(r["paid_at"]),
            _when(r["ship_from"]), _when(r["ship_by"]), bool(r["presale"]), bool(r["refunding"]), bool(r["on_hold"]),
        )
        moment = deadline(order)
        if moment is not None and start <= moment < end:
            due.append((moment, order))
    due.sort(key=lambda d: (d[0], d[1].order_no))
    return due[:limit]
