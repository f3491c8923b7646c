"""The access matrix, end to end: every registered command and every button kind, sent by every
kind of sender (a stranger, an agent, a supervisor, an admin, a deactivated person, a group's
anonymous admin, a message sent as a channel, a channel post) in every kind of chat (private,
the team chat, a foreign group). Each cell checks what came back, in every chat: only the answer
that cell may give, and no order numbers, names, phone fragments or invite links where they do not
belong. The team's data is seeded so that a leak would show."""

from __future__ import annotations

import html
import re

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import access
from bot.clock import to_ts
from bot.emulator.emulator import CHANNEL_BOT, GROUP_ANONYMOUS_BOT
from bot.people import Role
from tests.conftest import local
from tests.harness import ADMIN

AGENT, SUP, DEACT, STRANGER = 2001, 2002, 2005, 2999
TEAM_CHAT, CHANNEL = -100777, -100666
ORDER_NO = "3912345678901234567"
PHONE = "13812345678"
SECRETS = (ORDER_NO, ORDER_NO[-8:], PHONE[3:], "小美", "李主管", "阿离", "t.me/kefu_test_bot?start=", "user2001")
PEOPLE = {"stranger": STRANGER, "agent": AGENT, "supervisor": SUP, "admin": ADMIN, "deactivated": DEACT}
ROLES = {"agent": Role.AGENT, "supervisor": Role.SUPERVISOR, "admin": Role.ADMIN}
NOBODY = ("anonymous_admin", "as_channel", "channel_post")  # no person behind these

#: Arguments that would change things or show data if they ran (private cells of active people
#: get harmless ones: those cells are allowed to run and must not rewrite the team mid-test).
HARMFUL = {
    "order": ORDER_NO, "handovers": PHONE[:7], "s": "退货", "script": "退货", "me": "姓名 黑客",
    "invite": "supervisor", "setrole": f"{AGENT} admin", "setshift": f"{AGENT} night", "deactivate": str(AGENT),
    "activate": str(DEACT), "broadcast": "全员注意", "schedule": "每天 09:00 开会", "handover": f"交接 {PHONE}",
    "jj": f"交接 {PHONE}", "kb_stats": "", "handover_stats": "", "agents": "",
    "case": f"{ORDER_NO} 买家电话 {PHONE}", "sh": f"{ORDER_NO} 买家电话 {PHONE}", "cases": ORDER_NO,
}
HARMLESS = {"order": ORDER_NO, "handovers": PHONE[:7], "s": "退货", "script": "退货",
            "case": "#999999", "sh": "#999999", "cases": "mine"}


@pytest.fixture
def staff():
    return [(AGENT, Role.AGENT, "day", "小美"), (SUP, Role.SUPERVISOR, "day", "李主管"), (DEACT, Role.AGENT, "day", "阿离")]


@pytest.fixture
async def world(start):
    kefu = await start(kefu_team_chat_id=TEAM_CHAT)
    await kefu.say(ADMIN, "/start")
    await kefu.svc.db.execute("UPDATE users SET active = 0 WHERE tg_id = ?", (DEACT,))
    kefu.svc.people.forget()  # written behind PeopleService's back
    kefu.emu.add_user(STRANGER, "路人")
    for account in (GROUP_ANONYMOUS_BOT, CHANNEL_BOT):
        kefu.emu.state.add_bot_account(**account)
    now = to_ts(local("2026-11-20 00:00"))
    await kefu.svc.db.execute(
        "INSERT INTO orders (platform, order_no, shop, status, created_at, paid_at, first_seen_at, updated_at)"
        " VALUES ('taobao', ?, '旗舰店', 'completed', ?, ?, ?, ?)",
        (ORDER_NO, now, now, now, now),
    )
    await kefu.svc.handover.log_item(AGENT, "day", f"买家电话 {PHONE} 要求改地址 {ORDER_NO}")
    # a 售后 case of the supervisor's, waiting for the admin's approval: the agent has no part in it
    sup = await kefu.svc.people.get(SUP)
    case = await kefu.svc.cases.open_case(sup, order_no=ORDER_NO, description=f"买家电话 {PHONE}", problem="quality")
    await kefu.svc.cases.edit(sup, case.id, resolution="compensation", amount_cents="30", buyer_phone=PHONE)
    await kefu.svc.cases.submit(sup, case.id)
    kefu.emu.state.chat(TEAM_CHAT).member_ids |= {ADMIN, SUP, STRANGER, DEACT}
    # the scheduled sends due at this moment (Monday 10:00: the Monday pack, the morning review)
    # go out now, not in the middle of a cell when the JobQueue's first tick comes
    await kefu.tick()
    return kefu


