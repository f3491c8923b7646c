"""The pieces behind the /order card and the upload caption: deadlines by the reminder rules, an
order's reminder history, script choice, callback data, caption parsing; and the handover book's
order lookup staying on the (platform, order_no) index."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.kb import load_kb, order_situation, scripts_for_situation
from bot.orders import get_order, known_orders
from bot.reminders import ReminderEngine
from bot.reminders.engine import order_reminders
from bot.reminders.rules import RuleBook, Thresholds, order_deadline
from handlers.orders import (
    CaptionError,
    card_data,
    order_candidates,
    parse_caption,
    parse_card_data,
)
from tests.reminder_orders import changed, paid, save, unpaid

H = timedelta(hours=1)
BOOK = RuleBook(Thresholds(), {"小店": Thresholds(unpaid=6, warn=18, unshipped=24)})


def deadline(o, book=BOOK):
    return order_deadline(book, status=o.status, shop=o.shop, created_at=o.created_at, paid_at=o.paid_at,
                          presale=o.presale, refunding=o.refunding)


# --- deadlines -----------------------------------------------------------------------------------


def test_unpaid_order_is_heading_for_its_payment_reminder(clock):
    now = clock.now()
    assert deadline(unpaid(now)).rule == "unpaid"
    assert deadline(unpaid(now)).due_at == now + 12 * H
    assert deadline(unpaid(now, shop="小店")).due_at == now + 6 * H  # KEFU_SHOP_OVERRIDES


def test_paid_unshipped_order_has_a_warning_and_a_deadline(clock):
    now = clock.now()
    found = deadline(paid(now))
    assert (found.rule, found.due_at, found.warn_at) == ("unshipped", now + 48 * H, now + 36 * H)
    found = deadline(paid(now, status="partially_shipped", shop="小店"))
    assert (found.due_at, found.warn_at) == (now + 24 * H, now + 18 * H)


@pytest.mark.parametrize("change", [
    {"presale": True}, {"refunding": True}, {"status": "shipped"}, {"status": "completed"}, {"status": "closed"},
    {"paid_at": None},
])
def test_no_deadline_where_no_reminder_applies(clock, change):
    assert deadline(changed(paid(clock.now()), **change)) is None


def test_unpaid_without_a_creation_time_has_no_deadline(clock):
    assert deadline(changed(unpaid(clock.now()), created_at=None)) is None


# --- reminder history ----------------------------------------------------------------------------


async def test_order_reminders_lists_one_orders_reminders_oldest_first(db, clock, settings):
    now = clock.now()
    await save(db, clock, paid(now - 49 * H, order_no="A1"), unpaid(now - 13 * H, order_no="B2"))
    engine = ReminderEngine.from_settings(db, clock, settings)
    clock.set(now - 12 * H)
    await engine.scan()  # the 36 h warning of A1
    clock.set(now)
    await engine.scan()  # A1's breach, B2's 催付
    a1 = await get_order(db, "A1")
    history = await order_reminders(db, a1.id)
    assert [(r.rule, r.stage) for r in history] == [("unshipped", "warn"), ("unshipped", "breach")]
    assert history[0].state == "resolved" and history[0].resolved_reason == "superseded"
    assert {r.order_no for r in history} == {"A1"}
    result = await engine.claim(history[1].id, 2001, now)
    assert result.ok
    assert (await order_reminders(db, a1.id))[-1].claimed_by == 2001
    assert [r.stage for r in await order_reminders(db, a1.id, limit=1)] == ["breach"]  # the latest
    assert await order_reminders(db, 999_999) == []


# --- scripts on the card -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb():
    from bot import PROJECT_ROOT

    return load_kb(PROJECT_ROOT / "scripts_kb")


@pytest.mark.parametrize(("change", "overdue", "key", "first"), [
    ({"status": "unpaid", "paid_at": None}, False, "unpaid", "pay_remind_once"),
    ({}, False, "unshipped", "ship_when"),
    ({}, True, "unshipped_overdue", "ship_overdue_apology"),
    ({"presale": True}, False, "presale", "ship_presale"),
    ({"status": "shipped"}, False, "shipped", "log_slow"),
    ({"status": "completed"}, False, "completed", "ret_7day_rules"),
    ({"refunding": True}, True, "refunding_unshipped", "rf_refund_unshipped"),
    ({"status": "shipped", "refunding": True}, False, "refunding", "rf_when"),
    ({"status": "closed"}, False, "closed", None),
])
def test_scripts_fit_the_orders_situation(clock, kb, change, overdue, key, first):
    o = changed(paid(clock.now()), **change)
    assert order_situation(o.status, refunding=o.refunding, presale=o.presale, overdue=overdue) == key
    ids = scripts_for_situation(kb, key)
    assert (ids[0] if ids else None) == first
    assert all(kb.get(i) is not None for i in ids) and len(ids) <= 4


def test_a_missing_script_falls_back_to_its_categorys_first(clock, kb, monkeypatch):
    from bot.kb import situations

    monkeypatch.setitem(situations.SCRIPT_CHOICES, "shipped", (("logistics", ("no_such_script",)),))
    assert scripts_for_situation(kb, "shipped") == [kb.scripts_in("logistics")[0].id]


# --- callback data, /order arguments, captions ---------------------------------------------------


def test_card_callback_data_both_forms():
    assert parse_card_data("ord:card:jd:12345") == ("jd", "12345")
    assert parse_card_data("ord:card:12345") == (None, "12345")  # the handover book's form
    assert parse_card_data("ord:card:WD-1:2") == (None, "WD-1:2")
    assert parse_card_data("ord:card:") == (None, "")
    assert parse_card_data("ord:other:1") == (None, "")
    assert parse_card_data(None) == (None, "")
    assert card_data("pinduoduo", "1" * 45) is not None
    assert card_data("pinduoduo", "1" * 46) is None  # over 64 bytes: no button


def test_order_argument_as_agents_paste_it():
    assert order_candidates("3701 2345 6789") == ["370123456789"]
    assert order_candidates("#3701234567890123401")[0] == "3701234567890123401"
    assert order_candidates('="3701234567890123401"')[0] == "3701234567890123401"
    assert "3701234567890123401" in order_candidates("订单号：3701234567890123401 买家催发货")
    assert order_candidates("x" * 80) == []


@pytest.mark.parametrize(("caption", "expected"), [
    (None, {}),
    ("", {}),
    ("今天下午的订单", {}),
    ("platform=other", {"platform": "other"}),
    ("平台＝JD 店铺=京东 自营店", {"platform": "jd", "shop": "京东 自营店"}),
    ("shop=微店小铺 platform=other", {"shop": "微店小铺", "platform": "other"}),
])
def test_caption_options(caption, expected):
    assert parse_caption(caption) == expected


@pytest.mark.parametrize(("caption", "code"), [
    ("platform=amazon", "bad_platform"),
    ("color=red", "bad_caption"),
    ("今天 platform=jd", "bad_caption"),
    ("platform=", "bad_caption"),
])
def test_bad_captions(caption, code):
    with pytest.raises(CaptionError) as raised:
        parse_caption(caption)
    assert raised.value.code == code


# --- the handover book's lookup ------------------------------------------------------------------


async def test_handover_order_lookup_uses_the_platform_order_no_index(db, clock):
    await save(db, clock, unpaid(clock.now(), order_no="111"), unpaid(clock.now(), order_no="222", platform="jd"))
    statements: list[str] = []
    await db.trace_statements(statements.append)
    try:
        found = await known_orders(db, ["111", "222", "333"])
    finally:
        await db.trace_statements(None)
    assert set(found) == {"111", "222"} and found["222"].platform == "jd"
    lookup = next(s for s in statements if "FROM orders" in s and "order_no IN" in s)
    plan = [row["detail"] for row in await db.fetchall("EXPLAIN QUERY PLAN " + lookup)]
    assert any("USING INDEX sqlite_autoindex_orders_1 (platform=? AND order_no=?)" in p for p in plan), plan
    assert not any(p.startswith("SCAN orders") for p in plan), plan
