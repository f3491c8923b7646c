"""The services one bot process shares: built once at start-up, handed to every handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.clock import Clock
from bot.db import Database
from bot.people import PeopleService
from bot.render import Renderer
from bot.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    people: PeopleService
    renderer: Renderer
    #: Feature services, set by each feature's start-up hook (kb, orders, reminders, handover, broadcasts).
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def tz(self):
        return self.settings.tz

    def kb(self):
        """The scripts knowledge base in service: loaded on first use, swapped by /kb_reload."""
        kb = self.features.get("kb")
        if kb is None:
            from bot.kb import load_kb

            kb = self.features["kb"] = load_kb(self.settings.kefu_kb_dir)
        return kb


async def build_services(settings: Settings, clock: Clock, db: Database | None = None) -> Services:
    db = db or await Database.open(settings.kefu_db_path)
    people = PeopleService(db, clock, settings.kefu_admin_ids, settings.shifts, settings.tz)
    return Services(settings=settings, db=db, clock=clock, people=people, renderer=Renderer(settings.tz))
