"""The `kefu` command (also `python -m bot`).

Each feature contributes its subcommands through a `register(subparsers)` function; a
subcommand sets `func(args) -> int`, the process exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import sys
import threading
from pathlib import Path

from bot import __version__

#: Feature modules that add subcommands (kb check/search, import, reminders due, ...).
SUBCOMMAND_MODULES = [
    "bot.kb.cli",
    "bot.orders.cli",
    "bot.reminders.cli",
    "bot.kpi.cli",
    "bot.cases.cli",
]


def cli_text(name: str, **values: object) -> str:
    from zoneinfo import ZoneInfo

    from bot.render import renderer_for  # not before `kefu run` has started its background import

    return renderer_for(ZoneInfo("UTC")).render(f"cli/{name}.txt", **values)


#: `kefu run` imports aiohttp (the Bot API client, handlers/transport.py) on a second thread
#: while it imports everything else: aiohttp loads the system's certificates as it is imported,
#: ~70 ms spent in OpenSSL without the interpreter lock, so that part runs alongside (issue 13,
#: cold start). What aiohttp takes from the standard library (and idna, which httpx shares) is
#: imported here first, so the two threads never wait on each other's modules: the second
#: thread only loads aiohttp's own packages. tests/unit/core/test_cli_preload.py checks that
#: this list still covers what the installed aiohttp imports.
BACKGROUND_IMPORT = "aiohttp"
BACKGROUND_IMPORT_NEEDS = (
    "asyncio", "bisect", "bz2", "calendar", "copy", "datetime", "email.parser", "email.policy", "email.utils",
    "hashlib", "http.client", "http.cookies", "idna", "json", "logging", "lzma", "mimetypes", "netrc", "pickle",
    "platform", "quopri", "random", "shlex", "socket", "ssl", "tempfile", "typing_extensions", "unicodedata",
    "urllib.request", "uuid", "zlib",
)


def start_background_import() -> threading.Thread:
    """Import BACKGROUND_IMPORT on a daemon thread (its needs first, on this one). A failure there
    is left for the import on the main thread to meet and report as usual."""
    for name in BACKGROUND_IMPORT_NEEDS:
        importlib.import_module(name)

    def load() -> None:
        try:
            importlib.import_module(BACKGROUND_IMPORT)
        except Exception:  # noqa: BLE001 - the main thread imports it again and reports
            pass

    thread = threading.Thread(target=load, name="kefu-import", daemon=True)
    thread.start()
    return thread


def cmd_run(args: argparse.Namespace) -> int:
    start_background_import()
    # Start-up creates some 130 000 objects the collector tracks, nearly all living as long as the
    # process: its passes over them find next to nothing and cost ~5 % of a cold start (issue 13).
    # handlers/app.py freezes them and turns the collector back on once the start-up work done
    # after polling began (the features, the knowledge base) is over.
    gc.disable()
    try:
        return _run()
    finally:
        gc.enable()


def _run() -> int:
    from bot.logs import configure_logging
    from bot.settings import load_settings
    from handlers.app import run_polling

    settings = load_settings()
    if not settings.telegram_bot_token:
        print(cli_text("no_token"), file=sys.stderr)
        return 2
    configure_logging(settings.kefu_log_level, [settings.telegram_bot_token, settings.kefu_api_token])
    failure = run_polling(settings)
    if failure is not None:
        print(cli_text("start_failed", kind=failure.kind, detail=failure.detail,
                       base_url=settings.telegram_base_url.replace(settings.telegram_bot_token, "")),
              file=sys.stderr)
        return 2
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox import run_sandbox

    return asyncio.run(run_sandbox(keep_db=args.keep_db, script=args.script))


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.settings import load_settings

    settings = load_settings()

    async def migrate() -> list[int]:
        db = await Database.open(settings.kefu_db_path, migrate=False)
        try:
            return await db.migrate()
        finally:
            await db.close()

    applied = asyncio.run(migrate())
    print(cli_text("db_migrated", applied=applied, path=settings.kefu_db_path))
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.settings import load_settings

    settings = load_settings()
    if not Path(settings.kefu_db_path).exists():
        print(cli_text("db_missing", path=settings.kefu_db_path), file=sys.stderr)
        return 1

    async def backup() -> Path:
        db = await Database.open(settings.kefu_db_path, migrate=False)
        try:
            return await db.backup(args.path)
        finally:
            await db.close()

    target = asyncio.run(backup())
    print(cli_text("db_backup", path=target, size=target.stat().st_size))
    return 0


#: Subcommands of this module: for them the features' subcommands are not loaded (`kefu run`
#: starts ~5 ms sooner; issue 13, cold start). `kefu --help` and every other command load them.
CORE_COMMANDS = ("run", "sandbox", "db")


def build_parser(*, features: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="客服助手 kefu-bot")
    parser.add_argument("--version", action="version", version=f"kefu-bot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the bot (long polling) / 启动机器人")
    run.set_defaults(func=cmd_run)

    sandbox = sub.add_parser("sandbox", help="try the bot in the terminal without a token / 终端试用")
    sandbox.add_argument("--keep-db", action="store_true", help="keep the demo database afterwards")
    sandbox.add_argument("--script", help="read sandbox input lines from this file instead of the keyboard")
    sandbox.set_defaults(func=cmd_sandbox)

    db = sub.add_parser("db", help="database maintenance / 数据库维护")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_db_migrate)
    backup = db_sub.add_parser("backup", help="consistent online copy of the database")
    backup.add_argument("path", type=Path)
    backup.set_defaults(func=cmd_db_backup)

    for module_name in SUBCOMMAND_MODULES if features else ():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name and not module_name.startswith(str(exc.name)):
                raise
            continue  # feature not installed in this build
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(features=not argv or argv[0] not in CORE_COMMANDS)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        # bot.settings (pydantic) is imported by the command itself: `kefu run` first starts its
        # background import (issue 13, cold start)
        from bot.settings import SettingsError

        if not isinstance(exc, SettingsError):
            raise
        print(cli_text("bad_setting", setting=exc.setting, message=exc.message), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
