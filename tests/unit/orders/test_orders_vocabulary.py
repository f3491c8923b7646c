"""Issue 11: real export wording, refunds read right, the new columns of 抖店 / PDD / third-party
Taobao layouts. Fixtures are small files written here from the Corrections section of
/work/shared/domain/order-exports.md; orders go through the real readers, the real import and
the real reminder scan.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.orders import NormalizedOrder, import_file, open_export
from bot.orders.values import WordReader
from bot.orders.vocabulary import NONE, OPEN, SUCCESS, STATUS_WORDS, vocabulary
from bot.reminders import ReminderEngine
from tests.conftest import SHANGHAI, local

NOW = "2026-11-23 10:00"  # the clock fixture
PAID_49H_AGO = "2026-11-21 09:00:00"

# --- every wording of the issue and the corrections -----------------------------------------------

STATUS_CASES = [
    # (platform, export wording, state, hold)
    ("jd", "锁定", "paid_unshipped", True),
    ("jd", "已锁定", "paid_unshipped", True),
    ("jd", "暂停", "paid_unshipped", True),
    ("jd", "POP_ORDER_PAUSE", "paid_unshipped", True),
    ("jd", "等待发货", "paid_unshipped", False),
    ("jd", "等待出库", "paid_unshipped", False),
    ("jd", "发往配送中心", "shipped", False),
    ("jd", "配送中心已收货", "shipped", False),
    ("jd", "收款确认", "completed", False),
    ("jd", "等待付款", "unpaid", False),
    ("pinduoduo", "已签收，退款成功", "closed", False),
    ("pinduoduo", "已收货，退款成功", "closed", False),
    ("pinduoduo", "已取消，退款成功", "closed", False),
    ("pinduoduo", "未成交，退款成功", "closed", False),
    ("pinduoduo", "未发货，退款成功", "closed", False),
    ("pinduoduo", "已发货，退款成功", "closed", False),
    ("pinduoduo", "已签收,退款成功", "closed", False),  # ASCII comma
    ("taobao", "TRADE_NO_CREATE_PAY", "unpaid", False),
    ("taobao", "WAIT_BUYER_PAY", "unpaid", False),
    ("taobao", "WAIT_SELLER_SEND_GOODS", "paid_unshipped", False),
    ("taobao", "SELLER_CONSIGNED_PART", "partially_shipped", False),
    ("taobao", "WAIT_BUYER_CONFIRM_GOODS", "shipped", False),
    ("taobao", "TRADE_BUYER_SIGNED", "shipped", False),
    ("taobao", "TRADE_FINISHED", "completed", False),
    ("taobao", "TRADE_CLOSED", "closed", False),
    ("taobao", "TRADE_CLOSED_BY_TAOBAO", "closed", False),
    ("taobao", "PAID_FORBID_CONSIGN", "paid_unshipped", True),
    ("taobao", "WAIT_PRE_AUTH_CONFIRM", "unpaid", False),
    ("taobao", "卖家已发货,等待买家确认收货", "shipped", False),
    ("taobao", "卖家已发货，等待买家确认收货", "shipped", False),
    ("taobao", "买家已签收,货到付款专用", "shipped", False),
    ("taobao", "付款以前，卖家或买家主动关闭交易", "closed", False),
    ("taobao", "买家已付款, 等待卖家发货", "paid_unshipped", False),
    ("douyin", "备货中", "paid_unshipped", False),
    ("douyin", "已关闭", "closed", False),
]

REFUND_CASES = [
    # no refund in progress: the order still has to ship
    ("买家撤销", NONE), ("退款关闭", NONE), ("退款失败", NONE), ("买家逾期未处理，退款失败", NONE),
    ("平台/商家拒绝退款，退款关闭", NONE), ("平台/商家拒绝退款", NONE), ("售后关闭", NONE), ("无售后", NONE),
    ("无售后或售后取消", NONE), ("取消售后", NONE), ("无售后/取消售后", NONE), ("卖家拒绝退款", NONE),
    # pending or in progress: the only wording that suppresses a shipping reminder
    ("退款中", OPEN), ("售后处理中", OPEN), ("买家申请退款待商家处理", OPEN), ("商家同意退款退款中", OPEN),
    ("退货退款待商家处理", OPEN), ("已同意退货退款待用户发货", OPEN),
    # finished
    ("退款成功", SUCCESS),
]


@pytest.mark.parametrize("platform, word, state, hold", STATUS_CASES)
def test_status_wording_is_read_and_never_rejected(platform, word, state, hold):
    found = vocabulary(platform).status_word(word)
    assert found is not None, word
    assert (found.state, found.hold) == (state, hold)


@pytest.mark.parametrize("platform", ["taobao", "douyin", "pinduoduo", "jd", None])
@pytest.mark.parametrize("word, reading", REFUND_CASES)
def test_refund_wording_only_pending_or_in_progress_is_open(platform, word, reading):
    words = WordReader(platform)
    assert words.refund(word, "售后状态") == reading
    assert not words.unknown


def test_unknown_words_are_counted_not_guessed():
    words = WordReader("douyin")
    assert words.refund("外星售后", "售后状态") is None and words.refund("外星售后", "售后状态") is None
    assert words.status("神秘状态", "订单状态") is None
    assert words.unknown == {("售后状态", "外星售后"): 2, ("订单状态", "神秘状态"): 1}


def test_every_table_maps_to_a_known_state():
    from bot.orders.model import STATUSES

    assert {w.state for table in STATUS_WORDS.values() for w in table.values()} <= set(STATUSES)


# --- per platform: a closed / rejected / cancelled refund, paid 49 h ago, unshipped, is due ----------

TAOBAO = (
    "订单编号,买家会员名,买家应付邮费,买家实际支付金额,订单状态,订单创建时间,订单付款时间 ,店铺名称,退款金额\n"
    f'="T1",tb_a,0.00,10.00,买家已付款，等待卖家发货,{PAID_49H_AGO},{PAID_49H_AGO},小店,退款关闭\n'
    f'="T2",tb_b,0.00,10.00,WAIT_SELLER_SEND_GOODS,{PAID_49H_AGO},{PAID_49H_AGO},小店,卖家拒绝退款\n'
    f'="T3",tb_c,0.00,10.00,"买家已付款,等待卖家发货",{PAID_49H_AGO},{PAID_49H_AGO},小店,买家撤销\n'
    f'="T9",tb_d,0.00,10.00,买家已付款，等待卖家发货,{PAID_49H_AGO},{PAID_49H_AGO},小店,10.00\n'
)
DOUYIN = (
    "主订单编号,子订单编号,选购商品,订单提交时间,支付完成时间,订单状态,售后状态,订单应付金额\n"
    f"D1,D1-1,T恤,{PAID_49H_AGO},{PAID_49H_AGO},待发货,买家撤销,10\n"
    f"D2,D2-1,T恤,{PAID_49H_AGO},{PAID_49H_AGO},待发货,\"平台/商家拒绝退款，退款关闭\",10\n"
    f"D3,D3-1,T恤,{PAID_49H_AGO},{PAID_49H_AGO},备货中,无售后/取消售后,10\n"
    f"D4,D4-1,T恤,{PAID_49H_AGO},{PAID_49H_AGO},待发货,\"买家逾期未处理，退款失败\",10\n"
    f"D9,D9-1,T恤,{PAID_49H_AGO},{PAID_49H_AGO},待发货,买家申请退款待商家处理,10\n"
)
PINDUODUO = (
    "订单号,商品,订单状态,售后状态,支付时间,商家实收金额(元)\n"
    f"P1,袜子,待发货,无售后或售后取消,{PAID_49H_AGO},9.90\n"
    f"P2,袜子,待发货,退款关闭,{PAID_49H_AGO},9.90\n"
    f"P3,袜子,待发货,取消售后,{PAID_49H_AGO},9.90\n"
    f"P9,袜子,待发货,售后处理中,{PAID_49H_AGO},9.90\n"
)
JD = (
    "订单号,商品名称,下单时间,付款确认时间,应付金额,订单状态,售后状态\n"
    f"J1,牙刷,{PAID_49H_AGO},{PAID_49H_AGO},99.00,等待出库,退款关闭\n"
    f"J2,牙刷,{PAID_49H_AGO},{PAID_49H_AGO},99.00,等待发货,买家撤销\n"
    f"J9,牙刷,{PAID_49H_AGO},{PAID_49H_AGO},99.00,等待出库,退款中\n"
    f"J8,牙刷,{PAID_49H_AGO},{PAID_49H_AGO},99.00,锁定,\n"
)


async def due_order_numbers(db, clock, settings, content: str, name: str) -> set[str]:
    summary = await import_file(db, content.encode("utf-8"), filename=name, clock=clock, tz=SHANGHAI)
    assert summary.rejected_count == 0, [r.message_zh for r in summary.rejected]
    engine = ReminderEngine.from_settings(db, clock, settings)
    await engine.scan()
    return {r.order_no for r in await engine.pending() if r.stage == "breach"}


@pytest.mark.parametrize("name, content, due", [
    ("ExportOrderList.csv", TAOBAO, {"T1", "T2", "T3"}),
    ("douyin.csv", DOUYIN, {"D1", "D2", "D3", "D4"}),
    ("pdd.csv", PINDUODUO, {"P1", "P2", "P3"}),
    ("jd.csv", JD, {"J1", "J2"}),  # J9: refund in progress; J8: locked by JD
])
async def test_closed_rejected_or_cancelled_refund_paid_49h_ago_unshipped_is_due(db, clock, settings, name, content,
                                                                                   due):
    assert clock.now() == local(NOW)
    assert await due_order_numbers(db, clock, settings, content, name) == due


# --- 抖店: every header variant, 快递信息, 承诺发货时间 -------------------------------------------------

DOUYIN_RECENT = (
    "主订单编号,子订单编号,商品名称,下单时间,支付时间,订单状态,售后状态,快递信息,承诺发货时间,订单应付金额\n"
    # paid 49 h ago, but the order's own promise is tomorrow: not late
    f"R1,R1-1,围巾,{PAID_49H_AGO},{PAID_49H_AGO},待发货,无售后,,2026-11-24 18:00:00,59.00\n"
    # paid 10 h ago, promised an hour ago: late, whatever paid + 48 h says
    "R2,R2-1,围巾,2026-11-23 00:00:00,2026-11-23 00:00:00,待发货,无售后,,2026-11-23 09:00:00,59.00\n"
    "R3,R3-1,围巾,2026-11-20 09:00:00,2026-11-20 09:00:00,已发货,无售后,中通快递 75312345678901,,59.00\n"
    "R4,R4-1,围巾,2026-11-20 09:00:00,2026-11-20 09:00:00,已发货,无售后,\"顺丰速运:SF1234567890;圆通速递 YT9876543210\",,59.00\n"
)


@pytest.mark.parametrize("header", [
    "主订单编号,子订单编号,商品名称,下单时间,支付时间,订单状态",  # recent: read as a Taobao item report before
    "主订单编号,子订单编号,选购商品,订单提交时间,支付完成时间,订单状态",
    "主订单编号,商品名称,下单时间,支付时间,订单状态,快递信息",  # no 子订单编号
    "主订单编号,子订单编号,商品名称,下单时间,支付时间,订单状态,预约发货时间",
])
def test_douyin_is_recognised_in_every_header_variant(header):
    content = (header + "\n" + ",".join(["6917000000000000001", *["x"] * (header.count(",") - 0)]) + "\n").encode()
    with open_export(content, tz=SHANGHAI) as reader:
        assert reader.format.name == "douyin"


async def test_douyin_express_info_and_promised_shipping_time(db, clock, settings):
    with open_export(DOUYIN_RECENT.encode(), tz=SHANGHAI) as reader:
        orders = {o.order_no: o for o in reader if isinstance(o, NormalizedOrder)}
    assert reader.format.name == "douyin"
    assert orders["R1"].ship_by == local("2026-11-24 18:00")
    assert (orders["R3"].carrier, orders["R3"].tracking_no) == ("中通快递", "75312345678901")
    assert (orders["R4"].carrier, orders["R4"].tracking_no) == ("顺丰速运,圆通速递", "SF1234567890,YT9876543210")
    assert orders["R1"].item_title == "围巾" and orders["R1"].amount == Decimal("59.00")
    assert await due_order_numbers(db, clock, settings, DOUYIN_RECENT, "douyin.csv") == {"R2"}


# --- PDD: 拼单成功时间 starts the clock; presale is recognised -------------------------------------------

PDD_GROUPS = (
    "订单号,商品,订单状态,售后状态,支付时间,拼单成功时间,是否预售,商家实收金额(元)\n"
    f"G1,袜子,待发货,无售后或售后取消,2026-11-21 08:00:00,2026-11-22 04:00:00,否,9.90\n"  # paid 50 h, grouped 30 h
    f"G2,袜子,待发货,无售后或售后取消,2026-11-21 08:00:00,2026-11-21 09:00:00,否,9.90\n"  # grouped 49 h ago
    f"G3,袜子,待发货,无售后或售后取消,2026-11-21 08:00:00,2026-11-21 09:00:00,是,9.90\n"  # presale
)


async def test_pinduoduo_counts_from_group_success_and_skips_presale(db, clock, settings):
    with open_export(PDD_GROUPS.encode(), tz=SHANGHAI) as reader:
        orders = {o.order_no: o for o in reader if isinstance(o, NormalizedOrder)}
    assert orders["G1"].paid_at == local("2026-11-21 08:00") and orders["G1"].ship_from == local("2026-11-22 04:00")
    assert orders["G3"].presale and not orders["G1"].presale
    assert await due_order_numbers(db, clock, settings, PDD_GROUPS, "pdd.csv") == {"G2"}


# --- third-party systems emitting the Taobao 订单报表 layout ----------------------------------------------

THIRD_PARTY = (
    "订单编号,买家会员名,支付金额,订单状态,收货人,收货地址,订单创建时间,订单付款时间,分销商Id,分销商店铺名称\n"
    f"E1,tb_x,88.00,买家已付款，等待卖家发货,王小明,浙江省 杭州市,{PAID_49H_AGO},{PAID_49H_AGO},12345,分销小店\n"
    f"E2,tb_y,bad,TRADE_FINISHED,李四,北京,{PAID_49H_AGO},{PAID_49H_AGO},12345,分销小店\n"
)


def test_third_party_taobao_layout_is_read_through_aliases():
    with open_export(THIRD_PARTY.encode(), tz=SHANGHAI) as reader:
        items = list(reader)
    assert reader.format.platform == "taobao"
    order, rejected = items
    assert (order.amount, order.shop, order.status) == (Decimal("88.00"), "分销小店", "paid_unshipped")
    assert "王小明" not in str(order.to_json())  # 收货人 is read by meaning, never stored
    assert rejected.reason_code == "bad_amount" and "收货人" not in rejected.raw and "分销商Id" in rejected.raw


# --- unknown words: kept, conservative, listed with counts -------------------------------------------

UNKNOWN = (
    "订单号,商品,订单状态,售后状态,支付时间,商家实收金额(元)\n"
    f"U1,袜子,待发货,外星售后,{PAID_49H_AGO},9.90\n"
    f"U2,袜子,待发货,外星售后,{PAID_49H_AGO},9.90\n"
    f"U3,袜子,火星状态,无售后,{PAID_49H_AGO},9.90\n"
)


async def test_unknown_words_keep_the_order_remind_and_are_listed_in_the_summary(db, clock, settings):
    summary = await import_file(db, UNKNOWN.encode(), filename="pdd.csv", clock=clock, tz=SHANGHAI)
    assert summary.inserted == 3 and summary.rejected_count == 0
    assert summary.unknown_words == [("售后状态", "外星售后", 2), ("订单状态", "火星状态", 1)]
    text = summary.text_zh()
    assert "售后状态「外星售后」：2 行" in text and "订单状态「火星状态」：1 行" in text
    assert summary.to_json()["unknown_words"][0] == {"column": "售后状态", "word": "外星售后", "rows": 2}
    engine = ReminderEngine.from_settings(db, clock, settings)
    await engine.scan()
    # unknown refund wording does not suppress; the unknown status is read from the times (paid, unshipped)
    assert {r.order_no for r in await engine.pending()} == {"U1", "U2", "U3"}
    row = await db.fetchone("SELECT status, status_raw FROM orders WHERE order_no = 'U3'")
    assert tuple(row) == ("paid_unshipped", "火星状态")


async def test_a_held_jd_order_is_reminded_once_jd_releases_it(db, clock, settings):
    locked = JD.splitlines()[0] + "\n" + f"J5,牙刷,{PAID_49H_AGO},{PAID_49H_AGO},99.00,锁定,\n"
    assert await due_order_numbers(db, clock, settings, locked, "jd.csv") == set()
    released = locked.replace("锁定", "等待出库")
    clock.advance(timedelta(minutes=5))
    assert await due_order_numbers(db, clock, settings, released, "jd.csv") == {"J5"}


def test_douyin_sub_orders_merge_their_promise_and_parcels():
    content = (
        "主订单编号,子订单编号,商品名称,下单时间,支付时间,订单状态,售后状态,快递信息,承诺发货时间,订单应付金额\n"
        "M1,M1-1,围巾,2026-11-22 09:00:00,2026-11-22 09:00:00,已发货,无售后,中通快递 75311111111111,2026-11-24 18:00:00,10\n"
        "M1,M1-2,手套,2026-11-22 09:00:00,2026-11-22 09:00:00,待发货,无售后,,2026-11-24 12:00:00,20\n"
    ).encode()
    with open_export(content, tz=SHANGHAI) as reader:
        [order] = list(reader)
    assert order.status == "partially_shipped" and order.amount == Decimal("30.00")
    assert order.ship_by == local("2026-11-24 12:00")  # the earliest promise
    assert (order.carrier, order.tracking_no) == ("中通快递", "75311111111111")


def test_taobao_refund_amount_column_with_words_is_read_not_rejected():
    content = (
        "订单编号,买家应付邮费,订单状态,订单创建时间,订单付款时间,退款金额\n"
        f"W1,0,买家已付款，等待卖家发货,{PAID_49H_AGO},{PAID_49H_AGO},退款中\n"
        f"W2,0,买家已付款，等待卖家发货,{PAID_49H_AGO},{PAID_49H_AGO},无退款申请\n"
        f"W3,0,买家已付款，等待卖家发货,{PAID_49H_AGO},{PAID_49H_AGO},奇怪的退款\n"
        f"W4,0,买家已付款，等待卖家发货,{PAID_49H_AGO},{PAID_49H_AGO},12.50元\n"
    ).encode()
    with open_export(content, tz=SHANGHAI) as reader:
        orders = {o.order_no: o for o in reader}
        unknown = dict(reader.context.unknown)
    assert {n: o.refunding for n, o in orders.items()} == {"W1": True, "W2": False, "W3": False, "W4": True}
    assert unknown == {("退款金额", "奇怪的退款"): 1}
