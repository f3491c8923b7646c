"""Who gets notified: the named policies of bot.recipients, against the real people service."""

import pytest

from bot.people import PeopleService, Role
from bot.recipients import Notify, due_reminder_chats, recipients
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI

TEAM = -100500
ADMIN, UNREGISTERED_ADMIN = 1, 2
SUP_DAY, SUP_NIGHT, AGENT_DAY, AGENT_NIGHT = 10, 11, 20, 21


@pytest.fixture
def people(db, clock):  # the clock is Monday 10:00: the day shift works
    return PeopleService(db, clock, admin_ids=[UNREGISTERED_ADMIN, ADMIN],
                         shifts=parse_shifts("day=08:30-17:30;night=17:30-01:00"), tz=SHANGHAI)


async def join(people, admin, tg_id, role, shift):
    invite = await people.create_invite(admin, role)
    person = await people.redeem(tg_id, None, f"p{tg_id}", invite.code)
    return await people.set_shift(admin, person, shift)


@pytest.fixture
async def team(people):
    admin = await people.bootstrap_admin(ADMIN, "boss", "Boss")
    for tg_id, role, shift in [(SUP_DAY, Role.SUPERVISOR, "day"), (SUP_NIGHT, Role.SUPERVISOR, "night"),
                               (AGENT_DAY, Role.AGENT, "day"), (AGENT_NIGHT, Role.AGENT, "night")]:
        await join(people, admin, tg_id, role, shift)
    return admin


async def test_on_duty_is_the_working_shift_and_then_the_team_chat(people, team):
    assert await recipients(people, Notify.ON_DUTY) == [SUP_DAY, AGENT_DAY]
    assert await recipients(people, Notify.ON_DUTY, team_chat=TEAM) == [SUP_DAY, AGENT_DAY, TEAM]


async def test_someone_who_blocked_the_bot_or_left_is_not_reached(people, team):
    await people.mark_blocked(AGENT_DAY)
    await people.set_active(team, await people.get(SUP_DAY), False)
    assert await recipients(people, Notify.ON_DUTY) == []
    assert await recipients(people, Notify.SUPERVISORS) == [ADMIN, SUP_NIGHT]


async def test_supervisors_include_admins_and_exclude_who_caused_it(people, team):
    assert await recipients(people, Notify.SUPERVISORS) == [ADMIN, SUP_DAY, SUP_NIGHT]
    assert await recipients(people, Notify.SUPERVISORS, exclude=[SUP_DAY]) == [ADMIN, SUP_NIGHT]


async def test_supervisors_on_duty_or_else_all_of_them(people, team, clock):
    assert await recipients(people, Notify.SUPERVISORS_ON_DUTY) == [SUP_DAY]
    await people.mark_blocked(SUP_DAY)
    assert await recipients(people, Notify.SUPERVISORS_ON_DUTY) == [ADMIN, SUP_NIGHT]


async def test_admins_are_the_registered_ones_and_configured_ids_not_yet_registered(people, team):
    assert await recipients(people, Notify.ADMINS) == [ADMIN, UNREGISTERED_ADMIN]
    assert await recipients(people, Notify.ADMINS, exclude=[ADMIN]) == [UNREGISTERED_ADMIN]


async def test_unstaffed_fallback_only_while_a_shift_works(people, team, clock):
    assert await recipients(people, Notify.UNSTAFFED, team_chat=TEAM) == [TEAM, ADMIN, SUP_DAY, SUP_NIGHT, UNREGISTERED_ADMIN]
    clock.advance(hours=16)  # 02:00: no shift works
    assert await recipients(people, Notify.UNSTAFFED, team_chat=TEAM) == []


async def test_due_reminders_go_on_duty_else_to_the_fallback_else_are_held(people, team, clock):
    assert await due_reminder_chats(people, TEAM) == ([SUP_DAY, AGENT_DAY, TEAM], "")
    await people.mark_blocked(SUP_DAY)
    await people.mark_blocked(AGENT_DAY)
    assert await due_reminder_chats(people, None) == ([ADMIN, SUP_NIGHT, UNREGISTERED_ADMIN], "")
    clock.advance(hours=16)
    assert await due_reminder_chats(people, TEAM) == ([], "night_gap")


async def test_nobody_to_reach_while_a_shift_works(db, clock):
    nobody = PeopleService(db, clock, admin_ids=[], shifts=parse_shifts("day=08:30-17:30"), tz=SHANGHAI)
    assert await due_reminder_chats(nobody, None) == ([], "nobody")
