"""The Telegram layer: one module per feature, each with `register(app)` and optional
`on_startup(app)` / `on_shutdown(app)` hooks. Handlers parse, check, call a service, render, send."""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType

from telegram.ext import Application, CommandHandler

from handlers import (
    broadcasts,
    cases,
    errors,
    fallback,
    guard,
    handover,
    kpi,
    menu,
    orders,
    people,
    reminders,
    routing,
    scripts,
    setup_notice,
    start,
    ticker,
)
from handlers.context import services_of

log = logging.getLogger(__name__)

#: Feature modules in registration order; handler groups (the order updates meet them) are the
#: one table in handlers/routing.py.
FEATURES: list[ModuleType] = [
    guard, ticker, start, people, scripts, reminders, broadcasts, handover, cases, kpi, orders, errors, fallback,
]


def register_all(app: Application) -> None:
    for feature in FEATURES:
        feature.register(app)
    routing.mark_handled_updates(app, skip_module=fallback.__name__)
    app.bot_data["registered_commands"] = {
        command
        for handlers in app.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for command in handler.commands
    }


#: Start-up hooks run once polling runs (issue 13, cold start): loading the scripts knowledge base
#: (its validation compiles every script: the longest part of a start) and the orders intake (the
#: import parser's process, interrupted imports, the HTTP endpoint). Until they are done, the
#: guard holds every update except /help and /start (handlers/guard.py `wait_until_started`), so
#: no update meets a half-started bot.
AFTER_POLLING: tuple[ModuleType, ...] = (scripts, orders)


async def on_startup(app: Application) -> None:
    guard.starting(app)
    for feature in FEATURES:
        hook = getattr(feature, "on_startup", None)
        if hook is not None and feature not in AFTER_POLLING:
            await hook(app)


async def after_polling(app: Application) -> None:
    """Start-up work the first update need not wait for, once polling runs: the deferred hooks
    (`AFTER_POLLING`, in registration order), then the command menu (a Bot API call per scope) and
    the admins' start notice, then every template compiled ahead of use."""
    try:
        for feature in FEATURES:
            if feature not in AFTER_POLLING:
                continue
            try:
                await feature.on_startup(app)
            except Exception as exc:  # noqa: BLE001 - one failing hook must not skip the others
                log.exception("start-up of %s after polling failed", feature.__name__)
                await errors.alert_admins(app, exc)
            if feature is scripts:
                guard.started(app)  # held updates need the knowledge base, not the orders intake
    finally:
        guard.started(app)  # whatever happened, updates must not wait forever
    await menu.publish_menu(app)
    await setup_notice.on_startup(app)  # sees the loaded KB and the team
    try:  # last: every template and label compiled before its first use (issue 13, p99)
        await asyncio.to_thread(services_of(app).renderer.warm)
    except Exception:  # noqa: BLE001 - a template that does not compile fails where it is used
        log.exception("compiling the templates ahead of use failed")


async def before_stop(app: Application) -> None:
    """Polling has stopped and the Application is about to stop (which waits for every task it
    started): each feature's `before_stop` ends work that need not be waited for."""
    for feature in reversed(FEATURES):
        hook = getattr(feature, "before_stop", None)
        if hook is not None:
            try:
                await hook(app)
            except Exception:  # noqa: BLE001 - the stop goes on
                log.exception("before-stop work of %s failed", feature.__name__)


async def on_shutdown(app: Application) -> None:
    for feature in reversed(FEATURES):
        hook = getattr(feature, "on_shutdown", None)
        if hook is not None:
            await hook(app)
