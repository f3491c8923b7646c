"""KPI feature (issue 17): service standards as data, measures from the bot's own records, the
morning review, the Monday meeting pack, charts and an XLSX export. Public face; no Telegram.

Read model only: bot/kpi/store.py reads other features' tables and never writes them. The report
is aggregated from the KPI's own stored read model (bot/kpi/readmodel.py, migration 0012), kept
exact by dirty marks that triggers on those tables write into kpi_* tables.
"""

from bot.kpi.schedule import monday_pack_due, morning_review_due
from bot.kpi.service import KpiService, Period, PeriodError, PeriodWords, Viewer, suggest
from bot.kpi.standards import (
    DEFAULT_STANDARDS_FILE,
    Standard,
    StandardsError,
    StandardsProblem,
    load_standards,
)


def render_pack(pack: dict, renderer) -> dict[str, bytes]:
    """The Monday chart set {name: PNG}. CPU-bound: call through asyncio.to_thread."""
    from bot.kpi.charts import render_pack as render

    return render(pack, renderer)


def report_chart(report: dict, renderer) -> bytes:
    """One PNG for a /kpi report (standards achieved vs target). CPU-bound: asyncio.to_thread."""
    from bot.kpi.charts import report_chart as render

    return render(report, renderer.label)


def report_xlsx(report: dict, renderer) -> bytes:
    """The report as an XLSX workbook (bytes)."""
    from bot.kpi.xlsx import report_xlsx as write

    return write(report, renderer)


__all__ = [
    "DEFAULT_STANDARDS_FILE",
    "KpiService",
    "Period",
    "PeriodError",
    "PeriodWords",
    "Standard",
    "StandardsError",
    "StandardsProblem",
    "Viewer",
    "load_standards",
    "monday_pack_due",
    "morning_review_due",
    "render_pack",
    "report_chart",
    "report_xlsx",
    "suggest",
]
