"""What the bot says to registered users when nothing else took their message."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

from handlers import routing
from handlers.common import label
from handlers.context import KefuContext
from handlers.outbox import answer_callback, reply

GROUP = routing.FALLBACK


def _skip(context: KefuContext) -> bool:
    return routing.was_handled(context)


async def unhandled_text(update: Update, context: KefuContext) -> None:
    if _skip(context):
        return
    await reply(update, context, label(context, "errors.unhandled_text"))


async def unhandled_file(update: Update, context: KefuContext) -> None:
    if _skip(context):
        return
    await reply(update, context, label(context, "errors.unhandled_file"))


async def stale_button(update: Update, context: KefuContext) -> None:
    """A button no handler knows any more (an old message after an upgrade): say so, stop the spinner."""
    if _skip(context):
        return
    await answer_callback(update, label(context, "errors.stale_button"), alert=True)


def register(app: Application) -> None:
    app.add_handler(CallbackQueryHandler(stale_button), group=GROUP)
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, unhandled_text), group=GROUP)
    app.add_handler(MessageHandler(private & (filters.Document.ALL | filters.PHOTO), unhandled_file), group=GROUP)
