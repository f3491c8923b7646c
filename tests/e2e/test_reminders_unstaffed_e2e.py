"""Issue 11 end to end: a due reminder always reaches someone, and a closed breach keeps watching.

The real bot against the emulator, the fake clock at Monday 2026-11-23 10:00 (day shift working).
Nobody is assigned to the day shift: only a supervisor without a shift and a night agent.
"""

from datetime import timedelta

import pytest

from bot.people import Role
from tests.conftest import local
from tests.harness import ADMIN
from tests.reminder_orders import changed, paid, save, unpaid

SUP, NIGHT, DAY = 2002, 2004, 2001
TEAM_CHAT = -100500
H = timedelta(hours=1)


@pytest.fixture
def staff():
    return [(SUP, Role.SUPERVISOR, None, "李主管"), (NIGHT, Role.AGENT, "night", "小王")]


def cards(kefu, chat_id, order_no) -> list[dict]:
    return [m for m in kefu.emu.messages(chat_id) if order_no in m["plain"] and "催付提醒" in m["plain"]]


def notes(kefu, chat_id) -> list[dict]:
    return [m for m in kefu.emu.messages(chat_id) if "现在没有人在岗" in m["plain"]]


async def test_nobody_on_the_working_shift_team_chat_supervisors_and_admins_get_it(start):
    kefu = await start(kefu_team_chat_id=TEAM_CHAT)
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="410001"))
    await kefu.tick()
    for chat in (TEAM_CHAT, SUP, ADMIN):
        assert len(cards(kefu, chat, "410001")) == 1, chat
    assert kefu.emu.messages(NIGHT) == []  # not working now
    [note] = notes(kefu, ADMIN)
    assert "白班" in note["plain"] and "/setshift" in note["plain"] and "团队群" in note["plain"]
    assert notes(kefu, SUP) == []  # the note is for the admins
    row = await kefu.svc.db.fetchone("SELECT state FROM reminders")
    assert row["state"] == "sent"  # delivered, not held "until the next shift start"

    # Later in the same shift: the next due order goes out too, the admins are not told again.
    kefu.clock.advance(hours=2)
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="410002"))
    await kefu.tick()
    await kefu.tick()
    for chat in (TEAM_CHAT, SUP, ADMIN):
        assert len(cards(kefu, chat, "410002")) == 1, chat
    assert len(notes(kefu, ADMIN)) == 1

    # The night gap still holds (01:00-08:30), as before.
    kefu.clock.set(local("2026-11-24 02:00"))
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="410003"))
    await kefu.tick()
    assert not any(cards(kefu, chat, "410003") for chat in (TEAM_CHAT, SUP, ADMIN, NIGHT))

    # The next day shift is unstaffed again: delivered at its start, the admins told once more.
    kefu.clock.set(local("2026-11-24 08:30"))
    await kefu.tick()
    for chat in (TEAM_CHAT, SUP, ADMIN):
        assert len(cards(kefu, chat, "410003")) == 1, chat
    assert len(notes(kefu, ADMIN)) == 2


async def test_once_someone_is_on_duty_reminders_go_to_them_again(start):
    kefu = await start()
    await kefu.add_person(DAY, Role.AGENT, shift="day", name="小美")
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="420001"))
    await kefu.tick()
    assert len(cards(kefu, DAY, "420001")) == 1
    assert cards(kefu, SUP, "420001") == [] and notes(kefu, ADMIN) == []


async def test_import_summary_says_who_receives_the_due_reminders(start):
    from tests.e2e.test_orders_e2e import FIXTURES, upload

    kefu = await start(kefu_team_chat_id=TEAM_CHAT)
    name = "ExportOrderList202611221500.csv"
    summary = await upload(kefu, SUP, name, (FIXTURES / name).read_bytes())
    assert "现在需要提醒的订单：4" in summary["plain"]
    assert f"提醒将发给：团队群、李主管、管理员（ID {ADMIN}）。" in summary["plain"]