def plain(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def label(kefu, key: str, **values) -> str:
    return plain(kefu.svc.renderer.label(key, **values))


def snapshot(kefu) -> dict[int, int]:
    return {chat_id: chat.next_message_id for chat_id, chat in kefu.emu.state.chats.items()}


def sent_since(kefu, before: dict[int, int]) -> list[tuple[int, str]]:
    """(chat, text) of every message the bot sent anywhere since the snapshot."""
    out = []
    for chat_id, chat in kefu.emu.state.chats.items():
        for message in chat.messages.values():
            if message.from_bot and message.message_id >= before.get(chat_id, 1):
                out.append((chat_id, message.plain))
    return out


def no_secrets(items, cell) -> None:
    for chat_id, text in items:
        leaked = [s for s in SECRETS if s in text]
        assert not leaked, (cell, chat_id, leaked, text)


def admin_notices(items) -> list[str]:
    return [text for chat_id, text in items if chat_id == ADMIN]


def commands(kefu) -> list[str]:
    return sorted(kefu.app.bot_data["registered_commands"])


def fresh_group(kefu, chat_id: int, *, channel: bool = False) -> None:
    """A group (or channel) that is not the team chat, with the bot in it again."""
    members = [ADMIN, AGENT, SUP, DEACT, STRANGER]
    kefu.emu.add_group(chat_id, "外部频道" if channel else "外部群", member_ids=members,
                       chat_type="channel" if channel else None)


def send(kefu, sender: str, text: str, chat: int | None) -> None:
    if sender == "anonymous_admin":
        kefu.emu.send_as_anonymous_admin(chat, text)
    elif sender == "as_channel":
        kefu.emu.send_as_channel(chat, CHANNEL, text)
    elif sender == "channel_post":
        kefu.emu.channel_post(chat, text)
    else:
        kefu.emu.send_text(PEOPLE[sender], text, chat_id=chat)


def command_text(name: str, harmful: bool) -> str:
    arg = (HARMFUL if harmful else HARMLESS).get(name, "")
    return f"/{name} {arg}".strip()


async def assert_team_unchanged(kefu) -> None:
    agent = await kefu.svc.people.get(AGENT)
    assert agent.active and agent.role == Role.AGENT and agent.shift == "day" and agent.display_name is None
    assert not (await kefu.svc.people.get(DEACT)).active
    for table in ("invites", "broadcasts", "broadcast_schedules"):
        assert (await kefu.svc.db.fetchone(f"SELECT count(*) FROM {table}"))[0] == 0, table
    assert (await kefu.svc.db.fetchone("SELECT count(*) FROM handover_items"))[0] == 1
    assert (await kefu.svc.db.fetchone("SELECT count(*) FROM cases"))[0] == 1
    assert (await kefu.svc.db.fetchone("SELECT state FROM cases"))[0] == "pending_approval"


# --- 售后 cases: only the people with a part in a case (and supervisors, admins) see or act -------

CASE_ACTIONS = ("v", "ed", "note", "ev", "evs", "his", "sub", "mark", "wd", "ndg", "reo", "evd")
APPROVAL_ACTIONS = ("ok", "no", "tr", "rt")


async def test_cases_by_someone_without_a_part(world):
    kefu = world
    case_id, approval_id = await kefu.svc.db.fetchone("SELECT case_id, id FROM case_approvals")
    forbidden = label(kefu, "errors.case_forbidden", no=case_id)
    before = snapshot(kefu)
    for text in (f"/case #{case_id}", f"/sh #{case_id}", f"/case {case_id}"):
        assert (await kefu.say(AGENT, text))["plain"] == forbidden, text
    for text in ("/cases", "/cases open", f"/cases #{case_id}", "/cases 旗舰店", f"/cases {PHONE}"):
        assert "0 张" in (await kefu.say(AGENT, text))["plain"], text
    datas = [*(f"case:{a}:{case_id}" for a in CASE_ACTIONS), f"case:mv:{case_id}:closed",
             f"case:f:{case_id}:buyer", f"case:set:{case_id}:resolution:other",
             *(f"case:{a}:{approval_id}" for a in APPROVAL_ACTIONS), f"case:rr:{approval_id}:0",
             f"case:to:{approval_id}:{AGENT}", "case:new:x:1", "case:probe"]
    answers = [kefu.emu.callback_answer(q) for q in await press_all(kefu, AGENT, AGENT, datas)]
    refusals = {forbidden, label(kefu, "errors.case_not_approver", no=case_id), label(kefu, "errors.stale_button")}
    for data, answer in zip(datas, answers, strict=True):
        text = (answer or {}).get("text") or ""
        assert text in refusals, (data, text)
    got = [(c, t) for c, t in sent_since(kefu, before) if t != "按钮"]
    no_secrets([(c, t) for c, t in got if "0 张" not in t], "agent without a part")
    assert (await kefu.svc.db.fetchone("SELECT state FROM cases"))[0] == "pending_approval"
    assert (await kefu.svc.db.fetchone("SELECT state FROM case_approvals"))[0] == "pending"
    await assert_team_unchanged(kefu)
    # the supervisor who opened it and the admin asked to approve it do see it
    for who in (SUP, ADMIN):
        assert ORDER_NO in (await kefu.say(who, f"/case #{case_id}"))["plain"], who
    # the requester cannot approve their own request
    [query] = await press_all(kefu, SUP, SUP, [f"case:ok:{approval_id}"])
    assert kefu.emu.callback_answer(query)["text"] == label(kefu, "errors.case_self_approval")
    await assert_team_unchanged(kefu)


# --- commands ------------------------------------------------------------------------------------

async def test_commands_in_private_chats(world):
    kefu = world
    names = commands(kefu)
    assert {"start", "order", "agents", "handovers", "invite", "kb_stats", "handover_stats", "kpi", "standards"} <= set(names)
    assert access.command_rule("kpi").min_role == Role.AGENT and access.command_rule("standards").min_role == Role.SUPERVISOR
    assert access.BUTTONS["kpi"] == Role.AGENT and not access.may_press_in_team_chat("kpi:x:2026-11-01:2026-11-02")
    for name in names:
        assert name == "start" or access.command_rule(name) is not None, f"/{name} has a handler but no access rule"
    # a stranger and a deactivated person: one refusal per command, nothing else anywhere
    for who, key in (("stranger", "errors.stranger"), ("deactivated", "errors.deactivated")):
        refusal = label(kefu, key, user_id=PEOPLE[who])
        before = snapshot(kefu)
        for name in names:
            send(kefu, who, command_text(name, harmful=True), None)
        await kefu.emu.wait_until_idle(timeout=20)
        got = sent_since(kefu, before)
        assert got == [(PEOPLE[who], refusal)] * len(names), (who, got)
    await assert_team_unchanged(kefu)
    # registered, active people: each command runs for the roles it allows and is refused otherwise
    for who, role in ROLES.items():
        for name in names:
            rule = access.command_rule(name)
            before = snapshot(kefu)
            send(kefu, who, command_text(name, harmful=False), None)
            await kefu.emu.wait_until_idle()
            got = sent_since(kefu, before)
            assert got and all(chat == PEOPLE[who] for chat, _ in got), (name, who, got)
            denied = label(kefu, "errors.no_permission", command=name, role=rule.min_role) if rule.min_role else None
            if rule.min_role is None or role >= rule.min_role:
                assert all(text != denied and "需要主管邀请" not in text for _, text in got), (name, who, got)
            else:
                assert got == [(PEOPLE[who], denied)], (name, who, got)


async def test_commands_in_the_team_chat(world):
    kefu = world
    names = commands(kefu)
    hint = label(kefu, "errors.commands_private_only")
    for who in [*PEOPLE, "anonymous_admin", "as_channel"]:
        if who == "as_channel":
            fresh_group(kefu, CHANNEL, channel=True)
        before = snapshot(kefu)
        for name in names:
            send(kefu, who, command_text(name, harmful=True), TEAM_CHAT)
            send(kefu, who, f"{command_text(name, harmful=True).replace('/' + name, '/' + name + '@kefu_test_bot', 1)}",
                 TEAM_CHAT)
        await kefu.emu.wait_until_idle(timeout=20)
        got = sent_since(kefu, before)
        if who in ROLES:  # a pointer to the private chat, sent there, and nothing else
            assert got == [(PEOPLE[who], hint)] * (2 * len(names)), (who, got)
        else:
            assert got == [], (who, got)
        assert kefu.emu.left_chats() == []
    await assert_team_unchanged(kefu)


async def test_commands_in_a_foreign_group_or_channel(world):
    kefu = world
    names = commands(kefu)
    group = -100900000
    senders = [*PEOPLE, "anonymous_admin", "as_channel", "channel_post"]
    before = snapshot(kefu)
    expected_left = []
    for who in senders:
        for name in names:
            group -= 1  # a fresh foreign chat per cell: the bot leaves each one at once
            fresh_group(kefu, group, channel=who == "channel_post")
            if who == "as_channel":
                fresh_group(kefu, CHANNEL, channel=True)
            send(kefu, who, command_text(name, harmful=True), group)
            expected_left.append(group)
    await kefu.emu.wait_until_idle(timeout=60)
    got = sent_since(kefu, before)
    notices = admin_notices(got)
    assert [chat for chat, _ in got] == [ADMIN] * len(notices), "only the admin hears of it"
    assert len(notices) == len(expected_left) and all("已自动退出" in n and "外部" in n for n in notices)
    no_secrets(got, "foreign")
    # Different senders' updates run concurrently (issue 13): every chat left, in any order.
    assert sorted(kefu.emu.left_chats()) == sorted(expected_left)
    await assert_team_unchanged(kefu)


async def test_no_person_behind_it_means_no_answer_even_for_known_ids(world):
    """Bot senders, sender_chat posts, via_bot relays, business and edited messages carry no person:
    silence, whatever the text and whoever Telegram names."""
    kefu = world
    before = snapshot(kefu)
    kefu.emu.send_text(AGENT, f"/order {ORDER_NO}", via_bot={"id": 777, "first_name": "Other", "username": "other_bot"})
    kefu.emu.business_message(AGENT, f"/order {ORDER_NO}")
    kefu.emu.business_message(STRANGER, "/agents")
    sent = kefu.emu.send_text(AGENT, "/s 退货")
    await kefu.emu.wait_until_idle()
    after_help = snapshot(kefu)
    kefu.emu.edit_user_message(AGENT, sent["message_id"], f"/order {ORDER_NO}")
    kefu.emu.user_joins(STRANGER, TEAM_CHAT)
    await kefu.emu.wait_until_idle()
    assert sent_since(kefu, after_help) == []  # the edit ran nothing; the join said nothing
    assert [chat for chat, _ in sent_since(kefu, before)] == [AGENT]  # only the real /s answered
    assert kefu.emu.left_chats() == []


# --- buttons -------------------------------------------------------------------------------------

def button_data(prefix: str, where: str) -> str:
    if where == "team" and prefix == "rem":
        return "rem:take:999999"
    if where == "team" and prefix == "ack":
        return "ack:999999"
    return f"{prefix}:probe"


async def press_all(kefu, presser: int, chat: int, datas: list[str]) -> list[str]:
    """One bot message carrying every button (a group takes only 20 messages a minute), each pressed."""
    sent = await kefu.app.bot.send_message(
        chat, "按钮", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data=d)] for d in datas])
    )
    queries = [kefu.emu.press_button(presser, chat, sent.message_id, data=data) for data in datas]
    await kefu.emu.wait_until_idle(timeout=20)
    return queries


