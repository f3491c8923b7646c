"""POST /api/orders: bearer token, JSON array or NDJSON, all-or-nothing; GET /api/health."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.orders import get_order
from bot.orders.api import create_api_app, serve_api
from bot.settings import Settings

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_settings(tmp_path, monkeypatch) -> Settings:
    for name in ("KEFU_API_TOKEN", "KEFU_API_PORT", "KEFU_TIMEZONE", "KEFU_IMPORT_MAX_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Settings(kefu_db_path=tmp_path / "kefu.db", kefu_api_token=TOKEN, kefu_import_max_mb=1)


@pytest.fixture
async def client(db, api_settings, clock):
    app = create_api_app(db, api_settings, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as http:
        yield http


def item(order_no: str, **changes) -> dict:
    data = {
        "platform": "taobao", "order_no": order_no, "shop": "小棉袄旗舰店", "status": "paid_unshipped",
        "created_at": "2026-11-22T09:00:00+08:00", "paid_at": "2026-11-22T09:01:00+08:00", "shipped_at": None,
        "amount": "59.00", "buyer": "tb_alice",
    }
    data.update(changes)
    return data


async def count(db) -> int:
    return (await db.fetchone("SELECT count(*) AS n FROM orders"))["n"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
)
async def test_missing_or_wrong_token_is_401(client, db, headers):
    response = await client.post("/api/orders", json=[item("A-1")], headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"
    assert await count(db) == 0


async def test_no_configured_token_accepts_nobody(db, api_settings, clock):
    api_settings.kefu_api_token = ""
    app = create_api_app(db, api_settings, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as http:
        response = await http.post("/api/orders", json=[item("A-1")], headers={"Authorization": "Bearer "})
    assert response.status_code == 401


async def test_json_array_is_upserted_and_a_repeat_changes_nothing(client, db):
    body = [item("A-1"), item(12345678901, platform="jd", status="等待出库", amount=99.9, buyer="13912345678")]
    response = await client.post("/api/orders", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "inserted": 2, "updated": 0, "unchanged": 0, "unknown_words": []}
    jd = await get_order(db, "12345678901", "jd")
    assert jd.status == "paid_unshipped" and jd.status_raw == "等待出库"
    assert str(jd.amount) == "99.90" and jd.buyer == "139****5678" and jd.source == "api"

    again = await client.post("/api/orders", json=body, headers=AUTH)
    assert again.json() == {"received": 2, "inserted": 0, "updated": 0, "unchanged": 2, "unknown_words": []}
    batch = await db.fetchone("SELECT source, format, rows_read FROM import_batches ORDER BY id DESC")
    assert tuple(batch) == ("api", "api", 2)


async def test_ndjson_body(client, db):
    lines = "\n".join(json.dumps(item(f"N-{i}", status="shipped"), ensure_ascii=False) for i in range(3))
    response = await client.post(
        "/api/orders", content=lines.encode(), headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 3
    assert (await get_order(db, "N-2")).status == "shipped"


async def test_kefu_import_json_output_can_be_pushed_back(client, db):
    from zoneinfo import ZoneInfo

    from bot.orders import NormalizedOrder
    from bot.orders.values import TimeParser

    tz = ZoneInfo("Asia/Shanghai")
    when = TimeParser(tz)("2026-11-22 09:00:00", "c")
    order = NormalizedOrder("douyin", "6917533224570258991", "", "partially_shipped", "已发货 / 待发货", True, True,
                            when, when, when, None, "", "围巾", "", "")
    response = await client.post("/api/orders", json=[order.to_json(tz)], headers=AUTH)
    assert response.status_code == 200, response.text
    stored = await get_order(db, "6917533224570258991")
    assert (stored.status, stored.status_raw, stored.refunding, stored.presale) == (
        "partially_shipped", "已发货 / 待发货", True, True)
    assert stored.shipped_at == when


async def test_malformed_body_is_400_with_nothing_written(client, db):
    for content in (b"[{\"order_no\": \"A-1\",", b"{\"order_no\": \"A-1\"}\nnot json\n", b"   ", b"\xff\xfe"):
        response = await client.post("/api/orders", content=content, headers=AUTH)
        assert response.status_code == 400, content
        assert response.json()["error"] in ("malformed_json", "empty_body", "bad_encoding")
        assert response.json()["message"]
    assert await count(db) == 0


async def test_one_bad_item_rejects_the_whole_push_with_reasons_per_item(client, db):
    body = [
        item("A-1"),
        item("A-2", status="teleported"),
        item(6.917533224570259e18),
        item("A-4", created_at="2026-11-22"),
        "not an object",
        item("A-6", platform="amazon"),
        item(None),
    ]
    response = await client.post("/api/orders", json=body, headers=AUTH)
    assert response.status_code == 400
    data = response.json()
    assert data["error"] == "invalid_orders" and data["received"] == 7
    assert [(e["index"], e["reason_code"]) for e in data["errors"]] == [
        (2, "mangled_number"),
        (3, "bad_time"),
        (4, "not_an_object"),
        (5, "unknown_platform"),
        (6, "missing_order_no"),
    ]
    assert all(e["message"] for e in data["errors"])
    assert await count(db) == 0  # nothing partial: A-1 was fine but is not stored either


async def test_body_over_the_limit_is_413(client, db):
    body = b"[" + b" " * (1024 * 1024 + 10) + b"]"
    response = await client.post("/api/orders", content=body, headers=AUTH)
    assert response.status_code == 413
    assert await count(db) == 0


async def test_health(client):
    response = await client.get("/api/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_real_uvicorn_in_the_current_loop_on_a_free_port(db, api_settings, clock):
    server = await serve_api(create_api_app(db, api_settings, clock), "127.0.0.1", 0)
    try:
        assert server.started and server.port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            assert (await http.get("/api/health")).status_code == 200
            assert (await http.post("/api/orders", json=[item("U-1")])).status_code == 401
            response = await http.post("/api/orders", json=[item("U-1")], headers=AUTH)
            assert response.status_code == 200 and response.json()["inserted"] == 1
    finally:
        await server.stop()
    assert server.task.done()
    assert (await get_order(db, "U-1")).shop == "小棉袄旗舰店"


async def test_serve_api_reports_a_busy_port(db, api_settings, clock):
    app = create_api_app(db, api_settings, clock)
    first = await serve_api(app, "127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await serve_api(app, "127.0.0.1", first.port)
    finally:
        await first.stop()


async def test_unknown_status_wording_is_kept_and_reported(client, db):
    body = [item("U-1", status="teleported", paid_at="2026-11-22T09:01:00+08:00"), item("U-2", status="WAIT_SELLER_SEND_GOODS")]
    response = await client.post("/api/orders", json=body, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["unknown_words"] == [{"column": "status", "word": "teleported", "rows": 1}]
    row = await db.fetchone("SELECT status, status_raw FROM orders WHERE order_no = 'U-1'")
    assert tuple(row) == ("paid_unshipped", "teleported")  # paid, not shipped: it will be reminded


def big_body(orders: list[dict]) -> bytes:
    """A body over PUSH_INLINE_MAX (padding spaces are valid JSON): read in the parsing process."""
    from bot.orders.api import PUSH_INLINE_MAX

    text = json.dumps(orders, ensure_ascii=False)
    return (text + " " * max(0, PUSH_INLINE_MAX + 1 - len(text.encode()))).encode()


async def test_a_big_push_is_read_in_the_parsing_process_with_the_same_answers(client, db):
    body = big_body([item(f"B-{i}", amount=f"{i}.50") for i in range(3000)] + [item("B-0", status="shipped")])
    response = await client.post("/api/orders", content=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 3001, "inserted": 3000, "updated": 1, "unchanged": 0, "unknown_words": []}
    first = await get_order(db, "B-0", "taobao")
    assert first.status == "shipped" and str(first.amount) == "59.00"  # the later row merged like a second push
    assert str((await get_order(db, "B-2999", "taobao")).amount) == "2999.50"
    again = await client.post("/api/orders", content=body, headers=AUTH)
    assert again.json()["unchanged"] == 3001
    batch = await db.fetchone("SELECT source, format, rows_read FROM import_batches ORDER BY id DESC")
    assert tuple(batch) == ("api", "api", 3001)


async def test_a_big_push_with_a_bad_item_or_a_bad_body_writes_nothing(client, db):
    bad = big_body([item(f"C-{i}") for i in range(2000)] + [item("C-x", amount="1e30")])
    response = await client.post("/api/orders", content=bad, headers=AUTH)
    assert response.status_code == 400 and response.json()["error"] == "invalid_orders"
    assert response.json()["received"] == 2001 and response.json()["errors"][0]["index"] == 2000
    nested = big_body([]).replace(b"[]", b"[" * 50 + b"]" * 50, 1)
    response = await client.post("/api/orders", content=nested, headers=AUTH)
    assert response.status_code == 400 and response.json()["error"] == "too_deep"
    assert "嵌套" in response.json()["message"]
    assert await count(db) == 0
