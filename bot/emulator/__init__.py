"""A local Telegram Bot API emulator for end-to-end tests of the bot (see BotApiEmulator)."""

from .emulator import BotApiEmulator
from .errors import ApiError
from .faults import FAULT_KINDS, Fault

__all__ = ["FAULT_KINDS", "ApiError", "BotApiEmulator", "Fault"]
