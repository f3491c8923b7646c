"""End to end through the emulator: joining, refusing strangers, roles, shifts, 429 retries."""

import re

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import access
from bot.people import Role
from tests.conftest import local
from tests.harness import ADMIN

AGENT, SUPERVISOR, STRANGER, OTHER = 2001, 2002, 2999, 2003
REFUSAL = "需要主管邀请"


async def test_admin_bootstrap_on_first_start(kefu):
    reply = await kefu.say(ADMIN, "/start")
    assert "管理员" in reply["plain"]
    person = await kefu.svc.people.get(ADMIN)
    assert person.role == Role.ADMIN
    assert "/invite" in reply["plain"] and "/setrole" in reply["plain"]


async def test_invite_then_join_then_code_is_spent(kefu):
    await kefu.say(ADMIN, "/start")
    reply = await kefu.say(ADMIN, "/invite")
    match = re.search(r"https://t\.me/kefu_test_bot\?start=([\w-]+)", reply["plain"])
    assert match, reply["plain"]
    code = match.group(1)
    kefu.emu.add_user(AGENT, "小美", username="xiaomei")
    welcome = await kefu.say(AGENT, f"/start {code}")
    assert "欢迎加入" in welcome["plain"] and "客服" in welcome["plain"]
    assert (await kefu.svc.people.get(AGENT)).role == Role.AGENT
    kefu.emu.add_user(OTHER, "小明")
    again = await kefu.say(OTHER, f"/start {code}")
    assert "已经被使用" in again["plain"]
    assert await kefu.svc.people.get(OTHER) is None


async def test_expired_and_wrong_codes_are_refused_and_throttled(kefu):
    await kefu.say(ADMIN, "/start")
    reply = await kefu.say(ADMIN, "/invite supervisor")
    code = re.search(r"start=([\w-]+)", reply["plain"]).group(1)
    kefu.clock.advance(hours=25)
    kefu.emu.add_user(OTHER, "小明")
    assert "已过期" in (await kefu.say(OTHER, f"/start {code}"))["plain"]
    for _ in range(4):
        assert "邀请码无效" in (await kefu.say(OTHER, "/start wrongcode"))["plain"]
    assert "次数过多" in (await kefu.say(OTHER, "/start wrongcode"))["plain"]


async def test_stranger_gets_nothing_anywhere(kefu):
    await kefu.add_person(AGENT, Role.AGENT)
    kefu.emu.add_user(STRANGER, "路人")
    start = await kefu.say(STRANGER, "/start")
    assert REFUSAL in start["plain"] and str(STRANGER) in start["plain"]
    for text in ("/help", "/agents", "/me", "/s 退货", "/order 123", "退货运费谁出", "/nonsense"):
        reply = await kefu.say(STRANGER, text)
        assert REFUSAL in reply["plain"], text
    kefu.emu.send_document(STRANGER, "orders.csv", "订单编号\n1\n".encode())
    await kefu.emu.wait_until_idle()
    assert REFUSAL in kefu.emu.last_message(STRANGER)["plain"]
    # every reply to the stranger is a refusal, none carries team data
    assert all(REFUSAL in text for text in kefu.texts(STRANGER))
    assert not any("user2001" in text for text in kefu.texts(STRANGER))
    # a button forwarded from an agent's chat
    sent = await kefu.app.bot.send_message(
        AGENT, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("我来处理", callback_data="rem:claim:1")]])
    )
    query = kefu.emu.press_button(STRANGER, AGENT, sent.message_id, data="rem:claim:1")
    await kefu.emu.wait_until_idle()
    answer = kefu.emu.callback_answer(query)
    assert answer["show_alert"] and "邀请" in answer["text"]
    # inline mode
    inline = kefu.emu.inline_query(STRANGER, "退货")
    await kefu.emu.wait_until_idle()
    result = kefu.emu.inline_answer(inline)
    assert result["results"] == [] and result["button"]["start_parameter"] == "join"


async def test_deactivated_user_is_refused(kefu):
    await kefu.add_person(AGENT, Role.AGENT, active=False)
    for text in ("/start", "/help", "/me"):
        assert "已被停用" in (await kefu.say(AGENT, text))["plain"]


async def test_group_chatter_from_strangers_is_ignored(kefu):
    kefu.emu.add_user(STRANGER, "路人")
    kefu.emu.add_group(-100500, "客服群", member_ids=[ADMIN, STRANGER])
    kefu.emu.send_text(STRANGER, "大家好", chat_id=-100500)
    await kefu.emu.wait_until_idle()
    assert kefu.emu.messages(-100500) == []
    assert kefu.emu.left_chats() == [-100500]  # no team chat is configured: this group is not it


ROLES = {"stranger": None, "agent": Role.AGENT, "supervisor": Role.SUPERVISOR, "admin": Role.ADMIN}


@pytest.fixture
async def team(kefu):
    ids = {"stranger": STRANGER, "agent": AGENT, "supervisor": SUPERVISOR, "admin": ADMIN}
    kefu.emu.add_user(STRANGER, "路人")
    await kefu.add_person(AGENT, Role.AGENT)
    await kefu.add_person(SUPERVISOR, Role.SUPERVISOR)
    await kefu.say(ADMIN, "/start")
    return ids


