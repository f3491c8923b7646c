"""Builds the python-telegram-bot Application: defaults, update processor, handlers, start-up hooks.

The composition root of the Telegram side: `bot/cli.py` (`kefu run`) and `bot/sandbox.py` are
the only core modules that import it. `kefu run` uses `run_polling`; tests and the sandbox use `start_application` /
`stop_application`, which run the very same start-up hook against the local emulator.
"""

from __future__ import annotations

import logging

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    Defaults,
)

import handlers  # the Telegram layer registers itself
from bot.clock import Clock, SystemClock
from bot.services import Services, build_services
from bot.settings import Settings
from handlers.concurrency import KeyedUpdateProcessor
from handlers.context import KefuContext

log = logging.getLogger(__name__)


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    services: Services | None = None,
    max_retries: int = 3,
) -> Application:
    """An Application wired with every feature; services are built at start-up unless given.
    `max_retries`: attempts per request on a 429 (the outbox's, per chat)."""
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                tzinfo=settings.tz,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        # No AIORateLimiter: it paused every request of the bot on one chat's 429 and queued
        # each reply behind its overall budget. Telegram's limits are the outbox's (handlers/outbox.py).
        .context_types(ContextTypes(context=KefuContext))
        .concurrent_updates(KeyedUpdateProcessor())
        .post_init(on_startup)
        .post_shutdown(on_shutdown)
    )
    app = builder.build()
    app.bot_data["settings"] = settings
    app.bot_data["clock"] = clock or SystemClock()
    app.bot_data["outbox_attempts"] = max(1, max_retries)
    if services is not None:
        app.bot_data["services"] = services
    if app.job_queue is not None:
        # APScheduler's default 1 s grace marks jobs "missed" whenever the loop is busy.
        app.job_queue.scheduler.configure(
            job_defaults={"misfire_grace_time": 300, "coalesce": True, "max_instances": 1},
            **app.job_queue.scheduler_configuration,
        )
    handlers.register_all(app)
    return app


async def on_startup(app: Application) -> None:
    """Open storage, start each feature's services and jobs, publish the command menu."""
    if "services" not in app.bot_data:
        app.bot_data["services"] = await build_services(app.bot_data["settings"], app.bot_data["clock"])
        app.bot_data["owns_services"] = True
    await handlers.on_startup(app)


async def on_shutdown(app: Application) -> None:
    await handlers.on_shutdown(app)
    if app.bot_data.pop("owns_services", False):
        await app.bot_data["services"].db.close()


async def start_application(app: Application, *, poll_timeout: int = 1) -> None:
    """Start like `run_polling` does, but return control to the caller (tests, sandbox)."""
    await app.initialize()
    await on_startup(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES)


async def stop_application(app: Application) -> None:
    if app.updater and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await on_shutdown(app)
    await app.shutdown()


def run_polling(settings: Settings) -> None:
    app = build_application(settings)
    log.info("kefu-bot starting (long polling)")
    app.run_polling(allowed_updates=Update.ALL_TYPES)
