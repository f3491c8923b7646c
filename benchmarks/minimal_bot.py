"""The reference for benchmarks/load.py: the smallest python-telegram-bot 22 bot that answers the
same load. One MessageHandler (every message: an HTML reply of about the size of a script answer,
with four callback buttons) and one CallbackQueryHandler (answers the press). No database, no
templates: what PTB itself costs per update.

    TELEGRAM_BOT_TOKEN=… TELEGRAM_BASE_URL=http://127.0.0.1:PORT/bot [MINIMAL_RATE_LIMITER=1] \
        python benchmarks/minimal_bot.py

MINIMAL_RATE_LIMITER=1 adds AIORateLimiter, as kefu's Application has. Not a product: these
words are benchmark filler, never shown to a user.
"""

from __future__ import annotations

import html
import logging
import os

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import AIORateLimiter, ApplicationBuilder, CallbackQueryHandler, Defaults, MessageHandler, filters

BODY = "亲，您好！" + "这是基准测试的固定回复。" * 12  # about the length of a script answer
KEYBOARD = InlineKeyboardMarkup([
    [InlineKeyboardButton(f"选项 {i}", callback_data=f"min:{i}") for i in (1, 2)],
    [InlineKeyboardButton(f"选项 {i}", callback_data=f"min:{i}") for i in (3, 4)],
])


async def on_message(update: Update, context) -> None:
    echoed = html.escape((update.effective_message.text or update.effective_message.caption or "")[:100])
    await update.effective_message.reply_text(f"<b>{echoed}</b>\n<code>{BODY}</code>", reply_markup=KEYBOARD)


async def on_press(update: Update, context) -> None:
    await update.callback_query.answer("好的")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    builder = (
        ApplicationBuilder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(os.environ.get("TELEGRAM_BASE_URL", "https://api.telegram.org/bot"))
        .base_file_url(os.environ.get("TELEGRAM_BASE_FILE_URL", "https://api.telegram.org/file/bot"))
        .defaults(Defaults(parse_mode=ParseMode.HTML))
    )
    if os.environ.get("MINIMAL_RATE_LIMITER") == "1":
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    app = builder.build()
    app.add_handler(MessageHandler(filters.ALL, on_message))
    app.add_handler(CallbackQueryHandler(on_press))
    app.run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
