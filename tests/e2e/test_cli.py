"""The `kefu` command as a newcomer runs it: settings errors, db commands, and `kefu run`
as a real process against the emulator, stopped with SIGTERM."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys

from bot.emulator import BotApiEmulator

BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))}


def kefu(*args, env=None, cwd=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=timeout,
        env={**BASE_ENV, **(env or {})}, cwd=cwd,
    )


def test_run_without_token_explains_how_to_get_one(tmp_path):
    result = kefu("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "BotFather" in result.stderr and "kefu sandbox" in result.stderr


def test_a_bad_setting_stops_with_one_line_naming_it(tmp_path):
    for name, value in (("KEFU_SHIFTS", "day=8-17"), ("KEFU_TIMEZONE", "Mars/Base"), ("KEFU_ADMIN_IDS", "boss"),
                        ("KEFU_SCAN_INTERVAL_SECONDS", "0")):
        result = kefu("run", env={"TELEGRAM_BOT_TOKEN": "1:x", name: value}, cwd=tmp_path)
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], result.stderr


def test_settings_are_read_from_dot_env(tmp_path):
    (tmp_path / ".env").write_text("KEFU_SHIFTS=oops\n", encoding="utf-8")
    result = kefu("db", "migrate", cwd=tmp_path)
    assert result.returncode == 2 and "KEFU_SHIFTS" in result.stderr


def test_db_migrate_and_backup(tmp_path):
    env = {"KEFU_DB_PATH": str(tmp_path / "data" / "kefu.db")}
    first = kefu("db", "migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0 and "1" in first.stdout
    again = kefu("db", "migrate", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "最新" in again.stdout
    backup = kefu("db", "backup", str(tmp_path / "copy.db"), env=env, cwd=tmp_path)
    assert backup.returncode == 0
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("PRAGMA user_version").fetchone()[0] >= 1
    copy.close()
    missing = kefu("db", "backup", str(tmp_path / "x.db"), env={"KEFU_DB_PATH": str(tmp_path / "none.db")}, cwd=tmp_path)
    assert missing.returncode == 1


async def test_kefu_run_serves_the_emulator_and_stops_cleanly_on_sigterm(tmp_path):
    emu = BotApiEmulator(token="777000:SECRET-run-token")
    await emu.start()
    try:
        emu.add_user(42, "老板")
        env = {**BASE_ENV, "TELEGRAM_BOT_TOKEN": emu.token, "TELEGRAM_BASE_URL": emu.base_url,
               "TELEGRAM_BASE_FILE_URL": emu.base_file_url, "KEFU_DB_PATH": str(tmp_path / "kefu.db"),
               "KEFU_ADMIN_IDS": "42", "KEFU_LOG_LEVEL": "DEBUG"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        await emu.wait_for_request("setMyCommands", timeout=30)
        emu.send_text(42, "/start")
        reply = await emu.wait_for_message(42, lambda m: "管理员" in m["plain"], timeout=15)
        assert "老板" in reply["plain"]
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, output.decode()
        log = output.decode()
        assert "getUpdates" in log or "Application" in log  # DEBUG logging was on
        assert "SECRET-run-token" not in log
    finally:
        await emu.stop()
