"""KPI fixtures: the real reminder engine, handover service and order upsert on a real SQLite file."""

from __future__ import annotations

import pytest

from bot.handover.service import HandoverService
from bot.kpi import KpiService, load_standards
from bot.reminders import ReminderEngine
from bot.reminders.rules import RuleBook
from bot.settings import Settings


@pytest.fixture
def kpi_settings(tmp_path, monkeypatch) -> Settings:
    for name in ("KEFU_SHIFTS", "KEFU_TIMEZONE", "KEFU_STANDARDS_FILE", "KEFU_SHOP_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return Settings(kefu_db_path=tmp_path / "kefu.db")


@pytest.fixture
def engine(db, clock, kpi_settings) -> ReminderEngine:
    return ReminderEngine.from_settings(db, clock, kpi_settings)


@pytest.fixture
def handover(db, clock, kpi_settings) -> HandoverService:
    return HandoverService(db, clock, kpi_settings)


@pytest.fixture(params=[True, False], ids=["read_model", "records"])
def kpi(request, db, clock, kpi_settings) -> KpiService:
    """Every KPI test runs twice: the report from the stored read model (what the bot uses) and
    from the records in memory (the reference definition)."""
    return KpiService(db, clock, RuleBook.from_settings(kpi_settings), load_standards(), read_model=request.param)
