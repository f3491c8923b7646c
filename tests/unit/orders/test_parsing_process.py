"""Imports are parsed in a separate process (issue 12): a child that crashes, runs out of memory
or of time is a Chinese refusal with nothing written, never a hang; no child or temp file stays
behind. Real child processes, real files."""

from __future__ import annotations

import logging
import os
import re
import signal
import tempfile

import pytest

from bot.orders import NotAnExport, import_file
from bot.orders.parsing import parse_file, sweep_leftovers
from tests.conftest import SHANGHAI

HEADER = "platform,order_no,shop,status,created_at,amount"


def generic(rows: int) -> bytes:
    lines = [HEADER] + [f"taobao,T-{n},小店,paid_unshipped,2026-11-22 09:00,59.00" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def stored(db) -> tuple[int, int]:
    orders = (await db.fetchone("SELECT count(*) AS n FROM orders"))["n"]
    batches = (await db.fetchone("SELECT count(*) AS n FROM import_batches"))["n"]
    return orders, batches


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


def leftovers(folder) -> list[str]:
    """Our temp files (multiprocessing keeps its own pymp-* folder for the forkserver socket)."""
    return [p.name for p in folder.iterdir() if p.name.startswith("kefu-")]


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """Where the upload copy and the spool go (tempfile's own setting), to check they are removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


async def test_an_import_is_parsed_in_another_process_and_leaves_no_temp_file(db, clock, temp_dir, caplog):
    caplog.set_level(logging.INFO, logger="bot.orders.parsing")
    summary = await import_file(db, generic(2500), filename="a.csv", clock=clock, tz=SHANGHAI, batch_size=1000)
    assert summary.inserted == 2500 and await stored(db) == (2500, 1)
    assert any("separate process" in r.getMessage() for r in caplog.records)
    assert leftovers(temp_dir) == []


async def test_progress_arrives_while_the_child_parses(db, clock):
    seen: list[int] = []

    async def progress(rows: int) -> None:
        seen.append(rows)

    await import_file(db, generic(5000), filename="a.csv", clock=clock, tz=SHANGHAI, batch_size=1000,
                      progress=progress, progress_every=2000)
    assert seen == [2000, 4000]


async def test_out_of_memory_in_the_child_is_a_chinese_refusal_with_nothing_written(db, clock, temp_dir):
    with pytest.raises(NotAnExport) as refused:
        await import_file(db, generic(100), filename="big.csv", clock=clock, tz=SHANGHAI, parse_memory_max=1)
    assert refused.value.reason == "parse_memory"
    assert "内存" in refused.value.message_zh and "未写入任何订单" in refused.value.message_zh
    assert await stored(db) == (0, 0)
    assert leftovers(temp_dir) == []


async def test_a_child_over_its_time_is_killed_and_refused(db, clock, temp_dir, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.orders.parsing")
    with pytest.raises(NotAnExport) as refused:
        await import_file(db, generic(200_000), filename="slow.csv", clock=clock, tz=SHANGHAI, parse_timeout=0.3)
    assert refused.value.reason == "parse_timeout"
    assert "分钟" in refused.value.message_zh and "未写入任何订单" in refused.value.message_zh
    assert await stored(db) == (0, 0)
    pid = int(next(re.search(r"process (\d+)", r.getMessage()).group(1) for r in caplog.records
                   if "in process" in r.getMessage()))
    assert not running(pid)
    assert leftovers(temp_dir) == []


async def test_a_child_that_dies_is_a_refusal_not_a_hang(db, clock, temp_dir, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.orders.parsing")

    def child_pid() -> int:
        return int(next(re.search(r"process (\d+)", r.getMessage()).group(1) for r in caplog.records
                        if "in process" in r.getMessage()))

    killed: list[int] = []

    async def progress(rows: int) -> None:
        if not killed:  # the parser is mid-file: kill it as the kernel's OOM killer would
            killed.append(child_pid())
            os.kill(killed[0], signal.SIGKILL)

    with pytest.raises(NotAnExport) as refused:
        await import_file(db, generic(300_000), filename="die.csv", clock=clock, tz=SHANGHAI, batch_size=500,
                          progress=progress, progress_every=500)
    assert killed and refused.value.reason == "parse_crashed"
    assert "未写入任何订单" in refused.value.message_zh
    assert await stored(db) == (0, 0)
    assert leftovers(temp_dir) == []


async def test_a_refusal_from_the_child_keeps_its_chinese_reason(clock):
    with pytest.raises(NotAnExport) as refused:
        await parse_file(b"\x89PNG\r\n\x1a\n" + bytes(100), filename="pic.csv", tz=SHANGHAI, now=0)
    assert refused.value.reason == "binary" and "「pic.csv」" in refused.value.message_zh


async def test_a_missing_file_is_an_os_error_as_before(tmp_path):
    with pytest.raises(FileNotFoundError):
        await parse_file(tmp_path / "nope.csv", filename="nope.csv", tz=SHANGHAI, now=0)


def test_a_long_tmpdir_still_lets_the_parsing_process_start(tmp_path):
    """The forkserver's Unix socket cannot live under a TMPDIR longer than ~75 bytes; a fresh
    interpreter (the forkserver is per process) with such a TMPDIR still parses a file, and the
    upload copy and spool still go to TMPDIR."""
    import subprocess
    import sys
    from pathlib import Path

    deep = tmp_path / ("a-long-temporary-folder-name-" * 3) / "tmp"
    deep.mkdir(parents=True)
    assert len(str(deep)) > 80
    program = (
        "import asyncio, tempfile\n"
        "from zoneinfo import ZoneInfo\n"
        "from bot.orders.parsing import parse_file\n"
        "data = b'platform,order_no,shop,status,created_at,amount\\ntaobao,T-1,shop,paid_unshipped,2026-11-22 09:00,1.00\\n'\n"
        "parsed = asyncio.run(parse_file(data, filename='a.csv', tz=ZoneInfo('Asia/Shanghai'), now=0))\n"
        "parsed.close()\n"
        "print(tempfile.gettempdir())\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(deep)}, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(deep)  # the process's own temp files stay where TMPDIR says


def test_temp_files_of_a_bot_that_no_longer_runs_are_swept_and_a_running_ones_kept(temp_dir):
    """A bot killed between making its spool and starting the parsing process leaves the file;
    the next start removes it (files carry their bot's pid), never a running bot's."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    for name in (f"kefu-import-{dead_pid}-abc", f"kefu-upload-{dead_pid}-def", f"kefu-import-{os.getpid()}-ghi",
                 "kefu-import-notapid", "other-file"):
        (temp_dir / name).write_bytes(b"x")
    assert sorted(sweep_leftovers()) == [f"kefu-import-{dead_pid}-abc", f"kefu-upload-{dead_pid}-def"]
    assert sorted(p.name for p in temp_dir.iterdir()) == sorted(
        [f"kefu-import-{os.getpid()}-ghi", "kefu-import-notapid", "other-file"])
