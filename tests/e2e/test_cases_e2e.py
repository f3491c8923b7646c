"""售后登记 end to end: the real bot against the emulator, time moved by the fake clock.

Default shifts: day 08:30–17:30, night 17:30–01:00. The clock starts Monday 2026-11-23 10:00.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.clock import to_ts
from bot.people import Role
from tests.conftest import local
from tests.harness import ADMIN

AGENT, SUP, NIGHT_SUP, AGENT2, STRANGER = 2001, 2002, 2003, 2004, 2999
ORDER_NO = "3912345678901234567"


@pytest.fixture
def staff():
    return [
        (AGENT, Role.AGENT, "day", "小美"), (SUP, Role.SUPERVISOR, "day", "李主管"),
        (NIGHT_SUP, Role.SUPERVISOR, "night", "王主管"), (AGENT2, Role.AGENT, "day", "小丽"),
    ]


@pytest.fixture
async def bot(kefu):
    await kefu.say(ADMIN, "/start")
    kefu.emu.add_user(STRANGER, "路人")
    now = to_ts(local("2026-11-20 00:00"))
    await kefu.svc.db.execute(
        "INSERT INTO orders (platform, order_no, shop, status, item_title, created_at, paid_at, first_seen_at, updated_at)"
        " VALUES ('taobao', ?, '旗舰店', 'completed', '羊毛围巾', ?, ?, ?, ?)",
        (ORDER_NO, now, now, now, now),
    )
    return kefu


def datas(message) -> list[str]:
    markup = (message or {}).get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row if "callback_data" in b]


def with_button(kefu, chat_id: int, data: str) -> dict:
    """The latest bot message in a chat carrying this button."""
    found = [m for m in kefu.emu.messages(chat_id) if data in datas(m)]
    assert found, (data, [datas(m) for m in kefu.emu.messages(chat_id)][-3:])
    return found[-1]


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


async def at(kefu, moment: str) -> None:
    kefu.clock.set(local(moment))
    await kefu.tick()


def label(kefu, key: str, **values) -> str:
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", kefu.svc.renderer.label(key, **values))).strip()


async def open_from_script(kefu) -> int:
    """The agent opens the script for a broken item past the return window (with the order) and
    presses 登记售后 on it; returns the case number."""
    from handlers.scripts import send_script

    person = await kefu.svc.people.get(AGENT)
    # the script view exactly as /s, an order card or a reminder sends it
    assert await send_script(kefu.app, AGENT, "qa_outside_window", order_no=ORDER_NO, person=person, source="search")
    await kefu.emu.wait_until_idle()
    script_msg = with_button(kefu, AGENT, f"case:new:s:qa_outside_window:{ORDER_NO}")
    await kefu.press(AGENT, script_msg, data=f"case:new:s:qa_outside_window:{ORDER_NO}")
    [row] = await kefu.svc.db.fetchall("SELECT id FROM cases")
    return row[0]


async def test_script_case_photo_approval_decision_script_and_handover(bot):
    kefu = bot
    no = await open_from_script(kefu)
    card = kefu.emu.last_message(AGENT)
    assert f"售后#{no}" in card["plain"] and ORDER_NO in card["plain"] and "质量问题" in card["plain"]
    assert "羊毛围巾" in card["plain"]  # linked to the stored order

    # a photo while the case waits for evidence is attached by its Telegram file id
    kefu.emu.send_photo(AGENT, png(), caption="拉链坏了")
    await kefu.emu.wait_until_idle()
    assert "共 1 个凭证" in kefu.emu.last_message(AGENT)["plain"]
    case = await kefu.svc.cases.get(no)
    assert len(case.evidence) == 1 and case.evidence[0].kind == "photo" and case.evidence[0].file_id
    # text ends the wait for evidence and is searched as usual (not lost, not a note)
    seen = len(kefu.emu.messages(AGENT))
    await kefu.say(AGENT, "用了半年坏了能修吗")
    assert any("case:new:s:" in " ".join(datas(m)) for m in kefu.emu.messages(AGENT)[seen:])
    assert not (await kefu.svc.cases.get(no)).notes
    kefu.emu.send_photo(AGENT, png())  # no case waits any more: not attached
    await kefu.emu.wait_until_idle()
    assert len((await kefu.svc.cases.get(no)).evidence) == 1
    # 补凭证 on the card waits again
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:ev:{no}"), data=f"case:ev:{no}")
    kefu.emu.send_photo(AGENT, png(), caption="包装")
    await kefu.emu.wait_until_idle()
    assert len((await kefu.svc.cases.get(no)).evidence) == 2
    await kefu.press(AGENT, kefu.emu.last_message(AGENT), data=f"case:evd:{no}")

    # resolution and amount through the card: 小额补偿 30 元 is above the 20 元 cap
    card = with_button(kefu, AGENT, f"case:ed:{no}")
    await kefu.press(AGENT, card, data=f"case:ed:{no}")
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:f:{no}:resolution"), data=f"case:f:{no}:resolution")
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:set:{no}:resolution:compensation"),
                     data=f"case:set:{no}:resolution:compensation")
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:ed:{no}"), data=f"case:ed:{no}")
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:f:{no}:amount_cents"), data=f"case:f:{no}:amount_cents")
    await kefu.say(AGENT, "三十")  # bad input: told what to write, nothing changed
    assert "看不懂" in kefu.emu.last_message(AGENT)["plain"]
    await kefu.say(AGENT, "30")
    case = await kefu.svc.cases.get(no)
    assert case.resolution == "compensation" and case.amount_cents == 3000

    # going on without approval is refused; submitting reaches the supervisor on duty
    card = with_button(kefu, AGENT, f"case:mv:{no}:done")
    query = await kefu.press(AGENT, card, data=f"case:mv:{no}:done")
    assert "需要审批" in kefu.emu.callback_answer(query)["text"]
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:sub:{no}"), data=f"case:sub:{no}")
    assert "李主管" in "\n".join(kefu.texts(AGENT)[-2:])
    case = await kefu.svc.cases.get(no)
    aid = case.approval.id
    request = with_button(kefu, SUP, f"case:ok:{aid}")
    assert "30.00" in request["plain"] and "小额补偿超过上限" in request["plain"] and "小美" in request["plain"]
    assert any(m.get("photo") for m in kefu.emu.messages(SUP)), "the evidence photo reaches the approver"
    assert not [m for m in kefu.emu.messages(NIGHT_SUP) if f"case:ok:{aid}" in datas(m)]  # not on duty

    # the requester cannot approve their own request
    forged = await kefu.app.bot.send_message(AGENT, "按钮", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("x", callback_data=f"case:ok:{aid}")]]))
    query = kefu.emu.press_button(AGENT, AGENT, forged.message_id, data=f"case:ok:{aid}")
    await kefu.emu.wait_until_idle()
    assert kefu.emu.callback_answer(query)["text"] == label(kefu, "errors.case_self_approval")

    # 同意: the agent hears at once, with the next script filled with the order and the amount
    await kefu.press(SUP, request, data=f"case:ok:{aid}")
    decision = kefu.emu.last_message(AGENT)["plain"]
    assert "已同意" in decision and "李主管" in decision
    assert "补偿30.00元" in decision and ORDER_NO in decision and "【" not in decision.split("接下来发给买家")[1]
    case = await kefu.svc.cases.get(no)
    assert case.state == "approved"
    history = await kefu.svc.cases.history(await kefu.svc.people.get(SUP), no)
    assert [h.action for h in history if h.action in ("submit", "approve")] == ["submit", "approve"]

    # end of the day shift: the owner's prompt lists the open case; the night shift's digest too
    await at(kefu, "2026-11-23 17:16")
    prompt = [t for t in kefu.texts(AGENT) if "交班" in t][-1]
    assert f"售后#{no}" in prompt
    await at(kefu, "2026-11-23 17:31")
    digest = [m for m in kefu.emu.messages(NIGHT_SUP) if "交接本" in m["plain"]]
    assert digest and f"售后#{no}" in digest[-1]["plain"] and f"case:v:{no}" in datas(digest[-1])
    assert not [t for t in kefu.texts(AGENT2) if f"售后#{no}" in t]  # agents without a part do not see it
    # still open the next evening: still in the digest
    await at(kefu, "2026-11-24 17:31")
    digest = [m for m in kefu.emu.messages(NIGHT_SUP) if "交接本" in m["plain"]]
    assert len(digest) == 2 and f"售后#{no}" in digest[-1]["plain"]
    # the night supervisor opens the card from the digest line
    await kefu.press(NIGHT_SUP, digest[-1], data=f"case:v:{no}")
    assert f"售后#{no}" in kefu.emu.last_message(NIGHT_SUP)["plain"]

    # closed: gone from the next digest
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:mv:{no}:done"), data=f"case:mv:{no}:done")
    assert (await kefu.svc.cases.get(no)).state == "done"
    seen = len(kefu.emu.messages(NIGHT_SUP))
    await at(kefu, "2026-11-25 17:31")
    assert not [m for m in kefu.emu.messages(NIGHT_SUP)[seen:] if f"售后#{no}" in m["plain"]]


async def test_reject_needs_a_reason_withdraw_nudge_and_escalation(bot):
    kefu = bot
    await kefu.say(AGENT, f"/case {ORDER_NO} 买家要求仅退款")
    [row] = await kefu.svc.db.fetchall("SELECT id FROM cases")
    no = row[0]
    agent = await kefu.svc.people.get(AGENT)
    await kefu.svc.cases.edit(agent, no, resolution="refund_only", amount_cents="150")
    await kefu.say(AGENT, f"/case #{no}")
    await kefu.press(AGENT, kefu.emu.last_message(AGENT), data=f"case:sub:{no}")
    aid = (await kefu.svc.cases.get(no)).approval.id
    # 催办 reaches the approver again; too soon a second time is refused with the wait
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:ndg:{no}"), data=f"case:ndg:{no}")
    assert "催办" in kefu.emu.last_message(SUP)["plain"]
    query = await kefu.press(AGENT, with_button(kefu, AGENT, f"case:ndg:{no}"), data=f"case:ndg:{no}")
    assert "分钟后再催" in kefu.emu.callback_answer(query)["text"]
    # 撤回 then resubmit: a new request
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:wd:{no}"), data=f"case:wd:{no}")
    assert (await kefu.svc.cases.get(no)).state == "open"
    await kefu.press(AGENT, with_button(kefu, AGENT, f"case:sub:{no}"), data=f"case:sub:{no}")
    aid2 = (await kefu.svc.cases.get(no)).approval.id
    assert aid2 != aid
    # 1 h of shift time without a decision: a reminder; 3 h: the admins
    await at(kefu, "2026-11-23 11:01")
    assert "提醒" in with_button(kefu, SUP, f"case:ok:{aid2}")["plain"]
    await at(kefu, "2026-11-23 13:01")
    escalation = with_button(kefu, ADMIN, f"case:ok:{aid2}")
    assert "没人处理" in escalation["plain"]
    # 驳回 with a typed reason: the agent hears at once
    await kefu.press(SUP, with_button(kefu, SUP, f"case:no:{aid2}"), data=f"case:no:{aid2}")
    await kefu.press(SUP, with_button(kefu, SUP, f"case:rt:{aid2}"), data=f"case:rt:{aid2}")
    await kefu.say(SUP, "先核实物流")
    decision = kefu.emu.last_message(AGENT)["plain"]
    assert "已驳回" in decision and "先核实物流" in decision
    assert (await kefu.svc.cases.get(no)).state == "rejected"


async def test_off_hours_request_waits_for_the_next_shift(bot):
    kefu = bot
    kefu.clock.set(local("2026-11-24 02:00"))  # the night gap
    agent = await kefu.svc.people.get(AGENT)
    case = await kefu.svc.cases.open_case(agent, order_no=ORDER_NO, problem="quality")
    await kefu.svc.cases.edit(agent, case.id, resolution="compensation", amount_cents="50")
    await kefu.say(AGENT, f"/case #{case.id}")
    await kefu.press(AGENT, kefu.emu.last_message(AGENT), data=f"case:sub:{case.id}")
    told = "\n".join(kefu.texts(AGENT)[-2:])
    assert "不是上班时间" in told and "08:30" in told
    assert not [m for m in kefu.emu.messages(SUP) if "等您审批" in m["plain"]]
    await at(kefu, "2026-11-24 08:31")
    # the morning review also reaches supervisors at the day shift's start: look among all messages
    assert [m for m in kefu.emu.messages(SUP) if "等您审批" in m["plain"]]


async def test_strangers_and_other_agents_cannot_see_or_act(bot):
    kefu = bot
    await kefu.say(AGENT, f"/case {ORDER_NO} 少件")
    [row] = await kefu.svc.db.fetchall("SELECT id FROM cases")
    no = row[0]
    forbidden = label(kefu, "errors.case_forbidden", no=no)
    assert (await kefu.say(AGENT2, f"/case #{no}"))["plain"] == forbidden
    assert ORDER_NO not in (await kefu.say(AGENT2, "/cases"))["plain"]
    assert "：0 张" in (await kefu.say(AGENT2, f"/cases {ORDER_NO}"))["plain"]  # only the query echoed
    buttons = [f"case:v:{no}", f"case:mv:{no}:closed", f"case:ed:{no}", f"case:sub:{no}", f"case:his:{no}",
               f"case:evs:{no}", f"case:note:{no}"]
    forged = await kefu.app.bot.send_message(AGENT2, "按钮", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("x", callback_data=d)] for d in buttons]))
    queries = [kefu.emu.press_button(AGENT2, AGENT2, forged.message_id, data=d) for d in buttons]
    await kefu.emu.wait_until_idle()
    for data, query in zip(buttons, queries, strict=True):
        assert kefu.emu.callback_answer(query)["text"] == forbidden, data
    assert (await kefu.svc.cases.get(no)).state == "open"
    assert not [t for t in kefu.texts(AGENT2) if ORDER_NO in t and "0 张" not in t]
    # the supervisor may see it; a stranger gets the guard's refusal
    assert ORDER_NO in (await kefu.say(SUP, f"/case #{no}"))["plain"]
    assert ORDER_NO not in ((await kefu.say(STRANGER, f"/case #{no}")) or {}).get("plain", "")
    # an export for a supervisor is masked, agents may not export
    assert "主管" in (await kefu.say(AGENT, "/cases export"))["plain"]


async def _seed_phone_case(kefu) -> int:
    agent = await kefu.svc.people.get(AGENT)
    case = await kefu.svc.cases.open_case(agent, order_no=ORDER_NO, problem="damaged", description="买家电话 13812345678")
    await kefu.svc.cases.edit(agent, case.id, buyer_phone="13812345678", buyer_address="浙江省杭州市西湖区文三路100号")
    return case.id


def _cells(document: dict) -> list[str]:
    import io

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(document["file_bytes"]), read_only=True)
    return [str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row if v is not None]


async def test_export_masks_personal_data_unless_an_admin_asks_for_the_full_file(bot):
    kefu = bot
    await _seed_phone_case(kefu)
    await kefu.say(SUP, "/cases export 7")
    document = kefu.emu.last_message(SUP)
    assert document["document"] and document["filename"].endswith(".xlsx") and "1 张" in document["plain"]
    cells = _cells(document)
    assert ORDER_NO in cells and not [c for c in cells if "13812345678" in c or "文三路" in c]
    await kefu.say(SUP, "/cases export 7 full")  # only an admin gets the full file
    assert not [c for c in _cells(kefu.emu.last_message(SUP)) if "13812345678" in c]
    await kefu.say(ADMIN, "/cases export 7 full")
    assert [c for c in _cells(kefu.emu.last_message(ADMIN)) if "13812345678" in c]
    assert "看不懂" in (await kefu.say(SUP, "/cases export 上周"))["plain"]


async def test_deactivating_the_approver_sends_the_request_to_another(bot):
    kefu = bot
    agent = await kefu.svc.people.get(AGENT)
    case = await kefu.svc.cases.open_case(agent, order_no=ORDER_NO, problem="quality")
    await kefu.svc.cases.edit(agent, case.id, resolution="compensation", amount_cents="40")
    await kefu.say(AGENT, f"/case #{case.id}")
    await kefu.press(AGENT, kefu.emu.last_message(AGENT), data=f"case:sub:{case.id}")
    aid = (await kefu.svc.cases.get(case.id)).approval.id
    assert with_button(kefu, SUP, f"case:ok:{aid}")
    await kefu.say(ADMIN, f"/deactivate {SUP}")
    request = with_button(kefu, NIGHT_SUP, f"case:ok:{aid}")
    await kefu.press(NIGHT_SUP, request, data=f"case:ok:{aid}")
    assert (await kefu.svc.cases.get(case.id)).state == "approved"
    assert "已同意" in kefu.emu.last_message(AGENT)["plain"]


async def test_the_shop_policy_sets_the_approval_rules_at_start_and_on_kb_reload(start, tmp_path):
    import shutil
    from pathlib import Path

    kb_dir = tmp_path / "kb"
    shutil.copytree(Path(__file__).resolve().parents[2] / "scripts_kb", kb_dir)
    policy = kb_dir / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("compensation_cap: 20 ", "compensation_cap: 50 "),
                      encoding="utf-8")
    kefu = await start(kefu_kb_dir=kb_dir)
    assert kefu.svc.cases.policy.compensation_cap_cents == 5000
    policy.write_text(policy.read_text(encoding="utf-8").replace("compensation_cap: 50 ", "compensation_cap: 10 "),
                      encoding="utf-8")
    await kefu.say(SUP, "/kb_reload")
    await kefu.emu.wait_until_idle()
    for _ in range(50):
        if kefu.svc.cases.policy.compensation_cap_cents == 1000:
            break
        import asyncio

        await asyncio.sleep(0.1)
    assert kefu.svc.cases.policy.compensation_cap_cents == 1000


async def test_open_case_button_in_the_team_chat_sends_the_card_in_private(start):
    team_chat = -100777
    kefu = await start(kefu_team_chat_id=team_chat)
    data = f"case:new:o:{ORDER_NO}"
    post = await kefu.app.bot.send_message(team_chat, "提醒", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("登记售后", callback_data=data)]]))
    before = len(kefu.emu.messages(team_chat))
    query = kefu.emu.press_button(AGENT, team_chat, post.message_id, data=data)
    await kefu.emu.wait_until_idle()
    assert "私聊" in kefu.emu.callback_answer(query)["text"]
    assert len(kefu.emu.messages(team_chat)) == before  # nothing about the case in the group
    card = kefu.emu.last_message(AGENT)
    assert "售后#1" in card["plain"] and ORDER_NO in card["plain"]
    kefu.emu.send_photo(AGENT, png())  # the evidence wait is the presser's, in private
    await kefu.emu.wait_until_idle()
    assert len((await kefu.svc.cases.get(1)).evidence) == 1
    # other case buttons stay private-only
    data = "case:v:1"
    post = await kefu.app.bot.send_message(team_chat, "x", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("x", callback_data=data)]]))
    query = kefu.emu.press_button(AGENT, team_chat, post.message_id, data=data)
    await kefu.emu.wait_until_idle()
    assert kefu.emu.callback_answer(query)["text"] == label(kefu, "errors.button_private_only")
