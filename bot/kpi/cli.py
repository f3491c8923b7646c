"""`kefu report kpi --from YYYY-MM-DD --to YYYY-MM-DD [--json] [--xlsx FILE]` and
`kefu standards check [FILE]` — stable interfaces.

report kpi: dates are shop-local days in KEFU_TIMEZONE, both included. With --json, stdout is one
JSON object: period, standards [{id, name, target, achieved, n, met, ...}], payment_reminders,
shipping, claims, handover, broadcasts, breakdowns (day, week, shift, shop, person). Amounts are
decimal strings (yuan, 2 places). Without --json a short text summary (templates/kpi/report.txt).
Exit codes: 0 ok, 1 no database, 2 bad dates or a bad standards file.

standards check: validates KEFU_STANDARDS_FILE (or FILE, or the shipped defaults); every problem
is printed as file:line: message; exit 0 when valid, 2 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from pathlib import Path

EXIT_OK = 0
EXIT_NO_DB = 1
EXIT_BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="reports / 报表")
    report_sub = report.add_subparsers(dest="report_command", metavar="{kpi}")
    report_sub.required = True
    kpi = report_sub.add_parser("kpi", help="service standards and KPIs for a period / 服务标准与指标")
    kpi.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD (shop-local)")
    kpi.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD (included)")
    kpi.add_argument("--json", action="store_true", help="one JSON object on stdout")
    kpi.add_argument("--xlsx", type=Path, help="also write the report as an Excel file")
    kpi.add_argument("--no-trend", action="store_true", help="skip the previous-period comparison")
    kpi.set_defaults(func=run_report_command)

    standards = subparsers.add_parser("standards", help="service standards file / 服务标准")
    standards_sub = standards.add_subparsers(dest="standards_command", metavar="{check}")
    standards_sub.required = True
    check = standards_sub.add_parser("check", help="validate a standards file (file:line errors)")
    check.add_argument("path", nargs="?", type=Path)
    check.set_defaults(func=run_check_command)


def _renderer(tz):
    from bot.render import renderer_for

    return renderer_for(tz)


def _utf8() -> None:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")


def run_check_command(args: argparse.Namespace) -> int:
    from bot.kpi.standards import StandardsError, load_standards
    from bot.settings import load_settings

    _utf8()
    path = args.path or load_settings().kefu_standards_file
    try:
        standards = load_standards(path)
    except StandardsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_BAD_INPUT
    from zoneinfo import ZoneInfo

    print(_renderer(ZoneInfo("UTC")).render("kpi/standards_ok.txt", count=len(standards),
                                            path=path or "(shipped defaults)"))
    return EXIT_OK


def run_report_command(args: argparse.Namespace) -> int:
    from bot.kpi.service import Period, PeriodError
    from bot.kpi.standards import StandardsError, load_standards
    from bot.settings import load_settings

    _utf8()
    settings = load_settings()
    renderer = _renderer(settings.tz)
    try:
        period = Period(date.fromisoformat(args.date_from), date.fromisoformat(args.date_to))
    except (ValueError, PeriodError):
        print(renderer.render("kpi/bad_period.txt", first=args.date_from, last=args.date_to), file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        standards = load_standards(settings.kefu_standards_file)
    except StandardsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_BAD_INPUT
    if not Path(settings.kefu_db_path).exists():
        print(renderer.render("cli/db_missing.txt", path=settings.kefu_db_path), file=sys.stderr)
        return EXIT_NO_DB
    report = asyncio.run(_report(settings, standards, period, trend=not args.no_trend))
    if args.xlsx:
        from bot.kpi.xlsx import report_xlsx

        args.xlsx.write_bytes(report_xlsx(report, renderer))
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(renderer.render("kpi/report.txt", r=report))
    return EXIT_OK


async def _report(settings, standards, period, *, trend: bool) -> dict:
    from bot.clock import SystemClock
    from bot.db import Database
    from bot.kpi.service import KpiService
    from bot.reminders import RuleBook

    db = await Database.open(settings.kefu_db_path)
    try:
        service = KpiService(db, SystemClock(), RuleBook.from_settings(settings), standards)
        return await service.report(period, trend=trend)
    finally:
        await db.close()
