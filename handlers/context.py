"""The PTB context class every handler receives (registered through `ContextTypes` in
handlers/app.py): the shared services, typed, and the sender's record once the guard checked it."""

from __future__ import annotations

from telegram.ext import Application, CallbackContext, ExtBot

from bot.people import Person
from bot.services import Services


class KefuContext(CallbackContext[ExtBot, dict, dict, dict]):
    """The handler context, carrying the sender's record once the guard has checked it."""

    def __init__(self, application: Application, chat_id: int | None = None, user_id: int | None = None) -> None:
        super().__init__(application, chat_id, user_id)
        self.person: Person | None = None

    @property
    def svc(self) -> Services:
        return self.application.bot_data["services"]


#: What handler helpers accept: the handler context, or the Application (jobs, start-up hooks).
Target = Application | CallbackContext


def services_of(target: Target) -> Services:
    """The process's services, from a handler context or the Application."""
    return target.bot_data["services"]
