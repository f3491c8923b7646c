"""Every export format, read from fixtures built with the documented headers and quirks.

Fixtures: tests/fixtures/orders/ (regenerate with make_fixtures.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.orders import (
    NormalizedOrder,
    NotAnExport,
    RejectedRow,
    get_order,
    import_file,
    open_export,
)
from bot.orders.formats import normalize_header
from bot.orders.values import (
    RowError,
    TimeParser,
    clean_text,
    parse_amount,
    parse_order_no,
    parse_status,
)
from tests.conftest import SHANGHAI, local

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "orders"


def read_all(name: str, **kwargs) -> tuple[str, dict[str, NormalizedOrder], list[RejectedRow], int, int]:
    with open_export(FIXTURES / name, tz=SHANGHAI, **kwargs) as reader:
        items = list(reader)
        orders = {i.order_no: i for i in items if isinstance(i, NormalizedOrder)}
        rejected = [i for i in items if isinstance(i, RejectedRow)]
        return reader.format.name, orders, rejected, reader.rows_read, reader.skipped


def reasons(rejected: list[RejectedRow]) -> list[tuple[int, str]]:
    return [(r.line, r.reason_code) for r in rejected]


# --- Taobao ---------------------------------------------------------------------------------------


def test_taobao_legacy_gbk_csv_with_every_quirk():
    fmt, orders, rejected, rows_read, _ = read_all("ExportOrderList202611221500.csv")
    assert fmt == "taobao_legacy"
    assert rows_read == 11
    # `="…"` stripped, str; the row with an unknown status word is kept (issue 11)
    assert set(orders) == {f"37012345678901234{n:02d}" for n in (*range(1, 8), 10)}

    unpaid = orders["3701234567890123401"]
    assert (unpaid.platform, unpaid.status, unpaid.status_raw) == ("taobao", "unpaid", "等待买家付款")
    assert unpaid.created_at == local("2026-11-22 09:00")  # stored in UTC, read as shop time
    assert unpaid.created_at.utcoffset().total_seconds() == 0
    assert unpaid.paid_at is None  # `null`
    assert (unpaid.buyer, unpaid.shop, unpaid.amount) == ("tb_alice", "小棉袄旗舰店", Decimal("59.00"))

    excel_dates = orders["3701234567890123402"]  # `yyyy/M/d H:mm`, full-width comma
    assert excel_dates.status == "paid_unshipped"
    assert excel_dates.created_at == local("2026-11-21 08:05")
    assert excel_dates.paid_at == local("2026-11-21 08:06")
    assert excel_dates.buyer == "138****5678"  # no nickname: masked phone, never the full number
    assert excel_dates.amount == Decimal("128.50")

    ascii_comma = orders["3701234567890123403"]
    assert ascii_comma.status == "paid_unshipped" and ascii_comma.status_raw == "买家已付款,等待卖家发货"
    assert ascii_comma.presale  # 分阶段订单信息

    shipped = orders["3701234567890123404"]
    assert shipped.status == "shipped"
    assert (shipped.tracking_no, shipped.carrier) == ("SF1234567890", "顺丰速运")  # `No:` removed

    refunded = orders["3701234567890123405"]
    assert refunded.status == "completed" and refunded.refunding  # 退款金额 20.00 > 0
    assert not orders["3701234567890123401"].refunding
    assert orders["3701234567890123406"].status == "closed"
    assert orders["3701234567890123407"].status == "partially_shipped"

    mystery = orders["3701234567890123410"]  # 神秘状态, created, not paid: the conservative reading
    assert (mystery.status, mystery.status_raw, mystery.refunding) == ("unpaid", "神秘状态", False)

    assert reasons(rejected) == [
        (9, "mangled_number"),
        (10, "bad_time"),
        (12, "missing_order_no"),
    ]
    assert "3.70123E+18" in rejected[0].message_zh and "Excel" in rejected[0].message_zh
    assert "2026-11-31 10:00:00" in rejected[1].message_zh
    # rejected-row details keep the order's cells but never addresses or phones
    assert rejected[0].raw["订单编号"] == "3.70123E+18"
    assert not any("地址" in k or "手机" in k or "电话" in k for r in rejected for k in r.raw)


def test_taobao_item_report_is_refused_with_what_to_send_instead():
    with pytest.raises(NotAnExport) as caught:
        open_export(FIXTURES / "ExportOrderDetailList202611221500.csv", tz=SHANGHAI)
    assert caught.value.reason == "item_report"
    assert "订单报表" in caught.value.message_zh


def test_qianniu_xlsx_finds_the_order_sheet_float_ids_and_datetime_cells():
    fmt, orders, rejected, rows_read, _ = read_all("qianniu_orders.xlsx")
    assert fmt == "taobao_qianniu"  # the 子订单 sheet comes first and is skipped
    assert rows_read == 5
    assert set(orders) == {"3801234567890123401", "123456789012", "3801234567890123403", "3801234567890123405"}

    first = orders["3801234567890123401"]  # leading `'`, datetime cells
    assert first.status == "paid_unshipped"
    assert first.created_at == local("2026-11-22 09:30") and first.paid_at == local("2026-11-22 09:31")
    assert first.shop == "千牛测试店" and first.buyer == ""  # PII masked away in 千牛: no buyer
    assert first.amount == Decimal("39.90") and not first.refunding  # 无退款申请

    short_id = orders["123456789012"]  # float cell 123456789012.0 → "123456789012"
    assert short_id.status == "shipped"
    assert short_id.created_at == local("2026-11-20 09:00")
    assert short_id.shipped_at == local("2026-11-21 14:00")  # renamed header with a full-width space
    assert short_id.tracking_no == "JT0001"

    done = orders["3801234567890123403"]
    assert done.refunding and done.amount == Decimal("120.00")
    assert done.shipped_at == local("2026-11-11 10:00")

    assert reasons(rejected) == [(5, "mangled_number")]  # a 19-digit id stored as a float


# --- Douyin ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["douyin_orders.csv", "douyin_orders.xlsx"])
def test_douyin_sub_orders_are_merged_into_their_main_order(name):
    fmt, orders, rejected, rows_read, skipped = read_all(name)
    assert fmt == "douyin"
    assert rows_read == 10 and skipped == 1  # one sub-order row repeated in the file
    d = "69175332245702"
    assert set(orders) == {d + "58991", d + "59001", d + "59011", d + "59021", d + "59031"}  # tabs stripped

    two_items = orders[d + "58991"]
    assert two_items.status == "paid_unshipped"
    assert two_items.amount == Decimal("1349.00")  # "1,299.00" + "50.00", the repeated row not counted
    assert two_items.item_title == "羊绒大衣 / 羊毛围巾"
    assert two_items.buyer == "139****5678"
    assert two_items.created_at == local("2026-11-22 10:00") and two_items.paid_at == local("2026-11-22 10:01")

    partial = orders[d + "59001"]
    assert partial.status == "partially_shipped"
    assert partial.shipped_at == local("2026-11-22 18:00")
    assert partial.status_raw == "已发货 / 待发货"

    assert orders[d + "59011"].status == "completed" and orders[d + "59011"].refunding  # 售后处理中
    assert orders[d + "59021"].presale  # 订单类型 预售订单
    closed = orders[d + "59031"]
    assert closed.status == "closed"
    assert closed.paid_at is None and closed.shipped_at is None and closed.amount is None  # #NULL!, --, null

    # one bad sub-order row rejects the whole main order: never half an order
    assert reasons(rejected) == [(10, "sibling_rejected"), (11, "bad_time")]
    assert (d + "59041") in rejected[0].message_zh


# --- Pinduoduo, JD, generic -------------------------------------------------------------------------


def test_pinduoduo_bom_csv_paid_time_fallbacks_and_after_sale():
    fmt, orders, rejected, rows_read, _ = read_all("pinduoduo_orders.csv")
    assert fmt == "pinduoduo" and rows_read == 7
    p = "261120-3833174710200"
    waiting = orders[p + "01"]
    assert waiting.status == "paid_unshipped" and not waiting.refunding  # 无售后或售后取消
    assert waiting.paid_at == local("2026-11-20 10:00:00")  # 支付时间 first
    assert waiting.created_at == local("2026-11-20 10:00:05")  # 订单成交时间 (no 订单创建时间 column)
    assert waiting.amount == Decimal("25.90") and waiting.buyer == "138****0001"
    assert orders[p + "02"].status == "shipped"
    assert (orders[p + "02"].tracking_no, orders[p + "02"].carrier) == ("YT1234567", "圆通速递")
    assert orders[p + "03"].status == "completed"
    # 未发货，退款成功 + 售后 退款成功: closed; a finished refund is not an open one
    assert orders[p + "04"].status == "closed" and not orders[p + "04"].refunding
    no_deal_time = orders[p + "05"]
    assert no_deal_time.paid_at == local("2026-11-21 12:00")  # 拼单成功时间 when 支付时间 is empty
    assert no_deal_time.ship_from == local("2026-11-21 12:00")  # the shipping clock: 拼单成功
    assert no_deal_time.created_at is None
    assert orders[p + "06"].refunding  # 售后处理中
    held = orders[p + "07"]  # 待成团: paid, the group not formed yet: kept, held, not reminded
    assert (held.status, held.on_hold) == ("paid_unshipped", True)
    assert rejected == []


def test_jd_gbk_csv_skips_deleted_rows_and_merges_sku_rows():
    fmt, orders, rejected, rows_read, skipped = read_all("jd_orders.csv")
    assert fmt == "jd" and rows_read == 7 and skipped == 1  # (删除)等待出库
    assert "290000000002" not in orders
    two_skus = orders["290000000001"]
    assert two_skus.status == "paid_unshipped"  # 等待出库
    assert two_skus.amount == Decimal("238.00")  # the order's amount, repeated on each SKU row
    assert two_skus.item_title == "电动牙刷 / 替换刷头"
    assert two_skus.buyer == "jd_buyer01"
    assert two_skus.paid_at == local("2026-11-21 09:01")
    assert orders["290000000003"].status == "shipped"
    assert orders["290000000004"].status == "completed"
    assert orders["290000000005"].status == "unpaid" and orders["290000000005"].paid_at is None
    locked = orders["290000000006"]  # 锁定: kept, held (no shipping reminder while locked)
    assert (locked.status, locked.on_hold, locked.status_raw) == ("paid_unshipped", True, "锁定")
    assert rejected == []


def test_generic_csv_codes_platform_texts_iso_times():
    fmt, orders, rejected, rows_read, _ = read_all("generic_orders.csv")
    assert fmt == "generic" and rows_read == 6
    tb = orders["3901234567890123401"]
    assert (tb.platform, tb.status, tb.shop) == ("taobao", "paid_unshipped", "小棉袄旗舰店")
    assert tb.created_at == local("2026-11-22 10:00")
    weidian = orders["WD20261122001"]
    assert weidian.platform == "other"
    assert weidian.status == "paid_unshipped" and weidian.status_raw == "买家已付款，等待卖家发货"
    assert weidian.created_at == local("2026-11-22 10:00")  # no zone: the shop's
    assert weidian.buyer == "139****5678"  # a phone given as buyer is masked before storing
    douyin = orders["6917000000000000001"]
    assert douyin.platform == "douyin"  # 抖音
    assert douyin.shipped_at == local("2026-11-22 09:00")  # 01:00Z
    assert douyin.amount == Decimal("1024.50")
    assert reasons(rejected) == [(5, "unknown_platform"), (6, "bad_amount")]
    moon = orders["261122-000000000000001"]  # on_the_moon: kept with its raw word, read as unpaid
    assert (moon.status, moon.status_raw) == ("unpaid", "on_the_moon")


def test_generic_platform_option_fills_blank_platform_and_is_checked_against_detected_ones():
    with open_export(b"order_no,status\nX-1,shipped\n", tz=SHANGHAI, platform="jd") as reader:
        (order,) = list(reader)
    assert order.platform == "jd"
    with pytest.raises(NotAnExport) as caught:
        open_export(FIXTURES / "jd_orders.csv", tz=SHANGHAI, platform="taobao")
    assert caught.value.reason == "platform_mismatch"
    assert "京东" in caught.value.message_zh and "淘宝" in caught.value.message_zh


# --- Files that are not exports --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, reason",
    [
        ("picture.png", "binary"),
        ("empty.csv", "empty"),
        ("unicode_text.txt", "utf16"),
        ("unknown_headers.csv", "unknown_header"),
        ("old_excel.xls", "xls_legacy"),
        ("not_a_workbook.xlsx", "not_a_workbook"),
    ],
)
def test_non_exports_get_a_chinese_message_saying_what_was_expected(name, reason):
    with pytest.raises(NotAnExport) as caught:
        open_export(FIXTURES / name, tz=SHANGHAI)
    assert caught.value.reason == reason
    message = caught.value.message_zh
    assert name in message
    if reason not in ("too_large",):
        assert "订单" in message and "CSV" in message  # says what to send instead


def test_over_the_size_limit_is_refused_before_reading():
    with pytest.raises(NotAnExport) as caught:
        open_export(FIXTURES / "ExportOrderList202611221500.csv", tz=SHANGHAI, max_bytes=1024)
    assert caught.value.reason == "too_large"
    assert "MB" in caught.value.message_zh


def test_text_that_is_neither_utf8_nor_gbk_is_refused():
    with pytest.raises(NotAnExport) as caught:
        open_export("订单编号,订单状态\n".encode() + b"\x80\x80\xff\xfe\n", tz=SHANGHAI)
    assert caught.value.reason == "bad_encoding"
    already_damaged = "订单编号,订单状态,订单创建时间,买家应付邮费\n1,\ufffd,x,0\n".encode("utf-8")
    with pytest.raises(NotAnExport) as caught:
        list(open_export(already_damaged, tz=SHANGHAI))
    assert caught.value.reason == "bad_encoding"


# --- Value rules ------------------------------------------------------------------------------------


def test_header_normalisation():
    assert normalize_header("订单付款时间 ") == "订单付款时间"
    assert normalize_header('\ufeff="订单编号"') == "订单编号"
    assert normalize_header("\u3000发货时间\u00a0") == "发货时间"
    assert normalize_header("商品总价（元）") == "商品总价(元)"
    assert normalize_header("订单\n状态") == "订单状态"


def test_cell_cleaning_and_order_numbers():
    assert clean_text('="3701234567890123401"') == "3701234567890123401"
    assert clean_text("'13812345678") == "13812345678"
    for empty in ("null", "-", "--", "#NULL!", " ", None, "\t"):
        assert clean_text(empty) == ""
    assert parse_order_no("6917533224570258991\t", "c") == "6917533224570258991"
    assert parse_order_no(123456789012.0, "c") == "123456789012"
    for mangled in ("6.9175E+18", "6.91753E+18", "1234567890.0", 6.917533224570259e18):
        with pytest.raises(RowError) as caught:
            parse_order_no(mangled, "c")
        assert caught.value.reason_code == "mangled_number"
    with pytest.raises(RowError):
        parse_order_no("null", "c")


def test_times_amounts_and_statuses():
    time = TimeParser(SHANGHAI)
    assert time("2026-11-22 09:00:00", "c") == local("2026-11-22 09:00")
    assert time("2026/11/2 9:05", "c") == local("2026-11-02 09:05")
    assert time("2026-11-22T09:00:00+08:00", "c") == local("2026-11-22 09:00")
    assert time("2026-11-22T01:00:00Z", "c") == local("2026-11-22 09:00")
    assert time(datetime(2026, 11, 22, 9, 0), "c") == local("2026-11-22 09:00")
    assert time("null", "c") is None
    for bad in ("2026-11-22", "2026-02-30 10:00:00", "yesterday", 45123.5):
        with pytest.raises(RowError):
            time(bad, "c")
    assert parse_amount("1,299.00", "c") == Decimal("1299.00")
    assert parse_amount("12.5元", "c") == Decimal("12.50")
    assert parse_amount("¥8", "c") == Decimal("8.00")
    for bad in ("abc", "-1", "1.234", "1E+3"):
        with pytest.raises(RowError):
            parse_amount(bad, "c")
    assert parse_status("买家已付款, 等待卖家发货", "c") == "paid_unshipped"
    assert parse_status("卖家已发货，等待买家确认", "c") == "shipped"
    assert parse_status("WAIT_SELLER_SEND_GOODS", "c") == "paid_unshipped"
    assert parse_status("已发货（全部发货）", "c") == "shipped"


async def test_every_format_imports_into_the_database(db, clock):
    expected = {
        "ExportOrderList202611221500.csv": ("taobao", 8),
        "qianniu_orders.xlsx": ("taobao", 4),
        "douyin_orders.csv": ("douyin", 5),
        "pinduoduo_orders.csv": ("pinduoduo", 7),
        "jd_orders.csv": ("jd", 5),
        "generic_orders.csv": (None, 4),
    }
    for name, (platform, count) in expected.items():
        summary = await import_file(db, FIXTURES / name, filename=name, clock=clock, tz=SHANGHAI)
        assert (summary.platform, summary.inserted) == (platform, count), name
    stored = await get_order(db, "6917533224570258991")
    assert stored.platform == "douyin" and stored.amount == Decimal("1349.00")
    row = await db.fetchone("SELECT count(*) AS n FROM orders")
    assert row["n"] == 8 + 4 + 5 + 7 + 5 + 4


def test_committed_fixtures_match_their_generator():
    """The CSV/text fixtures are exactly what make_fixtures.py writes (XLSX zips carry timestamps)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (FIXTURES / "ExportOrderList202611221500.csv").read_bytes() == module.taobao_legacy_newer().encode("gbk")
    assert (FIXTURES / "douyin_orders.csv").read_bytes() == module.douyin_csv().encode("utf-8")
    assert (FIXTURES / "pinduoduo_orders.csv").read_bytes() == b"\xef\xbb\xbf" + module.pdd_csv().encode("utf-8")
    assert (FIXTURES / "jd_orders.csv").read_bytes() == module.jd_csv().encode("gbk")
    assert (FIXTURES / "generic_orders.csv").read_bytes() == module.generic_csv().encode("utf-8")
    assert (FIXTURES / "picture.png").read_bytes() == module.png_bytes()
