"""客服助手 (kefu-bot): a Telegram bot for Chinese e-commerce customer-service teams."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository root: templates/ and scripts_kb/ live beside the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# python-telegram-bot: read RetryAfter.retry_after as a timedelta (the future default).
import os as _os

_os.environ.setdefault("PTB_TIMEDELTA", "1")
