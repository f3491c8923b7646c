"""`kefu import PATH [--platform P] [--shop NAME] [--dry-run] [--json]` — a stable interface.

With --json, stdout carries one JSON object per normalised order (NormalizedOrder.to_json, times
ISO 8601 with the shop zone's offset), then one `{"summary": {...}}` object; when the file is
not an export, one `{"error": {"reason": ..., "message": ...}}` object instead. Without --json a
Chinese summary is printed. --dry-run reads and counts against the database but writes nothing.

Exit codes: 0 imported (rejected rows are listed, not fatal), 2 no such file, 3 not an order
export (the Chinese reason goes to stderr).

The main CLI (bot/cli.py: `kefu`, `python -m bot`) calls `register(subparsers)` and then
`args.func(args)`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path

from bot.clock import SystemClock
from bot.db import Database, storage_fault
from bot.orders import text
from bot.orders.importer import ImportSummary, import_file
from bot.orders.model import PLATFORMS, NormalizedOrder
from bot.orders.readers import NotAnExport

EXIT_OK = 0
EXIT_NO_FILE = 2
EXIT_NOT_AN_EXPORT = 3
EXIT_FAILED = 4  # the database or the file could not be read or written (disk full, read-only, …)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "import",
        help="import an order export (Taobao/Qianniu, Douyin, Pinduoduo, JD or generic CSV/XLSX)",
        description="Import one order export file into the database (one transaction).",
    )
    parser.add_argument("path", help="the exported CSV or XLSX file")
    parser.add_argument("--platform", choices=PLATFORMS, help="platform of a generic CSV; checked against the detected one")
    parser.add_argument("--shop", help="shop name for rows whose file has no shop column")
    parser.add_argument("--dry-run", action="store_true", help="read and count, write nothing")
    parser.add_argument("--json", action="store_true", help="one JSON object per order, then a summary object")
    parser.set_defaults(func=run_import_command)
    return parser


def run_import_command(args: argparse.Namespace) -> int:
    """Entry point for `kefu import`: a sync function returning the exit code."""
    from bot.settings import load_settings

    settings = load_settings()
    _utf8_stdio()
    return asyncio.run(
        run_import(
            Path(args.path),
            db_path=settings.kefu_db_path,
            tz=settings.tz,
            # not KEFU_IMPORT_MAX_MB: that one is for chat uploads (Telegram's 20 MB); the CLI streams
            max_bytes=settings.kefu_cli_import_max_mb * 2**20,
            platform=args.platform,
            shop=args.shop,
            dry_run=args.dry_run,
            as_json=args.json,
        )
    )


async def run_import(
    path: Path,
    *,
    db_path: Path,
    tz,
    max_bytes: int | None,
    platform: str | None = None,
    shop: str | None = None,
    dry_run: bool = False,
    as_json: bool = False,
    out=None,
    err=None,
) -> int:
    """The CLI import without argument parsing (also used by benchmarks/import_speed.py)."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not path.exists() or not path.is_file():
        reason = "missing_file" if not path.exists() else "not_a_file"
        print(text.render("errors.j2", "cli", reason=reason, path=str(path)), file=err)
        return EXIT_NO_FILE
    # A dry run against a database that does not exist yet must not create it.
    target = ":memory:" if dry_run and not Path(db_path).exists() else db_path
    try:
        db = await Database.open(target)
    except (sqlite3.Error, OSError) as exc:
        return _failed(exc, err, as_json, out)

    def emit(order: NormalizedOrder) -> None:
        out.write(json.dumps(order.to_json(tz), ensure_ascii=False) + "\n")

    async def show_progress(rows_read: int) -> None:
        print("\r" + text.render("summary.j2", "progress", rows_read=rows_read), end="", file=err, flush=True)

    try:
        summary: ImportSummary = await import_file(
            db,
            path,
            filename=path.name,
            platform=platform,
            shop=shop,
            dry_run=dry_run,
            clock=SystemClock(),
            tz=tz,
            max_bytes=max_bytes,
            on_order=emit if as_json else None,
            progress=show_progress if err.isatty() else None,
            parse_niceness=0,  # nobody waits on this process: the parser runs at full speed
        )
    except NotAnExport as exc:
        print(exc.message_zh, file=err)
        if exc.reason == "too_large":
            print(text.render("errors.j2", "cli", reason="cli_too_large"), file=err)
        if as_json:
            out.write(json.dumps({"error": {"reason": exc.reason, "message": exc.message_zh}}, ensure_ascii=False) + "\n")
        return EXIT_NOT_AN_EXPORT
    except (sqlite3.Error, OSError) as exc:  # storage fault or unreadable file: a message, no traceback
        return _failed(exc, err, as_json, out)
    finally:
        await db.close()
    if err.isatty():
        print(file=err)
    if as_json:
        out.write(json.dumps({"summary": summary.to_json()}, ensure_ascii=False) + "\n")
    else:
        print(summary.text_zh(), file=out)
    out.flush()
    return EXIT_OK


def _failed(exc: BaseException, err, as_json: bool, out) -> int:
    fault = storage_fault(exc) or "io_error"
    message = text.render("errors.j2", "cli", reason="storage_fault", path=f"{fault}: {exc}")
    print(message, file=err)
    if as_json:
        out.write(json.dumps({"error": {"reason": fault, "message": message}}, ensure_ascii=False) + "\n")
    return EXIT_FAILED


def _utf8_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        if (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8":
            try:
                stream.reconfigure(encoding="utf-8")
            except (AttributeError, ValueError):
                pass
