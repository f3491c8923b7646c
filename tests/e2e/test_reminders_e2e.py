"""Reminders end to end: the real bot polling the emulator, a fake clock, ticks run by hand.

Covers the issue's "Done when" list: both rules at the right moment and not before, the 36 h
warning, presale/refund suppression, auto-resolve with the message edited, digests, the four
buttons, escalation, the night gap with delivery at 08:30, a restart mid-delivery, a stranger.
"""

from datetime import timedelta

import pytest

import handlers.reminders as reminders_layer
from bot.people import Role
from tests.conftest import local
from tests.reminder_orders import changed, paid, save, unpaid

AGENT, SUP, AGENT2, NIGHT, STRANGER = 2001, 2002, 2003, 2004, 2999
TEAM_CHAT = -100500
H = timedelta(hours=1)


@pytest.fixture
def staff():
    """The usual team, registered by `start` and `kefu` (tests/conftest.py); the team chat
    (`start(kefu_team_chat_id=TEAM_CHAT)`) is a group of the day shift: AGENT, SUP, AGENT2."""
    return [
        (AGENT, Role.AGENT, "day", "小美"),
        (SUP, Role.SUPERVISOR, "day", "李主管"),
        (AGENT2, Role.AGENT, "day", "阿强"),
        (NIGHT, Role.AGENT, "night", "小王"),
    ]


def data_of(message) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def reminder_messages(kefu, chat_id) -> list[dict]:
    """The bot's reminder cards, digests and escalations in a chat, oldest first."""
    marks = ("催付提醒", "发货预警", "发货超时", "发货提醒", "无人认领")
    return [m for m in kefu.emu.messages(chat_id) if any(mark in m["plain"] for mark in marks)]


async def rid_of(kefu, order_no: str, stage: str | None = None) -> int:
    row = await kefu.svc.db.fetchone(
        "SELECT r.id FROM reminders r JOIN orders o ON o.id = r.order_id WHERE o.order_no = ?"
        + (" AND r.stage = ?" if stage else "") + " ORDER BY r.id DESC",
        (order_no, stage) if stage else (order_no,),
    )
    return row[0]


async def reminder(kefu, order_no: str, stage: str | None = None):
    return await kefu.svc.reminders.get(await rid_of(kefu, order_no, stage))


# --- the rules fire at the right moment ----------------------------------------------------------


async def test_unpaid_order_is_reminded_at_12_hours_not_before(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 12 * H + timedelta(minutes=1), order_no="310001"))
    await kefu.tick()
    assert reminder_messages(kefu, AGENT) == []
    kefu.clock.advance(seconds=59)
    await kefu.tick()
    assert reminder_messages(kefu, AGENT) == []
    kefu.clock.advance(seconds=1)
    await kefu.tick()
    for chat in (AGENT, AGENT2, SUP):  # everyone on the day shift, in private
        [card] = reminder_messages(kefu, chat)
        assert "催付提醒" in card["plain"] and "310001" in card["plain"] and "¥128.00" in card["plain"]
        assert data_of(card) == [f"rem:{a}:1" for a in ("claim", "done", "snooze", "script")] + ["case:new:r:1"]
    assert reminder_messages(kefu, NIGHT) == []  # not on duty
    await kefu.tick()  # nothing twice
    assert len(reminder_messages(kefu, AGENT)) == 1


async def test_unshipped_order_warns_at_36_hours_then_breaches_at_48(kefu):
    await save(kefu.svc.db, kefu.clock, paid(kefu.clock.now() - 36 * H + timedelta(seconds=1), order_no="320001"))
    await kefu.tick()
    assert reminder_messages(kefu, AGENT) == []
    kefu.clock.advance(seconds=1)
    await kefu.tick()
    [warning] = reminder_messages(kefu, AGENT)
    assert "发货预警" in warning["plain"] and "12 小时内将超时" in warning["plain"]
    kefu.clock.advance(hours=12, seconds=-1)  # 21:59:59, the night shift is on
    await kefu.tick()
    assert reminder_messages(kefu, NIGHT) == []
    kefu.clock.advance(seconds=1)
    await kefu.tick()
    [breach] = reminder_messages(kefu, NIGHT)
    assert "发货超时" in breach["plain"] and "320001" in breach["plain"]
    # the day shift's warning now says the breach reminder took over, and has no buttons left
    warning = reminder_messages(kefu, AGENT)[0]
    assert "已自动解除：已到发货时限，转为发货超时提醒" in warning["plain"] and data_of(warning) == []


