"""Reminder scan speed on 1,000,000 orders of which 10,000 are due; `kefu reminders due --json` as a process.

    .venv/bin/python benchmarks/reminders_scan.py [--db PATH] [--rebuild] [--rounds 5]

Builds (once, then reuses; --rebuild after a schema change) a database with 1,000,000 orders:
10,000 due (4,000 unpaid past 12 h, 3,000 paid and unshipped past 36 h, 3,000 past 48 h) and
990,000 that are not (unpaid or unshipped for less than the threshold, presale, refunding, and
most of all shipped, completed and closed orders over half a year). The scan is the bot's own
`ReminderEngine.scan()` on aiosqlite with the default settings; no ANALYZE is run, as the bot
never runs it.

Prints, per round: the first scan (records the 10,000 reminders), a steady-state scan (the tick
every minute: nothing new), a scan after an import shipped 1,000 of those orders (auto-resolve),
the first scan after a restart (re-checks all open reminders), and reading the pending reminders
for delivery; then the EXPLAIN QUERY PLAN of every statement a tick relies on; then the wall time
of the whole `kefu reminders due --json` process. Goals: a scan <= 100 ms, the process <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import FakeClock
from bot.db import Database
from bot.reminders import ReminderEngine
from bot.reminders.store import (
    ESCALATIONS_SQL,
    PENDING_SQL,
    REOPEN_SQL,
    RESOLVE_ALL_SQL,
    RESOLVE_SQL,
    SUPERSEDE_SQL,
    WAKE_SQL,
    record_due_sql,
)
from bot.reminders.rules import RuleBook, due_queries
from bot.settings import Settings

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TOTAL = 1_000_000
HOUR = 3600


def order_rows(now: int, seed: int = 5):
    """(status, created_at, paid_at, shipped_at, refunding, presale) for every order, shuffled."""
    rng = random.Random(seed)
    rows = []

    def add(n, status, created_h, paid_h=None, shipped_h=None, refunding=0, presale=0):
        for _ in range(n):
            c = now - int(rng.uniform(*created_h) * HOUR)
            p = None if paid_h is None else now - int(rng.uniform(*paid_h) * HOUR)
            s = None if shipped_h is None else now - int(rng.uniform(*shipped_h) * HOUR)
            rows.append((status, c, p, s, refunding, presale))

    add(4_000, "unpaid", (12.01, 72))  # due: 催付
    add(3_000, "paid_unshipped", (36.5, 48), (36.01, 47.99))  # due: warning
    add(2_000, "paid_unshipped", (49, 120), (48.01, 119))  # due: breach
    add(1_000, "partially_shipped", (49, 120), (48.01, 119))  # due: breach
    add(15_000, "unpaid", (0, 11.99))
    add(30_000, "paid_unshipped", (0.1, 36), (0, 35.99))
    add(2_000, "paid_unshipped", (60, 90), (59, 89), presale=1)
    add(1_000, "paid_unshipped", (60, 90), (59, 89), refunding=1)
    rest = TOTAL - len(rows)
    add(rest // 2, "completed", (240, 4380), (239, 4379), (200, 4300))
    add(rest // 4, "shipped", (50, 240), (49, 239), (10, 48))
    add(rest - rest // 2 - rest // 4, "closed", (12, 4380))
    rng.shuffle(rows)
    return rows


def build(path: Path) -> None:
    started = time.perf_counter()
    if path.exists():
        path.unlink()

    async def migrate():
        db = await Database.open(path)
        await db.close()

    asyncio.run(migrate())
    now = int(NOW.timestamp())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    shops = ["旗舰店", "专卖店", "抖店一号", "拼多多店", "京东自营"]
    platforms = ["taobao", "taobao", "douyin", "pinduoduo", "jd"]
    with conn:
        conn.executemany(
            "INSERT INTO orders (platform, order_no, shop, status, status_raw, refunding, presale, created_at, paid_at,"
            " shipped_at, amount_cents, buyer, item_title, tracking_no, carrier, source, first_seen_at, updated_at)"
            " VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, 'buyer', '商品', '', '', 'bench', ?, ?)",
            (
                (platforms[i % 5], f"{3900000000000000000 + i}", shops[i % 5], status, refunding, presale,
                 created, paid, shipped, 1000 + (i % 50000), now, now)
                for i, (status, created, paid, shipped, refunding, presale) in enumerate(order_rows(now))
            ),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built {path} with {TOTAL:,} orders in {time.perf_counter() - started:.1f} s")


def plan(conn: sqlite3.Connection, sql: str, params: tuple) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def print_plans(path: Path, settings: Settings) -> None:
    conn = sqlite3.connect(path)
    book = RuleBook.from_settings(settings)
    ts = int(NOW.timestamp())
    statements = [(f"record due {q.stage.rule}/{q.stage.stage}", *record_due_sql(q, ts)) for q in due_queries(book, NOW)]
    statements += [
        ("auto-resolve (orders changed since the last scan)", RESOLVE_SQL, (ts,)),
        ("reopen (refund ended)", REOPEN_SQL, ()),
        ("auto-resolve, all open (first scan after a start)", RESOLVE_ALL_SQL, (ts,)),
        ("supersede warnings (breaches recorded by this scan)", SUPERSEDE_SQL, (ts,)),
        ("wake snoozed", WAKE_SQL, (ts,)),
        ("pending for delivery", PENDING_SQL, ()),
        ("due escalations", ESCALATIONS_SQL, (ts, ts)),
    ]
    print("\nEXPLAIN QUERY PLAN (the statements a scan and a tick rely on):")
    for title, sql, params in statements:
        print(f"  {title}:")
        for line in plan(conn, sql, params):
            print(f"    {line}")
    conn.close()


async def time_scans(path: Path, settings: Settings, rounds: int) -> dict[str, list[float]]:
    """Per round, on the bot's own code path (aiosqlite, one transaction per scan):
    first scan (records the 10,000), steady scan (the tick every minute: nothing new), a scan after
    an import shipped 1,000 of them (auto-resolve), a first scan after a restart (re-checks every
    open reminder), and reading the pending ones for delivery."""
    db = await Database.open(path)
    names = ("first scan", "steady scan", "after import", "after restart", "read pending")
    timings: dict[str, list[float]] = {name: [] for name in names}
    created = resolved = 0

    async def timed(name, coroutine):
        started = time.perf_counter()
        result = await coroutine
        timings[name].append(time.perf_counter() - started)
        return result

    try:
        for _ in range(rounds):
            async with db.transaction() as conn:
                await conn.execute("DELETE FROM reminders")
                await conn.execute("DELETE FROM reminder_events")
                await conn.execute("DELETE FROM reminder_order_changes")
            engine = ReminderEngine.from_settings(db, FakeClock(NOW), settings)
            created = (await timed("first scan", engine.scan(NOW))).created
            assert (await timed("steady scan", engine.scan(NOW))).created == 0
            shipped = [row[0] for row in await db.fetchall(
                "SELECT order_id FROM reminders WHERE rule = 'unshipped' ORDER BY order_id LIMIT 1000")]
            marks = ", ".join("?" * len(shipped))
            await db.execute(f"UPDATE orders SET status = 'shipped' WHERE id IN ({marks})", shipped)
            resolved = len((await timed("after import", engine.scan(NOW))).resolved)
            restarted = ReminderEngine.from_settings(db, FakeClock(NOW), settings)
            await timed("after restart", restarted.scan(NOW))
            pending = await timed("read pending", engine.pending())
            assert len(pending) == created - resolved
            await db.execute(f"UPDATE orders SET status = 'paid_unshipped' WHERE id IN ({marks})", shipped)
    finally:
        await db.close()
    print(f"\nscan: {created:,} reminders due among {TOTAL:,} orders; {resolved:,} resolved after the import"
          f" ({rounds} rounds)")
    return timings


def time_cli(path: Path, rounds: int) -> list[float]:
    kefu = ROOT / ".venv" / "bin" / "kefu"
    command = [str(kefu)] if kefu.exists() else [sys.executable, "-m", "bot"]
    command += ["reminders", "due", "--json", "--at", NOW.isoformat()]
    env = {**os.environ, "KEFU_DB_PATH": str(path)}
    times, lines = [], 0
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env=env, cwd=path.parent, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode())
        lines = done.stdout.count(b"\n")
    print(f"\n`{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}`: {lines:,} lines")
    return times


def summary(name: str, values: list[float], goal: float | None) -> None:
    ms = [v * 1000 for v in values]
    line = f"  {name:<14} median {statistics.median(ms):8.1f} ms   min {min(ms):8.1f}   max {max(ms):8.1f}"
    if goal is None:
        line += "   (no goal: once per batch, before the sends that take far longer)"
    else:
        verdict = "OK" if max(ms) <= goal * 1000 else ("OK (median)" if statistics.median(ms) <= goal * 1000 else "OVER GOAL")
        line += f"   (goal <= {goal * 1000:.0f} ms: {verdict})"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/kefu-bench/reminders_1m.db"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not args.db.exists():
        build(args.db)
    settings = Settings(_env_file=None, kefu_db_path=args.db)
    timings = asyncio.run(time_scans(args.db, settings, args.rounds))
    for name in ("first scan", "steady scan", "after import", "after restart"):
        summary(name, timings[name], 0.100)
    summary("read pending", timings["read pending"], None)
    print_plans(args.db, settings)
    summary("whole process", time_cli(args.db, args.rounds), 2.0)


if __name__ == "__main__":
    main()
