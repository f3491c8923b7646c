"""Service standards and KPIs end to end (issue 17): the real bot polling the emulator, a fake
clock, ticks run by hand. Reminders are pushed by the real reminder tick and claimed by pressing
the real buttons; the KPI figures then come back through /kpi, the buttons, the morning review,
the Monday pack and the nudge at 80 % of the claim target."""

from __future__ import annotations

import io
import pytest
from openpyxl import load_workbook
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.people import Role
from tests.conftest import local
from tests.harness import ADMIN
from tests.reminder_orders import changed, paid, save, unpaid

AGENT, AGENT2, SUP, NIGHT = 2001, 2003, 2002, 2004


@pytest.fixture
def staff():
    return [
        (AGENT, Role.AGENT, "day", "小美"),
        (AGENT2, Role.AGENT, "day", "阿强"),
        (SUP, Role.SUPERVISOR, "day", "李主管"),
        (NIGHT, Role.AGENT, "night", "小王"),
    ]


def data_of(message) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def with_text(kefu, chat_id: int, mark: str) -> list[dict]:
    return [m for m in kefu.emu.messages(chat_id) if mark in (m["plain"] or "")]


async def rid_of(kefu, order_no: str) -> int:
    row = await kefu.svc.db.fetchone(
        "SELECT r.id FROM reminders r JOIN orders o ON o.id = r.order_id WHERE o.order_no = ? ORDER BY r.id", (order_no,))
    return row[0]


@pytest.fixture
async def week(start, clock):
    """Sunday 2026-11-22: two 催付 reminders pushed at 09:00 to the day shift. 小美 claims P1 after
    4 minutes (paid at 10:00, ¥100.00); nobody claims P2 (¥200.00), which is nudged at 8 minutes.
    A refund is opened on 3912000000000003 the same day."""
    clock.set(local("2026-11-22 08:45"))
    kefu = await start()
    await kefu.say(ADMIN, "/start")  # a registered admin: gets what supervisors get
    db = kefu.svc.db
    created = local("2026-11-21 21:00")
    clock.set(created)
    p1 = unpaid(created, order_no="3912000000000001", amount="100.00")
    p2 = unpaid(created, order_no="3912000000000002", amount="200.00")
    await save(db, clock, p1, p2)
    clock.set(local("2026-11-22 09:00"))
    await kefu.tick()
    cards = with_text(kefu, AGENT, "3912000000000001")
    assert cards, kefu.emu.dump_chat(AGENT)
    clock.advance(minutes=4)
    r1 = await rid_of(kefu, "3912000000000001")
    await kefu.press(AGENT, cards[-1], data=f"rem:take:{r1}")
    assert (await kefu.svc.reminders.get(r1)).claimed_by == AGENT
    kefu.week = {"p1": p1, "p2": p2, "r1": r1, "r2": await rid_of(kefu, "3912000000000002")}
    return kefu


async def test_nudge_at_80_percent_of_the_claim_target_once(week):
    kefu = week
    kefu.clock.set(local("2026-11-22 09:07"))  # 7 of 10 minutes: not yet
    await kefu.tick()
    assert with_text(kefu, AGENT2, "还没人认领") == []
    kefu.clock.set(local("2026-11-22 09:08"))  # 80 %
    await kefu.tick()
    for chat in (AGENT, AGENT2):  # the people on duty
        [nudge] = with_text(kefu, chat, "还没人认领")
        assert "3912000000000002" in nudge["plain"] and "3912000000000001" not in nudge["plain"]
        assert data_of(nudge) == [f"rem:claim:{kefu.week['r2']}"]
    assert with_text(kefu, NIGHT, "还没人认领") == []  # not on duty
    kefu.clock.set(local("2026-11-22 09:09"))
    await kefu.tick()
    kefu.clock.set(local("2026-11-22 09:30"))  # missed now: counted for the digest, never paged
    await kefu.tick()
    assert len(with_text(kefu, AGENT2, "还没人认领")) == 1
    # the nudge's button claims it
    [nudge] = with_text(kefu, AGENT2, "还没人认领")
    await kefu.press(AGENT2, nudge, data=f"rem:claim:{kefu.week['r2']}")
    assert (await kefu.svc.reminders.get(kefu.week["r2"])).claimed_by == AGENT2


async def _rest_of_sunday(kefu) -> None:
    """08 min: the nudge; 10:00 P1 is paid; a refund is opened; nobody claims P2."""
    kefu.clock.set(local("2026-11-22 09:08"))
    await kefu.tick()
    kefu.clock.set(local("2026-11-22 10:00"))
    await save(kefu.svc.db, kefu.clock, changed(kefu.week["p1"], status="paid_unshipped", paid_at=kefu.clock.now()))
    await save(kefu.svc.db, kefu.clock, paid(local("2026-11-22 10:30"), order_no="3912000000000003",
                                             refunding=True, amount="59.00"))
    await kefu.tick()


