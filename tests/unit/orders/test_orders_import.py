"""Import rules: idempotence, status never moving back, rejected rows, one file = one transaction."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from bot.orders import (
    NormalizedOrder,
    NotAnExport,
    find_orders,
    get_order,
    import_file,
    order_variables,
    upsert_orders,
)
from tests.conftest import SHANGHAI, local

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "orders"
NEWER = FIXTURES / "ExportOrderList202611221500.csv"
OLDER = FIXTURES / "ExportOrderList202611201200.csv"


async def run_import(db, clock, source, **kwargs):
    filename = kwargs.pop("filename", Path(source).name if isinstance(source, Path) else "upload.csv")
    return await import_file(db, source, filename=filename, clock=clock, tz=SHANGHAI, **kwargs)


async def count(db, table: str = "orders") -> int:
    return (await db.fetchone(f"SELECT count(*) AS n FROM {table}"))["n"]


def order(order_no: str = "T-1", **changes) -> NormalizedOrder:
    base = NormalizedOrder(
        platform="taobao", order_no=order_no, shop="小店", status="paid_unshipped", status_raw="买家已付款，等待卖家发货",
        refunding=False, presale=False, created_at=local("2026-11-22 09:00"), paid_at=local("2026-11-22 09:01"),
        shipped_at=None, amount=Decimal("59.00"), buyer="tb_alice", item_title="羽绒服", tracking_no="", carrier="",
    )
    return replace(base, **changes)


async def test_reimporting_the_same_file_changes_nothing(db, clock):
    first = await run_import(db, clock, NEWER)
    assert (first.inserted, first.updated, first.unchanged, len(first.rejected)) == (8, 0, 0, 3)
    before = [tuple(r) for r in await db.fetchall("SELECT * FROM orders ORDER BY id")]

    clock.advance(hours=1)
    second = await run_import(db, clock, NEWER)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 8)
    after = [tuple(r) for r in await db.fetchall("SELECT * FROM orders ORDER BY id")]
    assert after == before  # not even updated_at moved
    batches = await db.fetchall("SELECT format, inserted, updated, unchanged, rejected FROM import_batches ORDER BY id")
    assert [tuple(b) for b in batches] == [("taobao_legacy", 8, 0, 0, 3), ("taobao_legacy", 0, 0, 8, 3)]


async def test_an_older_export_never_moves_an_order_back(db, clock):
    await run_import(db, clock, NEWER)
    summary = await run_import(db, clock, OLDER)
    assert (summary.inserted, summary.updated, summary.unchanged) == (1, 0, 4)
    shipped = await get_order(db, "3701234567890123404", "taobao")
    assert shipped.status == "shipped" and shipped.tracking_no == "SF1234567890"
    completed = await get_order(db, "3701234567890123405")
    assert completed.status == "completed" and completed.refunding and completed.status_raw == "交易成功"
    assert (await get_order(db, "3701234567890123406")).status == "closed"
    assert (await get_order(db, "3701234567890123408")).status == "unpaid"  # only in the older file


async def test_a_newer_export_moves_orders_forward(db, clock):
    await run_import(db, clock, OLDER)
    clock.advance(hours=2)
    summary = await run_import(db, clock, NEWER)
    assert (summary.inserted, summary.updated, summary.unchanged) == (4, 3, 1)
    shipped = await get_order(db, "3701234567890123404")
    assert shipped.status == "shipped" and shipped.carrier == "顺丰速运"
    assert shipped.updated_at == clock.now() and shipped.first_seen_at < shipped.updated_at
    assert (await get_order(db, "3701234567890123406")).status == "closed"


async def test_merge_rule_closed_is_terminal_and_empty_cells_never_blank_values(db, clock):
    await upsert_orders(db, [order(tracking_no="SF1", carrier="顺丰")], clock=clock)

    # same status, the new file lacks the tracking columns: the stored ones stay
    counts = await upsert_orders(db, [order()], clock=clock)
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 1)

    # an older snapshot (unpaid) only fills what is still empty
    counts = await upsert_orders(db, [order(status="unpaid", status_raw="等待买家付款", buyer="", item_title="羽绒服 黑色",
                                            presale=True)], clock=clock)
    stored = await get_order(db, "T-1")
    assert stored.status == "paid_unshipped" and stored.item_title == "羽绒服"  # not replaced: older
    assert stored.presale  # presale only ever turns on
    assert counts.updated == 1

    await upsert_orders(db, [order(status="closed", status_raw="交易关闭", refunding=True)], clock=clock)
    await upsert_orders(db, [order(status="completed", status_raw="交易成功")], clock=clock)
    stored = await get_order(db, "T-1")
    assert (stored.status, stored.refunding, stored.tracking_no) == ("closed", True, "SF1")

    # a refund that ends is taken from an export at the same status
    await upsert_orders(db, [order(status="closed", status_raw="交易关闭", refunding=False)], clock=clock)
    assert not (await get_order(db, "T-1")).refunding


async def test_rejected_rows_come_with_reasons_and_a_csv_for_the_chat(db, clock):
    summary = await run_import(db, clock, NEWER.read_bytes(), filename=NEWER.name)
    assert [r.reason_code for r in summary.rejected] == ["mangled_number", "bad_time", "missing_order_no"]
    data = summary.rejected_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["行号", "原因代码", "原因"] and "订单编号" in rows[0]
    assert [r[0] for r in rows[1:]] == ["9", "10", "12"]
    assert rows[1][1] == "mangled_number" and "Excel" in rows[1][2]
    assert not any("手机" in h or "地址" in h or "收货人" in h for h in rows[0])
    text = summary.text_zh()
    assert "读取 11 行" in text and "新增 8" in text and "拒收 3" in text and "第 9 行" in text
    assert summary.to_json()["rejected"] == 3 and summary.due_count is None


@pytest.mark.parametrize("name", ["picture.png", "empty.csv", "unicode_text.txt", "unknown_headers.csv"])
async def test_non_export_files_write_nothing(db, clock, name):
    with pytest.raises(NotAnExport) as caught:
        await run_import(db, clock, FIXTURES / name)
    assert caught.value.message_zh
    assert await count(db) == 0 and await count(db, "import_batches") == 0


async def test_too_large_is_refused_with_nothing_written(db, clock):
    with pytest.raises(NotAnExport) as caught:
        await run_import(db, clock, NEWER, max_bytes=1000)
    assert caught.value.reason == "too_large"
    assert await count(db) == 0


def big_generic_csv(rows: int, tail: bytes = b"") -> bytes:
    lines = ["platform,order_no,shop,status,created_at"]
    lines += [f"taobao,{1_000_000 + i},小店,unpaid,2026-11-22 10:00:00" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode("utf-8") + tail


async def test_a_fatal_error_deep_in_the_file_rolls_the_whole_file_back(db, clock):
    await run_import(db, clock, OLDER)
    before = await count(db)
    damaged = big_generic_csv(20_000, tail=b"taobao,9,\xff\xfe,unpaid,2026-11-22 10:00:00\n")
    assert len(damaged) > 600_000  # far beyond the sniffed head: found only while importing
    seen = []

    async def progress(rows_read: int) -> None:
        seen.append(rows_read)

    with pytest.raises(NotAnExport) as caught:
        await run_import(db, clock, damaged, batch_size=500, progress=progress, progress_every=5000)
    assert caught.value.reason == "bad_encoding"
    assert seen  # batches had been written before the bad bytes were reached
    assert await count(db) == before and await count(db, "import_batches") == 1


async def test_a_crash_or_cancellation_midway_rolls_back(db, clock):
    data = big_generic_csv(12_000)

    async def crash(rows_read: int) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        await run_import(db, clock, data, batch_size=1000, progress=crash, progress_every=5000)
    assert await count(db) == 0

    async def cancel(rows_read: int) -> None:
        asyncio.current_task().cancel()
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await run_import(db, clock, data, batch_size=1000, progress=cancel, progress_every=5000)
    assert await count(db) == 0

    summary = await run_import(db, clock, data, batch_size=1000)  # the database is still usable
    assert summary.inserted == 12_000


async def test_progress_is_reported_while_reading(db, clock):
    seen = []

    async def progress(rows_read: int) -> None:
        seen.append(rows_read)

    summary = await run_import(db, clock, big_generic_csv(25_000), batch_size=2000, progress=progress, progress_every=10_000)
    assert summary.rows_read == 25_000
    assert len(seen) == 2 and seen == sorted(seen) and seen[0] >= 10_000 and seen[1] >= 20_000


async def test_dry_run_counts_exactly_and_writes_nothing(db, clock):
    await run_import(db, clock, OLDER)
    snapshot = [tuple(r) for r in await db.fetchall("SELECT * FROM orders ORDER BY id")]
    seen = []
    summary = await run_import(db, clock, NEWER, dry_run=True, on_order=seen.append)
    assert summary.dry_run and summary.batch_id is None
    assert (summary.inserted, summary.updated, summary.unchanged) == (4, 3, 1)
    assert len(seen) == 8 and all(isinstance(o, NormalizedOrder) for o in seen)
    assert [tuple(r) for r in await db.fetchall("SELECT * FROM orders ORDER BY id")] == snapshot
    assert await count(db, "import_batches") == 1


async def test_lookup_and_script_variables(db, clock):
    await run_import(db, clock, NEWER)
    stored = await get_order(db, ' ="3701234567890123402" ')  # as an agent pastes it
    assert stored is not None and stored.platform == "taobao"
    assert await get_order(db, "3701234567890123402", "jd") is None
    assert await get_order(db, "nope") is None
    variables = order_variables(stored, SHANGHAI)
    assert variables == {
        "order_no": "3701234567890123402",
        "shop": "小棉袄旗舰店",
        "platform": "taobao",
        "platform_name": "淘宝/天猫",
        "amount": "128.50",
        "buyer": "138****5678",
        "status": "paid_unshipped",
        "status_text": "已付款待发货",
        "status_raw": "买家已付款，等待卖家发货",
        "created_at": "2026-11-21 08:05",
        "paid_at": "2026-11-21 08:06",
        "shipped_at": "",
        "item_title": "加厚羽绒服",
        "tracking_no": "",
        "carrier": "",
    }
    # a nickname that is really a phone number is masked too
    assert order_variables(order(buyer="13912345678"), SHANGHAI)["buyer"] == "139****5678"


async def test_same_number_on_two_platforms(db, clock):
    await upsert_orders(db, [order("SAME-1"), order("SAME-1", platform="jd")], clock=clock)
    clock.advance(minutes=5)
    await upsert_orders(db, [order("SAME-1", platform="jd", status="shipped", status_raw="等待确认收货")], clock=clock)
    found = await find_orders(db, "SAME-1")
    assert [o.platform for o in found] == ["jd", "taobao"]  # most recently updated first
    assert (await get_order(db, "SAME-1")).platform == "jd"
    assert (await get_order(db, "SAME-1", "taobao")).status == "paid_unshipped"


async def test_json_of_an_order_has_offsets_in_the_shop_zone():
    data = order(shipped_at=None).to_json(SHANGHAI)
    assert data["created_at"] == "2026-11-22T09:00:00+08:00"
    assert data["shipped_at"] is None and data["amount"] == "59.00" and data["order_no"] == "T-1"


async def test_rejected_details_are_capped_but_counted(db, clock, monkeypatch):
    from bot.orders import importer

    monkeypatch.setattr(importer, "REJECTED_KEPT", 3)
    lines = ["order_no,status"] + [f"{i}.5E+18,shipped" for i in range(10)] + ["OK-1,shipped"]
    summary = await run_import(db, clock, "\n".join(lines).encode(), batch_size=4)
    assert summary.rejected_count == 10 and len(summary.rejected) == 3 and summary.inserted == 1
    assert summary.to_json()["rejected"] == 10
    assert "拒收 10" in summary.text_zh() and "列出前 3 行" in summary.text_zh(limit=2)
    row = await db.fetchone("SELECT rejected FROM import_batches")
    assert row["rejected"] == 10
