"""Deactivation takes effect everywhere at once, end to end through the emulator: claimed reminders
go back and escalate, scheduled announcements pause (other supervisors told), rosters and recipient
lists forget the person, invitation codes stop working; plus display-name checks and the handover
author's take-over press."""

import re
from datetime import timedelta

import pytest

from tests.broadcast_helpers import (
    A1,
    A2,
    N1,
    SUP,
    SUP2,
    add_team,
    callback_data,
    compose,
    copies,
    draft_id,
    message,
    press,
    say,
    send,
    tap,
)
from tests.conftest import local
from tests.harness import ADMIN
from tests.reminder_orders import save, unpaid

H = timedelta(hours=1)


@pytest.fixture
async def team(kefu):
    await add_team(kefu)
    return kefu


def reminders_in(kefu, chat_id: int) -> list[dict]:
    return [m for m in kefu.emu.messages(chat_id) if "催付提醒" in m["plain"] or "无人认领" in m["plain"]]


async def test_claimed_reminders_go_back_and_escalate_by_the_normal_rules(team):
    kefu = team
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="510001"))
    await kefu.tick()
    [card] = reminders_in(kefu, A1)
    rid = int(next(d for d in callback_data(card) if d.startswith("rem:claim:")).split(":")[2])
    await kefu.press(A1, card, data=f"rem:claim:{rid}")
    engine = kefu.svc.reminders
    assert (await engine.get(rid)).claimed_by == A1
    kefu.clock.advance(minutes=40)
    await kefu.tick()
    assert not any("无人认领的提醒" in m["plain"] for m in kefu.emu.messages(SUP))  # claimed: no escalation

    reply = await say(kefu, ADMIN, f"/deactivate {A1}")
    assert "已停用" in reply["plain"] and "退回待认领" in reply["plain"]
    released = await engine.get(rid)
    assert released.claimed_by is None and released.state == "sent" and released.claimable
    # the other copies offer 我来处理 again
    [other] = reminders_in(kefu, A2)
    assert f"rem:claim:{rid}" in callback_data(message(kefu, A2, other["message_id"]))
    # unclaimed and delivered long ago: the next tick escalates it, to supervisors, not to A1
    before_a1 = len(kefu.emu.messages(A1))
    await kefu.tick()
    [escalation] = [m for m in kefu.emu.messages(SUP) if "无人认领的提醒" in m["plain"]]
    assert "510001" in escalation["plain"]
    assert len(kefu.emu.messages(A1)) == before_a1
    # a new reminder reaches the day shift without A1
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="510002"))
    await kefu.tick()
    assert any("510002" in m["plain"] for m in kefu.emu.messages(A2))
    assert len(kefu.emu.messages(A1)) == before_a1


