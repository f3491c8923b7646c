"""Orders in the handover book, through the other features' public faces: which numbers are
stored orders (orders), and which orders fall due for 催付 or shipping within a shift, by the
reminders feature's own deadline rule and per-shop thresholds (one definition, not a copy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import to_ts
from bot.db import Database
from bot.orders import OrderClock, OrderRef, known_orders, orders_due_within
from bot.reminders import RuleBook, order_deadline

__all__ = ["DueOrder", "OrderRef", "due_within", "known_orders"]


@dataclass(frozen=True)
class DueOrder:
    order_no: str
    platform: str
    shop: str
    kind: str  # 'unpaid' (催付) or 'unshipped' (发货)
    deadline: int  # unix seconds


async def due_within(db: Database, book: RuleBook, start: datetime, end: datetime, limit: int = 200) -> list[DueOrder]:
    """Orders whose payment reminder or shipping deadline falls in [start, end), earliest first."""

    def deadline(order: OrderClock) -> datetime | None:
        found = order_deadline(
            book, status=order.status, shop=order.shop, created_at=order.created_at, paid_at=order.paid_at,
            presale=order.presale, refunding=order.refunding, on_hold=order.on_hold,
            ship_from=order.ship_from, ship_by=order.ship_by,
        )
        return found.due_at if found is not None else None

    hours = [h for t in (book.defaults, *book.overrides.values()) for h in (t.unpaid, t.unshipped)]
    due = await orders_due_within(
        db, start, end, deadline, shortest=timedelta(hours=min(hours)), longest=timedelta(hours=max(hours)), limit=limit,
    )
    kinds = {o.order_no: ("unpaid" if o.status == "unpaid" else "unshipped") for _, o in due}
    return [DueOrder(o.order_no, o.platform, o.shop, kinds[o.order_no], to_ts(moment)) for moment, o in due]
