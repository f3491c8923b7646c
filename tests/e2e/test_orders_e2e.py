"""Orders end to end: export files sent to the real bot through the emulator, /order cards, and the
HTTP endpoint served by the running bot. Waits are for messages and requests, never sleeps."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

import handlers.orders as orders_layer
from bot.people import Role
from tests.harness import ADMIN
from tests.reminder_orders import order, paid, save, unpaid

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "orders"
TAOBAO = "ExportOrderList202611221500.csv"
AGENT, SUP, STRANGER = 2001, 2002, 2999
TOKEN = "e2e-api-token"
H = timedelta(hours=1)


@pytest.fixture
def staff():
    """`start` and `kefu` (tests/conftest.py) register a day-shift agent and supervisor."""
    return [(AGENT, Role.AGENT, "day", "小美"), (SUP, Role.SUPERVISOR, "day", "李主管")]


def data_of(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


async def count(kefu, table: str = "orders") -> int:
    return (await kefu.svc.db.fetchone(f"SELECT count(*) FROM {table}"))[0]


def new_messages(kefu, chat: int, after: int) -> list[dict]:
    return [m for m in kefu.emu.messages(chat) if m["message_id"] > after]


def last_id(kefu, chat: int) -> int:
    last = kefu.emu.last_message(chat)
    return last["message_id"] if last else 0


def hold_imports(monkeypatch) -> asyncio.Event:
    """Chat uploads wait before parsing until the returned event is set (then import as ever)."""
    release = asyncio.Event()
    real_import = orders_layer.import_file

    async def held_import(*args, **kwargs):
        await release.wait()
        return await real_import(*args, **kwargs)

    monkeypatch.setattr(orders_layer, "import_file", held_import)
    return release


async def upload(kefu, user: int, filename: str, content: bytes, caption: str | None = None) -> dict:
    """Send a file and wait for the import's summary (a new message with 导入结果); return it."""
    seen = last_id(kefu, user)
    kefu.emu.send_document(user, filename, content, caption=caption)
    return await kefu.emu.wait_for_message(user, lambda m: m["message_id"] > seen and "导入结果" in m["plain"])


async def answer_to(kefu, user: int, filename: str, content: bytes, expect: str, caption: str | None = None) -> dict:
    seen = last_id(kefu, user)
    kefu.emu.send_document(user, filename, content, caption=caption)
    return await kefu.emu.wait_for_message(user, lambda m: m["message_id"] > seen and expect in m["plain"])