async def test_their_schedules_pause_and_the_other_supervisors_are_told(team):
    kefu = team
    kefu.clock.set(local("2026-11-22 20:00"))
    panel = await say(kefu, SUP, "/schedule 每周一 08:00 周一例会 08:30 开始")
    for suffix in ("a:all", "ack:1", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    panel = await press(kefu, SUP, panel, "go")
    assert "已保存定时通知 #1" in panel["plain"]

    reply = await say(kefu, ADMIN, f"/deactivate {SUP}")
    assert "定时通知已暂停：#1" in reply["plain"]
    schedule = await kefu.svc.broadcasts.get_schedule(1)
    assert schedule.paused and schedule.status == "active"
    [told] = [m for m in kefu.emu.messages(SUP2) if "已暂停" in m["plain"]]
    assert "李主管" in told["plain"] and "#1" in told["plain"] and "每周一 08:00" in told["plain"]
    assert not any("已暂停" in m["plain"] and "/schedules" in m["plain"] for m in kefu.emu.messages(SUP))

    kefu.clock.set(local("2026-11-23 08:00"))
    await kefu.tick()
    for chat in (ADMIN, SUP2, A1, A2, N1):
        assert copies(kefu, chat, "周一例会") == [], chat
    # another supervisor may take it over: resume from /schedules
    listing = await say(kefu, SUP2, "/schedules")
    assert "sch:1:r" in callback_data(listing)


async def test_they_leave_rosters_and_every_recipient_list(team):
    kefu = team
    panel = await compose(kefu, SUP, "/broadcast 周五前提交排班意向", "a:r|a:r:agent")
    bid = draft_id(panel)
    await send(kefu, SUP, panel)
    [copy] = copies(kefu, A1, "周五前提交")
    await tap(kefu, A1, copy, f"ack:{bid}")

    await say(kefu, ADMIN, f"/deactivate {A2}")
    await tap(kefu, SUP, message(kefu, SUP, panel["message_id"]), f"bc:{bid}:ros")
    roster = kefu.emu.last_message(SUP)
    acked, waiting = roster["plain"].split("未确认")
    assert "小美" in acked and "阿强" in waiting and "小丽" not in roster["plain"]
    assert "提醒未确认的 1 人" in str(roster["reply_markup"])
    counts = await kefu.svc.broadcasts.counts(bid)
    assert counts.total == 2 and counts.unacked == 1
    # "remind the rest" reaches N1 only
    before = len(kefu.emu.messages(A2))
    await tap(kefu, SUP, roster, f"bc:{bid}:rem")
    await kefu.emu.wait_for_message(SUP, lambda m: "已提醒 1 人" in m["plain"])
    assert [m for m in kefu.emu.messages(N1) if "请确认这条通知" in m["plain"]]
    # a new announcement to everyone skips them, and a deactivated admin's ack stays on record
    panel = await compose(kefu, SUP, "/broadcast 新的通知", "a:all")
    assert "共 4 人" in message(kefu, SUP, panel["message_id"])["plain"]
    await send(kefu, SUP, panel)
    assert len(kefu.emu.messages(A2)) == before
    await say(kefu, ADMIN, f"/deactivate {A1}")
    await tap(kefu, SUP, message(kefu, SUP, panel["message_id"]), f"bc:{draft_id(panel)}:ros")
    assert "小美" not in kefu.emu.last_message(SUP)["plain"]  # had not acknowledged: gone
    assert (await kefu.svc.broadcasts.counts(bid)).acked == 1  # acknowledged before: kept


async def test_their_invitations_stop_working_and_old_codes_do_not_bring_them_back(team):
    kefu = team
    link = (await say(kefu, SUP, "/invite"))["plain"]
    sup_code = re.search(r"start=([\w-]+)", link).group(1)
    await say(kefu, ADMIN, f"/setrole {SUP2} admin")
    sup2_code = re.search(r"start=([\w-]+)", (await say(kefu, SUP2, "/invite supervisor"))["plain"]).group(1)
    reply = await say(kefu, ADMIN, f"/deactivate {SUP}")
    assert "作废了 TA 未使用的邀请码 1 个" in reply["plain"]
    await say(kefu, ADMIN, f"/setrole {SUP2} supervisor")  # lost the right to invite supervisors

    kefu.emu.add_user(4001, "新人")
    assert "已失效" in (await say(kefu, 4001, f"/start {sup_code}"))["plain"]
    assert "已失效" in (await say(kefu, 4001, f"/start {sup2_code}"))["plain"]
    assert await kefu.svc.people.get(4001) is None
    await say(kefu, ADMIN, f"/activate {SUP}")  # coming back does not revive the revoked code
    assert "邀请码" in (await say(kefu, 4001, f"/start {sup_code}"))["plain"]
    assert await kefu.svc.people.get(4001) is None

    # a deactivated member cannot rejoin with a code, old or new: only /activate brings them back
    fresh = re.search(r"start=([\w-]+)", (await say(kefu, ADMIN, "/invite"))["plain"]).group(1)
    await say(kefu, ADMIN, f"/deactivate {A1}")
    reply = await say(kefu, A1, f"/start {fresh}")
    assert "已被停用" in reply["plain"] and "/activate" in reply["plain"]
    assert not (await kefu.svc.people.get(A1)).active
    kefu.emu.add_user(4002, "另一位新人")
    assert "欢迎加入" in (await say(kefu, 4002, f"/start {fresh}"))["plain"]  # the code itself was not spent


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("\u200b\u200c\u200d", "不能为空"),  # zero-width only
        ("\u202e\u2066 \u3000\t", "不能为空"),  # bidi controls and spaces
        ("\u3164\u115f", "不能为空"),  # Hangul fillers draw nothing
        ("一二三四五六七八九十一二三四五六七八九十一", "最多 20 个字符"),
        ("小美", "已被其他成员使用"),  # A1's Telegram name
        ("李主管", "已被其他成员使用"),
    ],
)
async def test_display_names_are_checked(team, name, expected):
    kefu = team
    reply = await say(kefu, A2, f"/me 姓名 {name}")
    assert expected in reply["plain"], reply["plain"]
    assert (await kefu.svc.people.get(A2)).display_name is None


async def test_display_names_compare_after_nfkc_and_case_folding_and_are_cleaned(team):
    kefu = team
    assert "Mei" in (await say(kefu, A1, "/me 姓名 Mei"))["plain"]
    assert "已被其他成员使用" in (await say(kefu, A2, "/me 姓名 ｍｅｉ"))["plain"]  # full-width, lower case
    assert "已被其他成员使用" in (await say(kefu, A2, "/me 姓名 MEI"))["plain"]
    await say(kefu, A2, "/me 姓名 小\u202e丽\u200b")
    assert (await kefu.svc.people.get(A2)).display_name == "小丽"
    await say(kefu, ADMIN, f"/deactivate {A1}")  # a deactivated member's name is free again
    assert "已被其他成员使用" not in (await say(kefu, N1, "/me 姓名 mei"))["plain"]
    assert (await kefu.svc.people.get(N1)).display_name == "mei"


async def test_the_author_of_a_handover_item_is_told_why_they_cannot_take_it_over(team):
    kefu = team
    await say(kefu, A1, "/handover 仓库还没回复补发")
    item_id = (await kefu.svc.db.fetchone("SELECT id FROM handover_items"))[0]
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    sent = await kefu.app.bot.send_message(A1, "按钮", reply_markup=InlineKeyboardMarkup(
        [[InlineKeyboardButton("接手", callback_data=f"ho:take:{item_id}")]]))
    query = await tap(kefu, A1, {"chat_id": A1, "message_id": sent.message_id}, f"ho:take:{item_id}")
    answer = kefu.emu.callback_answer(query)
    assert "自己写的" in answer["text"] and "接班的同事" in answer["text"]
