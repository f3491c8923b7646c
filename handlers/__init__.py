"""The Telegram layer: one module per feature, each with `register(app)` and optional
`on_startup(app)` / `on_shutdown(app)` hooks. Handlers parse, check, call a service, render, send."""

from __future__ import annotations

import functools
from types import ModuleType

from telegram.ext import Application, CommandHandler

from handlers import (
    broadcasts,
    errors,
    fallback,
    guard,
    handover,
    menu,
    orders,
    people,
    reminders,
    scripts,
    start,
    ticker,
)

#: Feature modules in registration order. The guard comes first (group -1), the fallback last.
FEATURES: list[ModuleType] = [
    guard, ticker, start, people, scripts, reminders, broadcasts, handover, orders, errors, fallback,
]


def register_all(app: Application) -> None:
    for feature in FEATURES:
        feature.register(app)
    _mark_handled_updates(app)
    app.bot_data["registered_commands"] = {
        command
        for handlers in app.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for command in handler.commands
    }


def _mark_handled_updates(app: Application) -> None:
    """PTB runs one handler per group, so a fallback in a later group would also fire after a
    feature answered. Every feature callback therefore marks the update handled when it
    returns; fallbacks (and other catch-alls) check `was_handled(context)` first."""
    for group, group_handlers in app.handlers.items():
        if group < 0:
            continue
        for handler in group_handlers:
            if getattr(handler.callback, "__module__", "") == fallback.__name__:
                continue
            handler.callback = _marking(handler.callback)


def _marking(callback):
    @functools.wraps(callback)
    async def wrapper(update, context):
        try:
            return await callback(update, context)
        finally:
            context.handled = True

    return wrapper


def was_handled(context) -> bool:
    return getattr(context, "handled", False)


async def on_startup(app: Application) -> None:
    for feature in FEATURES:
        hook = getattr(feature, "on_startup", None)
        if hook is not None:
            await hook(app)
    await menu.publish_menu(app)


async def on_shutdown(app: Application) -> None:
    for feature in reversed(FEATURES):
        hook = getattr(feature, "on_shutdown", None)
        if hook is not None:
            await hook(app)
