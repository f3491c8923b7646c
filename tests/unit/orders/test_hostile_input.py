"""Hostile or broken input (issue 12): limits at the door, a safe rejected-rows CSV, the readers
never raising on any bytes, the API answering JSON 4xx."""

from __future__ import annotations

import csv
import io
import zipfile

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.orders import NotAnExport, import_file
from bot.orders.api import create_api_app
from bot.orders.limits import FIELD_MAX, MAX_COLUMNS
from bot.orders.readers import open_export
from bot.settings import Settings
from tests.conftest import SHANGHAI

HEADER = "platform,order_no,shop,status,created_at,amount"
GOOD = "taobao,T-{n},小店,paid_unshipped,2026-11-22 09:00,59.00"


def generic(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


async def run(db, clock, data: bytes, filename: str = "upload.csv"):
    return await import_file(db, data, filename=filename, clock=clock, tz=SHANGHAI)


async def count(db) -> int:
    return (await db.fetchone("SELECT count(*) AS n FROM orders"))["n"]


def xlsx(sheet_xml: bytes, shared: bytes | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        if shared is not None:
            z.writestr("xl/sharedStrings.xml", shared)
    return out.getvalue()


async def test_an_overlong_order_number_is_a_rejected_row_and_the_rest_imports(db, clock):
    long_no = "9" * 4500
    summary = await run(db, clock, generic(GOOD.format(n=1), f"taobao,{long_no},小店,paid_unshipped,2026-11-22 09:00,1.00"))
    assert summary.inserted == 1 and summary.rejected_count == 1
    row = summary.rejected[0]
    assert row.reason_code == "too_long"
    assert str(FIELD_MAX["order_no"]) in row.message_zh and len(row.message_zh) < 200
    assert await count(db) == 1


@pytest.mark.parametrize("amount", ["99999999999999999999", "1e30", "10000000.01"])
async def test_an_amount_out_of_range_rejects_the_row_not_the_file(db, clock, amount):
    summary = await run(db, clock, generic(GOOD.format(n=1), f"taobao,T-2,小店,paid_unshipped,2026-11-22 09:00,{amount}"))
    assert summary.inserted == 1 and summary.rejected_count == 1
    assert summary.rejected[0].reason_code in ("out_of_range", "bad_amount")


async def test_a_date_out_of_range_rejects_the_row(db, clock):
    summary = await run(db, clock, generic(GOOD.format(n=1), "taobao,T-2,小店,paid_unshipped,9999-12-31 23:59,1.00"))
    assert summary.inserted == 1 and summary.rejected_count == 1


async def test_duplicate_column_names_refuse_the_file_naming_them(db, clock):
    with pytest.raises(NotAnExport) as refused:
        await run(db, clock, generic(GOOD.format(n=1) + ",5", header=HEADER + ",amount"))
    assert refused.value.reason == "duplicate_columns" and "「amount」" in refused.value.message_zh
    assert await count(db) == 0


async def test_too_many_columns_refuse_the_file(db, clock):
    header = HEADER + "," + ",".join(f"x{i}" for i in range(MAX_COLUMNS))
    with pytest.raises(NotAnExport) as refused:
        await run(db, clock, generic(GOOD.format(n=1), header=header))
    assert refused.value.reason == "too_many_columns"
    assert await count(db) == 0


def test_an_xlsx_bomb_is_refused_from_the_zip_directory():
    bomb = xlsx(b"<worksheet><sheetData/></worksheet>", shared=b"<sst>" + b"A" * (3 * 2**20) + b"</sst>")
    with pytest.raises(NotAnExport) as refused:
        open_export(bomb, tz=SHANGHAI, filename="bomb.xlsx")
    assert refused.value.reason == "xlsx_bomb" and "sharedStrings" in refused.value.message_zh


def test_an_xlsx_with_a_cell_at_column_xfd_is_refused_before_parsing():
    rows = "".join(f'<row r="{i}"><c r="XFD{i}" t="inlineStr"><is><t>x</t></is></c></row>' for i in range(1, 50))
    sheet = f"<worksheet><sheetData>{rows}</sheetData></worksheet>".encode()
    with pytest.raises(NotAnExport) as refused:
        open_export(xlsx(sheet), tz=SHANGHAI, filename="xfd.xlsx")
    assert refused.value.reason == "too_many_columns"


async def test_the_rejected_rows_csv_is_safe_to_open(db, clock):
    header = HEADER + ",订单备注,买家留言,item_title"
    rows = [
        'taobao,T-1,小店,paid_unshipped,2026-11-22 09:00,=HYPERLINK("http://x"),打电话 13812345678,地址 x,"+cmd|\' /C calc\'!A0"',
        "taobao,T-2,@evil,paid_unshipped,@notatime,1.00,,,-2+3 联系 13912345678",
    ]
    summary = await run(db, clock, generic(*rows, header=header))
    assert summary.rejected_count == 2
    table = list(csv.reader(io.StringIO(summary.rejected_csv().decode("utf-8-sig"))))
    cells = [cell for row in table for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert "订单备注" not in table[0] and "买家留言" not in table[0]
    assert not any("13812345678" in c or "13912345678" in c for c in cells)
    assert any("139****5678" in c for c in cells)


# --- any bytes in: a reading or a clear refusal, never an exception --------------------------------


def read_all(data: bytes) -> None:
    try:
        with open_export(data, tz=SHANGHAI, filename="x") as reader:
            for _ in reader:
                pass
    except NotAnExport as refused:
        assert refused.message_zh


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_reading_or_a_refusal(data):
    read_all(data)


cells = st.one_of(
    st.text(max_size=80), st.sampled_from(["", "=1+1", "1e30", "99999999999999999999", "9999-12-31 23:59", "-1", "NaN"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(cells, max_size=9), max_size=8))
def test_any_rows_under_a_known_header_give_a_reading_or_a_refusal(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER.split(","))
    writer.writerows(rows)
    read_all(out.getvalue().encode("utf-8"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_any_bytes_after_a_zip_header_give_a_reading_or_a_refusal(tail):
    read_all(b"PK\x03\x04" + tail)


# --- POST /api/orders ------------------------------------------------------------------------------


@pytest.fixture
async def client(db, clock, tmp_path, monkeypatch):
    for name in ("KEFU_API_TOKEN", "KEFU_API_PORT", "KEFU_TIMEZONE", "KEFU_IMPORT_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    app_settings = Settings(kefu_db_path=tmp_path / "kefu.db", kefu_api_token="t0ken", kefu_import_max_mb=2)
    app = create_api_app(db, app_settings, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as http:
        yield http


AUTH = {"Authorization": "Bearer t0ken", "Content-Type": "application/json"}


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b"[" * 20 + b"{}" + b"]" * 20, b'[{"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}]'])
async def test_deep_json_is_a_chinese_400(client, db, body):
    response = await client.post("/api/orders", content=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == "too_deep" and "嵌套" in response.json()["message"]
    assert await count(db) == 0


@pytest.mark.parametrize("amount", [1e30, "1e30", 10**30, "99999999999999999999"])
async def test_a_huge_amount_is_a_rejected_order_not_a_500(client, db, amount):
    order = {"platform": "taobao", "order_no": "A-1", "status": "paid_unshipped", "amount": amount,
             "created_at": "2026-11-22T09:00:00+08:00"}
    response = await client.post("/api/orders", json=[order], headers=AUTH)
    assert response.status_code == 400 and response.json()["error"] == "invalid_orders"
    assert await count(db) == 0


async def test_a_huge_integer_literal_is_a_400(client):
    response = await client.post("/api/orders", content=b'[{"amount": ' + b"9" * 5000 + b"}]", headers=AUTH)
    assert response.status_code == 400


async def test_health_names_a_storage_fault(client, db):
    assert (await client.get("/api/health")).json() == {"status": "ok"}
    await db.conn.execute("PRAGMA query_only = ON")  # every write now fails as on a read-only file
    try:
        with pytest.raises(Exception):
            await db.execute("INSERT INTO notices (key, sent_at) VALUES ('x', 1)")
        response = await client.get("/api/health")
    finally:
        await db.conn.execute("PRAGMA query_only = OFF")
    assert response.status_code == 503
    assert response.json()["storage"] == "read_only" and "存储故障" in response.json()["message"]
