"""The composition root: every service one bot process shares, built once by `build_services`
and handed to every handler (handlers/context.py `KefuContext.svc`), job and CLI command. Nothing
else constructs feature services.

The core (settings, storage, clock, renderer, people) is what the guard and /help, /start need;
the features' services are built with it, or, for `kefu run`, by `add_features` once polling runs
(issue 13, cold start: their modules are not imported before the first answer)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.clock import Clock
from bot.db import Database
from bot.people import PeopleService
from bot.render import Renderer, renderer_for
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.broadcasts import BroadcastService
    from bot.cases import CaseService
    from bot.handover import HandoverService
    from bot.kb import KbHolder
    from bot.kpi import KpiService
    from bot.reminders import ReminderEngine


@dataclass
class OrdersDesk:
    """Process state of the orders intake: who is importing now, and the HTTP endpoint if it runs."""

    #: People whose import is running (one at a time each).
    importing: set[int] = field(default_factory=set)
    #: The running chat-upload imports (asyncio tasks): a stop cancels them (nothing written).
    running: set[Any] = field(default_factory=set)
    #: The in-flight records (imports_in_flight ids) of the imports this run began: the report of
    #: imports a previous run left unfinished passes over them.
    started: set[int] = field(default_factory=set)
    #: The HTTP endpoint (bot.orders.api.ApiServer), when it runs.
    api: Any = None


@dataclass(eq=False)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    renderer: Renderer
    people: PeopleService
    orders: OrdersDesk = field(default_factory=OrdersDesk)
    #: One reminder tick at a time: the JobQueue tick and a manual run_tick must not deliver twice.
    reminder_tick: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The features' services: set by `add_features` (absent until then; nothing but the core
    # handlers runs before, handlers/__init__.py `load_features`).
    #: The scripts knowledge base in service (swapped by /kb_reload).
    kb: KbHolder = field(init=False, repr=False)
    reminders: ReminderEngine = field(init=False, repr=False)
    handover: HandoverService = field(init=False, repr=False)
    broadcasts: BroadcastService = field(init=False, repr=False)
    #: After-sales cases and their approvals (issue 18).
    cases: CaseService = field(init=False, repr=False)
    #: Service standards and KPIs (/kpi, /standards, morning review, Monday pack, nudges).
    kpi: KpiService = field(init=False, repr=False)

    @property
    def has_features(self) -> bool:
        return "kpi" in self.__dict__

    @property
    def tz(self):
        return self.settings.tz


async def build_services(
    settings: Settings, clock: Clock, db: Database | None = None, *, features: bool = True
) -> Services:
    """The services; with `features=False` only the core (`add_features` adds the rest)."""
    db = db or await Database.open(settings.kefu_db_path)
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        renderer=renderer_for(settings.tz),
        people=PeopleService(db, clock, settings.kefu_admin_ids, settings.shifts, settings.tz),
    )
    if features:
        add_features(services)
    return services


def add_features(services: Services) -> None:
    """Build the features' services into `services` (once)."""
    if services.has_features:
        return
    from bot.broadcasts import BroadcastService
    from bot.handover import HandoverService
    from bot.kb import KbHolder
    from bot.kpi import KpiService
    from bot.reminders import ReminderEngine

    settings, db, clock, people = services.settings, services.db, services.clock, services.people
    services.kb = KbHolder(settings.kefu_kb_dir)
    services.reminders = ReminderEngine.from_settings(db, clock, settings)
    services.handover = HandoverService(db, clock, settings)
    services.broadcasts = BroadcastService(db, clock, people, settings.shifts, settings.tz)
    services.cases = _cases(db, clock, people, settings, services.kb)
    services.kpi = KpiService.from_settings(db, clock, settings)  # last: `has_features` asks for it


def _cases(db: Database, clock: Clock, people: PeopleService, settings: Settings, kb: KbHolder) -> CaseService:
    """The cases service, with the approval defaults until the knowledge base is in service: the
    Telegram start-up and /kb_reload then set the shop policy's options (`CaseService.set_policy`)."""
    from bot.cases import ApprovalPolicy, CaseService

    policy = kb.current.policy if kb.current is not None else {}
    try:
        ApprovalPolicy.from_policy(policy)
    except ValueError:
        policy = {}
    return CaseService(db, clock, people, settings.shifts, settings.tz, policy)
