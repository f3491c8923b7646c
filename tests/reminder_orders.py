"""Test helpers for reminders: orders created through the real upsert path (bot.orders)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from bot.clock import FakeClock
from bot.orders import NormalizedOrder, upsert_orders

_counter = iter(range(1, 10**9))


def order(
    order_no: str | None = None,
    *,
    status: str = "unpaid",
    created: datetime,
    paid: datetime | None = None,
    shipped: datetime | None = None,
    shop: str = "旗舰店",
    platform: str = "taobao",
    refunding: bool = False,
    presale: bool = False,
    amount: str = "128.00",
) -> NormalizedOrder:
    return NormalizedOrder(
        platform=platform,
        order_no=order_no or f"39012345678{next(_counter):08d}",
        shop=shop,
        status=status,
        status_raw="",
        refunding=refunding,
        presale=presale,
        created_at=created,
        paid_at=paid,
        shipped_at=shipped,
        amount=Decimal(amount),
        buyer="tb_buyer",
        item_title="纯棉T恤 白色 L",
        tracking_no="",
        carrier="",
    )


def unpaid(created: datetime, **kw) -> NormalizedOrder:
    return order(status="unpaid", created=created, **kw)


def paid(paid_at: datetime, **kw) -> NormalizedOrder:
    return order(status=kw.pop("status", "paid_unshipped"), created=paid_at - timedelta(minutes=5), paid=paid_at, **kw)


async def save(db, clock: FakeClock, *orders: NormalizedOrder) -> None:
    await upsert_orders(db, list(orders), clock=clock, source="test", record=False)


def changed(o: NormalizedOrder, **changes) -> NormalizedOrder:
    """The same order as a later export shows it."""
    values = {name: getattr(o, name) for name in o.__slots__}
    values.update(changes)
    return NormalizedOrder(**values)
