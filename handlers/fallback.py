"""What the bot says to registered users when nothing else took their message."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot.app import KefuContext
from handlers.common import label, reply

GROUP = 50


async def unhandled_text(update: Update, context: KefuContext) -> None:
    await reply(update, context, label(context, "errors.unhandled_text"))


async def unhandled_file(update: Update, context: KefuContext) -> None:
    await reply(update, context, label(context, "errors.unhandled_file"))


def register(app: Application) -> None:
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    app.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, unhandled_text), group=GROUP)
    app.add_handler(MessageHandler(private & (filters.Document.ALL | filters.PHOTO), unhandled_file), group=GROUP)
