"""The error handler: log with the update, tell the user briefly, tell admins (rate-limited)."""

from __future__ import annotations

import html
import logging
import traceback

from telegram import Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from bot.clock import to_ts
from bot.people import Role
from handlers.context import KefuContext

log = logging.getLogger(__name__)

ADMIN_ALERT_INTERVAL_SECONDS = 600


async def on_error(update: object, context: KefuContext) -> None:
    error = context.error
    if isinstance(error, Forbidden) and isinstance(update, Update) and update.effective_user:
        await context.svc.people.mark_blocked(update.effective_user.id)
        return
    log.error("error while handling an update", exc_info=error)
    renderer = context.svc.renderer
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, renderer.label("errors.internal"))
        except TelegramError:
            pass
    await alert_admins(context, error)


async def report_job_error(app: Application, error: BaseException) -> None:
    """Errors outside an update (jobs, ticks) reach admins the same way."""
    await alert_admins(app, error)


async def alert_admins(target, error: BaseException | None) -> None:
    """At most one alert per error kind every ten minutes, so a failing loop cannot flood admins.

    `target` is a handler context or the Application."""
    svc = target.bot_data["services"]
    kind = type(error).__name__ if error else "Unknown"
    now = to_ts(svc.clock.now())
    async with svc.db.transaction() as conn:
        cursor = await conn.execute("SELECT sent_at FROM notices WHERE key = ?", (f"error:{kind}",))
        row = await cursor.fetchone()
        if row is not None and now - row[0] < ADMIN_ALERT_INTERVAL_SECONDS:
            return
        await conn.execute(
            "INSERT INTO notices (key, sent_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET sent_at = excluded.sent_at",
            (f"error:{kind}", now),
        )
    detail = "".join(traceback.format_exception_only(type(error), error)).strip() if error else kind
    token = svc.settings.telegram_bot_token
    if token:
        detail = detail.replace(token, "<redacted>")
    text = svc.renderer.render("admin_error.html", kind=kind, detail=detail[-1500:])
    for admin in await svc.people.with_role(Role.ADMIN):
        try:
            await target.bot.send_message(admin.tg_id, text)
        except TelegramError as exc:
            log.warning("could not alert admin %s: %s", admin.tg_id, html.escape(str(exc)))


def register(app: Application) -> None:
    app.add_error_handler(on_error)