GUARD_REFUSALS = ("errors.button_no_permission", "errors.button_private_only", "errors.not_team_chat",
                  "errors.stranger_short", "errors.deactivated_short")


async def test_every_button_kind_by_every_sender_in_every_chat(world):
    kefu = world
    refusals = {key: label(kefu, key) for key in GUARD_REFUSALS}
    presser_ids = {**PEOPLE, "anonymous_admin": GROUP_ANONYMOUS_BOT["user_id"], "as_channel": CHANNEL_BOT["user_id"]}
    prefixes = list(access.BUTTONS)
    group = -100800000
    for who, presser in presser_ids.items():
        role = ROLES.get(who)
        for where in ("private", "team", "foreign"):
            if where == "private" and who in NOBODY:
                continue  # a bot account has no private chat with this bot
            datas = [button_data(p, where) for p in prefixes]
            before = snapshot(kefu)
            if where == "foreign":
                answers = []
                for data in datas:
                    group -= 1
                    fresh_group(kefu, group)
                    [query] = await press_all(kefu, presser, group, [data])
                    answers.append(kefu.emu.callback_answer(query))
                    assert group in kefu.emu.left_chats()
            else:
                chat = presser if where == "private" else TEAM_CHAT
                answers = [kefu.emu.callback_answer(q) for q in await press_all(kefu, presser, chat, datas)]
            got = sent_since(kefu, before)
            got = [(c, t) for c, t in got if t != "按钮"]  # the test's own button messages
            for prefix, data, answer in zip(prefixes, datas, answers, strict=True):
                cell = (who, where, data, answer)
                text = (answer or {}).get("text") or ""
                assert not any(s in text for s in SECRETS), cell
                if where == "foreign":  # before anything else: not here, and the bot leaves
                    assert text == refusals["errors.not_team_chat"], cell
                elif who in NOBODY:
                    assert answer is None, cell  # no person to answer
                elif who == "stranger":
                    assert text == refusals["errors.stranger_short"], cell
                elif who == "deactivated":
                    assert text == refusals["errors.deactivated_short"], cell
                elif role < access.BUTTONS[prefix]:
                    expected = "errors.button_private_only" if where == "team" and not access.may_press_in_team_chat(data) \
                        else "errors.button_no_permission"
                    assert text == refusals[expected], cell
                elif where == "team" and not access.may_press_in_team_chat(data):
                    assert text == refusals["errors.button_private_only"], cell
                else:  # allowed: the feature itself answered (an unknown item here), not the guard
                    assert text not in refusals.values(), cell
            if who in NOBODY or where != "private":
                assert [c for c, _ in got] == [ADMIN] * len(got), (who, where, got)  # at most the admin notice
            no_secrets(got, (who, where))
    await assert_team_unchanged(kefu)


