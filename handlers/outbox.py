"""The outbox: the one path for what the bot sends. Handlers and jobs call these functions instead
of `bot.send_message` / `edit_message_text`, so Telegram's answers are handled once:
- 403 (blocked, left) and "chat not found": the person is marked unreachable, nothing raised;
- 429 beyond the rate limiter's own retries: wait as told and try again;
- timeouts and network errors: retried after a short pause, then reported as failed;
- texts over Telegram's limit are split; "message is not modified" counts as done.
Pacing and concurrency build on this module (a later issue). Tests may replace what the bot sends
through the emulator's fault injection, never by replacing this module.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.people import Role
from bot.render import split_text
from handlers.context import KefuContext, Target

log = logging.getLogger(__name__)


async def reply(update: Update, context: KefuContext, text: str, **kwargs: Any) -> Message | None:
    """Answer in the chat the update came from, splitting text over Telegram's limit."""
    chat = update.effective_chat
    if chat is None:
        return None
    parts = list(split_text(text))
    last = None
    for index, part in enumerate(parts):
        extra = kwargs if index == len(parts) - 1 else {k: v for k, v in kwargs.items() if k != "reply_markup"}
        last = await send(context, chat.id, part, **extra)
    return last


async def reply_template(update: Update, context: KefuContext, template: str, *, reply_markup=None, **values: Any):
    return await reply(update, context, context.svc.renderer.render(template, **values), reply_markup=reply_markup)


@dataclass(frozen=True)
class Delivery:
    """What became of one outgoing message: sent, blocked (403 / chat gone) or failed (transient)."""

    status: str
    message: Message | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "sent"


async def deliver(target: Target, chat_id: int, text: str, **kwargs: Any) -> Delivery:
    """Send a message, handling what Telegram may answer instead of delivering it.

    `target` is a handler context or the Application (for pushes from jobs).
    - 403 (blocked the bot, left) and "chat not found": the person is marked unreachable.
    - 429 beyond the rate limiter's own retries: wait as told, then try again (twice at most).
    - timeouts and network errors: retried after a short pause, then reported as failed.
    It never raises for a delivery problem; a 400 for a malformed message is a bug and raises.
    """
    return await _deliver(target, chat_id, lambda: target.bot.send_message(chat_id, text, **kwargs))


async def deliver_file(target: Target, chat_id: int, kind: str, content: bytes | str, filename: str,
                       caption: str | None = None, **kwargs: Any) -> Delivery:
    """Send bytes (or a file_id Telegram gave for an earlier upload) as a `photo` or a `document`
    (an XLSX, a chart), with `deliver`'s handling."""
    from telegram import InputFile

    def call():
        upload = content if isinstance(content, str) else InputFile(content, filename=filename)
        if kind == "photo":
            return target.bot.send_photo(chat_id, upload, caption=caption, **kwargs)
        return target.bot.send_document(chat_id, upload, caption=caption, **kwargs)

    return await _deliver(target, chat_id, call)


async def _deliver(target: Target, chat_id: int, call) -> Delivery:
    services = target.bot_data["services"]
    last_error = ""
    for attempt in range(3):
        try:
            return Delivery("sent", await call())
        except Forbidden as exc:
            log.info("chat %s is unreachable (blocked or left)", chat_id)
            if chat_id > 0:
                await services.people.mark_blocked(chat_id)
            return Delivery("blocked", error=str(exc))
        except RetryAfter as exc:
            wait = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else exc.retry_after
            log.warning("flood control: waiting %ss before retrying chat %s", wait, chat_id)
            last_error = str(exc)
            await asyncio.sleep(float(wait))
        except BadRequest as exc:
            if "chat not found" in str(exc).lower():
                if chat_id > 0:
                    await services.people.mark_blocked(chat_id)
                return Delivery("blocked", error=str(exc))
            raise
        except (TimedOut, NetworkError) as exc:
            log.warning("sending to %s failed (%s), attempt %d", chat_id, exc, attempt + 1)
            last_error = str(exc)
            await asyncio.sleep(0.5 * (attempt + 1))
    return Delivery("failed", error=last_error)


async def tell_admins(app: Target, text: str) -> None:
    """Registered admins and KEFU_ADMIN_IDS (who may not have sent /start yet)."""
    svc = app.bot_data["services"]
    admins = {p.tg_id for p in await svc.people.with_role(Role.ADMIN)} | set(svc.settings.kefu_admin_ids)
    for admin in sorted(admins):
        try:
            await deliver(app, admin, text)
        except TelegramError as exc:
            log.warning("could not tell admin %s: %s", admin, exc)


async def send(target: Target, chat_id: int, text: str, **kwargs: Any) -> Message | None:
    """`deliver`, for callers that only need the Message (None when it did not arrive)."""
    return (await deliver(target, chat_id, text, **kwargs)).message


async def answer_callback(update: Update, text: str | None = None, *, alert: bool = False) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text, show_alert=alert)
    except BadRequest as exc:  # query too old: the user pressed long ago, nothing to answer
        log.info("callback answer dropped: %s", exc)


async def edit_or_send(update: Update, context: KefuContext, text: str, **kwargs: Any) -> None:
    """Edit the message a button belongs to; if it cannot be edited, send a new one."""
    query = update.callback_query
    if query is not None and query.message is not None:
        try:
            await query.edit_message_text(text, **kwargs)
            return
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return
            log.info("edit failed (%s); sending a new message", exc)
    await reply(update, context, text, **kwargs)


def not_modified(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and "not modified" in str(exc).lower()


async def edit(target: Target, chat_id: int, message_id: int, text: str, *, what: str = "message",
               **kwargs: Any) -> bool:
    """Edit a message the bot sent earlier (a card, a digest, a progress panel). "Not modified"
    counts as done; any other Telegram answer is logged (naming `what`) and gives False: the
    state lives in the database, the message is only its picture."""
    try:
        await target.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, **kwargs)
        return True
    except TelegramError as exc:
        if not_modified(exc):
            return True
        log.info("%s %s/%s not edited: %s", what, chat_id, message_id, exc)
        return False
