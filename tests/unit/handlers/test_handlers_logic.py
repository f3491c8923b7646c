"""Handler logic without the emulator: real services and handlers, a recording outbox. What a
handler answers, sends and edits, and what it leaves in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram import InlineQuery, Update, User
from telegram.ext import ApplicationHandlerStop

from bot.broadcasts import Audience, Content
from bot.handover import window_for_key
from handlers import broadcasts, callbacks, handover, reminders, scripts
from tests.conftest import local
from tests.reminder_orders import save, unpaid
from tests.unit.handlers.conftest import context_for, press, text_update


async def test_a_pasted_buyer_message_finds_the_script(app, svc, team, sent):
    agent = team["day_agent"]
    with pytest.raises(ApplicationHandlerStop):  # answered: the fallback stays quiet
        await scripts.pasted_text(text_update(agent, "快递怎么这么慢，发货好几天了还没到"), context_for(app, agent))
    [answer] = sent.of("send")
    assert answer.chat_id == agent.tg_id
    assert svc.kb.get().get("log_slow").title in answer.text
    assert any(callbacks.KB.decode(data) is not None for data in answer.buttons())


async def test_claiming_a_reminder_answers_the_presser_then_refreshes_the_copies(app, svc, team, sent, clock):
    agent = team["day_agent"]
    await save(svc.db, clock, unpaid(clock.now() - timedelta(hours=13)))  # unpaid for 12 h: due
    await svc.reminders.scan(clock.now())
    [r] = await svc.reminders.pending()
    await reminders.on_button(press(agent, callbacks.RemClaim(r.id).pack()), context_for(app, agent))
    assert sent.sent[0].op == "answer"  # the presser first
    await sent.settle()
    assert (await svc.reminders.get(r.id)).claimed_by == agent.tg_id
    again = len(sent.sent)
    await reminders.on_button(press(team["night_agent"], callbacks.RemClaim(r.id).pack()),
                              context_for(app, team["night_agent"]))
    [refused] = sent.sent[again:]
    assert refused.op == "answer" and refused.alert  # someone else has it: told, nothing changed
    assert (await svc.reminders.get(r.id)).claimed_by == agent.tg_id


async def test_a_forged_reminder_button_is_answered_as_expired(app, team, sent):
    agent = team["day_agent"]
    await reminders.on_button(press(agent, "rem:claim:abc"), context_for(app, agent))
    [answer] = sent.sent
    assert answer.op == "answer" and answer.alert and answer.text


async def test_taking_over_a_handover_item_answers_first_and_refreshes_every_card_in_the_background(
        app, svc, team, sent, clock):
    writer, taker = team["day_agent"], team["night_agent"]
    item = await svc.handover.log_item(writer.tg_id, writer.shift, "仓库还没回复补发")
    clock.set(local("2026-11-23 17:30"))
    night = window_for_key(svc.settings.shifts, "night:2026-11-23", svc.tz)
    assert await svc.handover.hand_over_to(night) == 1
    await svc.handover.record_card(item.id, "", writer.tg_id, 90)  # the author's copy
    await svc.handover.record_card(item.id, "night:2026-11-23", taker.tg_id, 91)  # the copy pressed
    clock.set(local("2026-11-23 17:42"))
    await handover.button_pressed(press(taker, callbacks.HoTake(item.id).pack(), message_id=91), context_for(app, taker))
    assert sent.sent[0].op == "answer" and not sent.sent[0].alert
    [own] = sent.of("edit")  # the pressed copy at once, directly
    assert (own.chat_id, own.message_id, own.direct) == (taker.tg_id, 91, True)
    await sent.settle()
    [other] = sent.of("edit")[1:]  # the author's copy in the background, as bulk work
    assert (other.chat_id, other.message_id, other.direct) == (writer.tg_id, 90, False)
    assert (await svc.handover.require(item.id)).taken_by == taker.tg_id
    assert callbacks.HoTake(item.id).pack() not in other.buttons()  # nobody is offered 接手 any more


async def test_an_acknowledgement_answers_first_then_edits_the_copy(app, svc, team, sent):
    boss, agent = team["supervisor"], team["day_agent"]
    draft = await svc.broadcasts.create_draft(boss, Content("text", "今晚盘点"), pin_available=False)
    for name, value in (("audience", Audience("all")), ("ack_required", True), ("urgent", False), ("silent", False)):
        draft = await svc.broadcasts.choose(draft.id, boss, name, value)
    broadcast = await svc.broadcasts.start_sending(draft.id, boss)
    while (tg_id := await svc.broadcasts.claim_next(broadcast.id)) is not None:
        await svc.broadcasts.record(broadcast.id, tg_id, "sent", message_id=300 + tg_id % 100)
    copy = 300 + agent.tg_id % 100
    await broadcasts.ack_button(press(agent, callbacks.Ack(broadcast.id).pack(), message_id=copy), context_for(app, agent))
    assert [s.op for s in sent.sent] == ["answer"]  # the answer before any edit
    await sent.settle()
    [edited] = sent.of("edit")
    assert (edited.chat_id, edited.message_id, edited.direct) == (agent.tg_id, copy, False)
    assert [r.tg_id for r in await svc.broadcasts.roster(broadcast.id) if r.acked_at] == [agent.tg_id]
    again = len(sent.sent)
    await broadcasts.ack_button(press(agent, callbacks.Ack(broadcast.id).pack(), message_id=copy), context_for(app, agent))
    await sent.settle()
    assert [s.op for s in sent.sent[again:]] == ["answer"]  # once only: no second edit


async def test_the_inline_query_fills_the_scripts_with_the_stored_order(app, svc, team, sent, clock):
    agent = team["day_agent"]
    order = unpaid(clock.now() - timedelta(hours=1))
    await save(svc.db, clock, order)
    query = InlineQuery("q1", User(agent.tg_id, agent.full_name, is_bot=False), f"催付 {order.order_no}", "")
    await scripts.inline_query(Update(1, inline_query=query), context_for(app, agent))
    assert [s.op for s in sent.sent] == ["inline"]
    bodies = [r.input_message_content.message_text for r in sent.inline_results]
    assert bodies and any(order.order_no in body for body in bodies)
