"""Shared by benchmarks/load.py and benchmarks/hostile_files.py: the project's Bot API emulator in
this process (acting as users, seeing every answer the moment it arrives), a bot as a separate
process (`kefu run`, or benchmarks/minimal_bot.py) on a temp database, the demo team seeded through
the project's services, and the bot process's CPU time and RSS read from /proc.

Only 127.0.0.1 is used. Every bot process is bounded: a watchdog thread kills it (SIGKILL) when
its RSS exceeds a cap, and `BotProcess.stop` always ends it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.emulator import BotApiEmulator  # noqa: E402
from bot.emulator.methods import BotApiMethods  # noqa: E402

ADMIN = 100
FIRST_AGENT = 200_001
TZ = ZoneInfo("Asia/Shanghai")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
#: Bot API calls that are an answer the user sees (not typing indicators, not getUpdates).
SEND_METHODS = {"sendMessage", "sendDocument", "sendPhoto", "copyMessage", "forwardMessage"}
EDIT_METHODS = {"editMessageText", "editMessageCaption", "editMessageReplyMarkup"}


# --- the emulator, recording answers as they complete -----------------------------------------------

@dataclass
class Event:
    at: float  # time.perf_counter() when the emulator finished the request
    method: str
    text: str
    ok: bool


class RecordingEmulator(BotApiEmulator):
    """The project's emulator, plus a record per chat of every send/edit and of every callback
    answer, with completion times, and waiters woken on each one (no polling, no log scans)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: dict[int, list[Event]] = {}
        self.callback_answers: dict[str, float] = {}
        self.send_times: list[float] = []  # every successful send*, for the flood-control check
        self.rejected_429 = 0
        self._waiters: list[tuple[Callable[[], Any], asyncio.Future]] = []
        #: Called with (method, params) as each request arrives, before it is answered.
        self.on_request: Callable[[str, dict[str, Any]], None] | None = None

    async def handle_api_call(self, token: str, method: str, params: dict[str, Any]):
        if self.on_request is not None:
            self.on_request(method, params)
        status, body = await super().handle_api_call(token, method, params)
        found = BotApiMethods.lookup(method)
        name = found[0] if found else method
        now = time.perf_counter()
        if status == 429:
            self.rejected_429 += 1
        if name in SEND_METHODS or name in EDIT_METHODS:
            try:
                chat = int(params.get("chat_id"))
            except (TypeError, ValueError):
                chat = None
            if chat is not None:
                text = str(params.get("text") or params.get("caption") or "")
                self.events.setdefault(chat, []).append(Event(now, name, text, status == 200))
            if status == 200 and name in SEND_METHODS:
                self.send_times.append(now)
        elif name == "answerCallbackQuery" and status == 200:
            self.callback_answers[str(params.get("callback_query_id"))] = now
        if self._waiters:
            self._wake()
        return status, body

    def _wake(self) -> None:
        still = []
        for check, future in self._waiters:
            if future.done():
                continue
            result = check()
            if result is not None:
                future.set_result(result)
            else:
                still.append((check, future))
        self._waiters = still

    async def wait(self, check: Callable[[], Any], timeout: float) -> Any:
        """Wait until check() returns something other than None (re-checked on each answer)."""
        result = check()
        if result is not None:
            return result
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((check, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None

    def mark(self, chat: int) -> int:
        """Position in the chat's answer record: answers after it belong to what is sent next."""
        return len(self.events.get(chat, ()))

    def first_send(self, chat: int, since: int) -> float | None:
        for event in self.events.get(chat, ())[since:]:
            if event.method in SEND_METHODS and event.ok:
                return event.at
        return None

    def first_any(self, chat: int, since: int) -> float | None:
        for event in self.events.get(chat, ())[since:]:
            if event.ok:
                return event.at
        return None

    async def wait_send(self, chat: int, since: int, timeout: float) -> float | None:
        return await self.wait(lambda: self.first_send(chat, since), timeout)

    async def wait_press_answer(self, query_id: str, chat: int, since: int, timeout: float,
                                *, callback_only: bool = False) -> float | None:
        def check() -> float | None:
            times = [self.callback_answers.get(query_id)]
            if not callback_only:
                times.append(self.first_any(chat, since))
            times = [t for t in times if t is not None]
            return min(times) if times else None

        return await self.wait(check, timeout)


# --- the bot process ----------------------------------------------------------------------------------

def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB."""
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return rss, hwm


class BotProcess:
    """A bot as a child process, with a watchdog thread that samples its RSS every `sample_s`
    and kills it (SIGKILL) above `rss_cap_mb`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path, *,
                 rss_cap_mb: float = 1536, sample_s: float = 0.02) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.workdir = workdir
        self.rss_cap_mb = rss_cap_mb
        self.sample_s = sample_s
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.killed_for_memory = False
        self.killed_at = 0.0  # time.perf_counter() of the kill
        self.peak_rss_mb = 0.0  # since start or the last reset_peak()
        self.lifetime_peak_mb = 0.0
        self.last_cpu = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log_path = workdir / f"{name}.log"

    def start(self) -> BotProcess:
        log = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self._thread = threading.Thread(target=self._watch, name=f"watch-{self.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _watch(self) -> None:
        while not self._stop.is_set() and self.alive:
            try:
                rss, hwm = proc_memory_mb(self.pid)
                self.last_cpu = proc_cpu_seconds(self.pid)
            except (OSError, ValueError, IndexError):
                break
            peak = max(rss, hwm)
            self.peak_rss_mb = max(self.peak_rss_mb, rss)
            self.lifetime_peak_mb = max(self.lifetime_peak_mb, peak)
            if rss > self.rss_cap_mb:
                self.killed_for_memory = True
                self.killed_at = time.perf_counter()
                self.peak_rss_mb = max(self.peak_rss_mb, rss)
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            self._stop.wait(self.sample_s)

    def cpu_seconds(self) -> float:
        try:
            self.last_cpu = proc_cpu_seconds(self.pid)
        except (OSError, ValueError, IndexError):
            pass
        return self.last_cpu

    def hwm_mb(self) -> float:
        """Peak RSS of the process's whole life (VmHWM; the watchdog's samples when it is gone)."""
        try:
            self.lifetime_peak_mb = max(self.lifetime_peak_mb, proc_memory_mb(self.pid)[1])
        except OSError:
            pass
        return self.lifetime_peak_mb

    def reset_peak(self) -> None:
        """Start a new peak window (the sampled peak; VmHWM cannot be reset for another process
        without privileges on every kernel, so per-window peaks come from the 20 ms samples)."""
        try:
            self.peak_rss_mb = proc_memory_mb(self.pid)[0]
        except OSError:
            self.peak_rss_mb = 0.0

    def window_peak_mb(self) -> float:
        try:
            self.peak_rss_mb = max(self.peak_rss_mb, proc_memory_mb(self.pid)[0])
        except OSError:
            pass
        return self.peak_rss_mb

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGINT (PTB's run_polling shuts down cleanly), SIGKILL after `timeout`. Async: the
        emulator in this loop must keep answering while the bot says goodbye."""
        self._stop.set()
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.hwm_mb()
            self.proc.send_signal(signal.SIGINT)
            deadline = time.perf_counter() + timeout
            while self.proc.poll() is None and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if self._thread is not None:
            self._thread.join(2)

    def tail_log(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def kefu_argv() -> list[str]:
    kefu = Path(sys.executable).parent / "kefu"
    return [str(kefu), "run"] if kefu.exists() else [sys.executable, "-m", "bot", "run"]


def minimal_argv() -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "minimal_bot.py")]


def base_env(emu: BotApiEmulator) -> dict[str, str]:
    """The process environment for a bot talking to `emu`: nothing from the caller's KEFU_* or
    TELEGRAM_* settings leaks in (and the bot runs in a temp dir, so no .env is read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))}
    env.update({
        "TELEGRAM_BOT_TOKEN": emu.token,
        "TELEGRAM_BASE_URL": emu.base_url,
        "TELEGRAM_BASE_FILE_URL": emu.base_file_url,
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(proxy, None)
    return env


def on_off_shifts(now: datetime | None = None) -> str:
    """KEFU_SHIFTS with a shift `on` working now (from 2 h ago to 6 h ahead) and a shift `off`
    that is not (the 6 h after it): half the team on duty, no shift change during a run."""
    now = (now or datetime.now(TZ)).astimezone(TZ)
    minute = now.hour * 60 + now.minute

    def hhmm(m: int) -> str:
        m %= 1440
        return f"{m // 60:02d}:{m % 60:02d}"

    on_start, on_end, off_end = minute - 120, minute + 360, minute + 720
    return f"on={hhmm(on_start)}-{hhmm(on_end)};off={hhmm(on_end)}-{hhmm(off_end)}"


def kefu_env(emu: BotApiEmulator, db_path: Path, shifts: str, **extra: str) -> dict[str, str]:
    env = base_env(emu)
    env.update({
        "KEFU_DB_PATH": str(db_path),
        "KEFU_ADMIN_IDS": str(ADMIN),
        "KEFU_SHIFTS": shifts,
        "KEFU_SCAN_INTERVAL_SECONDS": "3600",  # one tick, 5 s after start: the digest for the claim probe
        "KEFU_LOG_LEVEL": "WARNING",
        "KEFU_TIMEZONE": "Asia/Shanghai",
    })
    env.update(extra)
    return env


# --- seeding: the ONE place that knows the project's seeding API ------------------------------------

@dataclass
class Team:
    admin: int
    agents: list[int]
    on_duty: list[int]
    off_duty: list[int]
    order_nos: list[str] = field(default_factory=list)
    due_order_nos: list[str] = field(default_factory=list)


def order_no(i: int) -> str:
    return str(3_900_000_000_000_000_000 + i * 7919)


async def seed_team(db_path: Path, shifts: str, agents: int, *, orders: int = 500, due: int = 10) -> Team:
    """A fresh database with an admin (KEFU_ADMIN_IDS bootstrap), `agents` agents who joined by
    invitation (half in the shift working now), `orders` shipped orders for /order and pasted
    messages, and `due` orders unpaid for 13 h: at the bot's first tick they become 催付 reminders
    sent as one digest to everyone on duty. Everything goes through bot.services / bot.people /
    bot.orders, as the bot itself would write it."""
    from decimal import Decimal

    from bot.clock import SystemClock
    from bot.orders import NormalizedOrder, upsert_orders
    from bot.people import Role
    from bot.services import build_services
    from bot.settings import Settings

    settings = Settings(_env_file=None, kefu_db_path=db_path, kefu_admin_ids=(ADMIN,), kefu_shifts=shifts)
    clock = SystemClock()
    services = await build_services(settings, clock)
    try:
        people = services.people
        admin = await people.bootstrap_admin(ADMIN, "boss", "老板")
        ids = list(range(FIRST_AGENT, FIRST_AGENT + agents))
        on_duty = ids[: agents // 2]
        for tg_id in ids:
            invite = await people.create_invite(admin, Role.AGENT)
            person = await people.redeem(tg_id, f"kf{tg_id}", f"客服{tg_id - FIRST_AGENT + 1}", invite.code)
            await people.set_shift(admin, person, "on" if tg_id in on_duty else "off")
        now = clock.now()
        stored = []
        for i in range(orders):
            created = now - timedelta(days=3, minutes=i)
            stored.append(NormalizedOrder(
                platform="taobao", order_no=order_no(i), shop="小棉袄旗舰店", status="shipped",
                status_raw="卖家已发货，等待买家确认", refunding=False, presale=False, created_at=created,
                paid_at=created + timedelta(minutes=3), shipped_at=created + timedelta(hours=20),
                amount=Decimal("129.00"), buyer=f"buyer{i}", item_title="加厚羽绒服", tracking_no=f"YT{i:010d}",
                carrier="圆通速递",
            ))
        for j in range(due):
            created = now - timedelta(hours=13, minutes=j)
            stored.append(NormalizedOrder(
                platform="taobao", order_no=order_no(orders + j), shop="小棉袄旗舰店", status="unpaid",
                status_raw="等待买家付款", refunding=False, presale=False, created_at=created, paid_at=None,
                shipped_at=None, amount=Decimal("59.90"), buyer=f"unpaid{j}", item_title="羊毛围巾",
                tracking_no="", carrier="",
            ))
        await upsert_orders(services.db, stored, clock=clock, source="bench", record=False)
    finally:
        await services.db.close()
    return Team(ADMIN, ids, on_duty, ids[agents // 2:], [order_no(i) for i in range(orders)],
                [order_no(orders + j) for j in range(due)])


def add_team_to_emulator(emu: BotApiEmulator, team: Team) -> None:
    emu.add_user(team.admin, "老板", username="boss")
    for tg_id in team.agents:
        emu.add_user(tg_id, f"客服{tg_id - FIRST_AGENT + 1}", username=f"kf{tg_id}")


# --- small helpers -------------------------------------------------------------------------------------

async def start_emulator(*, flood_per_second: float | None = None) -> RecordingEmulator:
    emu = RecordingEmulator(bot_username="kefu_bench_bot", host="127.0.0.1")
    await emu.start()
    emu.set_rate_limit(flood_per_second)
    return emu


async def cold_start(emu: RecordingEmulator, bot: BotProcess, user: int, timeout: float = 60) -> float | None:
    """Queue /help from `user`, start the process, and return seconds from spawn to the answer."""
    since = emu.mark(user)
    emu.send_text(user, "/help")
    bot.start()
    answered = await emu.wait_send(user, since, timeout)
    return None if answered is None else answered - bot.started_at


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "max": max(ms) if ms else float("nan"), "mean": statistics.fmean(ms) if ms else float("nan")}


def machine_load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def temp_workdir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=prefix)


#: Words of the import progress message (templates/orders/progress.html): a send or edit that
#: carries one of them is not yet the bot's final word on an uploaded file.
IMPORT_PROGRESS_MARKERS = ("正在导入", "读取完成")
