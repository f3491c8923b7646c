"""At every start, one message tells the admins what is still unset: no shifts assigned, example
values in the shop policy (they reach buyers unchanged), no team chat. Nothing unset: no message."""

from __future__ import annotations

import logging

from telegram.ext import Application

from bot.kb import example_values
from handlers.context import services_of
from handlers.outbox import tell_admins

log = logging.getLogger(__name__)


async def unset_items(app: Application) -> dict:
    svc = services_of(app)
    kb = svc.kb.current
    examples = example_values(kb.policy) if kb is not None else []
    people = await svc.people.all(active_only=True)
    no_shifts = not any(person.shift for person in people)
    path = (kb.path / "policy.yaml") if kb is not None and kb.path else "scripts_kb/policy.yaml"
    return {
        "examples": examples,
        "policy_path": str(path),
        "no_shifts": no_shifts,
        "no_team_chat": svc.settings.kefu_team_chat_id is None,
        "shift_names": [shift.name for shift in svc.settings.shifts],
    }


async def on_startup(app: Application) -> None:
    items = await unset_items(app)
    if not (items["examples"] or items["no_shifts"] or items["no_team_chat"]):
        return
    log.info("still unset at start: shifts=%s examples=%d team_chat=%s",
             not items["no_shifts"], len(items["examples"]), not items["no_team_chat"])
    await tell_admins(app, services_of(app).renderer.render("setup_unset.html", **items))
