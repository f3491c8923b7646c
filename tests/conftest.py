"""Shared fixtures: a fresh database, a fake clock, settings pointed at a temp folder."""

from __future__ import annotations

import os
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


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: two workers per core, between 2 and 6 (an end-to-end test mostly waits for the
    bot and the emulator, so the cores stay busy with twice as many workers)."""
    return max(2, min(6, 2 * (os.cpu_count() or 1)))


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "real_pacing: the e2e bot keeps Telegram's real bulk pacing (tests of the limits themselves)"
    )


def pytest_collection_modifyitems(items) -> None:
    """Everything under tests/e2e/ carries the `e2e` marker (registered in pyproject.toml)."""
    for item in items:
        if "e2e" in item.path.parent.parts:
            item.add_marker(pytest.mark.e2e)


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
def staff() -> list[tuple]:
    """Who `start` registers, as (tg_id, role, shift, name): none unless a test module overrides it."""
    return []


@pytest.fixture
async def start(request, tmp_path, clock, monkeypatch, staff):
    """`await start(**overrides)`: the bot running end to end against the emulator (see
    tests/harness.py) with extra settings and `staff` registered; with kefu_team_chat_id the team
    chat is a group of the day shift. Every bot started is stopped at the end. Bulk pacing is
    short unless the test is marked `real_pacing`."""
    from tests.harness import start_kefu, stop_kefu

    monkeypatch.chdir(tmp_path)
    running = []
    real_pacing = request.node.get_closest_marker("real_pacing") is not None

    async def starter(**overrides):
        overrides.setdefault("real_pacing", real_pacing)
        kefu = await start_kefu(tmp_path, clock, **overrides)
        running.append(kefu)
        if team_chat := overrides.get("kefu_team_chat_id"):
            day_shift = [tg_id for tg_id, _role, shift, _name in staff if shift == "day"]
            kefu.emu.add_group(team_chat, "客服群", member_ids=day_shift)
        for tg_id, role, shift, name in staff:
            await kefu.add_person(tg_id, role, shift=shift, name=name)
        return kefu

    yield starter
    for kefu in running:
        await stop_kefu(kefu)


@pytest.fixture
async def kefu(start):
    """The bot running end to end against the emulator, with the test module's `staff`."""
    return await start()
