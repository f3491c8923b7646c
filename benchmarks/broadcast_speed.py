"""Broadcast delivery speed: 1,000 recipients through the emulator enforcing Telegram's 30
messages a second (429 beyond it), the real Application with its AIORateLimiter.

    .venv/bin/python benchmarks/broadcast_speed.py [--recipients 1000]

A supervisor composes the broadcast through the emulator like in the chat (/broadcast, the
buttons, 发送). The clock runs from the 发送 press until every recipient row is settled. The
limit allows N / 30 s (33.3 s for 1,000); the goal is at most 1.15 times that. It also checks
that everyone got the copy and nobody got it twice, and counts the 429 answers.

Measured on the development machine (`benchmarks/broadcast_speed.py`, 1,000 recipients):
35.7 s, 1.07 x the 33.3 s the limit allows, 28.0 messages/s, all delivered once, no 429.
Without the pacer (AIORateLimiter alone) a 300-recipient run took 1.25 x with ten 429 pauses.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.clock import FakeClock, to_ts
from bot.emulator import BotApiEmulator
from bot.services import build_services
from bot.settings import Settings
from handlers.app import build_application, start_application, stop_application

TELEGRAM_RATE = 30  # messages a second the emulator allows, as Telegram does
GOAL = 1.15
SUPERVISOR = 900
FIRST_AGENT = 100_000
MARKER = "压测通知"


async def press(emu: BotApiEmulator, user: int, message: dict, data: str) -> dict:
    query = emu.press_button(user, message["chat_id"], message["message_id"], data=data)
    await emu.wait_for_request("answerCallbackQuery", lambda e: e["params"].get("callback_query_id") == query)
    return next(m for m in emu.messages(message["chat_id"]) if m["message_id"] == message["message_id"])


async def run(recipients: int) -> bool:
    emu = BotApiEmulator()
    await emu.start()
    emu.set_rate_limit(TELEGRAM_RATE)
    clock = FakeClock(__import__("datetime").datetime.fromisoformat("2026-11-23T10:00:00+08:00"))
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # no stray .env
        settings = Settings(
            telegram_bot_token=emu.token, telegram_base_url=emu.base_url, telegram_base_file_url=emu.base_file_url,
            kefu_db_path=Path(tmp) / "kefu.db", kefu_admin_ids=(), kefu_scan_interval_seconds=3600,
        )
        services = await build_services(settings, clock)
        now = to_ts(clock.now())
        agents = list(range(FIRST_AGENT, FIRST_AGENT + recipients))
        emu.add_user(SUPERVISOR, "李主管")
        rows = [(SUPERVISOR, "李主管", "supervisor", "day")]
        for tg_id in agents:
            emu.add_user(tg_id, f"客服{tg_id}")
            rows.append((tg_id, f"客服{tg_id}", "agent", "day"))
        await services.db.executemany(
            "INSERT INTO users (tg_id, full_name, role, shift, active, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
            [(*row, now, now) for row in rows],
        )
        app = build_application(settings, clock=clock, services=services)
        await start_application(app)
        try:
            await emu.wait_until_idle()
            emu.send_text(SUPERVISOR, f"/broadcast {MARKER}：今晚 22:00 系统升级，请提前保存草稿")
            panel = await emu.wait_for_message(SUPERVISOR, lambda m: "第 1 步" in m["plain"])
            draft = next(b["callback_data"] for row in panel["reply_markup"]["inline_keyboard"] for b in row).split(":")[1]
            for step in ("a:r", "a:r:agent", "ack:1", "urg:0", "sil:0"):
                panel = await press(emu, SUPERVISOR, panel, f"bc:{draft}:{step}")
            assert f"共 {recipients} 人" in panel["plain"], panel["plain"]
            before_429 = emu.stats["429"]
            started = time.perf_counter()
            emu.press_button(SUPERVISOR, SUPERVISOR, panel["message_id"], data=f"bc:{draft}:go")
            broadcasts = services.broadcasts
            while (await broadcasts.counts(int(draft))).attempted < recipients:
                await asyncio.sleep(0.02)  # a benchmark may poll; tests wait on the emulator instead
            elapsed = time.perf_counter() - started
            await emu.wait_for_message(SUPERVISOR, lambda m: "发送完成" in m["plain"], timeout=30)
            counts = await broadcasts.counts(int(draft))
            per_chat = [sum(1 for m in emu.messages(chat) if MARKER in m["plain"]) for chat in agents]
            edits = len(emu.requests("editMessageText"))
        finally:
            await stop_application(app)
            await services.db.close()
            await emu.stop()
    allowed = recipients / TELEGRAM_RATE
    ratio = elapsed / allowed
    missing = sum(1 for n in per_chat if n == 0)
    twice = sum(1 for n in per_chat if n > 1)
    ok = missing == 0 and twice == 0 and counts.sent == recipients and ratio <= GOAL
    print(f"recipients           {recipients}")
    print(f"time                 {elapsed:.2f} s")
    print(f"limit allows         {allowed:.2f} s ({TELEGRAM_RATE} messages/s)")
    print(f"ratio                {ratio:.3f} x (goal <= {GOAL})")
    print(f"throughput           {recipients / elapsed:.1f} messages/s")
    print(f"delivered            {counts.sent}/{recipients}, missing {missing}, twice {twice}")
    print(f"429 answers          {emu.stats['429'] - before_429}")
    print(f"progress edits       {edits}")
    print("PASS" if ok else "FAIL")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    return 0 if asyncio.run(run(args.recipients)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