def generic_csv(rows: int, clock) -> bytes:
    """A generic CSV with `rows` orders: all unpaid, created 13 hours ago, so all due for 催付."""
    created = (clock.now() - 13 * H).isoformat()
    lines = ["platform,order_no,shop,status,created_at,paid_at,shipped_at,amount,buyer"]
    lines += [f"other,GEN{i:06d},微店小铺,unpaid,{created},,,19.90,buyer{i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


# --- upload --------------------------------------------------------------------------------------


async def test_upload_of_a_taobao_export_reports_counts_due_orders_and_rejected_rows(kefu):
    content = (FIXTURES / TAOBAO).read_bytes()
    seen = last_id(kefu, AGENT)
    summary = await upload(kefu, AGENT, TAOBAO, content)

    first = new_messages(kefu, AGENT, seen)[0]
    assert "正在导入" in (first["edits"][0]["plain"] if first["edits"] else first["plain"])
    assert "读取完成，共 11 行" in first["plain"]  # the final edit

    text = summary["plain"]
    assert "淘宝/天猫订单报表" in text
    assert "读取 11 行，新增 8，更新 0，未变 0，拒收 3" in text
    due = int(text.split("现在需要提醒的订单：")[1].split("。")[0])
    # the unpaid order from 11-22 09:00, the 神秘状态 one read as unpaid (created 11-22 09:00) and two
    # paid on 11-21 (now 11-23 10:00)
    assert due == 4
    assert "不认识的状态用语" in text and "订单状态「神秘状态」：1 行" in text
    assert "第 9 行" in text and "科学计数法" in text
    assert await count(kefu) == 8

    document = await kefu.emu.wait_for_message(AGENT, lambda m: m["message_id"] > seen and m["document"])
    assert document["filename"].endswith(".csv") and "3 行" in document["plain"]
    rows = list(csv.reader(io.StringIO(document["file_bytes"].decode("utf-8-sig"))))
    assert rows[0][:3] == ["行号", "原因代码", "原因"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("9", "mangled_number"), ("10", "bad_time"), ("12", "missing_order_no"),
    ]
    assert "13812345678" not in document["file_bytes"].decode("utf-8-sig")  # personal data stays out


async def test_a_big_file_edits_the_progress_message_while_it_reads(kefu, monkeypatch):
    monkeypatch.setattr(orders_layer, "PROGRESS_ROWS", 50)
    monkeypatch.setattr(orders_layer, "PROGRESS_EDIT_SECONDS", 0)
    seen = last_id(kefu, SUP)
    summary = await upload(kefu, SUP, "erp_orders.csv", generic_csv(400, kefu.clock))

    assert "读取 400 行，新增 400" in summary["plain"]
    assert "现在需要提醒的订单：400" in summary["plain"]
    progress = new_messages(kefu, SUP, seen)[0]
    shown = [edit["plain"] for edit in progress["edits"]] + [progress["plain"]]
    assert "正在导入「erp_orders.csv」" in shown[0]
    assert any("已读取" in s and "行" in s for s in shown[1:-1]), shown  # edited while reading
    assert "读取完成，共 400 行" in shown[-1]
    assert not any(m["document"] for m in new_messages(kefu, SUP, seen))  # nothing rejected


async def test_the_same_file_again_changes_nothing(kefu):
    content = (FIXTURES / "pinduoduo_orders.csv").read_bytes()
    first = await upload(kefu, AGENT, "pinduoduo_orders.csv", content)
    assert "新增 7，更新 0，未变 0" in first["plain"]
    again = await upload(kefu, AGENT, "pinduoduo_orders.csv", content)
    assert "新增 0，更新 0，未变 7" in again["plain"]
    assert await count(kefu) == 7
    assert await count(kefu, "import_batches") == 2


async def test_caption_names_the_platform_and_shop(kefu):
    summary = await upload(kefu, AGENT, "generic_orders.csv", (FIXTURES / "generic_orders.csv").read_bytes(),
                           caption="platform=other shop=微店 小铺")
    assert "通用 CSV" in summary["plain"]
    bad = await answer_to(kefu, AGENT, "x.csv", b"a,b\n", "看不懂", caption="平台是淘宝 = 嗯")
    assert "platform=other" in bad["plain"]
    wrong = await answer_to(kefu, AGENT, "x.csv", b"a,b\n", "不认识", caption="platform=amazon")
    assert "amazon" in wrong["plain"]


@pytest.mark.parametrize(("filename", "expect"), [("picture.png", "不是表格文件"), ("empty.csv", "是空的")])
async def test_a_file_that_is_not_an_export_is_explained_and_nothing_is_written(kefu, filename, expect):
    seen = last_id(kefu, AGENT)
    answer = await answer_to(kefu, AGENT, filename, (FIXTURES / filename).read_bytes(), expect)
    assert "没有导入任何订单" in answer["plain"]
    assert "请发送店铺后台原样导出的订单文件" in answer["plain"]
    # one answer: the progress message became the explanation
    assert [m["message_id"] for m in new_messages(kefu, AGENT, seen)] == [answer["message_id"]]
    assert "正在导入" in answer["edits"][0]["plain"]
    assert await count(kefu) == 0 and await count(kefu, "import_batches") == 0
    # the person may send the next file at once
    summary = await upload(kefu, AGENT, TAOBAO, (FIXTURES / TAOBAO).read_bytes())
    assert "新增 8" in summary["plain"]


async def test_a_file_over_the_limit_is_refused_before_downloading(start):
    kefu = await start(kefu_import_max_mb=1)
    answer = await answer_to(kefu, AGENT, "huge.csv", b"x" * (1024 * 1024 + 10), "超过了 1 MB")
    assert "分批导出" in answer["plain"] and "没有导入任何订单" in answer["plain"]
    assert kefu.emu.requests("getFile") == []
    assert await count(kefu) == 0


async def test_telegram_download_limit_applies_even_with_a_higher_setting(start):
    kefu = await start(kefu_import_max_mb=50)
    answer = await answer_to(kefu, AGENT, "huge.csv", b"x" * (20 * 1024 * 1024 + 1), "Telegram 不允许")
    assert "kefu import" in answer["plain"]
    assert kefu.emu.requests("getFile") == []


async def test_a_second_file_while_one_is_importing_gets_a_polite_wait(kefu, monkeypatch):
    release = hold_imports(monkeypatch)
    content = (FIXTURES / TAOBAO).read_bytes()
    seen = last_id(kefu, AGENT)
    kefu.emu.send_document(AGENT, TAOBAO, content)
    await kefu.emu.wait_for_request("getFile")
    busy = await answer_to(kefu, AGENT, "second.csv", content, "上一份文件还在导入")
    assert "请等它完成" in busy["plain"]
    # other people are served meanwhile
    assert "用法" in (await kefu.say(SUP, "/order"))["plain"]
    release.set()
    await kefu.emu.wait_for_message(AGENT, lambda m: m["message_id"] > seen and "导入结果" in m["plain"])
    assert len(kefu.emu.requests("getFile")) == 1  # the second file was never downloaded
    again = await upload(kefu, AGENT, TAOBAO, content)
    assert "未变 8" in again["plain"]


async def test_a_stop_does_not_wait_for_a_running_import_and_its_sender_is_told_once(kefu, monkeypatch):
    """A stop (restart, deploy) while an import runs: the import is cancelled with nothing written
    and the sender told at once on its progress message; the next start does not tell again."""
    never = asyncio.Event()
    real_import = orders_layer.import_file

    async def stuck_import(*args, **kwargs):  # a parse that would run to its 10-minute timeout
        await never.wait()
        return await real_import(*args, **kwargs)

    monkeypatch.setattr(orders_layer, "import_file", stuck_import)
    orders_before = (await kefu.svc.db.fetchone("SELECT count(*) FROM orders"))[0]
    seen = last_id(kefu, AGENT)
    kefu.emu.send_document(AGENT, TAOBAO, (FIXTURES / TAOBAO).read_bytes())
    await kefu.emu.wait_for_request("getFile")
    await asyncio.wait_for(kefu.restart(), 30)  # before: the stop waited for the import
    progress = new_messages(kefu, AGENT, seen)[0]
    texts = [progress["plain"]] + [edit["plain"] for edit in progress["edits"]]
    told = [t for t in texts if "导入因机器人重启被中断" in t]
    assert len(told) == 1 and TAOBAO in told[0], texts
    assert not any("中断" in m["plain"] for m in new_messages(kefu, AGENT, progress["message_id"]))
    assert (await kefu.svc.db.fetchone("SELECT count(*) FROM orders"))[0] == orders_before
    assert (await kefu.svc.db.fetchone("SELECT count(*) FROM imports_in_flight"))[0] == 0
    monkeypatch.setattr(orders_layer, "import_file", real_import)
    again = await upload(kefu, AGENT, TAOBAO, (FIXTURES / TAOBAO).read_bytes())
    assert "新增 8" in again["plain"]


async def test_an_import_written_before_a_restart_cut_its_reports_short_is_reported_as_written(kefu):
    """Killed after the import's transaction committed, before its summary went out: the next
    start tells the sender the counts of what was written, not "interrupted, nothing written"."""
    from bot.clock import to_ts
    from bot.orders import import_file, import_started
    from tests.conftest import SHANGHAI

    seen = last_id(kefu, AGENT)
    await import_started(kefu.svc.db, chat_id=AGENT, message_id=None, user_id=AGENT, filename=TAOBAO,
                         now=to_ts(kefu.clock.now()))
    await import_file(kefu.svc.db, FIXTURES / TAOBAO, filename=TAOBAO, clock=kefu.clock, tz=SHANGHAI, actor=AGENT)
    await kefu.restart()
    told = [m["plain"] for m in new_messages(kefu, AGENT, seen)]
    assert len(told) == 1 and "重启前已写入" in told[0] and "新增 8" in told[0] and "中断" not in told[0], told
    assert "3 行有问题未导入" in told[0], told  # the rejected rows' file was lost with the restart: said so
    assert (await kefu.svc.db.fetchone("SELECT count(*) FROM imports_in_flight"))[0] == 0


async def test_a_stranger_cannot_import(kefu):
    kefu.emu.add_user(STRANGER, "路人")
    kefu.emu.send_document(STRANGER, TAOBAO, (FIXTURES / TAOBAO).read_bytes())
    refusal = await kefu.emu.wait_for_message(STRANGER)
    assert "需要主管邀请" in refusal["plain"] and str(STRANGER) in refusal["plain"]
    await kefu.emu.wait_until_idle()
    assert len(kefu.emu.messages(STRANGER)) == 1
    assert kefu.emu.requests("getFile") == []
    assert await count(kefu) == 0


async def test_handover_captioned_files_are_not_taken_for_exports(kefu):
    kefu.emu.send_document(AGENT, TAOBAO, (FIXTURES / TAOBAO).read_bytes(), caption="/handover 今天的导出表")
    await kefu.emu.wait_until_idle()
    assert await count(kefu) == 0
    assert await count(kefu, "handover_items") == 1
    assert not any("导入" in m["plain"] for m in kefu.emu.messages(AGENT))


# --- /order --------------------------------------------------------------------------------------


async def test_order_card_for_an_unpaid_order_with_time_left_and_a_script_to_press(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 3 * H, order_no="3901234567000000001"))
    card = await kefu.say(AGENT, "/order 3901234567000000001")
    text = card["plain"]
    assert "3901234567000000001" in text and "淘宝/天猫" in text and "旗舰店" in text
    assert "待付款" in text and "¥128.00" in text
    assert "9 小时后催付" in text
    assert "下单 2026-11-23 07:00" in text  # the shop's clock
    assert "暂无催付/发货提醒记录" in text
    data = data_of(card)
    assert "kb:o:x:pay_remind_once:3901234567000000001" in data

    seen = last_id(kefu, AGENT)
    await kefu.press(AGENT, card, data="kb:o:x:pay_remind_once:3901234567000000001")
    script = await kefu.emu.wait_for_message(AGENT, lambda m: m["message_id"] > seen and "纯棉T恤" in m["plain"])
    assert "小美" in script["plain"]  # filled with the agent's name and the order's item