async def test_monday_pack_and_morning_review_fire_at_their_times_with_the_right_numbers(week):
    kefu = week
    await _rest_of_sunday(kefu)
    kefu.clock.set(local("2026-11-23 07:59"))  # Monday, 31 min before the day shift
    await kefu.tick()
    assert with_text(kefu, SUP, "周例会") == [] and with_text(kefu, SUP, "早间复盘 2026-11-22") == []

    kefu.clock.set(local("2026-11-23 08:00"))  # the pack: 30 min before the day shift
    await kefu.tick()
    supervisor = kefu.emu.messages(SUP)
    photos = [m for m in supervisor if m.get("photo")]
    assert len(photos) == 4 and all(m["file_bytes"][:8] == b"\x89PNG\r\n\x1a\n" for m in photos)
    assert all("2026-11-16 ~ 2026-11-22" in m["plain"] for m in photos)
    admin_photos = [m for m in kefu.emu.messages(ADMIN) if m.get("photo")]  # the same pictures, uploaded once
    assert all(m["file_id"] for m in photos) and [m["file_id"] for m in admin_photos] == [m["file_id"] for m in photos]
    assert len(with_text(kefu, ADMIN, "📅 周例会")) == 1
    [summary] = with_text(kefu, SUP, "📅 周例会")
    text = summary["plain"]
    assert "催付：推送 2，付款 1（100.0%），挽回 ¥100.00" in text  # P2 pushed < 72 h ago: open, out of the rate
    assert "催付提醒 10 分钟内认领：50.0%（n=2，≥90.0%）" in text
    [mine] = with_text(kefu, AGENT, "我的上周")
    assert "提醒 1，认领 1" in mine["plain"] and "催付 1/1（100.0%），挽回 ¥100.00" in mine["plain"]
    assert "阿强" not in mine["plain"] and "3912000000000002" not in mine["plain"]
    [other] = with_text(kefu, AGENT2, "我的上周")
    assert "上周没有您处理的提醒" in other["plain"]
    assert with_text(kefu, AGENT, "📅 周例会 2026") == []  # the team summary is for supervisors
    assert with_text(kefu, SUP, "早间复盘 2026-11-22") == []  # not before the day shift

    kefu.clock.set(local("2026-11-23 08:29"))
    await kefu.tick()
    assert with_text(kefu, SUP, "早间复盘 2026-11-22") == []
    kefu.clock.set(local("2026-11-23 08:30"))
    await kefu.tick()
    [review] = with_text(kefu, SUP, "早间复盘 2026-11-22")
    text = review["plain"]
    assert "新发起的退款（1）" in text and "3912000000000003" in text and "¥59.00" in text
    assert "没人认领的提醒（1）" in text and "3912000000000002" in text
    assert "1/2 条提醒超过 10 分钟" in text and "当天有 1 条在 80% 时提醒过在岗客服" in text
    data = data_of(review)
    assert "ord:card:taobao:3912000000000003" in data and f"rem:open:{kefu.week['r2']}" in data
    assert with_text(kefu, AGENT, "早间复盘") == [] and with_text(kefu, NIGHT, "早间复盘") == []  # supervisors only

    # restart-safe: a restart and more ticks send neither again
    await kefu.restart()
    kefu.clock.set(local("2026-11-23 09:00"))
    await kefu.tick()
    assert len(with_text(kefu, SUP, "早间复盘 2026-11-22")) == 1 and len(with_text(kefu, SUP, "📅 周例会")) == 1
    assert len([m for m in kefu.emu.messages(SUP) if m.get("photo")]) == 4

    # a button of the review opens the card
    await kefu.press(SUP, review, data="ord:card:taobao:3912000000000003")
    assert "3912000000000003" in kefu.emu.last_message(SUP)["plain"]

    # the next day: the review again, about Monday (nothing happened → one line)
    kefu.clock.set(local("2026-11-24 08:30"))
    await kefu.tick()
    [tuesday] = with_text(kefu, SUP, "早间复盘 2026-11-23")
    assert "3912000000000003" not in tuesday["plain"]  # Sunday's refund is not Monday's anomaly


async def test_morning_review_after_downtime_comes_once_when_the_bot_is_back(week):
    kefu = week
    await _rest_of_sunday(kefu)
    await kefu.restart()
    kefu.clock.set(local("2026-11-23 11:15"))  # the bot was down at 08:30
    await kefu.tick()
    await kefu.tick()
    assert len(with_text(kefu, SUP, "早间复盘 2026-11-22")) == 1


async def test_nothing_at_all_is_one_line(start, clock):
    clock.set(local("2026-11-23 12:00"))
    kefu = await start()
    await kefu.tick()
    assert with_text(kefu, SUP, "早间复盘") == [] and with_text(kefu, SUP, "周例会") == []  # a fresh install
    kefu.clock.set(local("2026-11-24 08:30"))
    await kefu.tick()
    [review] = with_text(kefu, SUP, "早间复盘 2026-11-23")
    assert "昨天没有异常订单" in review["plain"] and len(review["plain"].splitlines()) == 1
    assert data_of(review) == []


