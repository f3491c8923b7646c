"""End to end through the emulator: composing, previews, delivery, acknowledgement, rosters,
reminders and urgent re-notify (issue 7). Scheduled announcements and restarts are in
test_broadcasts_e2e_schedule.py."""

import pytest

from bot.people import Role
from handlers import broadcast_delivery
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
    press_forged,
    say,
    send,
    tap,
    tiny_png,
)
from tests.conftest import local
from tests.harness import ADMIN


@pytest.fixture
async def team(kefu):
    await add_team(kefu)
    return kefu


AUDIENCES = {
    "everyone": ("a:all", {ADMIN, SUP2, A1, A2, N1}),
    "day shift": ("a:s0", {A1, A2}),
    "night shift": ("a:s1", {SUP2, N1}),
    "on duty now": ("a:duty", {A1, A2}),
    "a role": ("a:r|a:r:agent", {A1, A2, N1}),
    "chosen agents": (f"a:p|pk:{A2}:0|pk:{N1}:0|pk:{A1}:0|pk:{A1}:0|pd", {A2, N1}),
}


@pytest.mark.parametrize("name", list(AUDIENCES))
async def test_composing_with_each_audience_reaches_exactly_that_audience(team, name):
    kefu = team
    steps, expected = AUDIENCES[name]
    panel = await compose(kefu, SUP, f"/broadcast 明天上新 <b>{name}</b>", steps)
    assert "预览" in panel["plain"] and f"共 {len(expected)} 人" in panel["plain"]
    assert f"明天上新 <b>{name}</b>" in panel["plain"]  # the copy as recipients will see it, typed tags kept as text
    done = await send(kefu, SUP, panel)
    assert f"已发送 {len(expected)}/{len(expected)}" in done["plain"]
    got = {chat for chat in (ADMIN, SUP, SUP2, A1, A2, N1) if copies(kefu, chat, f"明天上新 <b>{name}</b>")}
    assert got == expected
    for chat in expected:
        assert len(copies(kefu, chat, "明天上新")) == 1


async def test_preview_shows_choices_and_cancel_sends_nothing(team):
    kefu = team
    panel = await say(kefu, SUP, "/broadcast 仓库延迟发货，今天的单明天发")
    bid = draft_id(panel)
    assert "第 1 步" in panel["plain"]
    panel = await press(kefu, SUP, panel, "a:all")
    assert "第 2 步" in panel["plain"]
    panel = await press(kefu, SUP, panel, "ack:1")
    panel = await press(kefu, SUP, panel, "urg:0")
    panel = await press(kefu, SUP, panel, "sil:1")
    assert "预览" in panel["plain"] and "仓库延迟发货" in panel["plain"]
    assert "需要大家点“收到”" in panel["plain"] and "静音" in panel["plain"]
    assert any(d.endswith(":go") for d in callback_data(panel)) and any(d.endswith(":x") for d in callback_data(panel))
    panel = await press(kefu, SUP, panel, "x")
    assert "已取消" in panel["plain"] and callback_data(panel) == []
    for chat in (ADMIN, SUP2, A1, A2, N1):
        assert copies(kefu, chat, "仓库延迟发货") == []
    # an old 发送 button (forged, the panel has none left) cannot bring the cancelled draft back
    query = await press_forged(kefu, SUP, f"bc:{bid}:go")
    assert "已取消" in kefu.emu.callback_answer(query)["text"]


async def test_pressing_send_twice_sends_once(team):
    kefu = team
    panel = await compose(kefu, SUP, "/broadcast 只发一次", "a:r|a:r:agent", ack=False)
    data = f"bc:{draft_id(panel)}:go"
    kefu.emu.press_button(SUP, SUP, panel["message_id"], data=data)
    await kefu.emu.wait_until_idle()
    query = await press_forged(kefu, SUP, data)  # a double tap arriving after the first
    assert "已经发出" in kefu.emu.callback_answer(query)["text"]
    for chat in (A1, A2, N1):
        assert len(copies(kefu, chat, "只发一次")) == 1


