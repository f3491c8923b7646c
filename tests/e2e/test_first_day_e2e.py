"""Issue 16: the first day of a new team (start notice, names, joins, wording)."""

import shutil
from pathlib import Path

from tests.harness import ADMIN, start_kefu, stop_kefu

ROOT = Path(__file__).resolve().parents[2]


def _unset_notices(kefu):
    return [m["plain"] for m in kefu.emu.messages(ADMIN) if "还没设置好" in m["plain"]]


async def test_start_tells_admins_in_one_message_what_is_still_unset(tmp_path, clock):
    running = await start_kefu(tmp_path, clock)
    try:
        notices = _unset_notices(running)
        assert len(notices) == 1, notices
        text = notices[0]
        assert "还没有人排班" in text and "/setshift" in text and "白班" in text
        assert "示例值" in text and "400-000-0000" in text
        assert "没有设置团队群" in text and "KEFU_TEAM_CHAT_ID" in text
    finally:
        await stop_kefu(running)


async def test_nothing_unset_means_no_start_notice(tmp_path, clock):
    kb_dir = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", kb_dir)
    policy = kb_dir / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    start = text.index("example_values:")
    policy.write_text(text[:start] + "example_values: []" + text[text.index("\n", start):], encoding="utf-8")
    running = await start_kefu(tmp_path, clock, kefu_kb_dir=kb_dir, kefu_team_chat_id=-100123)
    await running.add_person(2001, shift="day")
    before = len(_unset_notices(running))  # the first start had no shifts yet
    await running.restart()
    try:
        assert len(_unset_notices(running)) == before, running.texts(ADMIN)
    finally:
        await stop_kefu(running)


async def test_people_are_named_by_display_name_and_told_of_changes(tmp_path, clock):
    from bot.people import Role

    running = await start_kefu(tmp_path, clock)
    try:
        await running.say(ADMIN, "/start")
        await running.add_person(2001, name="小美", shift=None)
        await running.add_person(2002, name="小美", shift=None, employee_no="KF002")
        await running.add_person(2003, name="阿强", shift=None)
        await running.add_person(2010, Role.SUPERVISOR, name="李主管")
        reply = await running.say(ADMIN, "/setshift 阿强 白班")
        assert "班次" in reply["plain"] and "白班" in reply["plain"]
        told = running.texts(2003)[-1]
        assert "老板" in told and "白班" in told, told
        refused = await running.say(ADMIN, "/setshift 小美 晚班")
        assert "多位成员" in refused["plain"] and "KF002" in refused["plain"], refused["plain"]
        assert running.texts(2001) == [] and running.texts(2002) == []
        await running.say(ADMIN, "/setrole 阿强 主管")
        assert "主管" in running.texts(2003)[-1] and "角色" in running.texts(2003)[-1]
        # usage and errors name roles and shifts in Chinese
        bad = await running.say(ADMIN, "/setshift 阿强 早班")
        assert "白班" in bad["plain"] and "不排班" in bad["plain"] and "none" not in bad["plain"]
        no_right = await running.say(2010, "/setrole 阿强 客服")
        assert "需要管理员权限" in no_right["plain"] and "及以上" not in no_right["plain"]
        await running.say(ADMIN, "/setshift 阿强 不排班")
        assert "未排班" in running.texts(2003)[-1]
        # the words for "no shift" come from labels.yaml (shift_off_words)
        await running.say(ADMIN, "/setshift 阿强 晚班")
        assert "晚班" in running.texts(2003)[-1]
        await running.say(ADMIN, "/setshift 阿强 休息")
        assert "未排班" in running.texts(2003)[-1]
    finally:
        await stop_kefu(running)


async def test_inviter_is_told_when_the_invitation_is_used_and_welcome_offers_a_free_no(tmp_path, clock):
    from bot.people import Role

    running = await start_kefu(tmp_path, clock)
    try:
        await running.add_person(2010, Role.SUPERVISOR, name="李主管", employee_no="KF001")
        invite = await running.say(2010, "/invite 客服")
        code = invite["plain"].split("start=")[1].split()[0]
        running.emu.add_user(3001, "新人", username="newbie")
        welcome = await running.say(3001, f"/start {code}")
        assert "欢迎加入" in welcome["plain"]
        assert "KF002" in welcome["plain"] and "KF001" not in welcome["plain"]
        told = running.texts(2010)[-1]
        assert "新人" in told and "加入" in told and "/setshift" in told
        help_text = (await running.say(3001, "/help"))["plain"]
        assert "/cancel" in help_text
    finally:
        await stop_kefu(running)


