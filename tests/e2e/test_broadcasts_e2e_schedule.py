"""End to end through the emulator: scheduled announcements (weekly at the right local time,
restored at start, missed ones sent within grace or reported, pause/delete) and a restart in
the middle of a broadcast (everyone gets it exactly once)."""

import pytest

from bot.clock import to_ts
from bot.people import Role
from tests.broadcast_helpers import (
    A1,
    A2,
    N1,
    SUP,
    SUP2,
    add_team,
    callback_data,
    copies,
    draft_id,
    message,
    press,
    say,
    tap,
    tiny_png,
)
from tests.conftest import local
from tests.harness import ADMIN

EVERYONE = (ADMIN, SUP2, A1, A2, N1)


@pytest.fixture
async def team(kefu):
    await add_team(kefu)
    return kefu


async def make_schedule(kefu, command: str, audience: str = "a:all", *, ack: bool = True) -> dict:
    panel = await say(kefu, SUP, command)
    for suffix in (*audience.split("|"), f"ack:{int(ack)}", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    return panel


async def wait_done(kefu, chat_id: int, count: int = 1) -> dict:
    return await kefu.emu.wait_for_message(chat_id, lambda m: "发送完成" in m["plain"], count=count, timeout=10)


async def test_weekly_schedule_fires_at_the_right_local_time_once(team):
    kefu = team
    kefu.clock.set(local("2026-11-22 20:00"))  # Sunday evening
    panel = await make_schedule(kefu, "/schedule 每周一 08:00 周一例会 08:30 开始，请准时")
    assert "每周一 08:00" in panel["plain"] and "下次 2026-11-23 08:00" in panel["plain"]
    assert "周一例会 08:30 开始" in panel["plain"]
    panel = await press(kefu, SUP, panel, "go")
    assert "已保存定时通知 #1" in panel["plain"] and "周一" in panel["plain"]
    listing = await say(kefu, SUP, "/schedules")
    assert "#1" in listing["plain"] and "每周一 08:00" in listing["plain"] and "2026-11-23 08:00" in listing["plain"]

    kefu.clock.set(local("2026-11-23 07:59"))
    await kefu.tick()
    assert all(copies(kefu, chat, "周一例会") == [] for chat in EVERYONE)
    kefu.clock.set(local("2026-11-23 08:00"))  # 00:00 UTC: local time is what counts
    await kefu.tick()
    await wait_done(kefu, SUP)
    for chat in EVERYONE:
        [copy] = copies(kefu, chat, "周一例会")
        assert "定时通知" in copy["plain"] and callback_data(copy)[0].startswith("ack:")
    assert [m for m in copies(kefu, SUP, "周一例会") if "定时通知 ·" in m["plain"]] == []  # the author is not a recipient

    kefu.clock.set(local("2026-11-23 08:01"))
    await kefu.tick()
    await kefu.restart()  # a restart neither loses nor repeats it
    kefu.clock.set(local("2026-11-23 08:10"))
    await kefu.tick()
    assert all(len(copies(kefu, chat, "周一例会")) == 1 for chat in EVERYONE)
    schedule = await kefu.svc.broadcasts.get_schedule(1)
    assert schedule.next_run == to_ts(local("2026-11-30 08:00"))

    kefu.clock.set(local("2026-11-30 08:00"))
    await kefu.tick()
    await wait_done(kefu, SUP, count=2)
    assert all(len(copies(kefu, chat, "周一例会")) == 2 for chat in EVERYONE)
    listing = await say(kefu, SUP, "/broadcasts")
    assert "⏰定时" in listing["plain"]


async def test_schedule_missed_while_down_is_sent_once_within_grace_else_reported(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 08:00"))
    panel = await make_schedule(kefu, "/schedule 每天 09:00 早会签到", "a:r|a:r:agent", ack=False)
    await press(kefu, SUP, panel, "go")
    await kefu.restart()
    kefu.clock.set(local("2026-11-23 09:20"))  # the bot was down at 09:00, back within 30 minutes
    await kefu.restart()
    await kefu.tick()
    await wait_done(kefu, SUP)
    await kefu.tick()
    assert all(len(copies(kefu, chat, "早会签到")) == 1 for chat in (A1, A2, N1))

    kefu.clock.set(local("2026-11-24 10:30"))  # down again over 09:00, back 90 minutes late
    await kefu.restart()
    await kefu.tick()
    # the report among what the supervisor got then (the morning review comes on the same tick)
    [missed] = [m for m in kefu.emu.messages(SUP) if "错过了" in m["plain"]]
    assert "错过了" in missed["plain"] and "2026-11-24 09:00" in missed["plain"] and "2026-11-25 09:00" in missed["plain"]
    assert all(len(copies(kefu, chat, "早会签到")) == 1 for chat in (A1, A2, N1))
    await kefu.tick()
    assert len([m for m in kefu.emu.messages(SUP) if "错过了" in m["plain"]]) == 1  # reported once


async def test_schedules_can_be_paused_resumed_and_deleted(team):
    kefu = team
    for command in ("/schedule 每天 17:20 交班提醒", "/schedule 2026-12-01 09:00 双十二预热开始"):
        panel = await make_schedule(kefu, command)
        await press(kefu, SUP, panel, "go")
    listing = await say(kefu, SUP, "/schedules")
    assert "#1" in listing["plain"] and "#2" in listing["plain"] and "2026-12-01 09:00（一次）" in listing["plain"]
    await tap(kefu, SUP, listing, "sch:1:p")
    listing = message(kefu, SUP, listing["message_id"])
    assert "已暂停" in listing["plain"] and "sch:1:r" in callback_data(listing)
    kefu.clock.set(local("2026-11-23 17:20"))
    await kefu.tick()
    assert copies(kefu, A1, "交班提醒") == []
    kefu.clock.set(local("2026-11-23 18:00"))
    await tap(kefu, SUP, listing, "sch:1:r")
    listing = message(kefu, SUP, listing["message_id"])
    assert "2026-11-24 17:20" in listing["plain"]  # resumed from now: what fell due while paused is not sent
    await kefu.tick()
    assert copies(kefu, A1, "交班提醒") == []
    await tap(kefu, SUP, listing, "sch:2:d")
    listing = message(kefu, SUP, listing["message_id"])
    assert "确定删除定时通知 #2" in listing["plain"]
    await tap(kefu, SUP, listing, "sch:2:dd")
    listing = message(kefu, SUP, listing["message_id"])
    assert "#2" not in listing["plain"] and "#1" in listing["plain"]
    kefu.clock.set(local("2026-12-01 09:00"))
    await kefu.tick()
    assert copies(kefu, A1, "双十二预热") == []


async def test_schedule_a_replied_photo_and_bad_times(team):
    kefu = team
    assert "用法" in (await say(kefu, SUP, "/schedule"))["plain"]
    assert "没看懂通知时间" in (await say(kefu, SUP, "/schedule 下周找时间 开会"))["plain"]
    assert "已经过去" in (await say(kefu, SUP, "/schedule 2026-11-01 09:00 太晚了"))["plain"]
    assert "不是有效的时间" in (await say(kefu, SUP, "/schedule 每天 25:00 无效"))["plain"]
    assert "通知内容" in (await say(kefu, SUP, "/schedule 每天 09:00"))["plain"]
    photo = kefu.emu.send_photo(SUP, tiny_png(), caption="本周主推款")
    await kefu.emu.wait_until_idle()
    kefu.emu.send_text(SUP, "/schedule 明天 9:00", reply_to_message_id=photo["message_id"])
    await kefu.emu.wait_until_idle()
    panel = kefu.emu.last_message(SUP)
    assert "[图片]" in panel["plain"] and "2026-11-24 09:00（一次）" in panel["plain"]
    for suffix in ("a:duty", "ack:1", "urg:0", "sil:0", "go"):
        panel = await press(kefu, SUP, panel, suffix)
    kefu.clock.set(local("2026-11-24 09:00"))
    await kefu.tick()
    await wait_done(kefu, SUP)
    for chat in (A1, A2):
        [copy] = [m for m in kefu.emu.messages(chat) if m["photo"]]
        assert "本周主推款" in copy["plain"]
    assert [m for m in kefu.emu.messages(N1) if m["photo"]] == []


async def test_restart_mid_broadcast_everyone_gets_it_exactly_once(team):
    kefu = team
    many = list(range(5000, 5060))
    for tg_id in many:
        await kefu.add_person(tg_id, Role.AGENT, shift="night")
    panel = await say(kefu, SUP, "/broadcast 重启测试：今晚 22 点系统升级")
    for suffix in ("a:s1", "ack:1", "urg:0", "sil:0"):
        panel = await press(kefu, SUP, panel, suffix)
    bid = draft_id(panel)
    kefu.emu.press_button(SUP, SUP, panel["message_id"], data=f"bc:{bid}:go")  # no waiting: stop midway

    def delivered_copies() -> int:
        return sum(1 for r in kefu.emu.requests("sendMessage") if r["status"] == 200
                   and r["params"]["chat_id"] != SUP and "重启测试" in str(r["params"].get("text")))

    await kefu.emu.wait_for_request("sendMessage", lambda e: delivered_copies() >= 10)
    await kefu.restart()
    counts = await kefu.svc.broadcasts.counts(bid)
    assert 10 <= counts.sent < len(many) + 2 and counts.pending > 0 and counts.failed == 0
    paused = message(kefu, SUP, panel["message_id"])
    assert "暂停" in paused["plain"] and "不会重复" in paused["plain"]
    before = delivered_copies()
    assert before == counts.sent

    await kefu.tick()  # the first tick after the start resumes it
    done = await kefu.emu.wait_for_message(
        SUP, lambda m: m["message_id"] == panel["message_id"] and "发送完成" in m["plain"], timeout=10
    )
    total = len(many) + 2  # plus 王主管 and 阿强 on the night shift
    assert f"已发送 {total}/{total}" in done["plain"]
    for chat in (*many, SUP2, N1):
        assert len(copies(kefu, chat, "重启测试")) == 1, chat
    assert delivered_copies() == total
    await kefu.tick()  # nothing left to resume
    assert delivered_copies() == total
