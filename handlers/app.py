"""Builds the python-telegram-bot Application: defaults, update processor, handlers, start-up hooks.

The composition root of the Telegram side: `bot/cli.py` (`kefu run`) and `bot/sandbox.py` are
the only core modules that import it. `kefu run` uses `run_polling`; tests and the sandbox use `start_application` /
`stop_application`, which run the very same start-up hook against the local emulator.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ContextTypes,
    Defaults,
)

import handlers  # the Telegram layer registers itself
from bot.clock import Clock, SystemClock
from bot.db import storage_fault
from bot.services import Services, build_services
from bot.settings import Settings
from handlers import guard
from handlers.concurrency import KeyedUpdateProcessor
from handlers.context import KefuContext
from handlers.tracking import UpdateTracker  # noqa: F401 - for the sandbox (bot.sandbox imports handlers.app only)
from handlers.transport import BotApiRequest, tls_context

log = logging.getLogger(__name__)


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    services: Services | None = None,
    max_retries: int = 3,
    reply_interval: float | None = None,
    pacing: dict[str, float] | None = None,
    features: bool = True,
) -> Application:
    """An Application wired with every feature; services are built at start-up unless given.
    `max_retries`: attempts per request on a 429 (the outbox's, per chat). `reply_interval`: the
    outbox's pacing of direct replies in one private chat (default Telegram's 1 s; the sandbox,
    which talks to no Telegram, and the e2e harness shorten it). `pacing`: the outbox Flow's other
    limits (rate, burst, private_interval, group_interval); only the e2e harness passes it, for
    tests that are not about Telegram's limits. `features=False` (`kefu run`): only the core
    handlers now, the features once polling runs (handlers/__init__.py `load_features`)."""
    # aiohttp under PTB, parameters as a JSON body (handlers/transport.py: issue 13, CPU per update).
    tls = tls_context()
    requests = (BotApiRequest(connection_pool_size=256, ssl_context=tls),
                BotApiRequest(connection_pool_size=1, ssl_context=tls))  # sends; the long poll
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .request(requests[0])
        .get_updates_request(requests[1])
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
        .post_init(_post_init)
        .post_shutdown(on_shutdown)
    )
    app = builder.build()
    app.bot_data["settings"] = settings
    #: closed by `app.shutdown()`; by `serve` itself when getMe failed (PTB's Bot then never
    #: counts as initialised, yet its requests opened their connection pools)
    app.bot_data["transport"] = requests
    app.bot_data["clock"] = clock or SystemClock()
    app.bot_data["outbox_attempts"] = max(1, max_retries)
    if reply_interval is not None or pacing:
        from handlers.outbox import Flow

        app.bot_data["outbox_flow"] = Flow(**(pacing or {}), reply_interval=reply_interval)
    if services is not None:
        app.bot_data["services"] = services
    if app.job_queue is not None:
        # APScheduler's default 1 s grace marks jobs "missed" whenever the loop is busy.
        app.job_queue.scheduler.configure(
            job_defaults={"misfire_grace_time": 300, "coalesce": True, "max_instances": 1},
            **app.job_queue.scheduler_configuration,
        )
    handlers.register_all(app, features=features)
    return app


async def on_startup(app: Application) -> None:
    """Open storage, start each feature's services and jobs, publish the command menu."""
    if "services" not in app.bot_data:
        app.bot_data["services"] = await build_services(app.bot_data["settings"], app.bot_data["clock"])
        app.bot_data["owns_services"] = True
    await handlers.on_startup(app)


async def _post_init(app: Application) -> None:
    """For PTB's own `app.run_polling()` (as in PTB's examples; `kefu run`, the tests and the
    sandbox call the steps themselves): the start-up, then the deferred start-up as a task once
    polling runs. Without that task the knowledge base would never load and the guard would hold
    every update but /help and /start."""
    await on_startup(app)
    # not app.create_task: the Application is not running yet (it starts after post_init)
    app.bot_data["kefu_after_polling"] = asyncio.get_running_loop().create_task(
        _after_polling(app), name="kefu-after-polling")


#: Longest wait, once polling runs, for the updates that came first and need no deferred start-up
#: work to be answered before that work begins (handlers/guard.py `first_answers_sent`).
FIRST_ANSWERS_WAIT_S = 0.5


async def _after_polling(app: Application, on_failure: Callable[[StartFailure], None] | None = None) -> None:
    try:
        await guard.first_answers_sent(app, FIRST_ANSWERS_WAIT_S)
        await handlers.after_polling(app)
    except handlers.FeaturesFailed as failed:
        # `kefu run` stops, as when a feature failed before polling; the admins are told.
        error = failed.__cause__ or failed
        log.error("start-up failed: the features did not load", exc_info=error)
        fault = storage_fault(error)
        try:
            if fault is not None:
                from handlers.errors import alert_admins_at_start

                await alert_admins_at_start(app, app.bot_data["settings"], error, fault)
            else:
                from handlers.errors import alert_admins

                await alert_admins(app, error)
        finally:  # the stop never waits on the alert
            if on_failure is not None:
                on_failure(StartFailure("storage", f"{fault}: {error}") if fault else StartFailure("features", str(failed)))
    except Exception:  # noqa: BLE001 - the menu or a notice failing must not stop the bot
        log.exception("start-up work after polling failed")
    finally:
        if not gc.isenabled():  # `kefu run` turned the collector off for the start-up (bot/cli.py)
            gc.collect()  # the start-up's garbage (YAML parse trees…) first: a frozen object is never freed
            gc.freeze()  # what the start-up built (the features, the knowledge base) lives as long
            gc.enable()  # as the process: not scanned again


