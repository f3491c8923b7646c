"""The one "fill this script with this order" rule (bot.kb.fill_script), against the real
knowledge base and the orders feature's real script variables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.kb import fill_script, load_kb
from bot.orders import NormalizedOrder

ROOT = Path(__file__).resolve().parents[3]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def kb():
    return load_kb(ROOT / "scripts_kb")


def shipped(**changes) -> NormalizedOrder:
    values = dict(
        platform="taobao", order_no="3561234567890123", shop="小店", status="shipped", status_raw="卖家已发货",
        refunding=False, presale=False, created_at=datetime(2026, 11, 22, 1, 0, tzinfo=SHANGHAI),
        paid_at=datetime(2026, 11, 22, 1, 1, tzinfo=SHANGHAI), shipped_at=None, amount=Decimal("59.00"),
        buyer="13912345678", item_title="羽绒服", tracking_no="YT123456789", carrier="圆通",
    )
    values.update(changes)
    return NormalizedOrder(**values)


def test_the_order_fills_its_fields_and_nothing_is_missing(kb):
    filled = fill_script(kb, kb.get("log_slow"), shipped(), tz=SHANGHAI)
    assert "圆通" in filled.body and "YT123456789" in filled.body
    assert filled.order_found and filled.missing == ()
    assert filled.values["buyer"] == "139****5678"  # the order's variables, masked as everywhere


def test_without_an_order_the_fields_stay_slots_and_are_listed(kb):
    filled = fill_script(kb, kb.get("log_slow"), None, tz=SHANGHAI)
    assert "【快递公司】" in filled.body and "【快递单号】" in filled.body
    assert not filled.order_found and filled.missing == ("快递公司", "快递单号")


def test_an_unknown_field_of_the_order_is_a_slot_too(kb):
    filled = fill_script(kb, kb.get("log_slow"), shipped(tracking_no=""), tz=SHANGHAI)
    assert "圆通" in filled.body and filled.missing == ("快递单号",)


def test_agent_name_and_the_callers_values_fill_but_empty_values_do_not_win(kb):
    script = next(s for s in kb.scripts if "agent_name" in s.variables)
    filled = fill_script(kb, script, shipped(), tz=SHANGHAI, agent_name="小王", extra={"order_no": "", "shop": "大店"})
    assert "小王" in filled.body
    assert filled.values["order_no"] == "3561234567890123" and filled.values["shop"] == "大店"