async def test_presale_and_refunding_orders_stay_quiet(kefu):
    t = kefu.clock.now()
    refunding = paid(t - 50 * H, order_no="330002", refunding=True)
    await save(kefu.svc.db, kefu.clock, paid(t - 50 * H, order_no="330001", presale=True), refunding)
    await kefu.tick()
    assert reminder_messages(kefu, AGENT) == []
    await save(kefu.svc.db, kefu.clock, changed(refunding, refunding=False))  # the buyer withdrew the refund
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    assert "330002" in card["plain"] and "330001" not in card["plain"]


# --- auto-resolve ---------------------------------------------------------------------------------


async def test_paid_order_resolves_its_reminder_and_edits_the_message(kefu):
    o = unpaid(kefu.clock.now() - 13 * H, order_no="340001")
    await save(kefu.svc.db, kefu.clock, o)
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    assert data_of(card)
    await save(kefu.svc.db, kefu.clock, changed(o, status="paid_unshipped", paid_at=kefu.clock.now()))
    await kefu.tick()
    for chat in (AGENT, AGENT2, SUP):
        [card] = reminder_messages(kefu, chat)
        assert card["edits"] and "已自动解除：买家已付款" in card["plain"] and data_of(card) == []
    assert (await reminder(kefu, "340001")).state == "resolved"


async def test_shipped_order_in_a_digest_is_struck_out_and_loses_its_button(kefu):
    t = kefu.clock.now()
    first, second = paid(t - 49 * H, order_no="340011"), paid(t - 50 * H, order_no="340012")
    await save(kefu.svc.db, kefu.clock, first, second)
    await kefu.tick()
    [digest] = reminder_messages(kefu, AGENT)
    assert len(data_of(digest)) == 2
    await save(kefu.svc.db, kefu.clock, changed(first, status="shipped", shipped_at=kefu.clock.now()))
    await kefu.tick()
    [digest] = reminder_messages(kefu, AGENT)
    assert "已解除：订单已发货" in digest["plain"] and "<s>" in digest["text"]
    assert data_of(digest) == [f"rem:take:{await rid_of(kefu, '340012')}"]


# --- digests --------------------------------------------------------------------------------------


