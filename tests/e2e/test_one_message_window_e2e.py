"""The one-message window, end to end (handlers/outbox.py): a send whose answer comes after PTB's
5 s read timeout is "sent, unconfirmed" and is never sent again. These tests hold the callers to
it, through the real Application against the emulator (a delayed answer, as in
tests/e2e/test_concurrency_e2e.py):

- a reminder digest: recorded as delivered to that chat (no second digest on the next ticks, the
  round counts as served, never edited since its id is unknown);
- a broadcast's team-group post: remembered as posted (not posted again when a restart resumes
  the broadcast);
- a fired schedule's progress panel: not re-sent nor edited; the final summary comes as a new message.
"""

import asyncio
from datetime import timedelta

import pytest

from bot.people import Role
from tests.broadcast_helpers import compose, copies, draft_id, press, say
from tests.reminder_orders import save, unpaid

AGENT, SUP = 2001, 2002
TEAM_CHAT = -100777
H = timedelta(hours=1)


@pytest.fixture
def staff():
    return [(AGENT, Role.AGENT, "day", "小美"), (SUP, Role.SUPERVISOR, "day", "李主管")]


def sends_to(kefu, chat_id: int, words: str = "") -> int:
    return sum(1 for r in kefu.emu.requests("sendMessage")
               if int(r["params"]["chat_id"]) == chat_id and words in str(r["params"].get("text")))


async def test_a_digest_answered_after_the_read_timeout_is_not_pushed_again(kefu):
    from handlers.reminders import refresh_messages

    await save(kefu.svc.db, kefu.clock, unpaid(kefu.clock.now() - 13 * H, order_no="610001"),
               unpaid(kefu.clock.now() - 13 * H, order_no="610002"))
    kefu.emu.inject_fault(method="sendMessage", kind="slow", count=1, delay=6.0, chat_id=AGENT)
    await kefu.tick()  # AGENT's digest: Telegram carries it out, its answer comes too late
    await kefu.emu.wait_for_message(AGENT, count=1, timeout=10)
    for _ in range(3):
        kefu.clock.advance(timedelta(minutes=1))
        await kefu.tick()
    await kefu.emu.wait_until_idle(timeout=10)
    assert sends_to(kefu, AGENT) == 1 and len(kefu.emu.messages(AGENT)) == 1  # one digest, never twice
    assert "610001" in kefu.emu.messages(AGENT)[0]["plain"]

    engine = kefu.svc.reminders
    views = [await engine.get(1), await engine.get(2)]
    # sent: every chat of the round holds it, AGENT's unconfirmed copy included
    assert all(v.state == "sent" and v.first_sent_at is not None for v in views)
    # The copy whose id is unknown is never edited; the confirmed ones still are.
    assert [m.chat_id for m in await engine.messages_showing([1, 2])] == [SUP]
    before = len(kefu.emu.requests("editMessageText"))
    await refresh_messages(kefu.app, [1, 2])
    edits = kefu.emu.requests("editMessageText")[before:]
    assert edits and {int(r["params"]["chat_id"]) for r in edits} == {SUP}


async def test_a_team_post_answered_after_the_read_timeout_is_not_posted_again_on_resume(start):
    kefu = await start(kefu_team_chat_id=TEAM_CHAT)
    many = list(range(6200, 6260))
    for tg_id in many:
        await kefu.add_person(tg_id, Role.AGENT, shift="night")
    panel = await compose(kefu, SUP, "/broadcast 慢群置顶测试", "a:all", ack=False, pin=True)
    kefu.emu.inject_fault(method="sendMessage", kind="slow", count=1, delay=6.0, chat_id=TEAM_CHAT)
    kefu.emu.press_button(SUP, SUP, panel["message_id"], data=f"bc:{draft_id(panel)}:go")  # no waiting
    bid = draft_id(panel)

    def delivered_copies() -> int:
        return sum(1 for r in kefu.emu.requests("sendMessage") if r["status"] == 200
                   and int(r["params"]["chat_id"]) in many and "慢群置顶测试" in str(r["params"].get("text")))

    await kefu.emu.wait_for_request("sendMessage", lambda e: delivered_copies() >= 5, timeout=20)
    await kefu.emu.wait_for_message(TEAM_CHAT, lambda m: "慢群置顶测试" in m["plain"], timeout=10)
    await kefu.restart()  # mid-broadcast
    assert (await kefu.svc.broadcasts.counts(bid)).pending > 0
    await kefu.tick()  # resumes the broadcast
    await kefu.emu.wait_for_message(
        SUP, lambda m: m["message_id"] == panel["message_id"] and "发送完成" in m["plain"], timeout=30
    )
    await kefu.emu.wait_until_idle(timeout=10)
    await asyncio.sleep(0.5)
    assert len(copies(kefu, TEAM_CHAT, "慢群置顶测试")) == 1
    assert sends_to(kefu, TEAM_CHAT, "慢群置顶测试") == 1
    assert kefu.emu.requests("pinChatMessage") == []  # its id is unknown: not pinned
    for chat in many:
        assert len(copies(kefu, chat, "慢群置顶测试")) == 1, chat


async def test_a_scheduled_broadcasts_panel_answered_after_the_read_timeout_is_not_sent_twice(kefu):
    """A fired schedule's progress panel whose answer times out is remembered as sent (id
    unknown): not re-sent, not edited; the author still gets the final summary, once."""
    from handlers.ticker import run_tick
    from tests.conftest import local

    kefu.clock.set(local("2026-11-22 20:00"))
    panel = await say(kefu, SUP, "/schedule 每周一 08:00 慢面板测试 例会")
    for suffix in ("a:all", "ack:0", "urg:0", "sil:0", "go"):
        panel = await press(kefu, SUP, panel, suffix)
    before = len(kefu.emu.messages(SUP))
    kefu.emu.inject_fault(method="sendMessage", kind="slow", count=1, delay=6.0, chat_id=SUP)
    kefu.clock.set(local("2026-11-23 08:00"))
    await run_tick(kefu.app)  # not kefu.tick(): its idle wait would time out on the held request
    await kefu.emu.wait_for_message(SUP, lambda m: "发送完成" in m["plain"], timeout=20)
    await kefu.emu.wait_until_idle(timeout=10)
    await asyncio.sleep(1.0)
    new = kefu.emu.messages(SUP)[before:]
    # the unconfirmed panel (never edited) and the final summary, sent as a new message
    assert len(new) == 2, [m["plain"] for m in new]
    assert sorted("发送完成" in m["plain"] for m in new) == [False, True]
    assert sends_to(kefu, SUP, "发送完成") == 1
    assert [copy for copy in copies(kefu, AGENT, "慢面板测试")] != []
    kefu.clock.set(local("2026-11-23 08:05"))
    await kefu.tick()
    await kefu.emu.wait_until_idle(timeout=10)
    assert len(kefu.emu.messages(SUP)) == before + 2
