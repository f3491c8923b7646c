"""The composition root: every service one bot process shares, built once by `build_services`
and handed to every handler (handlers/context.py `KefuContext.svc`), job and CLI command. Nothing
else constructs feature services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bot.broadcasts import BroadcastService
from bot.cases import ApprovalPolicy, CaseService
from bot.clock import Clock
from bot.db import Database
from bot.handover import HandoverService
from bot.kb import KbHolder
from bot.kpi import KpiService
from bot.people import PeopleService
from bot.reminders import ReminderEngine
from bot.render import Renderer, renderer_for
from bot.settings import Settings


@dataclass
class OrdersDesk:
    """Process state of the orders intake: who is importing now, and the HTTP endpoint if it runs."""

    #: People whose import is running (one at a time each).
    importing: set[int] = field(default_factory=set)
    #: The running chat-upload imports (asyncio tasks): a stop cancels them (nothing written).
    running: set[Any] = field(default_factory=set)
    #: The HTTP endpoint (bot.orders.api.ApiServer), when it runs.
    api: Any = None


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    renderer: Renderer
    people: PeopleService
    #: The scripts knowledge base in service (swapped by /kb_reload).
    kb: KbHolder
    orders: OrdersDesk
    reminders: ReminderEngine
    #: One reminder tick at a time: the JobQueue tick and a manual run_tick must not deliver twice.
    reminder_tick: asyncio.Lock
    handover: HandoverService
    broadcasts: BroadcastService
    #: After-sales cases and their approvals (issue 18).
    cases: CaseService
    #: Service standards and KPIs (/kpi, /standards, morning review, Monday pack, nudges).
    kpi: KpiService

    @property
    def tz(self):
        return self.settings.tz


async def build_services(settings: Settings, clock: Clock, db: Database | None = None) -> Services:
    db = db or await Database.open(settings.kefu_db_path)
    people = PeopleService(db, clock, settings.kefu_admin_ids, settings.shifts, settings.tz)
    kb = KbHolder(settings.kefu_kb_dir)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        renderer=renderer_for(settings.tz),
        people=people,
        kb=kb,
        orders=OrdersDesk(),
        reminders=ReminderEngine.from_settings(db, clock, settings),
        reminder_tick=asyncio.Lock(),
        handover=HandoverService(db, clock, settings),
        broadcasts=BroadcastService(db, clock, people, settings.shifts, settings.tz),
        cases=_cases(db, clock, people, settings, kb),
        kpi=KpiService.from_settings(db, clock, settings),
    )


def _cases(db: Database, clock: Clock, people: PeopleService, settings: Settings, kb: KbHolder) -> CaseService:
    """The cases service, with the approval defaults until the knowledge base is in service: the
    Telegram start-up and /kb_reload then set the shop policy's options (`CaseService.set_policy`)."""
    policy = kb.current.policy if kb.current is not None else {}
    try:
        ApprovalPolicy.from_policy(policy)
    except ValueError:
        policy = {}
    return CaseService(db, clock, people, settings.shifts, settings.tz, policy)