async def test_inline_queries_need_an_active_person(world):
    kefu = world
    for who in ("stranger", "deactivated"):
        query = kefu.emu.inline_query(PEOPLE[who], "退货")
        await kefu.emu.wait_until_idle()
        assert kefu.emu.inline_answer(query)["results"] == [], who
    query = kefu.emu.inline_query(AGENT, "退货")
    await kefu.emu.wait_until_idle()
    assert kefu.emu.inline_answer(query)["results"]


# --- the bot added to chats ------------------------------------------------------------------------

async def test_added_to_a_foreign_group_it_tells_the_admins_and_leaves(world):
    kefu = world
    before = snapshot(kefu)
    kefu.emu.add_bot_to_chat(STRANGER, -100123, "薅羊毛群")
    await kefu.emu.wait_until_idle()
    assert kefu.emu.left_chats() == [-100123]
    assert kefu.emu.messages(-100123) == []
    got = sent_since(kefu, before)
    [notice] = admin_notices(got)
    assert [c for c, _ in got] == [ADMIN]
    assert "薅羊毛群" in notice and "-100123" in notice and "路人" in notice and str(STRANGER) in notice
    # as an administrator, or by a registered person, or a channel: the same
    kefu.emu.add_bot_to_chat(AGENT, -100124, "小美的群", status="administrator")
    kefu.emu.add_bot_to_chat(AGENT, -100125, "某频道", chat_type="channel")
    await kefu.emu.wait_until_idle()
    assert kefu.emu.left_chats() == [-100123, -100124, -100125]
    assert len(admin_notices(sent_since(kefu, before))) == 3


