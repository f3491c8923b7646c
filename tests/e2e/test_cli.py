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


def _run_env(emu, tmp_path, token=None):
    return {**BASE_ENV, "TELEGRAM_BOT_TOKEN": token or emu.token, "TELEGRAM_BASE_URL": emu.base_url,
            "TELEGRAM_BASE_FILE_URL": emu.base_file_url, "KEFU_DB_PATH": str(tmp_path / "kefu.db")}


async def _kefu_run(env, cwd, timeout=60):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    return process.returncode, out.decode(), err.decode()


def _failure_lines(stderr):
    """The lines that are not log records (log records start with a date)."""
    return [line for line in stderr.splitlines() if line.strip() and not line[:4].isdigit()]


def test_kefu_run_with_telegram_unreachable_says_so_in_one_line(tmp_path):
    env = {"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
           "KEFU_DB_PATH": str(tmp_path / "kefu.db")}
    result = kefu("run", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = _failure_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "连不上 Telegram" in lines[0] and "proxy" in lines[0]
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr


async def test_kefu_run_with_a_rejected_token_says_so_in_one_line(tmp_path):
    emu = BotApiEmulator(token="777000:RIGHT")
    await emu.start()
    try:
        code, _, err = await _kefu_run(_run_env(emu, tmp_path, token="777000:WRONG-token"), tmp_path)
    finally:
        await emu.stop()
    assert code == 2, err
    lines = _failure_lines(err)
    assert len(lines) == 1 and "拒绝了这个 token" in lines[0] and "BotFather" in lines[0], err
    assert "Traceback" not in err and "WRONG-token" not in err


async def test_kefu_run_with_a_failing_bot_api_server_says_so_in_one_line(tmp_path):
    emu = BotApiEmulator(token="777000:RIGHT")
    await emu.start()
    try:
        emu.inject_fault("getMe", "500", count=None)
        code, _, err = await _kefu_run(_run_env(emu, tmp_path), tmp_path)
    finally:
        await emu.stop()
    assert code == 2, err
    lines = _failure_lines(err)
    assert len(lines) == 1 and "服务器返回错误" in lines[0] and "Internal Server Error" in lines[0], err
    assert "Traceback" not in err


async def test_polling_failures_after_start_are_retried_with_one_log_line_each(tmp_path):
    emu = BotApiEmulator(token="777000:RIGHT")
    await emu.start()
    try:
        emu.add_user(42, "老板")
        env = {**_run_env(emu, tmp_path), "KEFU_ADMIN_IDS": "42"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        await emu.wait_for_request("setMyCommands", timeout=30)
        emu.inject_fault("getUpdates", "502", count=3)
        # the long poll already in flight (polling starts before the menu) ends at its timeout;
        # then the three 502s meet the next polls: send /start only once they have
        await emu.wait_for_request(
            "getUpdates", lambda e: len([r for r in emu.requests("getUpdates") if r["status"] == 502]) >= 3,
            timeout=60,
        )
        emu.send_text(42, "/start")  # answered once polling is back
        # the welcome (not the admins' start notice, which also names 管理员 and may come later)
        await emu.wait_for_message(42, lambda m: "您的角色：管理员" in m["plain"], timeout=30)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        await emu.stop()
    log = output.decode()
    assert process.returncode == 0, log
    retries = [line for line in log.splitlines() if "retrying with backoff" in line]
    assert [f"attempt {n}," in line for n, line in enumerate(retries, 1)] == [True] * 3, log
    assert "Traceback" not in log
