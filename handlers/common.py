"""Small helpers every handler uses: render, reply, send safely, buttons, user-error mapping."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.people import Role, UserError
from bot.render import split_text
from handlers.callbacks import checked
from handlers.context import KefuContext

log = logging.getLogger(__name__)


Handler = Callable[[Update, KefuContext], Awaitable[Any]]


def render(context: KefuContext, template: str, **values: Any) -> str:
    return context.svc.renderer.render(template, **values)


def label(context: KefuContext, key: str, **values: Any) -> str:
    return context.svc.renderer.label(key, **values)


def button(context: KefuContext, key: str, data: str, **values: Any) -> InlineKeyboardButton:
    """A callback button; its caption is the label `buttons.<key>`, or `key` itself when dotted
    (feature labels such as `reminders.buttons.claim`). `context` may also be the Application."""
    checked(data)
    renderer = context.bot_data["services"].renderer
    caption = renderer.label(key if "." in key else f"buttons.{key}", **values)
    return InlineKeyboardButton(caption, callback_data=data)


def keyboard(rows: Sequence[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    rows = [list(r) for r in rows if r]
    return InlineKeyboardMarkup(rows) if rows else None


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
    return await reply(update, context, render(context, template, **values), reply_markup=reply_markup)


@dataclass(frozen=True)
class Delivery:
    """What became of one outgoing message: sent, blocked (403 / chat gone) or failed (transient)."""

    status: str
    message: Message | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "sent"


async def deliver(target: Any, chat_id: int, text: str, **kwargs: Any) -> Delivery:
    """Send a message, handling what Telegram may answer instead of delivering it.

    `target` is a handler context or the Application (for pushes from jobs).
    - 403 (blocked the bot, left) and "chat not found": the person is marked unreachable.
    - 429 beyond the rate limiter's own retries: wait as told, then try again (twice at most).
    - timeouts and network errors: retried after a short pause, then reported as failed.
    It never raises for a delivery problem; a 400 for a malformed message is a bug and raises.
    """
    services = target.bot_data["services"]
    last_error = ""
    for attempt in range(3):
        try:
            return Delivery("sent", await target.bot.send_message(chat_id, text, **kwargs))
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


async def tell_admins(app: Any, text: str) -> None:
    """Registered admins and KEFU_ADMIN_IDS (who may not have sent /start yet)."""
    svc = app.bot_data["services"]
    admins = {p.tg_id for p in await svc.people.with_role(Role.ADMIN)} | set(svc.settings.kefu_admin_ids)
    for admin in sorted(admins):
        try:
            await deliver(app, admin, text)
        except TelegramError as exc:
            log.warning("could not tell admin %s: %s", admin, exc)


async def send(target: Any, chat_id: int, text: str, **kwargs: Any) -> Message | None:
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


def user_errors(handler: Handler) -> Handler:
    """Turn a UserError from a service into its Chinese message instead of a crash."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: KefuContext) -> Any:
        try:
            return await handler(update, context)
        except UserError as exc:
            text = label(context, f"errors.{exc.code}", **exc.params)
            if update.callback_query is not None:
                await answer_callback(update, text, alert=True)
            else:
                await reply(update, context, text)
            return None

    return wrapper


def arg_text(update: Update) -> str:
    """Everything after the command word, with line breaks kept (context.args loses them)."""
    message = update.effective_message
    text = (message.text or message.caption or "") if message else ""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 and parts[0].startswith("/") else ""
