"""Integration point with the reminders feature (issue 5): the reminders someone claimed and
has not finished, listed in their pre-end handover prompt.

The reminders feature provides `async def open_claims(db, tg_id) -> list[ReminderView]` in
`bot.reminders` (issue 11): the open reminders claimed by that person, each with `order_no`,
`rule` and `stage`. Nothing here reads the reminders tables directly, so their schema stays
theirs. If the call fails at run time the error is logged and the prompt goes out without the
claims (a bug there must not stop the shift change); it is tested with both real features in
tests/test_handover_service.py and tests/test_handover_e2e.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.db import Database
from bot.reminders import open_claims

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimRef:
    order_no: str
    kind: str  # the reminder's stage or rule code (remind / warn / breach, unpaid / unshipped), '' if unknown


def _field(claim: Any, *names: str) -> str:
    for name in names:
        value = claim.get(name) if isinstance(claim, dict) else getattr(claim, name, None)
        if value is None and not isinstance(claim, dict):
            try:
                value = claim[name]  # sqlite3.Row
            except (KeyError, IndexError, TypeError):
                value = None
        if value not in (None, ""):
            return str(value)
    return ""


async def claimed_reminders(db: Database, tg_id: int) -> list[ClaimRef]:
    try:
        claims = await open_claims(db, tg_id)
    except Exception:  # their bug must not stop the shift-change prompt
        log.exception("reminders.open_claims failed for %s", tg_id)
        return []
    return [ClaimRef(_field(c, "order_no"), _field(c, "kind", "stage", "rule")) for c in claims or ()]