async def test_one_tap_broadcast_to_everyone_with_receipt_and_urgent_is_never_silent(kefu):
    from tests.broadcast_helpers import SUP, add_team, draft_id, message, say, send, tap

    await add_team(kefu)
    panel = await say(kefu, SUP, "/broadcast 今晚盘点")
    b = draft_id(panel)
    assert f"bc:{b}:qk" in str(panel["reply_markup"])
    await tap(kefu, SUP, panel, f"bc:{b}:qk")
    preview = message(kefu, SUP, panel["message_id"])
    assert "预览" in preview["plain"] and "全体成员" in preview["plain"] and "🔔 正常提醒" in preview["plain"]
    assert "需" in preview["plain"] and "回执" in preview["plain"], preview["plain"]
    done = await send(kefu, SUP, preview)
    assert "已发送" in done["plain"]
    assert "通知 #1 发送完成" in done["plain"], done["plain"]  # first broadcast of a fresh database
    # urgent: the silent question is answered (ringing) and a forged "silent" is refused
    panel = await say(kefu, SUP, "/broadcast 系统故障")
    b = draft_id(panel)
    for step in ("a:all", "ack:1", "urg:1"):
        await tap(kefu, SUP, message(kefu, SUP, panel["message_id"]), f"bc:{b}:{step}")
    current = message(kefu, SUP, panel["message_id"])
    assert "静音" not in str(current["reply_markup"]), current
    draft = await kefu.svc.broadcasts.get(b)
    assert draft.urgent and draft.silent is False or draft.silent == 0


async def test_schedule_in_next_year_is_pointed_out_before_saving(kefu):
    from tests.broadcast_helpers import SUP, add_team, draft_id, message, say, tap

    await add_team(kefu)
    panel = await say(kefu, SUP, "/schedule 11月1日 9:00 上新")
    b = draft_id(panel)
    await tap(kefu, SUP, panel, f"bc:{b}:qk")
    preview = message(kefu, SUP, panel["message_id"])
    next_year = kefu.clock.now().year + 1
    assert f"明年（{next_year} 年）" in preview["plain"] and "保存定时通知" in preview["plain"], preview["plain"]
    panel = await say(kefu, SUP, "/schedule 下周一 9:00 例会")
    b = draft_id(panel)
    await tap(kefu, SUP, panel, f"bc:{b}:qk")
    preview = message(kefu, SUP, panel["message_id"])
    assert "明年" not in preview["plain"] and "09:00" in preview["plain"]
    refused = await say(kefu, SUP, "/schedule 今天 0:01 早会")
    assert "明天 00:01" in refused["plain"], refused["plain"]


async def test_schedule_numbers_are_the_saved_ones_and_an_identical_schedule_is_refused(kefu):
    from tests.broadcast_helpers import SUP, add_team, draft_id, message, say, tap

    await add_team(kefu)
    saved = []
    for _ in range(2):
        panel = await say(kefu, SUP, "/schedule 每周一 08:00 例会")
        b = draft_id(panel)
        assert f"#{b}" not in panel["plain"]  # the draft shows no number of its own
        await tap(kefu, SUP, panel, f"bc:{b}:qk")
        preview = message(kefu, SUP, panel["message_id"])
        assert f"#{b}" not in preview["plain"]
        query = await tap(kefu, SUP, preview, f"bc:{b}:go")
        saved.append(message(kefu, SUP, panel["message_id"])["plain"] + (kefu.emu.callback_answer(query).get("text") or ""))
    assert "已保存定时通知 #1" in saved[0], saved[0]
    assert "一模一样的定时通知 #1" in saved[1], saved[1]
    assert len(await kefu.svc.broadcasts.schedules()) == 1


