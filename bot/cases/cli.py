"""`kefu cases list [--open] [--json]` and `kefu cases export PATH [--from D] [--to D] [--full]` — a
stable interface.

list --json: one JSON object per line per case, newest first, with at least
  id, order_no, platform, problem, resolution, amount (decimal string or null), state,
  approval (null or {"state", "approver", "decided_at"}), opened_by, owner, opened_at
plus shop, buyer (masked phone if it is one), item, due_at, finished_at, needs_supervisor.
Codes are the stable English codes of bot/cases/model.py (labels in templates/labels/cases.yaml);
people are Telegram ids; times are ISO 8601 with the shop zone's offset (null when unset).
`approval` is the latest request of the case: its state is pending | approved | rejected | withdrawn.
Without --json, one Chinese line per case.

export: XLSX with one row per case opened in [--from, --to] (local dates, both inclusive) and a
sheet of their history. Phones and addresses are masked unless --full. In the bot only an admin
may ask for the full file; on the command line the operator of the server is trusted (they can
read the database file anyway), so --full needs no further check.

Exit codes: 0 done, 1 no database at KEFU_DB_PATH, 2 bad arguments (a date).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from bot.cases.export import write_xlsx
from bot.cases.model import Case
from bot.cases.store import CaseStore
from bot.clock import SystemClock
from bot.db import Database
from bot.people import PeopleService
from bot.render import mask_phone, renderer_for

EXIT_OK = 0
EXIT_NO_DB = 1
EXIT_BAD_ARGS = 2


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("cases", help="after-sales cases: list and export / 售后登记")
    sub = parser.add_subparsers(dest="cases_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="list cases, newest first")
    listing.add_argument("--open", action="store_true", help="only unfinished cases")
    listing.add_argument("--json", action="store_true", help="one JSON object per case per line")
    listing.set_defaults(func=run_list_command)
    export = sub.add_parser("export", help="write cases and their history to an XLSX file")
    export.add_argument("path", type=Path)
    export.add_argument("--from", dest="date_from", help="first local date (YYYY-MM-DD), inclusive")
    export.add_argument("--to", dest="date_to", help="last local date (YYYY-MM-DD), inclusive")
    export.add_argument("--full", action="store_true", help="phones and addresses unmasked (server operator)")
    export.set_defaults(func=run_export_command)
    return parser


def _iso(moment: datetime | None, tz: tzinfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat()


def case_json(case: Case, tz: tzinfo) -> dict[str, Any]:
    """The stable JSON shape of one case (see the module docstring)."""
    approval = case.approval
    return {
        "id": case.id,
        "order_no": case.order_no,
        "platform": case.platform,
        "shop": case.shop,
        "buyer": mask_phone(case.buyer),
        "item": case.item,
        "problem": case.problem,
        "resolution": case.resolution,
        "amount": case.amount,
        "needs_supervisor": case.needs_supervisor,
        "state": case.state,
        "approval": None if approval is None else {
            "state": approval.state,
            "approver": approval.approver,
            "decided_at": _iso(approval.decided_at, tz),
        },
        "opened_by": case.opened_by,
        "owner": case.owner,
        "opened_at": _iso(case.opened_at, tz),
        "due_at": _iso(case.due_at, tz),
        "finished_at": _iso(case.finished_at, tz),
    }


async def list_cases(db: Database, tz: tzinfo, *, only_open: bool = False, as_json: bool = False) -> list[str]:
    """The lines `kefu cases list` prints."""
    cases = await CaseStore(db).search(unfinished=only_open)
    if as_json:
        return [json.dumps(case_json(c, tz), ensure_ascii=False) for c in cases]
    renderer = renderer_for(tz)
    return [renderer.render("cli/cases_line.txt", case=c) for c in cases] or [renderer.render("cli/cases_none.txt")]


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    return date.fromisoformat(text.strip())


async def export_cases(
    db: Database, path: Path, tz: tzinfo, *, date_from: date | None = None, date_to: date | None = None,
    full: bool = False,
) -> int:
    """Write the workbook; return the number of cases in it."""
    store = CaseStore(db)
    since = datetime.combine(date_from, time(0), tz) if date_from else None
    until = datetime.combine(date_to + timedelta(days=1), time(0), tz) if date_to else None
    cases = await store.search(opened_from=since, opened_to=until)
    cases = [await store.get(c.id) or c for c in cases]  # with evidence counts
    cases.sort(key=lambda c: c.id)
    people = PeopleService(db, SystemClock(), (), (), tz)  # read-only: names of everyone who ever worked
    names = {p.tg_id: p.name for p in await people.all()}
    renderer = renderer_for(tz)
    labels = renderer.labels["cases"]["export"]
    write_xlsx(
        path, cases, await store.history(), tz, names=names, headers=labels["columns"],
        sheet_titles=(labels["sheet_cases"], labels["sheet_history"]), full=full,
    )
    return len(cases)



def run_list_command(args: argparse.Namespace) -> int:
    from bot.settings import load_settings

    settings = load_settings()
    _utf8_stdio()

    async def run() -> int:
        if not Path(settings.kefu_db_path).exists():
            print(renderer_for(settings.tz).render("cli/db_missing.txt", path=settings.kefu_db_path), file=sys.stderr)
            return EXIT_NO_DB
        db = await Database.open(settings.kefu_db_path)
        try:
            for line in await list_cases(db, settings.tz, only_open=args.open, as_json=args.json):
                print(line)
        finally:
            await db.close()
        return EXIT_OK

    return asyncio.run(run())


def run_export_command(args: argparse.Namespace) -> int:
    from bot.settings import load_settings

    settings = load_settings()
    _utf8_stdio()
    renderer = renderer_for(settings.tz)
    try:
        date_from, date_to = _day(args.date_from), _day(args.date_to)
    except ValueError:
        print(renderer.render("cli/cases_bad_date.txt", value=f"{args.date_from} {args.date_to}"), file=sys.stderr)
        return EXIT_BAD_ARGS

    async def run() -> int:
        if not Path(settings.kefu_db_path).exists():
            print(renderer.render("cli/db_missing.txt", path=settings.kefu_db_path), file=sys.stderr)
            return EXIT_NO_DB
        db = await Database.open(settings.kefu_db_path)
        try:
            count = await export_cases(db, args.path, settings.tz, date_from=date_from, date_to=date_to, full=args.full)
        finally:
            await db.close()
        print(renderer.render("cli/cases_exported.txt", path=args.path, count=count, full=args.full))
        return EXIT_OK

    return asyncio.run(run())


def _utf8_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8")
        except (AttributeError, ValueError):
            pass