async def test_order_card_for_a_paid_unshipped_order_shows_the_deadline_and_reminder_history(kefu):
    await save(kefu.svc.db, kefu.clock, paid(kefu.clock.now() - 40 * H, order_no="3901234567000000002"))
    card = await kefu.say(AGENT, "/order 3901234567000000002")
    assert "已付款待发货" in card["plain"]
    assert "还剩 8 小时（已进入预警）" in card["plain"]
    assert {"kb:o:x:ship_when:3901234567000000002", "kb:o:x:addr_before_ship:3901234567000000002"} <= set(data_of(card))

    await kefu.tick()  # the 36 h warning goes out and is claimed
    warning = await kefu.emu.wait_for_message(AGENT, lambda m: "发货预警" in m["plain"] and m["reply_markup"])
    claim = next(d for d in data_of(warning) if d.startswith("rem:claim:"))
    await kefu.press(AGENT, warning, data=claim)
    card = await kefu.say(AGENT, "/order #3901234567000000002")
    assert "提醒记录" in card["plain"]
    assert "发货预警" in card["plain"] and "已推送" in card["plain"] and "小美 认领" in card["plain"]

    kefu.clock.advance(10 * H)  # past the 48 h deadline
    card = await kefu.say(AGENT, "/order 3901234567000000002")
    assert "发货已超时 2 小时" in card["plain"]
    assert "kb:o:x:ship_overdue_apology:3901234567000000002" in data_of(card)