async def test_added_to_the_team_chat_it_stays_quietly(world):
    kefu = world
    before = snapshot(kefu)
    kefu.emu.add_bot_to_chat(SUP, TEAM_CHAT, "客服群", status="administrator")
    await kefu.emu.wait_until_idle()
    assert kefu.emu.left_chats() == [] and sent_since(kefu, before) == []


async def test_anything_from_a_foreign_group_makes_the_bot_leave_once_told(world):
    """The bot may be in a group from before (or the leave failed): whatever arrives from there,
    it says nothing in the group and leaves; the admins hear of each chat once."""
    kefu = world
    fresh_group(kefu, -100321)
    before = snapshot(kefu)
    kefu.emu.user_joins(STRANGER, -100321)
    await kefu.emu.wait_until_idle()
    assert kefu.emu.left_chats() == [-100321] and kefu.emu.messages(-100321) == []
    fresh_group(kefu, -100321)  # re-added (say the leave had failed): a member's message
    kefu.emu.send_text(AGENT, "大家好", chat_id=-100321)
    await kefu.emu.wait_until_idle()
    assert kefu.emu.left_chats() == [-100321, -100321] and kefu.emu.messages(-100321) == []
    [notice] = admin_notices(sent_since(kefu, before))
    assert "拉入者不明" in notice and "-100321" in notice
