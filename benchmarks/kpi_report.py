"""`kefu report kpi` as a process over 1,000,000 orders and a year of events (goal: <= 2 s).

Builds (or reuses) a database under /tmp with the real schema: 1,000,000 orders over 365 days in 3
shops, ~10 % 催付 reminders (pushed, most claimed, some snoozed, paid or not), ~6 % 发货 warnings,
handover items with deliveries and broadcasts with acknowledgements; then times the CLI as a
process for a week, a month and the whole year, and prints the figures.

    .venv/bin/python benchmarks/kpi_report.py [--db /tmp/kpi_bench.db] [--rebuild] [--compare]

The report reads the KPI read model (migration 0012). A bot keeps it current as records change
(the dirty marks of its triggers are worked off by every report); on a database built or migrated
just now the first report fills it: that cold run is timed and printed apart ("cold fill"), then
the week / month / year figures are the best of 3 of the warm model, as the running bot sees it.
--compare also checks, for each period, that the JSON equals the in-memory reference computation
(the pre-read-model implementation, KpiService(read_model=False)) at the same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TZ = ZoneInfo("Asia/Shanghai")
ORDERS = 1_000_000
START = int(datetime(2025, 11, 24, tzinfo=TZ).timestamp())
DAYS = 365


async def migrate(path: Path) -> None:
    from bot.db import Database

    db = await Database.open(path)
    await db.close()


def build(path: Path) -> None:
    if path.exists():
        path.unlink()
    asyncio.run(migrate(path))
    rnd = random.Random(17)
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=OFF")
    shops = ("旗舰店", "专营店", "抖店")
    orders, reminders, events, messages, items = [], [], [], [], []
    rid = mid = 0
    span = DAYS * 86400
    for oid in range(1, ORDERS + 1):
        created = START + rnd.randrange(span)
        shop = shops[oid % 3]
        cents = rnd.randrange(990, 99900)
        x = rnd.random()
        if x < 0.10:  # unpaid for 12 h → 催付 pushed
            due = created + 12 * 3600
            push = due + rnd.randrange(0, 600)
            paid_at = push + rnd.randrange(600, 100 * 3600) if rnd.random() < 0.4 else None
            status = "completed" if paid_at else ("closed" if rnd.random() < 0.7 else "unpaid")
            shipped = paid_at + 20 * 3600 if paid_at else None
            rid += 1
            mid += 1
            claimed = push + rnd.randrange(30, 1800) if rnd.random() < 0.8 else None
            state = "resolved" if status != "unpaid" else ("claimed" if claimed else "sent")
            reminders.append((rid, oid, "unpaid", "remind", due, None, state, push, push, claimed and 501 + oid % 7,
                              claimed, None, None, None, paid_at and paid_at, "paid" if paid_at else None, 0, due, due))
            messages.append((mid, -100, mid, "card", push))
            items.append((mid, rid, -100, "notify", 1))
            if claimed:
                events.append((rid, claimed, 501 + oid % 7, "claim"))
            if rnd.random() < 0.1:
                events.append((rid, push + 900, 501 + oid % 7, "snooze"))
        else:
            paid_at = created + rnd.randrange(60, 3600)
            shipped = paid_at + rnd.randrange(3600, 52 * 3600)
            status = "completed"
            if rnd.random() < 0.06:  # warned at 36 h
                shipped = paid_at + rnd.randrange(36 * 3600, 60 * 3600)
                rid += 1
                mid += 1
                due = paid_at + 36 * 3600
                reminders.append((rid, oid, "unshipped", "warn", due, paid_at + 48 * 3600, "resolved", due, due,
                                  None, None, None, None, None, shipped, "shipped", 0, due, due))
                messages.append((mid, -100, mid, "card", due))
                items.append((mid, rid, -100, "notify", 1))
        orders.append((oid, "taobao", f"T{oid:012d}", shop, status, created, paid_at, shipped, cents, created, created))
        if len(orders) >= 100_000:
            flush(con, orders, reminders, events, messages, items)
    flush(con, orders, reminders, events, messages, items)
    # handover and broadcasts: a few per day
    for day in range(DAYS):
        base = START + day * 86400
        for k in range(6):
            iid = day * 6 + k + 1
            start = base + (8 * 3600 + 1800 if k % 2 else 17 * 3600 + 1800)
            con.execute("INSERT INTO handover_items (id, author_id, occurrence, occurrence_start, created_at, updated_at,"
                        " text, status) VALUES (?, 501, ?, ?, ?, ?, '交接', 'resolved')",
                        (iid, f"day:{day}", start - 3600, start - 3000, start - 3000))
            con.execute("INSERT INTO handover_deliveries (item_id, occurrence, occurrence_start, delivered_at, taken_by,"
                        " taken_at) VALUES (?, ?, ?, ?, 502, ?)", (iid, f"night:{day}:{k}", start, start,
                                                                  start + rnd.randrange(60, 3600)))
        con.execute("INSERT INTO broadcasts (id, author_id, status, kind, ack_required, urgent, created_at, sent_at)"
                    " VALUES (?, 900, 'done', 'text', 1, ?, ?, ?)", (day + 1, day % 5 == 0, base + 36000, base + 36000))
        for tg in range(501, 511):
            con.execute("INSERT INTO broadcast_recipients (broadcast_id, tg_id, status, sent_at, acked_at)"
                        " VALUES (?, ?, 'sent', ?, ?)", (day + 1, tg, base + 36000, base + 36000 + rnd.randrange(30, 1800)))
    for tg in range(501, 511):
        con.execute("INSERT INTO users (tg_id, full_name, role, shift, created_at, updated_at)"
                    " VALUES (?, ?, 'agent', ?, 0, 0)", (tg, f"客服{tg}", "day" if tg % 2 else "night"))
    con.commit()
    con.execute("ANALYZE")
    con.close()


def flush(con, orders, reminders, events, messages, items) -> None:
    con.executemany("INSERT INTO orders (id, platform, order_no, shop, status, created_at, paid_at, shipped_at,"
                    " amount_cents, first_seen_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", orders)
    con.executemany("INSERT INTO reminders (id, order_id, rule, stage, due_at, deadline_at, state, first_sent_at, sent_at,"
                    " claimed_by, claimed_at, snoozed_by, snoozed_until, done_at, resolved_at, resolved_reason,"
                    " escalations, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    reminders)
    con.executemany("INSERT INTO reminder_events (reminder_id, at, actor, action) VALUES (?, ?, ?, ?)", events)
    con.executemany("INSERT INTO reminder_messages (id, chat_id, message_id, kind, sent_at) VALUES (?, ?, ?, ?, ?)",
                    messages)
    con.executemany("INSERT INTO reminder_message_items (message_row, reminder_id, chat_id, purpose, round)"
                    " VALUES (?, ?, ?, ?, ?)", items)
    con.commit()
    for batch in (orders, reminders, events, messages, items):
        batch.clear()


def time_cli(path: Path, first: str, last: str, runs: int = 3) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run: user + system of the child process, the steadier
    figure when other jobs share the machine)."""
    env = dict(os.environ, KEFU_DB_PATH=str(path), KEFU_TIMEZONE="Asia/Shanghai")
    best = (float("inf"), 0.0)
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "bot", "report", "kpi", "--from", first, "--to", last, "--json"],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, (elapsed, cpu))
    return best


