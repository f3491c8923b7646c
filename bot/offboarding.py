"""Deactivation takes effect everywhere at once. No Telegram here: the handler sends.

`deactivate` switches the person off and undoes what they held: unused invitation codes are
revoked, claimed reminders go back to unclaimed (so they are delivered and escalated by the normal
rules), their scheduled announcements are paused, and copies of announcements not yet sent to them
are dropped, and 售后 approval requests waiting for them go to another approver (bot.cases). Recipient lists and rosters skip inactive people on their own (see PeopleService.all
with active_only, and the broadcasts roster), so nothing else needs to remember them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.broadcasts import Schedule
from bot.cases import Approval
from bot.people import Person
from bot.reminders import release_claims

if TYPE_CHECKING:
    from bot.services import Services


@dataclass(frozen=True)
class Deactivation:
    person: Person
    revoked_invites: int
    released_reminders: tuple[int, ...]
    paused_schedules: tuple[Schedule, ...]
    dropped_copies: int
    #: Approval requests that were waiting for this person, with their new approver (to be told).
    rerouted_approvals: tuple[tuple[Approval, Person], ...] = ()


async def deactivate(services: Services, actor: Person, target: Person) -> Deactivation:
    """Deactivate `target` (checks: admin only, not the last admin) and apply every effect."""
    revoked = await services.people.open_invites(target.tg_id)
    person = await services.people.set_active(actor, target, False)  # also revokes the codes
    released = await release_claims(services.db, target.tg_id, services.clock.now())
    broadcasts = services.broadcasts
    paused = await broadcasts.pause_schedules_of(target.tg_id)
    dropped = await broadcasts.drop_undelivered(target.tg_id)
    rerouted = await services.cases.reroute_approvals_of(target.tg_id)
    return Deactivation(person, revoked, tuple(released), tuple(paused), dropped, tuple(rerouted))