async def test_several_due_together_make_one_digest_per_rule(kefu):
    t = kefu.clock.now()
    await save(kefu.svc.db, kefu.clock,
               *[unpaid(t - (13 + i) * H, order_no=f"35000{i}", shop="旗舰店") for i in range(3)],
               paid(t - 40 * H, order_no="350011"), paid(t - 50 * H, order_no="350012"))
    await kefu.tick()
    unpaid_digest, unshipped_digest = reminder_messages(kefu, AGENT)
    assert "催付提醒" in unpaid_digest["plain"] and "共 3 单" in unpaid_digest["plain"]
    lines = [line for line in unpaid_digest["plain"].splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert [line.split()[2] for line in lines] == ["350002", "350001", "350000"]  # oldest first
    assert "旗舰店 ¥128.00" in lines[0] and "下单 15 小时未付款" in lines[0]
    assert "发货提醒" in unshipped_digest["plain"] and "8 小时内将超时" in unshipped_digest["plain"]
    assert "已超时 2 小时" in unshipped_digest["plain"]
    assert len(data_of(unpaid_digest)) == 3 and all(d.startswith("rem:take:") for d in data_of(unpaid_digest))


async def test_a_long_digest_is_split_to_fit_telegram(kefu):
    t = kefu.clock.now()
    await save(kefu.svc.db, kefu.clock,
               *[unpaid(t - 13 * H - i * timedelta(minutes=1), order_no=f"3600{i:02d}", shop="店" * 40) for i in range(70)])
    await kefu.tick()
    parts = reminder_messages(kefu, AGENT)
    assert len(parts) == 3 and all(len(p["text"]) <= 4096 for p in parts)
    assert ["（1/3）" in parts[0]["plain"], "（3/3）" in parts[2]["plain"]] == [True, True]
    assert "另有 10 单未列出" in parts[2]["plain"]
    assert sum(len(data_of(p)) for p in parts) == 60
    await kefu.tick()
    assert len(reminder_messages(kefu, AGENT)) == 3  # the 10 unlisted count as delivered too
    engine = kefu.svc.reminders
    assert await engine.pending() == []


async def test_taking_an_order_from_a_digest_claims_it_and_sends_the_card(kefu):
    t = kefu.clock.now()
    await save(kefu.svc.db, kefu.clock, unpaid(t - 13 * H, order_no="370001"), unpaid(t - 14 * H, order_no="370002"))
    await kefu.tick()
    [digest] = reminder_messages(kefu, AGENT)
    rid = await rid_of(kefu, "370001")
    query = await kefu.press(AGENT, digest, data=f"rem:take:{rid}")
    assert kefu.emu.callback_answer(query)["text"].startswith("已认领")
    [_, card] = reminder_messages(kefu, AGENT)
    assert "370001" in card["plain"] and "🙋 小美 处理中" in card["plain"]
    assert data_of(card) == [f"rem:{a}:{rid}" for a in ("done", "snooze", "script")] + [f"case:new:r:{rid}"]
    # every copy of the digest now shows who took it, and only the other order can be taken
    for chat in (AGENT, AGENT2, SUP):
        digest = reminder_messages(kefu, chat)[0]
        assert "🙋 小美" in digest["plain"] and data_of(digest) == [f"rem:take:{await rid_of(kefu, '370002')}"]


# --- buttons --------------------------------------------------------------------------------------


async def test_claim_shows_who_and_refuses_a_second_claimer(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="380001"))
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    query = await kefu.press(AGENT, card, data="rem:claim:1")
    assert "已认领" in kefu.emu.callback_answer(query)["text"]
    [other_copy] = reminder_messages(kefu, AGENT2)
    assert "🙋 小美 处理中" in other_copy["plain"] and "rem:claim:1" not in data_of(other_copy)
    refused = kefu.emu.press_button(AGENT2, AGENT, card["message_id"], data="rem:done:1")  # a stale copy
    await kefu.emu.wait_until_idle()
    answer = kefu.emu.callback_answer(refused)
    assert answer["show_alert"] and "已由 小美 认领" in answer["text"]
    events = await kefu.svc.reminders.events(1)
    assert [(e["actor"], e["action"]) for e in events] == [(AGENT, "claim"), (AGENT2, "refused")]


async def test_done_asks_for_the_outcome_and_closes_the_reminder(kefu):
    # A warning (37 h); a breach asks other outcomes and keeps watching: tests/test_reminders_unstaffed_e2e.py
    await save(kefu.svc.db, kefu.clock, paid(kefu.clock.now() - 37 * H, order_no="380011"))
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    await kefu.press(AGENT, card, data="rem:done:1")
    [card] = reminder_messages(kefu, AGENT)
    assert data_of(card) == ["rem:out:1:warehouse", "rem:out:1:shipped", "rem:out:1:no_action", "rem:back:1"]
    query = await kefu.press(AGENT, card, data="rem:out:1:warehouse")
    assert kefu.emu.callback_answer(query)["text"] == "已记录：已联系仓库。"
    for chat in (AGENT, AGENT2):
        [card] = reminder_messages(kefu, chat)
        assert "✅ 已处理：已联系仓库（小美" in card["plain"] and data_of(card) == []
    r = await reminder(kefu, "380011")
    assert (r.state, r.outcome, r.done_by) == ("done", "warehouse", AGENT)
    kefu.clock.advance(hours=2)
    await kefu.tick()
    assert kefu.emu.messages(SUP)[-1]["message_id"] == reminder_messages(kefu, SUP)[0]["message_id"]  # no escalation