async def test_role_matrix_for_every_command(kefu, team):
    registered = kefu.app.bot_data["registered_commands"]
    for name in sorted(registered - {"start"}):
        rule = access.command_rule(name)
        assert rule is not None, f"/{name} has a handler but no access rule"
        for role_name, role in ROLES.items():
            reply = await kefu.say(team[role_name], f"/{name}")
            text = reply["plain"] if reply else ""
            allowed = role is not None and role >= rule.min_role
            refused_for_role = "权限" in text and f"/{name}" in text
            if role is None:
                assert REFUSAL in text, (name, role_name, text)
            elif allowed:
                assert not refused_for_role and REFUSAL not in text, (name, role_name, text)
            else:
                assert refused_for_role, (name, role_name, text)


async def test_role_matrix_for_every_button_kind(kefu, team):
    for prefix, minimum in access.BUTTONS.items():
        for role_name, role in ROLES.items():
            chat = team[role_name]
            sent = await kefu.app.bot.send_message(
                chat, "按钮", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data=f"{prefix}:probe")]])
            )
            query = kefu.emu.press_button(chat, chat, sent.message_id, data=f"{prefix}:probe")
            await kefu.emu.wait_until_idle()
            answer = kefu.emu.callback_answer(query) or {}
            refused = bool(answer.get("show_alert")) and ("权限" in answer.get("text", "") or "邀请" in answer.get("text", ""))
            allowed = role is not None and role >= minimum
            assert refused != allowed, (prefix, role_name, answer)


async def test_unknown_button_prefix_is_refused_for_everyone(kefu, team):
    sent = await kefu.app.bot.send_message(
        ADMIN, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="zzz:1")]])
    )
    query = kefu.emu.press_button(ADMIN, ADMIN, sent.message_id, data="zzz:1")
    await kefu.emu.wait_until_idle()
    assert kefu.emu.callback_answer(query)["show_alert"]


async def test_help_lists_only_what_the_role_may_use(kefu, team):
    agent_help = (await kefu.say(AGENT, "/help"))["plain"]
    admin_help = (await kefu.say(ADMIN, "/help"))["plain"]
    assert "/me" in agent_help and "/invite" not in agent_help and "/setrole" not in agent_help
    assert "/invite" in admin_help and "/setrole" in admin_help


async def test_command_menu_is_registered_per_role(kefu, team):
    calls = kefu.emu.requests("setMyCommands")
    default = next(c for c in calls if "scope" not in c["params"] or c["params"]["scope"]["type"] == "default")
    names = {c["command"] for c in default["params"]["commands"]}
    assert "me" in names and "invite" not in names


async def test_supervisor_sets_shift_admin_sets_role(kefu, team):
    await kefu.say(AGENT, "/me 工号 KF007")
    reply = await kefu.say(SUPERVISOR, "/setshift KF007 night")
    assert "晚班" in reply["plain"]
    assert (await kefu.svc.people.get(AGENT)).shift == "night"
    assert "权限" in (await kefu.say(SUPERVISOR, "/setrole KF007 supervisor"))["plain"]
    assert "主管" in (await kefu.say(ADMIN, "/setrole KF007 主管"))["plain"]
    assert (await kefu.svc.people.get(AGENT)).role == Role.SUPERVISOR
    assert "找不到成员" in (await kefu.say(ADMIN, "/setrole KF404 agent"))["plain"]
    assert "不是有效角色" in (await kefu.say(ADMIN, "/setrole KF007 boss"))["plain"]
    assert "用法" in (await kefu.say(ADMIN, "/setrole"))["plain"]
    assert "已停用" in (await kefu.say(ADMIN, "/deactivate KF007"))["plain"]
    assert "已被停用" in (await kefu.say(AGENT, "/help"))["plain"]
    await kefu.say(ADMIN, "/activate KF007")
    assert "/help" in (await kefu.say(AGENT, "/help"))["plain"]


async def test_me_shows_and_edits_profile(kefu, team):
    reply = await kefu.say(AGENT, "/me 姓名 小美 <b>")
    assert "小美 <b>" in reply["plain"]  # echoed safely: HTML-escaped, the emulator parsed it
    assert "未登记" in reply["plain"]
    assert "工号" in (await kefu.say(AGENT, "/me 工号 !!"))["plain"]
    assert "KF001" in (await kefu.say(AGENT, "/me 工号 KF001"))["plain"]