PERIODS = (("week", "2026-11-16", "2026-11-22"), ("month", "2026-10-24", "2026-11-22"),
           ("year", "2025-11-24", "2026-11-23"))


async def compare(path: Path) -> None:
    """Read model vs the in-memory reference, same database and clock: every figure equal."""
    from datetime import date

    from bot.clock import FakeClock
    from bot.db import Database
    from bot.kpi import KpiService, Period, load_standards
    from bot.reminders import RuleBook
    from bot.settings import Settings

    settings = Settings(kefu_db_path=path, kefu_timezone="Asia/Shanghai")
    db = await Database.open(path)
    try:
        clock = FakeClock(datetime.now(TZ))
        book = RuleBook.from_settings(settings)
        for label, first, last in PERIODS:
            period = Period(date.fromisoformat(first), date.fromisoformat(last))
            t0 = time.perf_counter()
            new = await KpiService(db, clock, book, load_standards(), read_model=True).report(period)
            t1 = time.perf_counter()
            old = await KpiService(db, clock, book, load_standards(), read_model=False).report(period)
            t2 = time.perf_counter()
            same = json.loads(json.dumps(new)) == json.loads(json.dumps(old))
            print(f"compare {label:5s}: read model {t1 - t0:.2f} s, reference {t2 - t1:.2f} s (in process):"
                  f" {'IDENTICAL' if same else 'DIFFERENT'}")
            if not same:
                for key in old:
                    if old[key] != new[key]:
                        print(f"  differs: {key}")
                raise SystemExit(1)
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, default=Path("/tmp/kpi_bench.db"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--compare", action="store_true", help="check read model == reference JSON first")
    args = parser.parse_args()
    if args.rebuild or not args.db.exists():
        t0 = time.perf_counter()
        build(args.db)
        print(f"built {args.db} ({ORDERS:,} orders, {DAYS} days) in {time.perf_counter() - t0:.1f} s")
    asyncio.run(migrate(args.db))  # an older database gets migration 0012 (every reminder marked dirty)
    con = sqlite3.connect(args.db)
    dirty = con.execute("SELECT count(*) FROM kpi_dirty_reminders").fetchone()[0]
    con.close()
    if dirty:
        seconds, _ = time_cli(args.db, PERIODS[2][1], PERIODS[2][2], runs=1)
        print(f"cold fill: first report of the year on a model with {dirty:,} dirty reminders: {seconds:.2f} s"
              " (once; the bot then keeps it current)")
    if args.compare:
        asyncio.run(compare(args.db))
    os.system("uptime")
    for label, first, last in PERIODS:
        seconds, cpu = time_cli(args.db, first, last)
        verdict = "OK" if seconds <= 2.0 else "OVER GOAL"
        print(f"kefu report kpi --json, {label:5s} {first}..{last}: {seconds:.2f} s (CPU {cpu:.2f} s)"
              f" (best of 3, goal <= 2 s) {verdict}")


if __name__ == "__main__":
    main()
