"""One repeating JobQueue job that drives every time-based feature (reminder scans, shift
prompts and digests, scheduled and re-notified broadcasts).

Due work lives in SQLite, never in APScheduler: a restart loses nothing, and the first tick
after downtime catches up. Features add a hook with `add_tick_hook(app, hook)`; tests call
`run_tick(app)` after moving the fake clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)

TickHook = Callable[[Application], Awaitable[None]]


def add_tick_hook(app: Application, hook: TickHook) -> None:
    app.bot_data.setdefault("tick_hooks", []).append(hook)


async def run_tick(app: Application) -> None:
    """Run every feature's hook once; one failing feature does not stop the others. One tick at
    a time: the JobQueue's tick and a test's (or a late one) never interleave (issue 13: with
    updates and fan-out running concurrently, two ticks would both see "not sent yet")."""
    from handlers.errors import report_job_error

    async with app.bot_data.setdefault("tick_lock", asyncio.Lock()):
        for hook in app.bot_data.get("tick_hooks", []):
            try:
                await hook(app)
            except Exception as exc:  # reported to admins, retried on the next tick
                log.exception("tick hook %s failed", getattr(hook, "__qualname__", hook))
                await report_job_error(app, exc)


async def _tick_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await run_tick(context.application)


def register(app: Application) -> None:
    interval = app.bot_data["settings"].kefu_scan_interval_seconds
    if app.job_queue is not None:
        app.job_queue.run_repeating(_tick_job, interval=interval, first=min(5, interval), name="kefu-tick")
