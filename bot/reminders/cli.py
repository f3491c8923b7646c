"""`kefu reminders due [--at <ISO 8601 time>] [--json]` — a stable interface.

Lists what is due at that moment (default: now) without sending anything and without recording
anything: the same conditions the bot's scan uses, including orders the scan has not turned into
reminders yet, excluding reminders already done. Unshipped orders are listed at their latest
stage only (breach, else warn).

With --json, stdout carries one JSON object per line, oldest due first, with at least
`order_no`, `platform`, `rule` (unpaid | unshipped), `stage` (remind | warn | breach) and
`due_at` (ISO 8601 with the shop zone's offset); also shop, deadline_at, status, amount,
created_at, paid_at, reminder_id and reminder_state (null when the scan has not recorded it).

Exit codes: 0 listed (even when nothing is due), 1 no database, 2 bad --at.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, tzinfo
from pathlib import Path

EXIT_OK = 0
EXIT_NO_DB = 1
EXIT_BAD_TIME = 2


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("reminders", help="payment and shipping reminders / 催付与发货提醒")
    sub = parser.add_subparsers(dest="reminders_command", metavar="{due}")
    sub.required = True
    due = sub.add_parser("due", help="list what is due at a moment (default now); sends nothing")
    due.add_argument("--at", help="ISO 8601 time, e.g. 2026-11-23T10:00+08:00 (no offset: KEFU_TIMEZONE)")
    due.add_argument("--json", action="store_true", help="one JSON object per line")
    due.set_defaults(func=run_due_command)
    return parser


def parse_moment(text: str | None, tz: tzinfo, now: datetime) -> datetime:
    """An ISO 8601 time; without an offset it is the shop's wall clock. Raises ValueError."""
    if text is None or not text.strip():
        return now
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _renderer(tz: tzinfo):
    from bot.render import renderer_for

    return renderer_for(tz)


def run_due_command(args: argparse.Namespace) -> int:
    """Entry point: a sync function returning the exit code."""
    from bot.clock import SystemClock
    from bot.settings import load_settings

    settings = load_settings()
    _utf8_stdio()
    try:
        moment = parse_moment(args.at, settings.tz, SystemClock().now())
    except ValueError:
        print(_renderer(settings.tz).render("reminders/bad_time.txt", value=args.at), file=sys.stderr)
        return EXIT_BAD_TIME
    if not Path(settings.kefu_db_path).exists():
        print(_renderer(settings.tz).render("cli/db_missing.txt", path=settings.kefu_db_path), file=sys.stderr)
        return EXIT_NO_DB
    return asyncio.run(run_due(settings, moment, as_json=args.json))


async def run_due(settings, moment: datetime, *, as_json: bool, out=None) -> int:
    from bot.db import Database
    from bot.reminders.engine import list_due
    from bot.reminders.rules import RuleBook

    out = out or sys.stdout
    db = await Database.open(settings.kefu_db_path)
    try:
        items = await list_due(db, RuleBook.from_settings(settings), moment)
    finally:
        await db.close()
    if as_json:
        tz = settings.tz
        out.write("".join(json.dumps(i.to_json(tz), ensure_ascii=False) + "\n" for i in items))
    else:
        from bot.orders import template_module

        platforms = dict(template_module("names.j2").platforms)
        out.write(_renderer(settings.tz).render("reminders/due.txt", items=items, at=moment, platforms=platforms) + "\n")
    out.flush()
    return EXIT_OK


def _utf8_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8")
        except (AttributeError, ValueError):
            pass