async def on_shutdown(app: Application) -> None:
    if "services" not in app.bot_data:
        return  # start-up failed before the services existed: nothing to close
    await handlers.on_shutdown(app)
    if app.bot_data.pop("owns_services", False):
        await app.bot_data["services"].db.close()


async def start_application(app: Application, *, poll_timeout: int = 1) -> None:
    """Start like `run_polling` does, but return control to the caller (tests, sandbox)."""
    await app.initialize()
    await on_startup(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=poll_timeout, allowed_updates=Update.ALL_TYPES)
    await handlers.after_polling(app)  # awaited here: tests see the menu and the notice at once


async def stop_application(app: Application) -> None:
    if app.updater and app.updater.running:
        await app.updater.stop()
    if app.running:
        await handlers.before_stop(app)
        await app.stop()
    await on_shutdown(app)
    await app.shutdown()


async def tick_now(app: Application) -> None:
    """Run every time-based feature once now (the sandbox's `:t` after moving its clock)."""
    from handlers.ticker import run_tick

    await run_tick(app)


@dataclass(frozen=True)
class StartFailure:
    """Why `kefu run` could not start: `kind` is network | token | server | conflict | storage
    (then `detail` starts with the fault: corrupt, cannot_open, read_only, disk_full, io_error) |
    features (a feature failed to load or start once polling ran)."""

    kind: str
    detail: str


def classify_start_error(exc: TelegramError) -> str:
    """network: no route, DNS, proxy, TLS or time-outs; token: Telegram says the token is wrong;
    conflict: another copy polls with this token (or a webhook is set); server: the Bot API server
    answered with an error of its own (5xx and the like)."""
    if isinstance(exc, InvalidToken):
        return "token"
    if isinstance(exc, Conflict):
        return "conflict"
    if isinstance(exc, TimedOut):
        return "network"
    if isinstance(exc, NetworkError):
        cause = exc.__cause__
        if type(cause).__module__.split(".")[0] == "aiohttp" or str(exc).startswith(("aiohttp.", "Unknown error in HTTP")):
            return "network"
        return "server"
    return "server"


class PollingRetryLog:
    """One log line per failed long poll after start; PTB's network loop retries with backoff
    (1 s, then ×1.5 up to 30 s)."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, exc: TelegramError) -> None:
        self.attempts += 1
        log.warning(
            "Telegram unreachable while polling (attempt %d, %s): %s; retrying with backoff",
            self.attempts, classify_start_error(exc), exc,
        )


async def serve(settings: Settings, *, stop: asyncio.Event | None = None) -> StartFailure | None:
    """`kefu run`: start (a failure is returned, not raised), poll until SIGINT/SIGTERM or `stop`."""
    # The features load once polling runs: /help and /start are answered without them (issue 13).
    app = build_application(settings, features=False)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    initialized = False
    failures: list[StartFailure] = []

    def start_failed(failure: StartFailure) -> None:
        failures.append(failure)
        stop.set()

    # The storage opens (migrations checked, labels read) while getMe is in flight: neither needs
    # the other, and a cold start is that much shorter (issue 13). A failed getMe still wins.
    opening = asyncio.create_task(build_services(settings, app.bot_data["clock"], features=False),
                                  name="kefu-open-storage")
    try:
        try:
            await app.initialize()  # getMe: proves the network and the token
            initialized = True
            try:
                app.bot_data["services"] = await opening
                app.bot_data["owns_services"] = True
                await on_startup(app)
            except Exception as exc:
                fault = storage_fault(exc)
                if fault is None:
                    raise
                # A corrupt or unreadable database: say so (here and to the admins, who need no
                # database) and stop, rather than a traceback or a silent restart loop.
                log.error("start-up failed: storage fault %s", fault, exc_info=exc)
                from handlers.errors import alert_admins_at_start

                await alert_admins_at_start(app, settings, exc, fault)
                return StartFailure("storage", f"{fault}: {exc}")
            await app.start()
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, error_callback=PollingRetryLog())
            app.create_task(_after_polling(app, on_failure=start_failed),
                            name="kefu-after-polling")  # the first update does not wait
        except TelegramError as exc:
            log.debug("start-up failed", exc_info=exc)
            return StartFailure(classify_start_error(exc), str(exc).replace(settings.telegram_bot_token, "<redacted>"))
        log.info("kefu-bot started (long polling)")
        await stop.wait()
        log.info("kefu-bot stopping")
        return failures[0] if failures else None
    finally:
        if "services" not in app.bot_data:  # the start failed before the storage was taken into use
            try:
                services = await opening
            except Exception:  # noqa: BLE001 - the start already failed (that failure is reported)
                pass
            else:
                await services.db.close()
        if app.updater and app.updater.running:
            await app.updater.stop()
        if app.running:
            await handlers.before_stop(app)
            await app.stop()
        await on_shutdown(app)
        if initialized:
            await app.shutdown()
        else:
            for request in app.bot_data["transport"]:
                await request.shutdown()
        if not initialized and app.bot_data.get("owns_services") and "services" in app.bot_data:
            await app.bot_data["services"].db.close()


def run_polling(settings: Settings) -> StartFailure | None:
    log.info("kefu-bot starting (long polling)")
    return asyncio.run(serve(settings))
