"""Who gets notified: one function, `recipients(people, policy)`, with named policies, used by
every feature that tells someone something on its own (reminders, handover alerts, 售后
escalations, KPI nudges and reviews, the start-up notice, error alerts, deactivation notices).

"Reachable" means active and not having blocked the bot (`blocked_at` unset): a message to
someone who blocked the bot only fails. KEFU_ADMIN_IDS count as admins until they have sent
/start (then their row says whether they still are). The result is a list of chat ids without
repeats, in the people's usual order (admins, supervisors, agents), the team chat first where a
policy includes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from bot.people import PeopleService, Person, Role
from bot.shifts import current_windows, shifts_on


class Notify(Enum):
    #: Reachable people whose shift is working now (due reminders, KPI nudges); given a team chat,
    #: it too, after them, when anyone is on duty.
    ON_DUTY = "on_duty"
    #: Reachable supervisors and admins (handover alerts, the morning review, deactivation notices).
    SUPERVISORS = "supervisors"
    #: Reachable supervisors and admins on duty; when none is, all of them (reminder escalations).
    SUPERVISORS_ON_DUTY = "supervisors_on_duty"
    #: Reachable admins, and KEFU_ADMIN_IDS not yet registered (alerts, the start-up notice, 售后
    #: escalations, a stranger group).
    ADMINS = "admins"
    #: While a shift is working and nobody of it can be reached: the team chat (if set), then the
    #: reachable supervisors and admins and KEFU_ADMIN_IDS not yet registered. Empty outside shifts.
    UNSTAFFED = "unstaffed"


def _reachable(person: Person) -> bool:
    return person.active and person.blocked_at is None


async def recipients(people: PeopleService, policy: Notify, *, team_chat: int | None = None,
                     exclude: Iterable[int] = ()) -> list[int]:
    """The chats to tell under `policy`, without `exclude` (e.g. the person who caused it)."""
    everyone = await people.all()
    reachable = [p for p in everyone if _reachable(p)]
    now = people.clock.now()
    if policy is Notify.ON_DUTY:
        working = set(shifts_on(people.shifts, now, people.tz))
        chats = [p.tg_id for p in reachable if p.shift in working]
        if chats and team_chat is not None:
            chats.append(team_chat)
    elif policy is Notify.SUPERVISORS:
        chats = [p.tg_id for p in reachable if p.role >= Role.SUPERVISOR]
    elif policy is Notify.SUPERVISORS_ON_DUTY:
        working = set(shifts_on(people.shifts, now, people.tz))
        bosses = [p for p in reachable if p.role >= Role.SUPERVISOR]
        chats = [p.tg_id for p in bosses if p.shift in working] or [p.tg_id for p in bosses]
    elif policy is Notify.ADMINS:
        chats = [p.tg_id for p in reachable if p.role >= Role.ADMIN] + _unregistered_admins(people, everyone)
    elif policy is Notify.UNSTAFFED:
        if not current_windows(people.shifts, now, people.tz):
            return []
        chats = [team_chat] if team_chat is not None else []
        chats += [p.tg_id for p in reachable if p.role >= Role.SUPERVISOR] + _unregistered_admins(people, everyone)
    else:  # pragma: no cover - every policy is handled above
        raise ValueError(policy)
    left_out = set(exclude)
    return [chat for chat in dict.fromkeys(chats) if chat not in left_out]


def _unregistered_admins(people: PeopleService, everyone: list[Person]) -> list[int]:
    known = {p.tg_id for p in everyone}
    return [tg_id for tg_id in sorted(people.admin_ids) if tg_id not in known]


async def due_reminder_chats(people: PeopleService, team_chat: int | None) -> tuple[list[int], str]:
    """(chats that get due reminders now, why they are held when empty). The people on duty and
    then the team chat; when none of them is reachable, the UNSTAFFED fallback; "night_gap" when
    no shift is working, "nobody" when even the fallback has no one to reach."""
    on_duty = await recipients(people, Notify.ON_DUTY, team_chat=team_chat)
    if on_duty:
        return on_duty, ""
    fallback = await recipients(people, Notify.UNSTAFFED, team_chat=team_chat)
    if fallback:
        return fallback, ""
    working = current_windows(people.shifts, people.clock.now(), people.tz)
    return [], "nobody" if working else "night_gap"