async def test_agents_view_shows_who_is_on_duty_across_midnight(kefu, team):
    await kefu.add_person(2004, Role.AGENT, shift="night", name="夜班阿强")
    kefu.clock.set(local("2026-11-23 00:30"))
    lines = (await kefu.say(SUPERVISOR, "/agents"))["plain"].splitlines()
    night = next(line for line in lines if "夜班阿强" in line)
    day = next(line for line in lines if "user2001" in line)
    assert night.startswith("🟢") and day.startswith("⚪")
    kefu.clock.set(local("2026-11-23 01:00"))  # night shift just ended, nobody on
    lines = (await kefu.say(SUPERVISOR, "/agents"))["plain"].splitlines()
    members = [line for line in lines if " · " in line]
    assert len(members) == 4 and not any(line.startswith("🟢") for line in members)
    kefu.clock.set(local("2026-11-23 08:30"))
    lines = (await kefu.say(SUPERVISOR, "/agents"))["plain"].splitlines()
    assert next(line for line in lines if "user2001" in line).startswith("🟢")


@pytest.mark.real_pacing
async def test_a_429_is_retried_and_delivered_once(kefu, team):
    kefu.emu.inject_fault(method="sendMessage", kind="429", count=1, retry_after=1, chat_id=AGENT)
    reply = await kefu.say(AGENT, "/help")
    assert reply is not None and "/me" in reply["plain"]
    assert kefu.emu.stats["429"] == 1
    help_messages = [m for m in kefu.emu.messages(AGENT) if "/me" in m["plain"]]
    assert len(help_messages) == 1


async def test_blocked_user_is_marked_not_crashed(kefu, team):
    kefu.emu.block_bot(AGENT)
    kefu.emu.send_text(AGENT, "/help")
    await kefu.emu.wait_until_idle()
    assert (await kefu.svc.people.get(AGENT)).blocked_at is not None
    kefu.emu.unblock_bot(AGENT)
    assert "/me" in (await kefu.say(AGENT, "/help"))["plain"]
    assert (await kefu.svc.people.get(AGENT)).blocked_at is None


async def test_unknown_command_and_plain_text_get_guidance(kefu, team):
    assert "没有 /frobnicate" in (await kefu.say(AGENT, "/frobnicate"))["plain"]


async def test_restart_keeps_people(kefu, team):
    await kefu.restart()
    assert "/invite" in (await kefu.say(SUPERVISOR, "/help"))["plain"]
    assert REFUSAL in (await kefu.say(STRANGER, "/help"))["plain"]


async def test_an_internal_error_is_reported_to_the_user_and_admins_once(kefu, team, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("handlers.people.shifts_on", broken)
    reply = await kefu.say(SUPERVISOR, "/agents")
    assert "出错了" in reply["plain"]
    alerts = [t for t in kefu.texts(ADMIN) if "机器人出错" in t]
    assert len(alerts) == 1 and "RuntimeError" in alerts[0]
    await kefu.say(SUPERVISOR, "/agents")
    assert len([t for t in kefu.texts(ADMIN) if "机器人出错" in t]) == 1  # rate-limited
    kefu.clock.advance(minutes=11)
    await kefu.say(SUPERVISOR, "/agents")
    assert len([t for t in kefu.texts(ADMIN) if "机器人出错" in t]) == 2


async def test_stale_buttons_and_stray_text_get_one_answer(kefu, team):
    sent = await kefu.app.bot.send_message(
        AGENT, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="kb:gone")]])
    )
    query = kefu.emu.press_button(AGENT, AGENT, sent.message_id, data="kb:gone")
    await kefu.emu.wait_until_idle()
    assert len([r for r in kefu.emu.requests("answerCallbackQuery") if r["params"]["callback_query_id"] == query]) == 1
    before = len(kefu.emu.messages(AGENT))
    kefu.emu.send_document(AGENT, "notes.bin", b"\x00\x01")
    await kefu.emu.wait_until_idle()
    assert len(kefu.emu.messages(AGENT)) == before + 1  # exactly one answer


async def test_a_handled_update_gets_no_fallback_answer(kefu, team):
    before = len(kefu.emu.messages(AGENT))
    await kefu.say(AGENT, "/help")
    assert len(kefu.emu.messages(AGENT)) == before + 1


async def test_a_server_error_from_telegram_is_retried_and_delivered_once(kefu, team):
    kefu.emu.inject_fault(method="sendMessage", kind="502", count=1, chat_id=AGENT)
    reply = await kefu.say(AGENT, "/help")
    assert reply is not None and "/me" in reply["plain"]
    assert len([m for m in kefu.emu.messages(AGENT) if "/me" in m["plain"]]) == 1
    failed = [r for r in kefu.emu.requests("sendMessage") if r["status"] == 502]
    assert len(failed) == 1


async def test_telegram_down_for_a_user_does_not_crash_the_bot(kefu, team):
    kefu.emu.inject_fault(method="sendMessage", kind="500", count=None, chat_id=AGENT)
    kefu.emu.send_text(AGENT, "/help")
    await kefu.emu.wait_until_idle(timeout=10)
    assert kefu.emu.messages(AGENT) == []
    assert len([r for r in kefu.emu.requests("sendMessage") if r["params"]["chat_id"] == AGENT]) == 3  # 3 tries
    kefu.emu.clear_faults()
    assert "/me" in (await kefu.say(AGENT, "/help"))["plain"]
    assert "/invite" in (await kefu.say(SUPERVISOR, "/help"))["plain"]  # others never noticed