async def test_snooze_hides_the_reminder_for_an_hour_then_delivers_it_again(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="380021"))
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    await kefu.press(AGENT, card, data="rem:snooze:1")
    [card] = reminder_messages(kefu, AGENT)
    assert data_of(card) == ["rem:later:1:1h", "rem:later:1:3h", "rem:later:1:shift", "rem:back:1"]
    assert "下个班次（11-23 17:30）" in [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    query = await kefu.press(AGENT, card, data="rem:later:1:1h")
    assert kefu.emu.callback_answer(query)["text"] == "好的，11-23 11:00 再提醒。"
    assert "⏰ 小美 设为 11-23 11:00 再提醒" in reminder_messages(kefu, AGENT2)[0]["plain"]
    kefu.clock.advance(minutes=59)
    await kefu.tick()
    assert len(reminder_messages(kefu, AGENT)) == 1 and len(reminder_messages(kefu, SUP)) == 1  # no escalation either
    kefu.clock.advance(minutes=1)
    await kefu.tick()
    for chat in (AGENT, AGENT2, SUP):
        _first, again = reminder_messages(kefu, chat)
        assert "380021" in again["plain"] and "rem:claim:1" in data_of(again)


async def test_script_button_sends_the_filled_script_in_private(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="380031"),
               paid(kefu.clock.now() - 49 * H, order_no="380032"))
    await kefu.tick()
    unpaid_card, unshipped_card = reminder_messages(kefu, AGENT)
    await kefu.press(AGENT, unpaid_card, data="rem:script:1")
    script = kefu.emu.last_message(AGENT)
    assert "<pre>" in script["text"] and "纯棉T恤 白色 L" in script["plain"] and "小美" in script["plain"]
    assert "380031" in script["plain"] and "礼貌催付" in script["plain"]
    # the same view as /s: 用了这条 and a copy button, the internal note under its 内部提示 header
    buttons = [b for row in script["reply_markup"]["inline_keyboard"] for b in row]
    assert any(b.get("callback_data", "").startswith("kb:u:") for b in buttons)
    assert any("copy_text" in b for b in buttons)
    script_id = next(b["callback_data"] for b in buttons if b.get("callback_data", "").startswith("kb:u:"))[5:]
    if kefu.svc.kb.get().get(script_id).note:
        assert "内部提示" in script["plain"]
    unshipped_id = await rid_of(kefu, "380032")
    await kefu.press(AGENT, unshipped_card, data=f"rem:script:{unshipped_id}")
    apology = kefu.emu.last_message(AGENT)
    assert "380032" in apology["plain"] and "抱歉" in apology["plain"] and "<pre>" in apology["text"]
    # pressed in a team chat, the script would go to the presser's private chat; here it is one chat
    assert len(reminder_messages(kefu, AGENT)) == 2 and (await reminder(kefu, "380031")).claimed_by is None
    events = await kefu.svc.reminders.events(1)
    assert [(e["actor"], e["action"], e["detail"]) for e in events] == [(AGENT, "script", "pay_remind_once")]


async def test_reminders_command_lists_mine_and_the_teams_oldest_first(kefu):
    t = kefu.clock.now()
    await save(kefu.svc.db, kefu.clock, unpaid(t - 13 * H, order_no="390001"), unpaid(t - 15 * H, order_no="390002"),
               paid(t - 40 * H, order_no="390003"))
    await kefu.tick()
    await kefu.svc.reminders.claim(await rid_of(kefu, "390001"), AGENT)
    reply = await kefu.say(AGENT, "/reminders")
    text = reply["plain"]
    assert "我认领的 · 1" in text and "团队 · 2" in text
    mine, _team = text.split("团队")
    assert "390001" in mine and text.index("390003") < text.index("390002")  # paid 40 h ago: due 4 h ago
    await kefu.press(AGENT, reply, data=f"rem:open:{await rid_of(kefu, '390002')}")
    assert "390002" in kefu.emu.last_message(AGENT)["plain"] and "rem:claim" in " ".join(data_of(kefu.emu.last_message(AGENT)))
    empty = await kefu.say(NIGHT, "/reminders")
    assert "我认领的 · 0" in empty["plain"]