async def test_monday_pack_can_be_turned_off(start, clock):
    clock.set(local("2026-11-22 12:00"))
    kefu = await start(kefu_monday_pack=False)
    kefu.clock.set(local("2026-11-23 08:10"))
    await kefu.tick()
    assert with_text(kefu, SUP, "周例会") == [] and with_text(kefu, AGENT, "我的上周") == []


# --- /kpi visibility -----------------------------------------------------------------------------

async def test_kpi_supervisor_sees_team_shifts_and_people_agent_only_self(week):
    kefu = week
    await _rest_of_sunday(kefu)
    kefu.clock.set(local("2026-11-23 10:00"))
    # the supervisor: team, each shift, each person
    sup = await kefu.say(SUP, "/kpi 2026-11-22")
    text = sup["plain"]
    assert "服务指标 2026-11-22" in text and "按班次" in text and "按人" in text
    assert "白班" in text and "小美" in text
    assert "催付：推送 2，72 小时内付款 1（100.0%），挽回 ¥100.00" in text
    assert data_of(sup) == ["kpi:x:2026-11-22:2026-11-22", "kpi:c:2026-11-22:2026-11-22"]
    # an agent: the team's figures and their own, no other person
    mine = await kefu.say(AGENT2, "/kpi 昨天")
    text = mine["plain"]
    assert "催付：推送 2，72 小时内付款 1（100.0%）" in text and "我的指标" in text
    assert "小美" not in text and "按人" not in text and "按班次" not in text
    assert "这段时间没有您处理的提醒" in text
    agent = await kefu.say(AGENT, "/kpi 昨天")
    assert "提醒 1，认领 1" in agent["plain"] and "阿强" not in agent["plain"]

    # the XLSX button: the same report, filtered for the presser (no other person's row)
    await kefu.press(AGENT2, mine, data="kpi:x:2026-11-22:2026-11-22")
    [doc] = [m for m in kefu.emu.messages(AGENT2) if m.get("document")]
    wb = load_workbook(io.BytesIO(doc["file_bytes"]))
    cells = " ".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c)
    assert "小美" not in cells and str(AGENT) not in cells
    await kefu.press(SUP, sup, data="kpi:x:2026-11-22:2026-11-22")
    [doc] = [m for m in kefu.emu.messages(SUP) if m.get("document")]
    wb = load_workbook(io.BytesIO(doc["file_bytes"]))
    cells = " ".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c)
    assert "小美" in cells
    # the chart button: a PNG
    await kefu.press(AGENT2, mine, data="kpi:c:2026-11-22:2026-11-22")
    [photo] = [m for m in kefu.emu.messages(AGENT2) if m.get("photo")]
    assert photo["file_bytes"][:8] == b"\x89PNG\r\n\x1a\n" and len(photo["file_bytes"]) < 200 * 1024


async def test_kpi_bad_input_is_a_clear_message(week):
    kefu = week
    for text, mark in (("/kpi 明年", "看不懂这个时间段"), ("/kpi 2026-13-01", "看不懂这个时间段"),
                       ("/kpi 2025-01-01~2026-01-01", "最长 92 天"), ("/kpi 2027-01-01", "还没开始")):
        answer = await kefu.say(SUP, text)
        assert mark in answer["plain"], (text, answer["plain"])
    # a forged or outdated button: an alert, nothing sent
    stale = kefu.svc.renderer.label("kpi.errors.stale")
    for data in ("kpi:x:2026-99-01:2026-11-22", "kpi:z:2026-11-01:2026-11-02", "kpi:x:2025-01-01:2026-01-01", "kpi:c"):
        sent = await kefu.app.bot.send_message(
            AGENT, "按钮", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data=data)]]))
        before = len(kefu.emu.messages(AGENT))
        query = kefu.emu.press_button(AGENT, AGENT, sent.message_id, data=data)
        await kefu.emu.wait_until_idle()
        assert kefu.emu.callback_answer(query)["text"] == stale, data
        assert len(kefu.emu.messages(AGENT)) == before


async def test_standards_lists_four_weeks_and_a_suggestion(week):
    kefu = week
    await _rest_of_sunday(kefu)
    kefu.clock.set(local("2026-11-23 10:00"))
    answer = await kefu.say(SUP, "/standards")
    text = answer["plain"]
    assert "服务标准（近 4 周" in text
    for monday in ("10-26", "11-02", "11-09", "11-16"):
        assert monday in text
    assert "50.0%（2）" in text  # the claim standard last week: 1 of 2
    refused = await kefu.say(AGENT, "/standards")
    assert "50.0%" not in refused["plain"]




async def test_a_broken_standards_file_keeps_the_bot_running_and_tells_the_admins(start, clock, tmp_path):
    broken = tmp_path / "standards.yaml"
    broken.write_text("standards:\n  - id: x\n    kind: nonsense\n", encoding="utf-8")
    clock.set(local("2026-11-22 12:00"))
    kefu = await start(kefu_standards_file=broken)
    [notice] = with_text(kefu, ADMIN, "服务标准文件")
    assert "standards.yaml" in notice["plain"] and "默认标准" in notice["plain"]
    answer = await kefu.say(SUP, "/standards")
    assert "催付提醒 10 分钟内认领" in answer["plain"]  # the shipped defaults in service
