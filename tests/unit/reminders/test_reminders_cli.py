"""`kefu reminders due [--at ISO] [--json]`: a stable interface, read-only."""

import asyncio
import json
import subprocess
import sys
from datetime import timedelta

import pytest

from bot.cli import main
from bot.clock import FakeClock
from bot.db import Database
from bot.reminders import ReminderEngine
from bot.settings import Settings
from tests.conftest import local
from tests.reminder_orders import paid, save, unpaid

H = timedelta(hours=1)
AT = local("2026-11-23 10:00")


@pytest.fixture
def orders_db(tmp_path, monkeypatch):
    """A database with one order due for each stage, one not yet due and one presale; env points at it."""
    path = tmp_path / "kefu.db"
    for name in ("KEFU_SHOP_OVERRIDES", "KEFU_TIMEZONE", "KEFU_SHIFTS", "KEFU_UNPAID_REMIND_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEFU_DB_PATH", str(path))
    monkeypatch.chdir(tmp_path)

    async def build():
        db = await Database.open(path)
        clock = FakeClock(AT)
        await save(db, clock, unpaid(AT - 13 * H, order_no="500001"), unpaid(AT - 2 * H, order_no="500002"),
                   paid(AT - 40 * H, order_no="500003", platform="douyin", shop="抖店"),
                   paid(AT - 50 * H, order_no="500004"), paid(AT - 50 * H, order_no="500005", presale=True))
        engine = ReminderEngine.from_settings(db, clock, Settings(kefu_db_path=path))
        await engine.scan()  # 500003's warning and 500001's 催付 are recorded; the listing shows their state
        [r] = [r for r in await engine.pending() if r.order_no == "500004"]
        assert (await engine.done(r.id, 1, "urged_warehouse")).ok  # a breach: 已催仓库, watched
        await db.close()

    asyncio.run(build())
    return path


def test_due_json_is_one_object_per_line_oldest_first(orders_db, capsys):
    assert main(["reminders", "due", "--at", "2026-11-23T10:00:00+08:00", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["order_no"], o["platform"], o["rule"], o["stage"]) for o in lines] == [
        ("500003", "douyin", "unshipped", "warn"),
        ("500001", "taobao", "unpaid", "remind"),
    ]  # 500004 is done, 500002 not due yet, 500005 presale
    assert lines[0]["due_at"] == "2026-11-23T06:00:00+08:00" and lines[0]["deadline_at"] == "2026-11-23T18:00:00+08:00"
    assert lines[1]["reminder_state"] == "pending" and lines[1]["amount"] == "128.00" and lines[1]["shop"] == "旗舰店"


def test_due_at_a_later_moment_without_an_offset_uses_the_shop_zone(orders_db, capsys):
    assert main(["reminders", "due", "--at", "2026-11-23 20:00", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["order_no"], o["stage"], o["reminder_state"]) for o in lines] == [
        ("500001", "remind", "pending"),
        ("500003", "breach", None),  # deadline 18:00; not recorded by any scan yet
        ("500002", "remind", None),  # due at 20:00
    ]


def test_due_without_json_prints_a_chinese_table(orders_db, capsys):
    assert main(["reminders", "due", "--at", "2026-11-23T10:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "到期的提醒：2 条" in out and "发货预警" in out and "抖音" in out and "待推送" in out


def test_due_sends_and_records_nothing(orders_db, capsys):
    async def counts():
        db = await Database.open(orders_db)
        try:
            return [tuple(await db.fetchone(f"SELECT count(*) FROM {t}")) for t in ("reminders", "reminder_events", "reminder_messages")]
        finally:
            await db.close()

    before = asyncio.run(counts())
    main(["reminders", "due", "--at", "2026-11-25 10:00", "--json"])
    assert asyncio.run(counts()) == before


def test_bad_time_and_missing_database_are_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEFU_DB_PATH", str(tmp_path / "missing.db"))
    assert main(["reminders", "due", "--at", "明天早上"]) == 2
    assert "无法识别" in capsys.readouterr().err
    assert main(["reminders", "due"]) == 1
    assert not (tmp_path / "missing.db").exists()


def test_due_json_as_a_whole_process(orders_db):
    done = subprocess.run(
        [sys.executable, "-m", "bot", "reminders", "due", "--json", "--at", "2026-11-23T10:00:00+08:00"],
        capture_output=True, text=True, encoding="utf-8", timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["order_no"] for line in done.stdout.splitlines()] == ["500003", "500001"]