async def test_an_unknown_reminder_button_is_answered_not_crashed(kefu):
    sent = await kefu.app.bot.send_message(AGENT, "x", reply_markup=None)
    for data in ("rem:probe", "rem:claim:abc", "rem:claim:999", "rem:later:1:7d"):
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        msg = await kefu.app.bot.send_message(
            AGENT, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data=data)]]))
        query = kefu.emu.press_button(AGENT, AGENT, msg.message_id, data=data)
        await kefu.emu.wait_until_idle()
        answer = kefu.emu.callback_answer(query)
        assert answer["show_alert"] and ("失效" in answer["text"] or "找不到" in answer["text"]), (data, answer)
    assert sent is not None


# --- escalation -----------------------------------------------------------------------------------


async def test_unclaimed_reminder_is_escalated_after_30_minutes_then_hourly(kefu):
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="400001"))
    await kefu.tick()
    kefu.clock.advance(minutes=29)
    await kefu.tick()
    assert [m for m in reminder_messages(kefu, SUP) if "无人认领的提醒" in m["plain"]] == []
    kefu.clock.advance(minutes=1)
    await kefu.tick()
    [escalation] = [m for m in reminder_messages(kefu, SUP) if "无人认领的提醒" in m["plain"]]
    assert "400001" in escalation["plain"] and "超过 30 分钟" in escalation["plain"]
    assert data_of(escalation) == ["rem:take:1"]
    assert all("无人认领的提醒" not in m["plain"] for m in kefu.emu.messages(AGENT))  # supervisors only
    assert "📣 无人认领，已上报主管" in reminder_messages(kefu, AGENT)[0]["plain"]
    kefu.clock.advance(minutes=59)
    await kefu.tick()
    assert len([m for m in reminder_messages(kefu, SUP) if "无人认领的提醒" in m["plain"]]) == 1
    kefu.clock.advance(minutes=1)
    await kefu.tick()
    assert len([m for m in reminder_messages(kefu, SUP) if "无人认领的提醒" in m["plain"]]) == 2
    await kefu.press(AGENT, reminder_messages(kefu, AGENT)[0], data="rem:claim:1")
    escalations = [m for m in reminder_messages(kefu, SUP) if "无人认领的提醒" in m["plain"]]
    assert all("🙋 小美" in m["plain"] and data_of(m) == [] for m in escalations)
    kefu.clock.advance(hours=2)
    await kefu.tick()
    assert len([m for m in reminder_messages(kefu, SUP) if "无人认领的提醒" in m["plain"]]) == 2


async def test_with_no_supervisor_on_duty_every_supervisor_is_told(kefu):
    kefu.clock.set(local("2026-11-23 18:00"))  # night shift: only 小王 is on duty
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="400011"))
    await kefu.tick()
    assert len(reminder_messages(kefu, NIGHT)) == 1 and reminder_messages(kefu, SUP) == []
    kefu.clock.advance(minutes=30)
    await kefu.tick()
    [escalation] = reminder_messages(kefu, SUP)
    assert "无人认领的提醒" in escalation["plain"] and "400011" in escalation["plain"]


# --- the night gap --------------------------------------------------------------------------------


async def test_night_gap_holds_reminders_and_delivers_digests_at_08_30(kefu):
    kefu.clock.set(local("2026-11-24 00:50"))
    await kefu.tick()
    # due at 02:00, 05:00 (unpaid) and 03:00, 07:00 (shipping breaches): all in the gap
    await save(kefu.svc.db, kefu.clock,
               unpaid(local("2026-11-23 14:00"), order_no="410001"), unpaid(local("2026-11-23 17:00"), order_no="410002"),
               paid(local("2026-11-22 03:00"), order_no="410003"), paid(local("2026-11-22 07:00"), order_no="410004"))
    for moment in ("01:00", "02:00", "03:00", "05:00", "07:00", "08:29"):
        kefu.clock.set(local(f"2026-11-24 {moment}"))
        await kefu.tick()
    for chat in (AGENT, AGENT2, SUP, NIGHT):
        assert reminder_messages(kefu, chat) == [], chat
    assert len(await kefu.svc.reminders.pending()) == 4  # recorded, held
    kefu.clock.set(local("2026-11-24 08:30"))
    await kefu.tick()
    for chat in (AGENT, AGENT2, SUP):
        unpaid_digest, unshipped_digest = reminder_messages(kefu, chat)
        assert "共 2 单" in unpaid_digest["plain"] and "410001" in unpaid_digest["plain"] and "410002" in unpaid_digest["plain"]
        assert "共 2 单" in unshipped_digest["plain"] and "已超时 5 小时 30 分钟" in unshipped_digest["plain"]
    assert reminder_messages(kefu, NIGHT) == []
    # held reminders are not escalated at 08:30 for the night; their clock starts at delivery
    kefu.clock.advance(minutes=29)
    await kefu.tick()
    assert all("无人认领的提醒" not in m["plain"] for m in reminder_messages(kefu, SUP))


