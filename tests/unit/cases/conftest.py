"""Fixtures for the cases feature: the real PeopleService with a small team registered through
the real invitation flow, and a CaseService over the real database and shop policy defaults.

Team (default shifts day=08:30-17:30, night=17:30-01:00; the clock starts Monday 10:00 Shanghai):
  1000 admin (day)   2001 supervisor 主管甲 (day)   2002 supervisor 主管乙 (night)
  3001 agent 小王 (day)   3002 agent 小李 (day)   3003 agent 小赵 (night)
"""

from __future__ import annotations

import pytest

from bot.cases import CaseService
from bot.people import PeopleService, Role
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI

SHIFTS = parse_shifts("day=08:30-17:30;night=17:30-01:00")
ADMIN, SUP_DAY, SUP_NIGHT, AGENT, AGENT2, AGENT_NIGHT = 1000, 2001, 2002, 3001, 3002, 3003

POLICY = {
    "quality_return_needs_supervisor": True,
    "compensation_cap": 20,
    "refund_only_approval_above": 100,
    "admin_approval_above": 500,
    "approval_remind_minutes": 60,
    "approval_escalate_minutes": 180,
}


async def register(people: PeopleService, inviter, tg_id: int, role: Role, shift: str | None, name: str):
    invite = await people.create_invite(inviter, role)
    person = await people.redeem(tg_id, None, name, invite.code)
    if shift:
        person = await people.set_shift(inviter, person, shift)
    return person


@pytest.fixture
async def people(db, clock) -> PeopleService:
    service = PeopleService(db, clock, [ADMIN], SHIFTS, SHANGHAI)
    admin = await service.bootstrap_admin(ADMIN, "boss", "老板")
    admin = await service.set_shift(admin, admin, "day")
    await register(service, admin, SUP_DAY, Role.SUPERVISOR, "day", "主管甲")
    await register(service, admin, SUP_NIGHT, Role.SUPERVISOR, "night", "主管乙")
    await register(service, admin, AGENT, Role.AGENT, "day", "小王")
    await register(service, admin, AGENT2, Role.AGENT, "day", "小李")
    await register(service, admin, AGENT_NIGHT, Role.AGENT, "night", "小赵")
    return service


@pytest.fixture
async def cases(db, clock, people) -> CaseService:
    return CaseService(db, clock, people, SHIFTS, SHANGHAI, POLICY)


@pytest.fixture
async def who(people):
    """who(tg_id) → the current Person."""

    async def get(tg_id: int):
        person = await people.get(tg_id)
        assert person is not None
        return person

    return get