async def test_reply_to_a_photo_broadcasts_the_photo_with_its_caption(team):
    kefu = team
    photo = kefu.emu.send_photo(SUP, tiny_png(), caption="新品 <图> 主图，请熟悉卖点")
    await kefu.emu.wait_until_idle()
    kefu.emu.send_text(SUP, "/broadcast", reply_to_message_id=photo["message_id"])
    await kefu.emu.wait_until_idle()
    panel = kefu.emu.last_message(SUP)
    assert "[图片]" in panel["plain"]
    for suffix in ("a:r", "a:r:agent", "ack:1", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    assert "新品 <图> 主图" in panel["plain"]
    await send(kefu, SUP, panel)
    for chat in (A1, A2, N1):
        [copy] = [m for m in kefu.emu.messages(chat) if m["photo"]]
        assert copy["file_bytes"] == tiny_png()
        assert "新品 <图> 主图，请熟悉卖点" in copy["plain"] and "李主管" in copy["plain"]
        assert callback_data(copy) == [f"ack:{draft_id(panel)}"]
    # 收到 on a photo edits its caption
    copy = next(m for m in kefu.emu.messages(A1) if m["photo"])
    await tap(kefu, A1, copy, callback_data(copy)[0])
    edited = message(kefu, A1, copy["message_id"])
    assert "已确认收到" in edited["plain"] and callback_data(edited) == []


async def test_reply_to_a_document_with_new_caption(team):
    kefu = team
    doc = kefu.emu.send_document(SUP, "退换货新规.pdf", b"%PDF-1.4 test", caption="旧说明")
    await kefu.emu.wait_until_idle()
    kefu.emu.send_text(SUP, "/broadcast 12月1日起执行，请大家看完", reply_to_message_id=doc["message_id"])
    await kefu.emu.wait_until_idle()
    panel = kefu.emu.last_message(SUP)
    for suffix in ("a:duty", "ack:0", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    await send(kefu, SUP, panel)
    for chat in (A1, A2):
        [copy] = [m for m in kefu.emu.messages(chat) if m["document"]]
        assert copy["filename"] == "退换货新规.pdf" and "12月1日起执行" in copy["plain"] and "旧说明" not in copy["plain"]
    assert [m for m in kefu.emu.messages(N1) if m["document"]] == []


async def test_a_photo_captioned_with_the_command_is_broadcast(team):
    kefu = team
    before = len(kefu.emu.messages(SUP))
    kefu.emu.send_photo(SUP, tiny_png(), caption="/broadcast 今天的爆款主图")
    panel = await kefu.emu.wait_for_message(SUP, count=before + 1)
    assert "[图片]" in panel["plain"] and "今天的爆款主图" in panel["plain"]
    for suffix in ("a:s1", "ack:0", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    await send(kefu, SUP, panel)
    for chat in (SUP2, N1):
        [copy] = [m for m in kefu.emu.messages(chat) if m["photo"]]
        assert "今天的爆款主图" in copy["plain"] and "/broadcast" not in copy["plain"]
    assert not any("不知道要做什么" in m["plain"] for m in kefu.emu.messages(SUP))
    refused = kefu.emu.send_photo(A1, tiny_png(), caption="/broadcast 客服也想发")
    await kefu.emu.wait_for_message(A1, lambda m: "权限" in m["plain"])
    assert refused and [m for m in kefu.emu.messages(N1) if "客服也想发" in m["plain"]] == []


@pytest.mark.real_pacing
async def test_progress_message_counts_up_while_sending(team, monkeypatch):
    kefu = team
    monkeypatch.setattr(broadcast_delivery, "PROGRESS_EVERY_SECONDS", 0.05)
    many = list(range(4000, 4040))
    for tg_id in many:
        await kefu.add_person(tg_id, Role.AGENT, shift="day")
    panel = await compose(kefu, SUP, "/broadcast 进度测试", "a:r|a:r:agent", ack=False)
    done = await send(kefu, SUP, panel)
    total = len(many) + 3
    assert f"已发送 {total}/{total}" in done["plain"]
    shown = [e["plain"] for e in done["edits"]]
    counts = [int(line.split()[1].split("/")[0]) for text in shown for line in text.splitlines() if line.startswith("已发送")]
    assert any(0 < n < total for n in counts), shown
    assert counts == sorted(counts)
    assert all(len(copies(kefu, chat, "进度测试")) == 1 for chat in many)


async def test_blocked_recipient_is_marked_and_skipped_others_still_get_it(team):
    kefu = team
    kefu.emu.block_bot(A2)
    panel = await compose(kefu, SUP, "/broadcast 今晚盘点", "a:r|a:r:agent")
    done = await send(kefu, SUP, panel)
    assert "无法送达 1" in done["plain"] and "已发送 3/3" in done["plain"]
    assert copies(kefu, A1, "今晚盘点") and copies(kefu, N1, "今晚盘点")
    assert (await kefu.svc.people.get(A2)).blocked_at is not None
    await tap(kefu, SUP, done, f"bc:{draft_id(panel)}:ros")
    roster = kefu.emu.last_message(SUP)
    assert "无法送达 1 人" in roster["plain"] and "小丽" in roster["plain"].split("无法送达")[1]
    # next time they are skipped without a request (marked), until they unblock
    sends_before = len(kefu.emu.requests("sendMessage"))
    panel = await compose(kefu, SUP, "/broadcast 第二条", "a:r|a:r:agent", ack=False)
    await send(kefu, SUP, panel)
    tried = [r["params"]["chat_id"] for r in kefu.emu.requests("sendMessage")[sends_before:]]
    assert A2 not in tried and A1 in tried


@pytest.mark.real_pacing
async def test_a_429_in_the_middle_waits_and_delivers_everyone_once(team):
    kefu = team
    kefu.emu.inject_fault(method="sendMessage", kind="429", count=1, retry_after=1, chat_id=A2)
    panel = await compose(kefu, SUP, "/broadcast 限流测试", "a:all", ack=False)
    await send(kefu, SUP, panel)
    assert kefu.emu.stats["429"] == 1
    for chat in (ADMIN, SUP2, A1, A2, N1):
        assert len(copies(kefu, chat, "限流测试")) == 1, chat


@pytest.mark.real_pacing
async def test_delivery_stays_under_the_flood_limit(team):
    """With the emulator enforcing 30 messages/s, the paced delivery never draws a 429."""
    kefu = team
    kefu.emu.set_rate_limit(30)
    many = list(range(6000, 6045))
    for tg_id in many:
        await kefu.add_person(tg_id, Role.AGENT, shift="night")
    panel = await compose(kefu, SUP, "/broadcast 限速测试", "a:s1", ack=False)
    await send(kefu, SUP, panel)
    assert kefu.emu.stats["429"] == 0
    assert all(len(copies(kefu, chat, "限速测试")) == 1 for chat in (*many, SUP2, N1))


async def test_acknowledgement_and_roster(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 10:00"))
    panel = await compose(kefu, SUP, "/broadcast 新规：七天无理由不含定制款", "a:r|a:r:agent")
    bid = draft_id(panel)
    await send(kefu, SUP, panel)
    [copy] = copies(kefu, A1, "七天无理由")
    assert callback_data(copy) == [f"ack:{bid}"]
    kefu.clock.set(local("2026-11-23 10:05"))
    query = await tap(kefu, A1, copy, f"ack:{bid}")
    assert "已确认" in kefu.emu.callback_answer(query)["text"]
    edited = message(kefu, A1, copy["message_id"])
    assert "已确认收到（11-23 10:05）" in edited["plain"] and callback_data(edited) == []
    # pressing again (a stale client) records nothing new
    kefu.clock.set(local("2026-11-23 10:30"))
    query = await press_forged(kefu, A1, f"ack:{bid}")
    assert "已经确认过" in kefu.emu.callback_answer(query)["text"]
    # someone who was not a recipient cannot acknowledge
    query = await press_forged(kefu, SUP2, f"ack:{bid}")
    assert "不是发给您的" in kefu.emu.callback_answer(query)["text"]
    listing = await say(kefu, SUP, "/broadcasts")
    assert f"#{bid}" in listing["plain"] and "送达 3/3" in listing["plain"] and "已确认 1" in listing["plain"]
    await tap(kefu, SUP, listing, f"bc:{bid}:ros")
    roster = kefu.emu.last_message(SUP)
    acked, waiting = roster["plain"].split("未确认")
    assert "已确认 1 人" in acked and "小美" in acked and "11-23 10:05" in acked
    assert "小丽" in waiting and "阿强" in waiting and "小美" not in waiting
    assert f"bc:{bid}:rem" in callback_data(roster)


async def test_remind_the_rest_reaches_only_those_who_have_not_acknowledged(team):
    kefu = team
    panel = await compose(kefu, SUP, "/broadcast 周五前提交排班意向", "a:r|a:r:agent")
    bid = draft_id(panel)
    await send(kefu, SUP, panel)
    [copy] = copies(kefu, A1, "周五前提交")
    await tap(kefu, A1, copy, f"ack:{bid}")
    await tap(kefu, SUP, message(kefu, SUP, panel["message_id"]), f"bc:{bid}:ros")
    roster = kefu.emu.last_message(SUP)
    assert "提醒未确认的 2 人" in str(roster["reply_markup"])
    query = await tap(kefu, SUP, roster, f"bc:{bid}:rem")
    assert "正在提醒 2 人" in kefu.emu.callback_answer(query)["text"]
    summary = await kefu.emu.wait_for_message(SUP, lambda m: "已提醒 2 人" in m["plain"])
    assert "小丽" in summary["plain"] and "阿强" in summary["plain"]
    assert [m for m in kefu.emu.messages(A1) if "请确认这条通知" in m["plain"]] == []
    [reminder] = [m for m in kefu.emu.messages(N1) if "请确认这条通知" in m["plain"]]
    [original] = [m for m in copies(kefu, N1, "周五前提交") if m is not reminder and "请确认这条通知" not in m["plain"]]
    assert reminder["reply_to_message_id"] == original["message_id"]
    # 收到 on the reminder acknowledges and edits both the reminder and the copy
    await tap(kefu, N1, reminder, f"ack:{bid}")
    assert "已确认收到" in message(kefu, N1, reminder["message_id"])["plain"]
    assert "已确认收到" in message(kefu, N1, original["message_id"])["plain"]
    assert (await kefu.svc.broadcasts.recipient(bid, N1)).acked_at is not None


async def test_urgent_renotify_on_duty_only_at_most_three_times_stopping_after_ack(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 17:00"))  # day shift until 17:30, night from 17:30
    panel = await compose(kefu, SUP, "/broadcast 系统故障，暂停发货", "a:all", urgent=True, ack=False)
    assert "紧急" in panel["plain"] and "需要大家点“收到”" in panel["plain"]  # urgent implies acknowledgement
    bid = draft_id(panel)
    await send(kefu, SUP, panel)
    assert "紧急通知" in copies(kefu, A1, "系统故障")[0]["plain"]

    def renotices(chat):  # acknowledged reminders are edited down to one line: look at their history too
        return [m for m in kefu.emu.messages(chat)
                if any("紧急通知，请尽快确认" in v["plain"] for v in (m, *m["edits"]))]

    kefu.clock.set(local("2026-11-23 17:05"))
    await kefu.tick()
    assert renotices(A1) == []  # not yet 10 minutes
    kefu.clock.set(local("2026-11-23 17:10"))
    await kefu.tick()
    assert len(renotices(A1)) == 1 and len(renotices(A2)) == 1
    assert renotices(N1) == [] and renotices(SUP2) == []  # night shift is not on duty yet
    assert renotices(ADMIN) == []  # no shift: never on duty
    await tap(kefu, A2, renotices(A2)[0], f"ack:{bid}")  # A2 acknowledges: stops for A2
    kefu.clock.set(local("2026-11-23 17:20"))
    await kefu.tick()
    assert len(renotices(A1)) == 2 and len(renotices(A2)) == 1
    kefu.clock.set(local("2026-11-23 17:30"))  # night shift starts, day ends
    await kefu.tick()
    assert len(renotices(A1)) == 2 and len(renotices(N1)) == 1 and len(renotices(SUP2)) == 1
    for minute in ("17:40", "17:50", "18:00", "18:10"):
        kefu.clock.set(local(f"2026-11-23 {minute}"))
        await kefu.tick()
    assert len(renotices(N1)) == 3  # at most three
    assert "第 3 次提醒" in renotices(N1)[-1]["plain"]
    kefu.clock.set(local("2026-11-24 09:00"))  # next morning A1 is on duty again
    await kefu.tick()
    assert len(renotices(A1)) == 3
    kefu.clock.set(local("2026-11-24 09:30"))
    await kefu.tick()
    assert len(renotices(A1)) == 3


async def test_pin_in_the_team_group_and_silent_copies(tmp_path, clock, monkeypatch):
    from tests.harness import start_kefu, stop_kefu

    monkeypatch.chdir(tmp_path)
    kefu = await start_kefu(tmp_path, clock, kefu_team_chat_id=-100777)
    try:
        kefu.emu.add_group(-100777, "客服团队群", member_ids=[ADMIN, SUP, A1], admin_ids=[])
        await add_team(kefu)
        panel = await compose(kefu, SUP, "/broadcast 双十二活动规则", "a:duty", ack=True, silent=True, pin=True)
        assert "置顶到团队群" in panel["plain"]
        await send(kefu, SUP, panel)
        [group_copy] = copies(kefu, -100777, "双十二活动规则")
        assert group_copy["pinned"] and "私聊" in group_copy["plain"] and callback_data(group_copy) == []
        [copy] = copies(kefu, A1, "双十二活动规则")
        assert copy["disable_notification"]
    finally:
        await stop_kefu(kefu)


async def test_agents_are_refused_when_they_try_to_broadcast(team):
    kefu = team
    for command in ("/broadcast 我也想发通知", "/broadcasts", "/schedule 每天 09:00 打卡", "/schedules"):
        reply = await say(kefu, A1, command)
        assert "权限" in reply["plain"], command
    panel = await say(kefu, SUP, "/broadcast 主管的草稿")
    query = await press_forged(kefu, A1, f"bc:{draft_id(panel)}:a:all")
    answer = kefu.emu.callback_answer(query)
    assert answer["show_alert"] and "权限" in answer["text"]
    for chat in (A2, N1, SUP2):
        assert copies(kefu, chat, "我也想发通知") == [] and copies(kefu, chat, "主管的草稿") == []
    # another supervisor cannot drive someone else's draft either
    query = await press_forged(kefu, SUP2, f"bc:{draft_id(panel)}:a:all")
    assert "发起人" in kefu.emu.callback_answer(query)["text"]


async def test_bad_input_gets_a_clear_message(team):
    kefu = team
    assert "用法" in (await say(kefu, SUP, "/broadcast"))["plain"]
    assert "太长" in (await say(kefu, SUP, "/broadcast " + "长" * 4100))["plain"]
    kefu.emu.add_group(-100900, "群", member_ids=[SUP])
    kefu.emu.send_text(SUP, "/broadcast 群里发", chat_id=-100900)  # not the team chat: nothing, and it leaves
    await kefu.emu.wait_until_idle()
    assert kefu.emu.messages(-100900) == [] and kefu.emu.left_chats() == [-100900]
    panel = await say(kefu, SUP, "/broadcast 没有人在岗")
    kefu.clock.set(local("2026-11-23 03:00"))  # nobody is on duty at 03:00
    panel = await press(kefu, SUP, panel, "a:duty")
    for suffix in ("ack:0", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    assert "共 0 人" in panel["plain"] and not any(d.endswith(":go") for d in callback_data(panel))
    panel = await press(kefu, SUP, panel, "redo")
    assert "第 1 步" in panel["plain"]
