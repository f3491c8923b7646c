"""The cases service on the real database, people and orders features."""

from datetime import timedelta
from decimal import Decimal

import pytest

from bot.cases import CaseService
from bot.orders import NormalizedOrder, upsert_orders
from bot.people import UserError
from tests.conftest import SHANGHAI, local
from tests.unit.cases.conftest import (
    ADMIN, AGENT, AGENT2, AGENT_NIGHT, POLICY, SHIFTS, SUP_DAY, SUP_NIGHT,
)


def code_of(caught) -> str:
    return caught.value.code


async def new_case(cases, who, actor=AGENT, **fields):
    return await cases.open_case(await who(actor), **fields)


# -- opening -----------------------------------------------------------------------------------------


async def test_numbers_are_visible_and_sequential_and_history_starts(cases, who):
    first = await new_case(cases, who, problem="damaged", description="外箱压坏")
    second = await new_case(cases, who)
    assert second.id == first.id + 1
    assert first.state == "open" and first.owner == AGENT and first.opened_by == AGENT
    history = await cases.history(await who(AGENT), first.id)
    assert [(h.action, h.new) for h in history] == [("opened", "open")]


async def test_a_case_links_the_stored_order_and_takes_its_details(cases, who, db, clock):
    order = NormalizedOrder(
        platform="taobao", order_no="3905123412341234", shop="旗舰店", status="shipped", status_raw="卖家已发货",
        refunding=False, presale=False, created_at=None, paid_at=None, shipped_at=None, amount=Decimal("59.90"),
        buyer="tb_buyer", item_title="保温杯", tracking_no="", carrier="",
    )
    await upsert_orders(db, [order], clock=clock, source="test")
    case = await new_case(cases, who, order_no=" 3905123412341234 ", problem="quality")
    assert case.order_id is not None
    assert (case.platform, case.shop, case.buyer, case.item) == ("taobao", "旗舰店", "tb_buyer", "保温杯")


async def test_a_case_without_an_order_is_allowed(cases, who):
    chat_only = await new_case(cases, who, problem="other", buyer="微信买家")
    assert chat_only.order_no == "" and chat_only.order_id is None
    unknown = await new_case(cases, who, order_no="NOT-STORED-1")
    assert unknown.order_no == "NOT-STORED-1" and unknown.order_id is None


async def test_bad_field_values_are_user_errors(cases, who):
    with pytest.raises(UserError) as caught:
        await new_case(cases, who, problem="alien")
    assert code_of(caught) == "case_bad_problem"
    with pytest.raises(UserError) as caught:
        await new_case(cases, who, resolution="compensation", amount_cents="1.234")
    assert code_of(caught) == "case_bad_amount"
    with pytest.raises(UserError) as caught:
        await new_case(cases, who, description="长" * 1001)
    assert code_of(caught) == "case_text_too_long"


async def test_every_edit_is_a_line_of_history(cases, who, clock):
    case = await new_case(cases, who)
    clock.advance(minutes=5)
    await cases.edit(await who(AGENT), case.id, resolution="compensation", amount_cents="8.8", responsible="courier")
    edited = await cases.get(case.id)
    assert edited.amount == "8.80" and edited.amount_cents == 880
    changes = {h.field: (h.old, h.new) for h in await cases.history(await who(AGENT), case.id) if h.action == "edit"}
    assert changes == {"resolution": ("", "compensation"), "amount_cents": ("", "880"), "responsible": ("", "courier")}


async def test_evidence_is_kept_by_file_id(cases, who):
    case = await new_case(cases, who)
    await cases.add_evidence(await who(AGENT), case.id, "photo", "AgACAgQAAx0", "uniq1", "破损照片")
    with pytest.raises(UserError) as caught:
        await cases.add_evidence(await who(AGENT), case.id, "sticker", "x")
    assert code_of(caught) == "case_bad_evidence"
    stored = await cases.get(case.id)
    assert [(e.kind, e.file_id, e.caption) for e in stored.evidence] == [("photo", "AgACAgQAAx0", "破损照片")]