async def test_a_deadline_in_the_night_gap_is_warned_before_the_last_shift_ends(start):
    kefu = await start(kefu_shop_overrides="快店:warn=46")
    # paid Monday 04:00 → deadline Wednesday 04:00, in the gap; the 46 h warning (Wednesday 02:00)
    # would be in the gap too, so it comes at 00:00, an hour before the night shift ends
    await save(kefu.svc.db, kefu.clock, paid(local("2026-11-23 04:00"), order_no="420001", shop="快店"))
    kefu.clock.set(local("2026-11-24 23:59"))
    await kefu.tick()
    assert reminder_messages(kefu, NIGHT) == []
    kefu.clock.set(local("2026-11-25 00:00"))
    await kefu.tick()
    [warning] = reminder_messages(kefu, NIGHT)
    assert "发货预警" in warning["plain"] and "4 小时内将超时" in warning["plain"] and "420001" in warning["plain"]
    kefu.clock.set(local("2026-11-25 04:00"))
    await kefu.tick()  # the breach itself is held for the morning
    kefu.clock.set(local("2026-11-25 08:30"))
    await kefu.tick()
    [breach] = reminder_messages(kefu, AGENT)
    assert "发货超时" in breach["plain"] and "420001" in breach["plain"]


# --- team chat and restarts -----------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so the tick's error handling does not catch it."""


def crash_on_send(monkeypatch, *, before: int | None = None, after_accept: int | None = None):
    """Wrap the reminders layer's send: die before the n-th send, or right after Telegram accepted it."""
    real = reminders_layer.deliver
    count = {"sends": 0}

    async def deliver(target, chat_id, text, **kw):
        count["sends"] += 1
        n = count["sends"]  # this send's number (chats are served concurrently, issue 13)
        if before is not None and n == before:
            raise SimulatedCrash()
        result = await real(target, chat_id, text, **kw)
        if after_accept is not None and n == after_accept:
            raise SimulatedCrash()
        return result

    monkeypatch.setattr(reminders_layer, "deliver", deliver)
    return count


async def due_everywhere(kefu):
    t = kefu.clock.now()
    await save(kefu.svc.db, kefu.clock, unpaid(t - 13 * H, order_no="430001"), unpaid(t - 14 * H, order_no="430002"),
               paid(t - 49 * H, order_no="430003"))


def received(kefu, chat_id) -> list[str]:
    """Order numbers in the reminder messages of a chat (one entry per message per order)."""
    found = []
    for m in reminder_messages(kefu, chat_id):
        found += [no for no in ("430001", "430002", "430003") if no in m["plain"]]
    return sorted(found)


async def test_reminders_go_to_the_team_chat_too(start):
    kefu = await start(kefu_team_chat_id=TEAM_CHAT)
    await due_everywhere(kefu)
    await kefu.tick()
    assert received(kefu, TEAM_CHAT) == ["430001", "430002", "430003"]
    [digest, _card] = reminder_messages(kefu, TEAM_CHAT)
    await kefu.press(AGENT2, digest, data=f"rem:take:{await rid_of(kefu, '430002')}", chat_id=TEAM_CHAT)
    assert "🙋 阿强" in reminder_messages(kefu, TEAM_CHAT)[0]["plain"]
    assert "430002" in kefu.emu.last_message(AGENT2)["plain"]  # the card went to 阿强's private chat