async def test_a_breach_closed_while_unshipped_asks_an_outcome_and_fires_again(start):
    kefu = await start(kefu_breach_repeat_hours=4)
    await kefu.add_person(DAY, Role.AGENT, shift="day", name="小美")
    order = paid(kefu.clock.now() - 49 * H, order_no="430001")
    await save(kefu.svc.db, kefu.clock, order)
    await kefu.tick()
    [card] = [m for m in kefu.emu.messages(DAY) if "430001" in m["plain"] and "发货超时" in m["plain"]]
    rid = next(d for d in _datas(card) if d.startswith("rem:done:")).split(":")[2]
    await kefu.press(DAY, card, data=f"rem:done:{rid}")
    menu = _message(kefu, DAY, card["message_id"])
    assert [d.split(":")[3] for d in _datas(menu) if d.startswith("rem:out:")] == [
        "urged_warehouse", "out_of_stock", "agreed_with_buyer", "other"]
    await kefu.press(DAY, menu, data=f"rem:out:{rid}:out_of_stock")
    shown = _message(kefu, DAY, card["message_id"])["plain"]
    assert "已处理：缺货" in shown and "再检查" in shown

    kefu.clock.advance(hours=3, minutes=59)
    await kefu.tick()
    assert sum("430001" in m["plain"] for m in kefu.emu.messages(DAY)) == 1  # not yet
    kefu.clock.advance(minutes=1)
    await kefu.tick()
    repeat = [m for m in kefu.emu.messages(DAY) if "430001" in m["plain"]][-1]
    assert repeat["message_id"] != card["message_id"]
    assert "第 1 次重复提醒" in repeat["plain"] and "缺货" in repeat["plain"]
    assert f"rem:claim:{rid}" in _datas(repeat)

    # Shipped before the next look: closing it again stops the watch for good.
    await kefu.press(DAY, repeat, data=f"rem:done:{rid}")
    await kefu.press(DAY, _message(kefu, DAY, repeat["message_id"]), data=f"rem:out:{rid}:urged_warehouse")
    await save(kefu.svc.db, kefu.clock, changed(order, status="shipped", shipped_at=kefu.clock.now()))
    kefu.clock.advance(hours=5)
    await kefu.tick()
    assert sum("430001" in m["plain"] for m in kefu.emu.messages(DAY)) == 2


def _datas(message) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def _message(kefu, chat_id: int, message_id: int) -> dict:
    return next(m for m in kefu.emu.messages(chat_id) if m["message_id"] == message_id)


async def test_order_card_of_a_due_unclaimed_order_has_the_claim_button(start):
    kefu = await start()
    await kefu.add_person(DAY, Role.AGENT, shift="day", name="小美")
    await save(kefu.svc.db, kefu.clock, paid(kefu.clock.now() - 49 * H, order_no="440001"),
               paid(kefu.clock.now() - 2 * H, order_no="440002"))
    await kefu.tick()
    shown = await kefu.say(DAY, "/order 440001")
    [claim] = [d for d in _datas(shown) if d.startswith("rem:claim:")]
    assert _datas(shown)[0] == claim  # on top of the script buttons
    await kefu.press(DAY, shown, data=claim)
    row = await kefu.svc.db.fetchone("SELECT claimed_by FROM reminders WHERE id = ?", (int(claim.split(":")[2]),))
    assert row["claimed_by"] == DAY
    again = await kefu.say(DAY, "/order 440001")
    assert not any(d.startswith("rem:claim:") for d in _datas(again))  # claimed: no button
    not_due = await kefu.say(DAY, "/order 440002")
    assert not any(d.startswith("rem:claim:") for d in _datas(not_due))


async def test_order_card_shows_a_held_order_and_a_promised_deadline(start):
    kefu = await start()
    await kefu.add_person(DAY, Role.AGENT, shift="day", name="小美")
    held = changed(paid(kefu.clock.now() - 49 * H, order_no="450001", platform="jd"), on_hold=True, status_raw="锁定")
    promised = changed(paid(kefu.clock.now() - 2 * H, order_no="450002", platform="douyin"),
                       ship_by=kefu.clock.now() + 5 * H)
    await save(kefu.svc.db, kefu.clock, held, promised)
    await kefu.tick()
    assert "平台已锁定/暂停这笔订单（锁定）" in (await kefu.say(DAY, "/order 450001"))["plain"]
    card = (await kefu.say(DAY, "/order 450002"))["plain"]
    assert "（订单承诺发货时间），还剩 5 小时" in card