# -- state machine through the service -----------------------------------------------------------------


async def test_open_to_waiting_to_done_and_reopen_with_reason(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="resend")
    case = await cases.move(agent, case.id, "waiting_warehouse")
    case = await cases.move(agent, case.id, "waiting_buyer")
    case = await cases.move(agent, case.id, "done")
    assert case.state == "done" and case.finished_at is not None
    with pytest.raises(UserError) as caught:
        await cases.move(agent, case.id, "open")
    assert code_of(caught) == "case_bad_move"
    with pytest.raises(UserError) as caught:
        await cases.reopen(agent, case.id, "  ")
    assert code_of(caught) == "case_reason_required"
    case = await cases.reopen(agent, case.id, "买家说补发的也坏了")
    assert case.state == "open" and case.finished_at is None
    reopen = [h for h in await cases.history(agent, case.id) if h.action == "reopen"]
    assert reopen[0].detail == "买家说补发的也坏了" and (reopen[0].old, reopen[0].new) == ("done", "open")


async def test_only_a_decision_approves_and_a_finished_case_is_not_edited(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who)
    with pytest.raises(UserError) as caught:
        await cases.move(agent, case.id, "approved")
    assert code_of(caught) == "case_bad_move"
    await cases.move(agent, case.id, "closed")
    with pytest.raises(UserError) as caught:
        await cases.edit(agent, case.id, notes="x")
    assert code_of(caught) == "case_finished"


async def test_going_on_with_a_plan_that_needs_approval_is_refused(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="compensation", amount_cents="30")
    with pytest.raises(UserError) as caught:
        await cases.move(agent, case.id, "done")
    assert code_of(caught) == "case_needs_approval"
    assert caught.value.params["reasons"] == ["compensation_over_cap"]
    small = await new_case(cases, who, resolution="compensation", amount_cents="20")
    assert (await cases.move(agent, small.id, "done")).state == "done"


# -- approvals ----------------------------------------------------------------------------------------


async def test_the_supervisor_on_duty_gets_the_request_and_approves(cases, who, clock):
    agent = await who(AGENT)
    case = await new_case(cases, who, problem="quality", resolution="return_refund", amount_cents="59.9")
    sent = await cases.submit(agent, case.id)
    assert sent.approver.tg_id == SUP_DAY  # day shift at 10:00
    assert sent.case.state == "pending_approval"
    assert sent.approval.reasons == ("quality_return",) and sent.approval.amount == "59.90"
    assert not sent.timing.waits_for_shift
    clock.advance(minutes=12)
    decision = await cases.approve(await who(SUP_DAY), sent.approval.id)
    assert decision.case.state == "approved" and decision.requester.tg_id == AGENT
    assert decision.approval.decided_by == SUP_DAY
    assert decision.approval.decided_at - decision.approval.submitted_at == timedelta(minutes=12)
    assert (await cases.move(agent, case.id, "waiting_buyer")).state == "waiting_buyer"
    actions = [h.action for h in await cases.history(agent, case.id)]
    assert actions == ["opened", "submit", "approve", "move"]


async def test_an_approver_cannot_approve_their_own_request(cases, who):
    sup = await who(SUP_DAY)
    case = await cases.open_case(sup, resolution="compensation", amount_cents="50")
    sent = await cases.submit(sup, case.id)
    assert sent.approver.tg_id != SUP_DAY
    for action in (cases.approve(sup, sent.approval.id), cases.reject(sup, sent.approval.id, "不行")):
        with pytest.raises(UserError) as caught:
            await action
        assert code_of(caught) == "case_self_approval"


async def test_someone_else_than_the_approver_cannot_decide_but_an_admin_can(cases, who):
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    sent = await cases.submit(await who(AGENT), case.id)
    for other in (AGENT2, SUP_NIGHT):
        with pytest.raises(UserError) as caught:
            await cases.approve(await who(other), sent.approval.id)
        assert code_of(caught) == "case_not_approver"
    decision = await cases.approve(await who(ADMIN), sent.approval.id)
    assert decision.approval.decided_by == ADMIN
    with pytest.raises(UserError) as caught:
        await cases.approve(await who(SUP_DAY), sent.approval.id)
    assert code_of(caught) == "case_request_closed"