async def test_broadcasts_and_schedules_are_numbered_from_one_without_visible_gaps(kefu):
    """Drafts, schedule templates and sent broadcasts share one internal id sequence; what the
    users see is each thing's own number: the first sent broadcast is 通知 #1 even after a saved
    schedule and a cancelled draft, a fired schedule takes the next one, schedules run 1, 2."""
    from tests.broadcast_helpers import SUP, A1, add_team, callback_data, compose, copies, draft_id, message, press, say, send, tap
    from tests.conftest import local

    await add_team(kefu)
    kefu.clock.set(local("2026-11-23 10:00"))
    panel = await say(kefu, SUP, "/schedule 每天 11:00 午间巡检")
    await tap(kefu, SUP, panel, f"bc:{draft_id(panel)}:qk")
    saved = await press(kefu, SUP, message(kefu, SUP, panel["message_id"]), "go")
    assert "已保存定时通知 #1" in saved["plain"], saved["plain"]
    dropped = await say(kefu, SUP, "/broadcast 写错了")
    await press(kefu, SUP, dropped, "x")
    assert draft_id(dropped) == 2  # internal ids 1 and 2 are taken …

    panel = await compose(kefu, SUP, "/broadcast 第一条通知", "a:all")
    assert "#" not in panel["plain"], panel["plain"]  # a draft has no number
    first = draft_id(panel)
    done = await send(kefu, SUP, panel)
    assert "通知 #1 发送完成" in done["plain"], done["plain"]  # … yet the first broadcast is #1
    assert "📋 #1 回执" in str(done["reply_markup"]) and f"bc:{first}:ros" in callback_data(done)
    [copy] = copies(kefu, A1, "第一条通知")
    assert "通知 #1 ·" in copy["plain"] and callback_data(copy) == [f"ack:{first}"]

    kefu.clock.set(local("2026-11-23 11:00"))
    await kefu.tick()
    fired = await kefu.emu.wait_for_message(SUP, lambda m: "发送完成" in m["plain"] and "#2" in m["plain"], timeout=10)
    assert "通知 #2 发送完成" in fired["plain"], fired["plain"]
    [copy] = copies(kefu, A1, "午间巡检")
    assert "定时通知 #2 ·" in copy["plain"], copy["plain"]

    panel = await compose(kefu, SUP, "/broadcast 第三条通知", "a:all")
    third = draft_id(panel)
    done = await send(kefu, SUP, panel)
    assert "通知 #3 发送完成" in done["plain"], done["plain"]
    panel = await say(kefu, SUP, "/schedule 每天 18:00 晚间巡检")
    await tap(kefu, SUP, panel, f"bc:{draft_id(panel)}:qk")
    saved = await press(kefu, SUP, message(kefu, SUP, panel["message_id"]), "go")
    assert "已保存定时通知 #2" in saved["plain"], saved["plain"]

    listing = (await say(kefu, SUP, "/broadcasts"))["plain"]
    shown = [line.split()[0] for line in listing.splitlines() if line.startswith("#")]
    assert shown == ["#3", "#2", "#1"], listing
    await tap(kefu, SUP, {"chat_id": SUP, "message_id": done["message_id"]}, f"bc:{third}:ros")
    roster = kefu.emu.last_message(SUP)
    assert "通知 #3 回执" in roster["plain"], roster["plain"]


async def test_handover_items_and_cases_are_numbered_from_one_and_never_reuse_a_number(kefu):
    """The same class as the broadcast numbers: the first handover item of a fresh database is
    #1 and the first case 售后#1; a withdrawn item keeps its number, refused input takes none."""
    from tests.broadcast_helpers import A1, A2, add_team

    await add_team(kefu)
    first = await kefu.say(A1, "/handover 买家等回复颜色")
    assert "#1 " in first["plain"], first["plain"]
    assert "太长" in (await kefu.say(A1, "/handover " + "长" * 1001))["plain"]  # refused: no number taken
    await kefu.press(A1, first, data="ho:wd:1")
    confirm = next(m for m in reversed(kefu.emu.messages(A1)) if "ho:wdy:1" in str(m.get("reply_markup")))
    await kefu.press(A1, confirm, data="ho:wdy:1")  # withdrawing asks to confirm
    assert (await kefu.svc.handover.get(1)).status == "withdrawn"
    second = await kefu.say(A2, "/handover 快递单号对不上")
    assert "#2 " in second["plain"] and "#1 " not in second["plain"], second["plain"]

    opened = await kefu.say(A1, "/case 买家要求仅退款")
    assert "售后#1" in opened["plain"], opened["plain"]
    missing = await kefu.say(A1, "/case #99")
    assert "售后#1" not in missing["plain"]
    opened = await kefu.say(A2, "/case 少件")
    assert "售后#2" in opened["plain"], opened["plain"]