async def test_order_number_on_several_platforms_lists_them(kefu):
    number = "2026112200001"
    await save(kefu.svc.db, kefu.clock,
               order(number, platform="taobao", created=kefu.clock.now() - H),
               order(number, platform="jd", shop="京东&自营店", status="shipped", created=kefu.clock.now() - 50 * H,
                     paid=kefu.clock.now() - 49 * H, shipped=kefu.clock.now() - 24 * H))
    listing = await kefu.say(AGENT, f"/order {number}")
    assert "2 个平台" in listing["plain"]
    assert set(data_of(listing)) == {f"ord:card:taobao:{number}", f"ord:card:jd:{number}"}
    captions = [b["text"] for row in listing["reply_markup"]["inline_keyboard"] for b in row]
    assert "📦 京东 · 京东&自营店" in captions  # plain text, not HTML-escaped
    seen = last_id(kefu, AGENT)
    await kefu.press(AGENT, listing, data=f"ord:card:jd:{number}")
    card = await kefu.emu.wait_for_message(AGENT, lambda m: m["message_id"] > seen and "📦" in m["plain"])
    assert "京东" in card["plain"] and "京东&自营店" in card["plain"] and "已发货" in card["plain"]
    assert "kb:o:x:log_slow:" + number in data_of(card)


