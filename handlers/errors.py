"""The error handler: log with the update, tell the user briefly, tell admins (rate-limited)."""

from __future__ import annotations

import html
import logging
import time
import traceback
from pathlib import Path

from telegram import Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import Application

from bot.clock import to_ts
from bot.notices import claim_notice
from bot.recipients import Notify, recipients
from bot.render import renderer_for
from handlers.context import KefuContext, Target, services_of
from handlers.outbox import answer_callback, deliver

log = logging.getLogger(__name__)

ADMIN_ALERT_INTERVAL_SECONDS = 600


async def on_error(update: object, context: KefuContext) -> None:
    error = context.error
    if isinstance(error, Forbidden) and isinstance(update, Update) and update.effective_user:
        await context.svc.people.mark_blocked(update.effective_user.id)
        return
    renderer = context.svc.renderer
    if isinstance(error, OverflowError):
        # A number from the user beyond what we store (a 20-digit id): their input, not our fault.
        log.warning("number out of range in an update: %s", error)
        if isinstance(update, Update) and update.callback_query is not None:
            await _quietly(answer_callback(update, renderer.label("errors.stale_button"), alert=True))
        elif isinstance(update, Update) and update.effective_chat is not None:
            await _quietly(deliver(context, update.effective_chat.id, renderer.label("errors.out_of_range")))
        return
    log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        await _quietly(deliver(context, update.effective_chat.id, renderer.label("errors.internal")))
    await alert_admins(context, error)


async def _quietly(sending) -> None:
    """The error handler's own messages: a Telegram refusal here is only logged."""
    try:
        await sending
    except TelegramError as exc:
        log.info("error message not sent: %s", exc)


async def report_job_error(app: Application, error: BaseException) -> None:
    """Errors outside an update (jobs, ticks) reach admins the same way."""
    await alert_admins(app, error)


async def alert_admins(target: Target, error: BaseException | None) -> None:
    """At most one alert per error kind every ten minutes, so a failing loop cannot flood admins.

    `target` is a handler context or the Application."""
    svc = services_of(target)
    kind = type(error).__name__ if error else "Unknown"
    fault = svc.db.note_fault(error) if error is not None else None  # /api/health names it too
    key = f"storage:{fault}" if fault else f"error:{kind}"
    if not await claim_notice(svc.db, key, to_ts(svc.clock.now()), ADMIN_ALERT_INTERVAL_SECONDS):
        return
    detail = "".join(traceback.format_exception_only(type(error), error)).strip() if error else kind
    token = svc.settings.telegram_bot_token
    if token:
        detail = detail.replace(token, "<redacted>")
    text = svc.renderer.render("admin_error.html", kind=kind, detail=detail[-1500:], fault=fault or "")
    for admin_id in await _admin_ids(svc):
        try:
            delivery = await deliver(target, admin_id, text)
            error = "" if delivery.ok else delivery.error
        except Exception as exc:  # noqa: BLE001 - e.g. marking a blocked admin in a broken database
            error = str(exc)
        if error:
            log.warning("could not alert admin %s: %s", admin_id, html.escape(error))


async def alert_admins_at_start(app: Application, settings, error: BaseException, fault: str) -> int:
    """Start-up failed on the storage (a corrupt or unreadable database): tell the admins of
    KEFU_ADMIN_IDS without touching the database (it cannot be read). At most once per fault
    every ADMIN_ALERT_INTERVAL_SECONDS, remembered in a small file beside the database (best
    effort), so a service manager restarting the bot again and again does not flood them.
    Returns how many admins were told."""
    marker = Path(f"{settings.kefu_db_path}.start-alert-{fault}")
    try:
        if time.time() - marker.stat().st_mtime < ADMIN_ALERT_INTERVAL_SECONDS:
            log.warning("storage fault %s at start: admins were alerted less than 10 minutes ago", fault)
            return 0
    except OSError:
        pass
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    if settings.telegram_bot_token:
        detail = detail.replace(settings.telegram_bot_token, "<redacted>")
    text = renderer_for(settings.tz).render("admin_error.html", kind=type(error).__name__, detail=detail[-1500:],
                                            fault=fault, at_start=True)
    told = 0
    for admin_id in sorted(set(settings.kefu_admin_ids)):
        try:
            # Straight to the Bot API, not through handlers/outbox.py: the outbox's bookkeeping
            # (marking an admin who blocked the bot, per-chat flow) needs the database and the
            # services, which this start could not open.
            await app.bot.send_message(admin_id, text)
            told += 1
        except TelegramError as exc:
            log.warning("could not alert admin %s: %s", admin_id, html.escape(str(exc)))
    try:
        marker.touch()
    except OSError:
        pass
    return told


_known_admins: set[int] = set()


async def _admin_ids(svc) -> list[int]:
    """Admins from the database; when it cannot be read (corrupt), the last ones seen plus
    KEFU_ADMIN_IDS, so the alert about the fault still goes out."""
    try:
        ids = await recipients(svc.people, Notify.ADMINS)
    except Exception as exc:  # noqa: BLE001 - the alert must not fail on the fault it reports
        log.warning("admins not readable (%s): alerting the last known and KEFU_ADMIN_IDS", exc)
        return sorted(_known_admins | set(svc.settings.kefu_admin_ids))
    _known_admins.update(ids)
    return ids


def register(app: Application) -> None:
    app.add_error_handler(on_error)
