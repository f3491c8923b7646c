"""Read-only looks at the orders table (owned by bot/orders, issue 4) for the handover book:
is a number a stored order, and which orders fall due for payment or shipping within a shift.

Only plain SQL on the documented columns, so the orders code can change freely. If the table
does not exist (a database without migration 0002) every answer is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.db import Database
from bot.orders.model import PLATFORMS

UNPAID = "unpaid"
UNSHIPPED = "unshipped"
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
class DueOrder:
    order_no: str
    platform: str
    shop: str
    kind: str  # 'unpaid' (催付) or 'unshipped' (发货)
    deadline: int  # unix seconds


@dataclass(frozen=True)
class Thresholds:
    unpaid_hours: float
    unshipped_hours: float
    #: shop → {'unpaid': h, 'unshipped': h}, from KEFU_SHOP_OVERRIDES
    per_shop: Mapping[str, Mapping[str, float]]

    def hours(self, shop: str, kind: str) -> float:
        default = self.unpaid_hours if kind == UNPAID else self.unshipped_hours
        return float(self.per_shop.get(shop, {}).get(kind, default))


def parse_shop_overrides(spec: str) -> dict[str, dict[str, float]]:
    """`旗舰店:unshipped=24,warn=18;小店:unpaid=6` → {shop: {'unshipped': 24.0, ...}}.

    Lenient: the reminders feature owns this setting and reports mistakes in it; here a part
    that cannot be read is skipped, and the shop keeps the defaults.
    """
    result: dict[str, dict[str, float]] = {}
    for part in filter(None, (p.strip() for p in spec.replace("；", ";").split(";"))):
        shop, sep, values = part.replace("：", ":").rpartition(":")
        if not sep or not shop.strip():
            continue
        for pair in values.replace("，", ",").split(","):
            key, eq, number = pair.partition("=")
            try:
                hours = float(number)
            except ValueError:
                continue
            if eq and hours > 0:
                result.setdefault(shop.strip(), {})[key.strip().lower()] = hours
    return result


async def _orders_table_exists(db: Database) -> bool:
    row = await db.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orders'")
    return row is not None


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


async def orders_due(db: Database, start: int, end: int, thresholds: Thresholds, limit: int = 200) -> list[DueOrder]:
    """Orders whose payment reminder (created + unpaid hours) or shipping deadline (paid +
    unshipped hours; not presale, not refunding) falls in [start, end), earliest first."""
    if not await _orders_table_exists(db):
        return []
    due: list[DueOrder] = []
    # Shipping (issue 11): the order's own deadline (ship_by, 承诺发货时间) when it has one, else the
    # clock from ship_from (PDD 拼单成功时间) or payment; held orders (on_hold) have none.
    shipping_base = "COALESCE(ship_from, paid_at)"
    for kind, column, statuses, extra in (
        (UNPAID, "created_at", (UNPAID,), ""),
        (UNSHIPPED, shipping_base, SHIPPING_STATUSES, " AND presale = 0 AND refunding = 0 AND on_hold = 0"),
    ):
        hours = [thresholds.hours("", kind), *(thresholds.hours(shop, kind) for shop in thresholds.per_shop)]
        low = start - int(max(hours) * 3600)
        high = end - int(min(hours) * 3600)
        marks = ", ".join("?" for _ in statuses)
        if kind == UNSHIPPED:
            window = f"((ship_by IS NULL AND {column} >= ? AND {column} < ?) OR (ship_by >= ? AND ship_by < ?))"
            params: tuple = (*statuses, low, high, start, end)
            own = ", ship_by"
        else:
            window, params, own = f"{column} IS NOT NULL AND {column} >= ? AND {column} < ?", (*statuses, low, high), ", NULL AS ship_by"
        rows = await db.fetchall(
            f"SELECT order_no, platform, shop, {column} AS base{own} FROM orders"
            f" WHERE status IN ({marks}) AND {window}{extra}",
            params,
        )
        for row in rows:
            if row["ship_by"] is not None:
                deadline = row["ship_by"]
            else:
                deadline = row["base"] + int(thresholds.hours(row["shop"], kind) * 3600)
            if start <= deadline < end:
                due.append(DueOrder(row["order_no"], row["platform"], row["shop"], kind, deadline))
    due.sort(key=lambda d: (d.deadline, d.order_no))
    return due[:limit]
