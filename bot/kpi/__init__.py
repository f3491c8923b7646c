"""KPI feature (issue 17): service standards as data, measures from the bot's own records, the
morning review, the Monday meeting pack, charts and an XLSX export. Public face; no Telegram.

Read model only: bot/kpi/store.py reads other features' tables and never writes them.
"""

from bot.kpi.schedule import monday_pack_due, morning_review_due
from bot.kpi.service import KpiService, Period, PeriodError, Viewer, suggest
from bot.kpi.standards import (
    DEFAULT_STANDARDS_FILE,
    Standard,
    StandardsError,
    StandardsProblem,
    load_standards,
)

__all__ = [
    "DEFAULT_STANDARDS_FILE",
    "KpiService",
    "Period",
    "PeriodError",
    "Standard",
    "StandardsError",
    "StandardsProblem",
    "Viewer",
    "load_standards",
    "monday_pack_due",
    "morning_review_due",
    "suggest",
]