async def test_reject_needs_a_reason_and_the_case_can_be_reworked(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="refund_only", amount_cents="150")
    sent = await cases.submit(agent, case.id)
    with pytest.raises(UserError) as caught:
        await cases.reject(await who(SUP_DAY), sent.approval.id, "")
    assert code_of(caught) == "case_reason_required"
    decision = await cases.reject(await who(SUP_DAY), sent.approval.id, "凭证不足，请补充照片或视频")
    assert decision.case.state == "rejected" and decision.approval.decision_reason.startswith("凭证不足")
    with pytest.raises(UserError) as caught:
        await cases.move(agent, case.id, "done")
    assert code_of(caught) == "case_bad_move"
    await cases.edit(agent, case.id, amount_cents="80")  # now under the 仅退款 line
    again = await cases.move(agent, case.id, "open")
    assert (await cases.move(agent, again.id, "done")).state == "done"


async def test_withdraw_then_edit_then_resubmit_makes_a_new_request(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    first = await cases.submit(agent, case.id)
    with pytest.raises(UserError) as caught:
        await cases.edit(agent, case.id, amount_cents="40")  # not edited in place
    assert code_of(caught) == "case_request_pending"
    with pytest.raises(UserError) as caught:
        await cases.withdraw(await who(AGENT2), case.id)
    assert code_of(caught) == "case_not_requester"
    withdrawn = await cases.withdraw(agent, case.id)
    assert withdrawn.state == "open" and withdrawn.approval.state == "withdrawn"
    await cases.edit(agent, case.id, amount_cents="40")
    second = await cases.submit(agent, case.id)
    assert second.approval.id != first.approval.id and second.approval.amount == "40.00"
    old = await cases.store.approval(first.approval.id)
    assert (old.state, old.amount) == ("withdrawn", "50.00")
    with pytest.raises(UserError) as caught:
        await cases.approve(await who(SUP_DAY), first.approval.id)
    assert code_of(caught) == "case_request_closed"


async def test_a_plan_needing_no_approval_is_not_submitted_unless_marked(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="resend")
    with pytest.raises(UserError) as caught:
        await cases.submit(agent, case.id)
    assert code_of(caught) == "case_no_approval_needed"
    sent = await cases.submit(agent, case.id, mark=True)
    assert sent.approval.reasons == ("marked",) and sent.case.needs_supervisor


async def test_an_amount_above_the_second_line_goes_to_an_admin(cases, who):
    case = await new_case(cases, who, resolution="refund_only", amount_cents="600")
    sent = await cases.submit(await who(AGENT), case.id)
    assert (sent.approval.level, sent.approver.tg_id) == ("admin", ADMIN)
    with pytest.raises(UserError) as caught:
        await cases.transfer(await who(ADMIN), sent.approval.id, await who(SUP_DAY))
    assert code_of(caught) == "case_not_an_approver"


async def test_compensation_without_an_amount_cannot_be_submitted(cases, who):
    case = await new_case(cases, who, resolution="compensation")
    with pytest.raises(UserError) as caught:
        await cases.submit(await who(AGENT), case.id, mark=True)
    assert code_of(caught) == "case_amount_required"


async def test_transfer_to_another_supervisor_restarts_the_clock(cases, who, clock):
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    sent = await cases.submit(await who(AGENT), case.id)
    clock.advance(minutes=30)
    moved = await cases.transfer(await who(SUP_DAY), sent.approval.id, await who(SUP_NIGHT))
    assert moved.approver == SUP_NIGHT and moved.remind_at == local("2026-11-23 11:30")
    with pytest.raises(UserError) as caught:
        await cases.transfer(await who(SUP_NIGHT), sent.approval.id, await who(AGENT))
    assert code_of(caught) == "case_self_approval"
    with pytest.raises(UserError) as caught:
        await cases.approve(await who(SUP_DAY), sent.approval.id)  # no longer theirs
    assert code_of(caught) == "case_not_approver"
    assert (await cases.approve(await who(SUP_NIGHT), sent.approval.id)).case.state == "approved"


async def test_nudge_is_for_the_requester_and_throttled(cases, who, clock):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    await cases.submit(agent, case.id)
    nudged = await cases.nudge(agent, case.id)
    assert nudged.nudged_at == clock.now()
    clock.advance(minutes=3)
    with pytest.raises(UserError) as caught:
        await cases.nudge(agent, case.id)
    assert code_of(caught) == "case_nudge_too_soon" and caught.value.params["minutes"] == 7
    clock.advance(minutes=7)
    await cases.nudge(agent, case.id)


async def test_a_change_after_approval_that_needs_a_new_one_returns_to_open(cases, who):
    agent = await who(AGENT)
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    sent = await cases.submit(agent, case.id)
    await cases.approve(await who(SUP_DAY), sent.approval.id)
    await cases.edit(agent, case.id, amount_cents="45")  # less than approved: still covered
    assert (await cases.get(case.id)).state == "approved"
    await cases.edit(agent, case.id, amount_cents="60")
    assert (await cases.get(case.id)).state == "open"


# -- the ticker across the night gap ---------------------------------------------------------------------


async def test_a_late_request_is_reminded_after_the_night_gap_and_escalated_later(cases, who, clock):
    clock.set(local("2026-11-23 23:50"))
    agent = await who(AGENT_NIGHT)
    case = await cases.open_case(agent, resolution="compensation", amount_cents="50")
    sent = await cases.submit(agent, case.id)
    assert sent.approver.tg_id == SUP_NIGHT and not sent.timing.waits_for_shift
    assert sent.approval.remind_at == local("2026-11-24 00:50")
    assert sent.approval.escalate_at == local("2026-11-24 10:20")  # 70 min before 01:00, 110 min after 08:30
    clock.set(local("2026-11-24 00:49"))
    assert await cases.due_work() == []
    clock.set(local("2026-11-24 00:50"))
    [work] = await cases.due_work()
    assert work.actions == ("remind",)
    assert await cases.mark_done(work.approval.id, "remind")
    assert not await cases.mark_done(work.approval.id, "remind")
    clock.set(local("2026-11-24 08:30"))
    assert await cases.due_work() == []  # nothing happens over the night
    clock.set(local("2026-11-24 10:20"))
    [work] = await cases.due_work()
    assert work.actions == ("escalate",)
    await cases.mark_done(work.approval.id, "escalate")
    assert [h.action for h in await cases.history(agent, case.id)][-2:] == ["remind", "escalate"]


async def test_a_request_in_the_night_gap_waits_for_the_morning(cases, who, clock):
    clock.set(local("2026-11-24 03:00"))
    agent = await who(AGENT_NIGHT)
    case = await cases.open_case(agent, resolution="compensation", amount_cents="50")
    sent = await cases.submit(agent, case.id)
    assert sent.timing.waits_for_shift and sent.timing.deliver_at == local("2026-11-24 08:30")
    assert sent.approver.tg_id == SUP_DAY  # the day shift's supervisor, on duty at 08:30
    assert await cases.due_work() == []
    clock.set(local("2026-11-24 08:30"))
    [work] = await cases.due_work()
    assert work.actions == ("deliver",)


# -- who sees what -----------------------------------------------------------------------------------------


async def test_other_agents_cannot_see_or_act_on_a_case(cases, who):
    case = await new_case(cases, who)
    other = await who(AGENT2)
    for action in (
        cases.view(other, case.id), cases.edit(other, case.id, notes="x"), cases.move(other, case.id, "closed"),
        cases.add_evidence(other, case.id, "photo", "f"), cases.submit(other, case.id, mark=True),
    ):
        with pytest.raises(UserError) as caught:
            await action
        assert code_of(caught) == "case_forbidden"
    assert await cases.search(other, "") == []
    assert (await cases.view(await who(SUP_NIGHT), case.id)).id == case.id  # supervisors see all


async def test_assigning_gives_the_new_owner_the_case(cases, who):
    case = await new_case(cases, who)
    with pytest.raises(UserError):
        await cases.assign(await who(AGENT2), case.id, await who(AGENT2))
    await cases.assign(await who(AGENT), case.id, await who(AGENT_NIGHT))
    assert [c.id for c in await cases.open_cases_of(AGENT_NIGHT)] == [case.id]
    assert await cases.open_cases_of(AGENT) == []
    assert [c.id for c in await cases.open_cases_of_shift("night")] == [case.id]
    assert (await cases.view(await who(AGENT_NIGHT), case.id)).owner == AGENT_NIGHT


# -- queries ------------------------------------------------------------------------------------------------


async def test_search_mine_open_order_keyword_date_and_number(cases, who, clock):
    agent, other = await who(AGENT), await who(AGENT2)
    a = await new_case(cases, who, order_no="111222333", description="杯盖漏水")
    clock.advance(days=1)
    b = await cases.open_case(other, order_no="999888777", description="少发一个杯盖")
    await cases.move(other, b.id, "closed")
    sup = await who(SUP_DAY)
    assert [c.id for c in await cases.search(agent, "mine")] == [a.id]
    assert [c.id for c in await cases.search(sup, "open")] == [a.id]
    assert [c.id for c in await cases.search(sup, "999888777")] == [b.id]
    assert [c.id for c in await cases.search(sup, "杯盖")] == [b.id, a.id]
    assert [c.id for c in await cases.search(sup, "2026-11-23")] == [a.id]
    assert [c.id for c in await cases.search(sup, "11-24")] == [b.id]
    assert [c.id for c in await cases.search(sup, f"#{b.id}")] == [b.id]
    assert await cases.search(agent, f"#{b.id}") == []  # not theirs
    with pytest.raises(UserError) as caught:
        await cases.search(sup, "2026-02-30")
    assert code_of(caught) == "case_bad_date"
    assert await cases.search(sup, "100%_x") == []  # LIKE wildcards are literal


async def test_policy_reload_changes_the_rules(cases, who):
    cases.set_policy({**POLICY, "compensation_cap": 100})
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    assert cases.needs_approval(case) == ()
    with pytest.raises(ValueError):
        cases.set_policy({"compensation_cap": "lots"})
    assert cases.policy.compensation_cap_cents == 10000  # the old one stays


async def test_service_reads_the_shipped_policy(db, clock, people):
    from bot.kb import load_kb

    service = CaseService(db, clock, people, SHIFTS, SHANGHAI, load_kb().policy)
    assert service.policy.compensation_cap_cents == 2000 and service.policy.remind_minutes == 60


async def test_off_hours_the_next_shifts_supervisor_is_asked(cases, who, clock, people):
    admin = await who(ADMIN)
    await people.set_shift(admin, await who(SUP_DAY), "night")
    await people.set_shift(admin, await who(SUP_NIGHT), "day")
    clock.set(local("2026-11-24 03:00"))
    agent = await who(AGENT_NIGHT)
    case = await cases.open_case(agent, resolution="compensation", amount_cents="50")
    sent = await cases.submit(agent, case.id)
    assert sent.approver.tg_id == SUP_NIGHT  # works the day shift that starts at 08:30, not the lowest id


async def test_requests_of_a_deactivated_approver_go_to_another(cases, who, people):
    case = await new_case(cases, who, resolution="compensation", amount_cents="50")
    sent = await cases.submit(await who(AGENT), case.id)
    assert sent.approver.tg_id == SUP_DAY
    await people.set_active(await who(ADMIN), await who(SUP_DAY), False)
    [(approval, approver)] = await cases.reroute_approvals_of(SUP_DAY)
    assert approver.tg_id == SUP_NIGHT == approval.approver  # no other supervisor on duty: any supervisor
    assert await cases.reroute_approvals_of(SUP_DAY) == []
    assert (await cases.approve(await who(SUP_NIGHT), approval.id)).case.state == "approved"