async def test_restart_mid_delivery_loses_nothing_and_repeats_nothing(start, monkeypatch):
    kefu = await start(kefu_team_chat_id=TEAM_CHAT)
    await due_everywhere(kefu)
    chats = (AGENT, SUP, AGENT2, TEAM_CHAT)
    # 2 messages per chat (催付 digest, 发货 card); chats are served concurrently (issue 13), so the
    # 4th send is one chat's first: that chat's delivery dies, the other three are served.
    sends = crash_on_send(monkeypatch, before=4)
    with pytest.raises(SimulatedCrash):
        await kefu.tick()
    monkeypatch.undo()
    assert sends["sends"] == 7
    before = {chat: received(kefu, chat) for chat in chats}
    assert sorted(len(v) for v in before.values()) == [0, 3, 3, 3]  # three chats served, one not yet
    await kefu.restart()
    await kefu.tick()
    await kefu.tick()
    for chat in chats:
        assert received(kefu, chat) == ["430001", "430002", "430003"], (chat, kefu.emu.dump_chat(chat))
    assert await kefu.svc.reminders.pending() == []


async def test_a_crash_between_telegram_and_the_database_repeats_only_that_message(start, monkeypatch):
    kefu = await start()
    await due_everywhere(kefu)
    crash_on_send(monkeypatch, after_accept=3)  # the 3rd message was delivered but never recorded
    with pytest.raises(SimulatedCrash):
        await kefu.tick()
    monkeypatch.undo()
    await kefu.restart()
    await kefu.tick()
    counts = sorted(received(kefu, chat) for chat in (AGENT, SUP, AGENT2))
    assert counts == [
        ["430001", "430001", "430002", "430002", "430003"],  # that chat's 催付 digest came twice
        ["430001", "430002", "430003"],
        ["430001", "430002", "430003"],
    ]


# --- strangers ------------------------------------------------------------------------------------


async def test_a_stranger_pressing_a_forwarded_reminder_button_is_refused(kefu):
    kefu.emu.add_user(STRANGER, "路人")
    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="440001"))
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    for data in data_of(card):
        query = kefu.emu.press_button(STRANGER, AGENT, card["message_id"], data=data)
        await kefu.emu.wait_until_idle()
        answer = kefu.emu.callback_answer(query)
        assert answer["show_alert"] and "邀请" in answer["text"], data
    r = await reminder(kefu, "440001")
    assert r.claimed_by is None and r.state == "sent"
    assert await kefu.svc.reminders.events(r.id) == []
    assert kefu.emu.messages(STRANGER) == []  # no card, no script
    assert reminder_messages(kefu, AGENT)[0]["edits"] == []


async def test_no_action_on_someone_elses_claimed_order_asks_to_confirm(kefu):
    await save(kefu.svc.db, kefu.clock, paid(kefu.clock.now() - 37 * H, order_no="380031"))
    await kefu.tick()
    [card] = reminder_messages(kefu, AGENT)
    await kefu.press(AGENT, card, data="rem:claim:1")
    [sup_card] = reminder_messages(kefu, SUP)
    await kefu.press(SUP, sup_card, data="rem:done:1")
    [sup_card] = reminder_messages(kefu, SUP)
    query = await kefu.press(SUP, sup_card, data="rem:out:1:no_action")
    answer = kefu.emu.callback_answer(query)
    assert answer["show_alert"] and "小美" in answer["text"] and "确认" in answer["text"]
    assert (await reminder(kefu, "380031")).state != "done"  # nothing closed yet
    [sup_card] = reminder_messages(kefu, SUP)
    assert "rem:out:1:nax" in data_of(sup_card)
    await kefu.press(SUP, sup_card, data="rem:out:1:nax")
    r = await reminder(kefu, "380031")
    assert (r.state, r.outcome, r.done_by) == ("done", "no_action", SUP)
    # your own claim closes in one tap, as before
    await save(kefu.svc.db, kefu.clock, paid(kefu.clock.now() - 37 * H, order_no="380032"))
    await kefu.tick()
    rid = await rid_of(kefu, "380032")
    own = [m for m in reminder_messages(kefu, AGENT) if "380032" in m["plain"]][-1]
    await kefu.press(AGENT, own, data=f"rem:claim:{rid}")
    await kefu.press(AGENT, own, data=f"rem:done:{rid}")
    await kefu.press(AGENT, own, data=f"rem:out:{rid}:no_action")
    assert (await reminder(kefu, "380032")).state == "done"
