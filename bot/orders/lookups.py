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
from bot.orders.store import OrderStore


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


async def known_orders(db: Database, numbers: Iterable[str]) -> dict[str, OrderRef]:
    """The stored orders among these numbers (the most recently updated one per number)."""
    numbers = sorted({n for n in numbers if n})
    store = OrderStore(db)
    if not numbers or not await store.table_exists():
        return {}
    rows = await store.refs(numbers)
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
    store = OrderStore(db)
    if not await store.table_exists():
        return []
    low, high = to_ts(start - longest), to_ts(end - shortest)
    rows = await store.open_clocks(low, high, to_ts(start), to_ts(end))
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
