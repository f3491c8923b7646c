"""The Telegram layer: one module per feature, each with `register(app)` and optional
`on_startup(app)` / `on_shutdown(app)` hooks. Handlers parse, check, call a service, render, send."""

from __future__ import annotations

import asyncio
import importlib
import logging
from types import ModuleType

from telegram.ext import Application, CommandHandler

from bot import access
from bot.services import add_features
from handlers import errors, guard, menu, routing
from handlers.context import services_of

log = logging.getLogger(__name__)

#: Modules in registration order (handler groups, the order updates meet them, are the one table
#: in handlers/routing.py). First the core: the access check, the tick, /start and /help, the
#: error handler; then the features. `kefu run` registers the core at once and the features once
#: polling runs (`load_features`; issue 13, cold start: their modules, some 100 ms of imports, are
#: not loaded before the first /help is answered). Everything else registers both at once.
CORE: tuple[str, ...] = ("guard", "ticker", "start", "errors")
FEATURES: tuple[str, ...] = (
    "people", "scripts", "reminders", "broadcasts", "handover", "cases", "kpi", "orders", "fallback",
)
#: Start-up hooks run once polling runs (issue 13, cold start): loading the scripts knowledge base
#: (its validation compiles every script: the longest part of a start) and the orders intake (the
#: import parser's process, interrupted imports, the HTTP endpoint). Until they are done, the
#: guard holds every update except /help and /start (handlers/guard.py `guard`), so no update
#: meets a half-started bot.
AFTER_POLLING: tuple[str, ...] = ("scripts", "orders")
_FALLBACK = "handlers.fallback"
_REGISTERED = "registered_modules"


class FeaturesFailed(Exception):
    """The features could not be loaded or started (`load_features`): `kefu run` stops with this
    as its start failure (handlers/app.py), as it did when a feature failed before polling."""


def _modules(names: tuple[str, ...]) -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def _short(module: ModuleType) -> str:
    return module.__name__.rpartition(".")[2]


def registered(app: Application) -> list[ModuleType]:
    """The modules registered into `app` so far, in registration order."""
    return app.bot_data.get(_REGISTERED, [])


def features_loaded(app: Application) -> bool:
    """Whether the features are registered into `app` (the last of them is)."""
    return any(_short(module) == FEATURES[-1] for module in registered(app))


def register_all(app: Application, *, features: bool = True) -> None:
    """Register the core and, unless `features` is False, the features (`load_features` later)."""
    app.bot_data[_REGISTERED] = []
    _register(app, _modules(CORE))
    if features:
        _register(app, _modules(FEATURES))
    else:
        # /help and /start list the commands before the features register theirs: the ones the
        # access table declares (tests/e2e/test_startup_order_e2e.py checks both are the same).
        app.bot_data["registered_commands"] = set(access.COMMANDS)


def _register(app: Application, modules: list[ModuleType]) -> None:
    for module in modules:
        module.register(app)
        registered(app).append(module)
    routing.mark_handled_updates(app, skip_module=_FALLBACK)
    app.bot_data["registered_commands"] = {
        command
        for handlers in app.handlers.values()
        for handler in handlers
        if isinstance(handler, CommandHandler)
        for command in handler.commands
    }


async def on_startup(app: Application) -> None:
    guard.starting(app)
    for module in list(registered(app)):
        hook = getattr(module, "on_startup", None)
        if hook is not None and _short(module) not in AFTER_POLLING:
            await hook(app)


async def load_features(app: Application) -> None:
    """Import the features, build their services, register their handlers and run their start-up
    hooks (but `AFTER_POLLING`): `kefu run` does this first once polling runs. Updates that came
    meanwhile are held by the guard, which hands them to the handlers again once this is done.
    Any failure here fails the start (`FeaturesFailed` from `after_polling`)."""
    if features_loaded(app):
        return
    modules = _modules(FEATURES)
    add_features(services_of(app))
    _register(app, modules)
    guard.handlers_changed(app)
    for module in modules:
        hook = getattr(module, "on_startup", None)
        if hook is not None and _short(module) not in AFTER_POLLING:
            await hook(app)


async def after_polling(app: Application) -> None:
    """Start-up work the first update need not wait for, once polling runs: the deferred hooks
    (`AFTER_POLLING`, in registration order), then the command menu (a Bot API call per scope) and
    the admins' start notice, then every template compiled ahead of use."""
    try:
        try:
            await load_features(app)
        except Exception as exc:
            guard.features_failed(app, exc)  # what waits is told of an internal error
            raise FeaturesFailed(f"{type(exc).__name__}: {exc}") from exc
        for feature in registered(app):
            if _short(feature) not in AFTER_POLLING:
                continue
            try:
                await feature.on_startup(app)
            except Exception as exc:  # noqa: BLE001 - one failing hook must not skip the others
                log.exception("start-up of %s after polling failed", feature.__name__)
                await errors.alert_admins(app, exc)
            if _short(feature) == "scripts":
                guard.started(app)  # held updates need the knowledge base, not the orders intake
    finally:
        guard.started(app)  # whatever happened, updates must not wait forever
    await menu.publish_menu(app)
    from handlers import setup_notice

    await setup_notice.on_startup(app)  # sees the loaded KB and the team
    try:  # last: every template and label compiled before its first use (issue 13, p99)
        await asyncio.to_thread(services_of(app).renderer.warm)
    except Exception:  # noqa: BLE001 - a template that does not compile fails where it is used
        log.exception("compiling the templates ahead of use failed")


async def before_stop(app: Application) -> None:
    """Polling has stopped and the Application is about to stop (which waits for every task it
    started): each feature's `before_stop` ends work that need not be waited for."""
    for feature in reversed(registered(app)):
        hook = getattr(feature, "before_stop", None)
        if hook is not None:
            try:
                await hook(app)
            except Exception:  # noqa: BLE001 - the stop goes on
                log.exception("before-stop work of %s failed", feature.__name__)


async def on_shutdown(app: Application) -> None:
    for feature in reversed(registered(app)):
        hook = getattr(feature, "on_shutdown", None)
        if hook is not None:
            await hook(app)
