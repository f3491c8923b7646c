"""Handler unit tests: the real services on a temporary SQLite file, the real PTB Application
(built, never started: no network), a recording outbox instead of Telegram."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from telegram import CallbackQuery, Chat, Message, Update, User

from bot.people import Person, Role
from bot.services import build_services
from handlers import outbox
from handlers.app import build_application
from handlers.context import KefuContext
from tests.unit.handlers.fake_outbox import RecordingOutbox

ADMIN = 1000  # KEFU_ADMIN_IDS in the shared settings fixture
_update_ids = itertools.count(1)


@pytest.fixture
async def svc(settings, clock, db):
    return await build_services(settings.model_copy(update={"telegram_bot_token": "1:test"}), clock, db)


@pytest.fixture
def app(svc):
    return build_application(svc.settings, clock=svc.clock, services=svc)


@pytest.fixture
def sent():
    """Everything handlers send in the test goes to this recording outbox."""
    fake = RecordingOutbox()
    with outbox.replaced_by(fake):
        yield fake


@pytest.fixture
async def team(svc):
    """An admin and the staff of both shifts, registered through the people service."""
    admin = await svc.people.bootstrap_admin(ADMIN, "boss", "老板")
    people = {"admin": admin}
    for name, tg_id, role, shift in [("day_agent", 2001, Role.AGENT, "day"), ("night_agent", 2003, Role.AGENT, "night"),
                                     ("supervisor", 2002, Role.SUPERVISOR, "day")]:
        invite = await svc.people.create_invite(admin, role)
        person = await svc.people.redeem(tg_id, None, name, invite.code)
        people[name] = await svc.people.set_shift(admin, person, shift)
    return people


def context_for(app, person: Person) -> KefuContext:
    """The context the guard would hand on: the sender's record checked."""
    context = KefuContext(app, chat_id=person.tg_id, user_id=person.tg_id)
    context.person = person
    return context


def _user(person: Person) -> User:
    return User(person.tg_id, person.full_name, is_bot=False)


def text_update(person: Person, text: str) -> Update:
    chat = Chat(person.tg_id, "private")
    message = Message(next(_update_ids), datetime.now(UTC), chat, from_user=_user(person), text=text)
    return Update(next(_update_ids), message=message)


def press(person: Person, data: str, *, chat_id: int | None = None, message_id: int = 77) -> Update:
    """`person` presses a button with `data` on message `message_id` of a chat (their private one)."""
    chat = Chat(chat_id or person.tg_id, "private" if chat_id is None else "supergroup")
    message = Message(message_id, datetime.now(UTC), chat, text="…")
    query = CallbackQuery(str(next(_update_ids)), _user(person), "instance", message=message, data=data)
    return Update(next(_update_ids), callback_query=query)
