"""The approval rules as pure functions: each rule, who approves, and timing across the night gap."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from bot.cases import ApprovalPolicy, add_shift_time, approval_level, approval_reasons, approval_timing, choose_approver
from bot.cases.approval import due_actions, next_working_moment
from bot.people import Role
from tests.conftest import SHANGHAI, local
from tests.unit.cases.conftest import POLICY, SHIFTS

DEFAULT = ApprovalPolicy.from_policy(POLICY)


def reasons(policy=DEFAULT, problem="other", resolution=None, amount=None, marked=False):
    return approval_reasons(policy, problem=problem, resolution=resolution, amount_cents=amount, needs_supervisor=marked)


def test_quality_return_needs_a_supervisor_only_when_the_policy_says_so():
    assert reasons(problem="quality", resolution="return_refund") == ("quality_return",)
    off = ApprovalPolicy.from_policy({**POLICY, "quality_return_needs_supervisor": False})
    assert reasons(off, problem="quality", resolution="return_refund") == ()
    assert reasons(problem="quality", resolution="exchange") == ()  # not a return
    assert reasons(problem="no_reason", resolution="return_refund") == ()  # not a quality case


def test_compensation_above_the_cap_needs_approval_at_the_cap_does_not():
    assert reasons(resolution="compensation", amount=2000) == ()
    assert reasons(resolution="compensation", amount=2001) == ("compensation_over_cap",)
    lower = ApprovalPolicy.from_policy({**POLICY, "compensation_cap": "5.5"})
    assert reasons(lower, resolution="compensation", amount=551) == ("compensation_over_cap",)
    assert reasons(lower, resolution="compensation", amount=550) == ()


def test_refund_only_over_the_amount_needs_approval():
    assert reasons(resolution="refund_only", amount=10000) == ()
    assert reasons(resolution="refund_only", amount=10001) == ("refund_over_limit",)
    assert reasons(resolution="return_refund", amount=99999) == ()  # the rule is for 仅退款


def test_anything_marked_needs_a_supervisor():
    assert reasons(resolution="resend", marked=True) == ("marked",)
    assert reasons(marked=True, problem="quality", resolution="return_refund") == ("marked", "quality_return")


def test_above_the_second_amount_an_admin_decides():
    assert approval_level(DEFAULT, 50000) == "supervisor"
    assert approval_level(DEFAULT, 50001) == "admin"
    assert approval_level(DEFAULT, None) == "supervisor"


def test_defaults_apply_when_the_policy_has_no_approval_options():
    policy = ApprovalPolicy.from_policy({})
    assert (policy.compensation_cap_cents, policy.refund_only_above_cents, policy.admin_above_cents) == (2000, 10000, 50000)
    assert (policy.remind_minutes, policy.escalate_minutes, policy.quality_return_needs_supervisor) == (60, 180, True)


@pytest.mark.parametrize(
    "override",
    [{"compensation_cap": "abc"}, {"compensation_cap": True}, {"approval_remind_minutes": 0},
     {"approval_remind_minutes": 90, "approval_escalate_minutes": 60}, {"quality_return_needs_supervisor": "yes"}],
)
def test_a_malformed_policy_option_is_named(override):
    with pytest.raises(ValueError) as caught:
        ApprovalPolicy.from_policy({**POLICY, **override})
    assert next(iter(override)) in str(caught.value) or "approval_escalate_minutes" in str(caught.value)


@dataclass
class P:
    tg_id: int
    role: Role
    active: bool = True


TEAM = [P(1, Role.ADMIN), P(2, Role.SUPERVISOR), P(3, Role.SUPERVISOR), P(4, Role.AGENT), P(5, Role.SUPERVISOR, active=False)]


def test_the_supervisor_on_duty_approves_else_any_supervisor():
    assert choose_approver(TEAM, {3, 4}, "supervisor", requester=4).tg_id == 3
    assert choose_approver(TEAM, {4}, "supervisor", requester=4).tg_id == 2  # nobody on duty: any supervisor
    assert choose_approver(TEAM, {5}, "supervisor", requester=4).tg_id == 2  # inactive never


def test_nobody_approves_their_own_request():
    assert choose_approver(TEAM, {3}, "supervisor", requester=3).tg_id == 2
    solo = [P(2, Role.SUPERVISOR), P(1, Role.ADMIN)]
    assert choose_approver(solo, {2}, "supervisor", requester=2).tg_id == 1  # falls to an admin
    assert choose_approver([P(1, Role.ADMIN)], {1}, "admin", requester=1) is None


def test_admin_level_goes_to_an_admin_never_a_supervisor():
    assert choose_approver(TEAM, {2, 3}, "admin", requester=4).tg_id == 1
    assert choose_approver([p for p in TEAM if p.role != Role.ADMIN], {2}, "admin", requester=4) is None


# -- timing -----------------------------------------------------------------------------------------


def test_an_hour_of_shift_time_inside_a_shift_is_an_hour():
    assert add_shift_time(SHIFTS, local("2026-11-23 10:00"), 60, SHANGHAI) == local("2026-11-23 11:00")
    # day → night is continuous (17:30 both end and start)
    assert add_shift_time(SHIFTS, local("2026-11-23 17:00"), 60, SHANGHAI) == local("2026-11-23 18:00")


def test_the_night_gap_does_not_count():
    # 00:40 + 60 min: 20 min until 01:00, the gap until 08:30, then 40 min → 09:10 next morning
    assert add_shift_time(SHIFTS, local("2026-11-24 00:40"), 60, SHANGHAI) == local("2026-11-24 09:10")
    # 3 h escalation from 23:30: 1.5 h until 01:00, the remaining 1.5 h from 08:30 → 10:00
    assert add_shift_time(SHIFTS, local("2026-11-23 23:30"), 180, SHANGHAI) == local("2026-11-24 10:00")


def test_a_request_outside_shift_hours_waits_for_the_next_shift():
    timing = approval_timing(DEFAULT, SHIFTS, local("2026-11-24 03:00"), SHANGHAI)
    assert timing.waits_for_shift
    assert timing.deliver_at == local("2026-11-24 08:30")
    assert timing.remind_at == local("2026-11-24 09:30")
    assert timing.escalate_at == local("2026-11-24 11:30")


def test_a_request_inside_shift_hours_is_delivered_at_once():
    timing = approval_timing(DEFAULT, SHIFTS, local("2026-11-23 10:00"), SHANGHAI)
    assert not timing.waits_for_shift
    assert timing.deliver_at == local("2026-11-23 10:00")
    assert timing.remind_at == local("2026-11-23 11:00")
    assert timing.escalate_at == local("2026-11-23 13:00")


def test_next_working_moment_at_a_shift_boundary():
    assert next_working_moment(SHIFTS, local("2026-11-24 01:00"), SHANGHAI) == local("2026-11-24 08:30")
    assert next_working_moment(SHIFTS, local("2026-11-24 08:30"), SHANGHAI) == local("2026-11-24 08:30")


def test_without_shifts_all_time_counts():
    assert add_shift_time((), local("2026-11-24 03:00"), 60, SHANGHAI) == local("2026-11-24 04:00")


@dataclass
class A:
    state: str = "pending"
    deliver_at: object = local("2026-11-24 08:30")
    delivered_at: object = None
    remind_at: object = local("2026-11-24 09:30")
    reminded_at: object = None
    escalate_at: object = local("2026-11-24 11:30")
    escalated_at: object = None


def test_due_actions_once_each_in_order():
    assert due_actions(A(), local("2026-11-24 08:00")) == []
    assert due_actions(A(), local("2026-11-24 08:30")) == ["deliver"]
    assert due_actions(A(), local("2026-11-24 12:00")) == ["deliver", "remind", "escalate"]
    done = A(delivered_at=1, reminded_at=1)
    assert due_actions(done, local("2026-11-24 12:00")) == ["escalate"]
    assert due_actions(A(state="approved"), local("2026-11-24 12:00")) == []
    assert due_actions(A(), local("2026-11-24 12:00") + timedelta(days=1)) == ["deliver", "remind", "escalate"]