async def test_presale_and_refund_flags_on_the_card(kefu):
    now = kefu.clock.now()
    await save(kefu.svc.db, kefu.clock, paid(now - 50 * H, order_no="3901234567000000004", presale=True),
               paid(now - 50 * H, order_no="3901234567000000005", refunding=True))
    presale = await kefu.say(AGENT, "/order 3901234567000000004")
    assert "🕒 预售" in presale["plain"] and "不计发货时限" in presale["plain"]
    assert "发货已超时" not in presale["plain"]
    assert data_of(presale)[0] == "kb:o:x:ship_presale:3901234567000000004"
    refund = await kefu.say(AGENT, "/order 3901234567000000005")
    assert "有退款/售后进行中" in refund["plain"] and "发货提醒暂停" in refund["plain"]
    assert data_of(refund)[0] == "kb:o:x:rf_refund_unshipped:3901234567000000005"


async def test_unknown_order_and_usage(kefu):
    unknown = await kefu.say(AGENT, "/order 1234567890123")
    assert "没有找到订单" in unknown["plain"] and "1234567890123" in unknown["plain"]
    assert "订单文件" in unknown["plain"]
    usage = await kefu.say(AGENT, "/order")
    assert "/order 订单号" in usage["plain"]


async def test_handover_order_button_opens_the_card(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - H, order_no="3901234567000000003"))
    logged = await kefu.say(AGENT, "/handover 买家要改地址 3901234567000000003")
    assert "ord:card:3901234567000000003" in data_of(logged)
    seen = last_id(kefu, AGENT)
    await kefu.press(AGENT, logged, data="ord:card:3901234567000000003")
    card = await kefu.emu.wait_for_message(AGENT, lambda m: m["message_id"] > seen and "📦" in m["plain"])
    assert "3901234567000000003" in card["plain"] and "待付款" in card["plain"]


# --- the HTTP endpoint in the bot's process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_http_endpoint_served_by_the_bot_feeds_orders_and_reminders(start):
    port = free_port()
    kefu = await start(kefu_api_token=TOKEN, kefu_api_port=port)
    created = (kefu.clock.now() - 13 * H).isoformat()
    item = ('{"platform": "douyin", "order_no": "6917000000000000001", "shop": "抖店小铺", "status": "unpaid",'
            f' "created_at": "{created}", "amount": "66.00", "buyer": "dy_buyer"}}')
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        assert (await http.post("/api/orders", content=item)).status_code == 401
        bad = await http.post("/api/orders", content="{not json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bad.status_code == 400 and bad.json()["error"] == "malformed_json"
        ok = await http.post("/api/orders", content=item + "\n", headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
        assert ok.status_code == 200 and ok.json()["inserted"] == 1
    card = await kefu.say(AGENT, "/order 6917000000000000001")
    assert "抖音" in card["plain"] and "抖店小铺" in card["plain"] and "已到催付时间 1 小时" in card["plain"]
    await kefu.tick()
    reminder = await kefu.emu.wait_for_message(AGENT, lambda m: "催付提醒" in m["plain"])
    assert "6917000000000000001" in reminder["plain"]


async def test_a_port_in_use_is_reported_and_the_bot_runs_on(start):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kefu = await start(kefu_api_token=TOKEN, kefu_api_port=port)
        notice = await kefu.emu.wait_for_message(ADMIN, lambda m: "订单接口没有启动" in m["plain"])
        assert str(port) in notice["plain"]
        assert kefu.svc.orders.api is None
        assert "用法" in (await kefu.say(AGENT, "/order"))["plain"]


async def test_an_upload_begun_before_the_start_up_report_is_not_reported_as_interrupted(kefu, monkeypatch):
    """`kefu run` lets held updates through once the knowledge base is loaded, before the orders
    intake's start-up reports the imports a previous run left unfinished: an upload this run began
    is not one of them (review: its sender was told "interrupted by a restart" while it ran)."""
    release = hold_imports(monkeypatch)
    seen = last_id(kefu, AGENT)
    kefu.emu.send_document(AGENT, TAOBAO, (FIXTURES / TAOBAO).read_bytes())
    for _ in range(200):  # until the import is recorded as in flight
        if (await kefu.svc.db.fetchone("SELECT count(*) FROM imports_in_flight"))[0]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the upload was never recorded as in flight")
    await orders_layer.report_interrupted_imports(kefu.app)  # what the orders intake's start-up runs
    release.set()
    await kefu.emu.wait_for_message(AGENT, lambda m: m["message_id"] > seen and "导入结果" in m["plain"])
    texts = [t for m in new_messages(kefu, AGENT, seen) for t in [m["plain"], *(e["plain"] for e in m["edits"])]]
    assert not any("中断" in t for t in texts), texts
