"""Small helpers every handler uses: render, labels, buttons, user-error mapping, arguments.
Sending is handlers/outbox.py."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from markupsafe import Markup
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.people import UserError
from handlers.callbacks import checked
from handlers.context import KefuContext
from handlers.outbox import answer_callback, reply

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
    # A caption is plain text (Telegram shows it as is): values must not be HTML-escaped, or a
    # shop called B&C shows as B&amp;C.
    plain = {k: Markup(v) if isinstance(v, str) else v for k, v in values.items()}
    caption = renderer.label(key if "." in key else f"buttons.{key}", **plain)
    return InlineKeyboardButton(caption, callback_data=data)


def keyboard(rows: Sequence[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    rows = [list(r) for r in rows if r]
    return InlineKeyboardMarkup(rows) if rows else None


ErrorText = Callable[[KefuContext, UserError], Awaitable[str]]


def user_errors(handler: Handler | None = None, *, text: ErrorText | None = None,
                alert: Callable[[str], str] | None = None,
                after: Callable[[KefuContext, UserError], None] | None = None) -> Any:
    """Turn a UserError from a service into its Chinese message instead of a crash: an alert under
    a button, else a reply. The one decorator for every feature: `text` words the message (default
    the label `errors.<code>`), `alert` shapes it for an alert (e.g. plain text, 200 characters),
    `after` undoes feature state (e.g. a conversation that cannot go on). Use as `@user_errors` or
    `@user_errors(text=..., after=...)`."""

    def decorate(inner: Handler) -> Handler:
        @functools.wraps(inner)
        async def wrapper(update: Update, context: KefuContext) -> Any:
            try:
                return await inner(update, context)
            except UserError as exc:
                message = await text(context, exc) if text else label(context, f"errors.{exc.code}", **exc.params)
                if update.callback_query is not None:
                    await answer_callback(update, alert(message) if alert else message, alert=True)
                else:
                    await reply(update, context, message)
                if after is not None:
                    after(context, exc)
                return None

        return wrapper

    return decorate(handler) if handler is not None else decorate


def arg_text(update: Update) -> str:
    """Everything after the command word, with line breaks kept (context.args loses them)."""
    message = update.effective_message
    text = (message.text or message.caption or "") if message else ""
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 and parts[0].startswith("/") else ""
