"""Shared fixtures: a fresh database, a fake clock, settings pointed at a temp folder."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.db import Database
from bot.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    """A Shanghai wall-clock time, e.g. local('2026-11-23 10:00')."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(local("2026-11-23 10:00"))  # a Monday, day shift


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    for name in ("TELEGRAM_BOT_TOKEN", "KEFU_ADMIN_IDS", "KEFU_TEAM_CHAT_ID", "KEFU_SHIFTS", "KEFU_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return Settings(kefu_db_path=tmp_path / "kefu.db", kefu_admin_ids=(1000,))


@pytest.fixture
async def db(tmp_path):
    database = await Database.open(tmp_path / "kefu.db")
    yield database
    await database.close()


@pytest.fixture
async def kefu(tmp_path, clock, monkeypatch):
    """The bot running end to end against the emulator (see tests/harness.py)."""
    from tests.harness import start_kefu, stop_kefu

    monkeypatch.chdir(tmp_path)
    running = await start_kefu(tmp_path, clock)
    yield running
    await stop_kefu(running)
