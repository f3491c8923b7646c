"""Load benchmark (issue 13): the real `kefu run` as a process against the project's Bot API
emulator, side by side with a minimal python-telegram-bot 22 bot (benchmarks/minimal_bot.py) with
and without AIORateLimiter, under the same load, in one run.

    .venv/bin/python benchmarks/load.py --quick     # < 2 minutes: rates 10, 30, 60 /s, 5 s each
    .venv/bin/python benchmarks/load.py             # full: rates 10 … 135 /s, 15 s each, more probes
    options: --agents 100 --rates 10,30,60 --step-seconds 6 --claims 3 --no-import --bots kefu,minimal_rl
             --profile FILE  (kefu under cProfile; pstats in FILE)
             --latencies PREFIX  (every answer's latency in PREFIX.<bot>.txt: which arrivals were slow)
    .venv/bin/python benchmarks/load.py --only-cold-start --bots kefu,minimal_rl --cold-starts 11
             # cold starts only (~1 min): the bots' starts interleaved, median wall time and CPU time

First the cold starts (--cold-starts per bot, default 3): /help is queued, the process spawned;
seconds from spawn to the answer; the bots start in turn, so a change in the machine's load hits
every bot alike. Then for each bot (a fresh emulator; kefu on a fresh database seeded through
bot.people / bot.orders with N agents, half of them in the shift working now, see _botproc.seed_team):
1. It starts (not timed again).
2. (kefu) waits for its first tick: a 10-reminder 催付 digest in every on-duty agent's chat.
3. Open-loop load at increasing rates, under Telegram's flood control as the emulator models it
   (per chat for every send, ~30/s overall for bulk only; --no-flood-control: off): Poisson arrivals at the rate; each
   arrival goes to a random idle agent (an agent waits for the answer to what they sent and reads
   it for 0.2 s; when all are busy the arrival waits, and its latency still counts from its
   scheduled moment, so a saturated bot shows as growing latency, not as a lower offered rate).
   The mix: pasted buyer messages 30 %, /s 25 %, /order 15 %, /reminders 8 %, /handover 5 %,
   button presses 17 % (a callback button of the agent's last answer; never a reminder claim).
   Latency = from injecting the update into the emulator to the first answer the emulator
   completes (a new message in that chat; for a press, the callback answer or any send/edit).
   Per rate: p50/p95/p99, answered share, achieved rate, CPU ms per update (utime+stime of the
   bot process over the step / answered updates). A rate is "sustained" when ≥ 99 % are answered
   and p99 ≤ 1 s; the run stops raising the rate after two unsustained steps.
4. Probes (flood control off): a claim (我来处理 on the digest, shown to every on-duty agent) while
   off-duty agents send /s every 100 ms from 20 ms after the press; press answer time, bystander
   latencies, fan-out time (until every on-duty copy was edited). Then a ~20 MB Taobao export
   uploaded in the chat while bystanders send /s every 100 ms until the import's final word.
   The minimal bot gets the same presses and upload (it just answers them): the baseline.
5. Flood control ON, 45 updates/s offered; counts the 429 answers the bot provoked and the most
   sends the emulator accepted in any 1 s window (replies may exceed 30/s: Telegram's ~30/s is
   for bulk notifications, see bot/emulator/faults.py).
Peak RSS: the bot process's VmHWM after the load steps (before the import) and over its life.

Measured in session 3 (issue 13), `benchmarks/load.py --quick`, 2 shared cores, load average 1.9-2.0,
reference = minimal PTB + AIORateLimiter in the same run: p99 at 30/s 33 vs 43 ms (0.8x), CPU
8.5 vs 4.9 ms per update (1.7x), sustained 60/s (the reference: 30/s; minimal without limiter
60/s), 0 x 429 under the emulator's flood control at every step and at 45/s offered; claim with
50 copies: press answered max 72 ms, bystander /s p99 51 ms; 20 MB import: bystander /s p99
126 ms; cold start 1.44 vs 0.82 s (1.75x); peak RSS 80 MB after load (139 MB with the import).
Then (issue 13, second round: one-hop reads, the KB and the orders intake started after polling
begins, numpy at first use, one TLS context), same command, two runs at load 1.3-1.5: CPU 6.3 vs
4.0 ms (1.58x) and 7.7 vs 4.6 ms (1.69x) per update (before: 7.7 vs 4.6, 1.69x: the CPU ratio
moves by ±0.1 between runs); cold start 0.72 vs 0.33 s and 0.9 vs 0.4 s (before: 1.44 vs 0.71 s;
the reference's own start moves between 0.33 and 0.71 s); peak RSS 81 MB after load (before 94).
`--bots kefu,minimal_rl --rates 30 --step-seconds 10 --claims 0 --import-mb 0 --flood-seconds 0`
(median of 3 starts), before vs after these changes in turn: cold start 1.15/1.8 s vs 0.86/0.85 s.
Before this session (same command, load 5.2): p99 at 30/s 209 ms vs 36 ms, 60/s not sustained
(p99 8.8 s). Figures move with the machine's load: compare ratios from one run.
Session 4 (issue 13, cold start: the deferred start-up begins after the first /help is answered,
65 buttons without per-class dataclass code, the storage opened while getMe is in flight, the
orders importer/parser loaded on first use, no feature subcommands for `kefu run`, no garbage
collection during start-up), `--only-cold-start --bots kefu,minimal_rl --cold-starts 11`, before
(main at 72fc3f9) and after in turn, two rounds, load average 3.0-5.1 (busy: other sessions):
before 1.38 vs 1.02 s (1.35x; CPU by the answer 0.96 vs 0.56 s, 1.71x) and 1.09 vs 0.82 s
(1.33x; CPU 1.76x); after 0.92 vs 1.05 s (0.88x; CPU 0.76 vs 0.51 s, 1.49x) and 0.88 vs 0.63 s
(1.39x; CPU 0.84 vs 0.57 s, 1.47x). Under this load single runs of the same code range 0.9-1.56x
in wall time; the CPU ratio (less moved by load) went from ~1.7-1.9x to ~1.5x.

Session 4 (issue 13, CPU per update): the people the guard looks up kept by PeopleService until
it changes them, a pasted message's order looked up once, KB rankings and rendered labels kept,
Bot API parameters sent as one JSON body instead of a Python-percent-encoded form.
`--bots kefu,minimal_rl --rates 30 --step-seconds 20 --claims 0 --import-mb 0 --flood-seconds 0`,
2 shared cores at load average 1.1-5.1 (other helpers' work; the ratio moves by up to ±0.3 from
one run to the next, so medians): before, six runs 1.73/1.82/1.58/1.61/1.61/1.81x (median 1.67x,
kefu 8.5 vs 5.2 ms per update); after, seven runs 1.46/1.37/2.12/1.33/1.61/1.31/1.29x (median
1.37x, kefu 6.9 vs 5.2 ms). Load-independent, from cProfile enabled for the load step only (a
local wrapper, not this script's --profile, which covers the whole life; 30 s at 30/s, 944 updates):
Python function calls per update 17.7k before, 13.2k after, the reference 10.3k (1.72x -> 1.29x);
database round trips (aiosqlite thread hops) 3.5 per update before, 2.4 after. `--quick` after:
CPU 8.1 vs 5.2 ms (1.56x; 5 s steps, ~150 updates: the noisiest figure).
Then a sent or edited message read back without its keyboard (handlers/transport.py: PTB built an
object per echoed button), the same 30/s command twice at load 0.3-0.4: CPU 7.7 vs 5.7 ms (1.34x)
and 8.4 vs 5.7 ms (1.46x); p99 at 30/s 28.2 vs 13.3 ms (2.12x) and 31.7 vs 13.6 ms (2.33x).

Session 5 (issue 13, p99): the tail was not queueing but waiting: a trip to an aiosqlite thread
and back waited for the interpreter lock whenever the loop was busy (a per-update timeline showed
reads of 0.1 ms returning after 10-20 ms). Now reads outside a transaction run on the loop's
thread (stopped by SQLite after 3 ms, then on the reader's thread), single writes and the press /
note transactions too (the write connection itself, never waiting for another process's lock
there); every template and label compiled once after start-up; sniffio installed (httpcore's
failed `import sniffio` searched sys.path ~9 times per update). `--bots kefu,minimal_rl --rates
30,30,30 --step-seconds 20 --claims 0 --import-mb 0 --flood-seconds 0`, four runs (12 steps) at
load 0.1-1.5: kefu p99 14.1-26.2 ms vs 9.9-18.3 ms, ratio 0.98-2.08x (median 1.56x; before
2.0-2.7x), CPU per update 5.9-6.7 vs 4.1-5.2 ms (median 1.40x). `--quick` twice: 9/9 goals (p99
19.1 vs 16.9 ms, 1.13x; CPU 1.31x) and 8/9 (p99 25.9 vs 11.4 ms, 2.28x; CPU 1.47x): the 5 s step
at 30/s has ~150 answers, so its p99 is the second-slowest one. `--only-cold-start --bots
kefu,minimal_rl --cold-starts 11`: 0.90 vs 0.60 s (1.50x; CPU 1.51x).

Session 6 (issue 13): the load window's cProfile (both bots) showed the HTTP client as a third of
every update: httpx with httpcore/h11/anyio (pure Python) spent ~1 ms of CPU per request and each
update costs two (getUpdates and the answer); a micro-benchmark of one JSON POST to a local server
gave ~1000-1800 us for httpx and ~160 us for aiohttp. kefu now talks to the Bot API through PTB's
BaseRequest over aiohttp (handlers/transport.py), reading the proxy from the environment once per
host (aiohttp's trust_env read ~/.netrc in a worker thread on every request). Same 30/s command,
before (quiet machine): CPU 6.5-7.3 vs 5.3-5.7 ms per update (1.25-1.48x), p99 16.2-30.8 ms vs
12.7-29.4 ms (1.68x); after: CPU 4.0-4.5 vs 4.5-5.0 ms (0.80-0.99x per step), p99 10.0-12.8 vs 11.7-14.4 ms
(0.70x) and 18.4 vs 31.3 ms (0.6x) in a busier run. aiohttp imports in ~150 ms, half of it loading
the system's certificates in OpenSSL without the interpreter lock: `kefu run` imports it on a
second thread while the rest loads (bot/cli.py). `--only-cold-start --bots kefu,minimal_rl
--cold-starts 11`: 0.69 vs 0.44 s (1.58x) and 0.66 vs 0.45 s (1.46x); the same before the
background import, 5 starts each, main vs session 5's code in turn: 0.93/0.93 s vs 0.88/0.90 s.
`--latencies PREFIX` writes every answer's latency per bot: the slowest answers of both bots fall
on the same bursts of arrivals (the same seed), so a p99 is the work of a burst.

Session 7 (issue 13, cold start): `kefu run` answers /help and /start with the core and imports
the features once polling runs (handlers/__init__.py `load_features`; ~100 ms of imports, a third to a half of
them dataclass code generation, no longer before the first answer), keeps compiled templates
between runs (Jinja2's bytecode cache: compiling all of them after a start fell from ~0.65 to
~0.13 s of CPU), starts the background import of aiohttp before pydantic loads, and keeps the
collector off until the start-up work is over. Interleaved starts of this code, the code before
and the reference (a throw-away driver, 15 rounds): /help 0.62 vs 0.80 s before vs 0.48 s for the
reference (1.29x, was 1.67x), CPU by the answer 0.67 vs 0.84 s; the first /s answered after a
start (it waits for the features and the knowledge base) 1.18 vs 1.20 s, the same as before.
`--only-cold-start --bots kefu,minimal_rl --cold-starts 11`: 0.50 vs 0.40 s (1.26x) on the final
code; 0.55 vs 0.42 s (1.30x, quiet), 0.61 vs 0.59 s (1.04x) and 0.66 vs 0.55 s (1.19x) (load
1.4-1.8) before the review fixes. The full and --quick runs now time three cold starts per bot
first, the bots in turn: with each bot's starts in its own block a --quick run gave 1.65x (the
machine at load 1.8 during kefu's, 0.6 during the reference's); interleaved, `--quick` 9/9 (1.31x).

Everything runs on 127.0.0.1; every wait has a timeout; bot processes are always stopped and are
killed above --rss-cap-mb (default 1536).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _botproc as bp  # noqa: E402

# Goals of issue 13.
GOAL_P99_RATIO = 1.5
GOAL_CPU_RATIO = 1.5
GOAL_SUSTAINED = 60
GOAL_BYSTANDER_P99_MS = 100
GOAL_PRESS_MS = 200
GOAL_COLD_RATIO = 1.5
GOAL_RSS_MB = 100
REFERENCE = "minimal_rl"  # like-for-like: kefu's Application has AIORateLimiter too

BOTS = {
    "kefu": "kefu run",
    "minimal_rl": "minimal PTB + AIORateLimiter",
    "minimal": "minimal PTB, no limiter",
}

KEYWORDS = ["退货", "物流", "发票", "退款", "尺码", "催发货", "改地址", "优惠券", "运费险", "少件"]
BUYER_TEXTS = [
    "你好，我买的衣服尺码偏小，能换大一号吗？",
    "快递三天了还没动，怎么回事啊",
    "收到的东西有破损，要求退款",
    "能不能开个发票，公司报销用",
    "我想改一下收货地址，还没发货吧",
    "亲，这个有运费险吗？退货运费谁出",
    "少发了一件，只收到一个",
    "什么时候发货？急用",
    "质量太差了，我要退货退款",
    "优惠券用不了是怎么回事",
]
MIX = [("paste", 30), ("s", 25), ("order", 15), ("reminders", 8), ("handover", 5), ("press", 17)]
THINK_S = 0.2
ANSWER_TIMEOUT_S = 30.0
FLOOD_LIMIT = 30
FLOOD_OFFERED = 45


@dataclass
class Step:
    rate: float
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    driver_cpu_s: float = 0.0  # this process (emulator + load generator): near wall_s means it is the bottleneck
    rejected_429: int = 0  # 429s the emulator's flood control answered during the step
    by_kind: dict[str, list[float]] = field(default_factory=dict)

    @property
    def answered(self) -> int:
        return len(self.latencies)

    @property
    def share(self) -> float:
        return self.answered / self.sent if self.sent else 0.0

    @property
    def stats(self) -> dict[str, float]:
        return bp.summary_ms(self.latencies)

    @property
    def cpu_ms_per_update(self) -> float:
        return self.cpu_s * 1000 / self.answered if self.answered else float("nan")

    @property
    def achieved(self) -> float:
        return self.answered / self.wall_s if self.wall_s else 0.0

    @property
    def sustained(self) -> bool:
        return self.share >= 0.99 and self.stats["p99"] <= 1000


@dataclass
class BotResult:
    name: str
    cold_start_s: float | None = None  # median of the cold starts
    cold_starts: list[float] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    claim_press: list[float] = field(default_factory=list)
    claim_bystanders: list[float] = field(default_factory=list)
    claim_bystander_timeouts: int = 0
    claim_fanout: list[float] = field(default_factory=list)
    import_s: float | None = None
    import_bystanders: list[float] = field(default_factory=list)
    import_bystander_timeouts: int = 0
    import_rss_mb: float = 0.0
    import_word: str = ""
    flood: Step | None = None
    flood_429: int = 0
    flood_max_window: int = 0
    rss_load_mb: float = 0.0
    rss_life_mb: float = 0.0
    error: str = ""

    def step_at(self, rate: float) -> Step | None:
        return next((s for s in self.steps if s.rate == rate), None)

    @property
    def sustained_rate(self) -> float:
        return max((s.rate for s in self.steps if s.sustained), default=0.0)


# --- the load generator ----------------------------------------------------------------------------

class Load:
    def __init__(self, emu: bp.RecordingEmulator, team: bp.Team, seed: int, *, latency_log: list[str] | None = None) -> None:
        self.emu = emu
        self.team = team
        self.rng = random.Random(seed)
        self.kinds = [k for k, w in MIX for _ in range(w)]
        #: --latencies: one line per answer, "rate offset_s kind latency_ms" (arrivals share a
        #: seed, so two bots' lines line up: a burst shows in both)
        self.latency_log = latency_log

    def pressable(self, agent: int) -> tuple[int, str] | None:
        """A callback button on the agent's newest bot message that has any (never a claim)."""
        for message in reversed(self.emu.messages(agent)):
            buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row
                       if "callback_data" in b]
            if not buttons:
                continue
            usable = [b["callback_data"] for b in buttons
                      if not b["callback_data"].startswith("rem:") or b["callback_data"].startswith("rem:open:")]
            if usable:
                return message["message_id"], self.rng.choice(usable)
            return None
        return None

    async def act(self, agent: int, kind: str) -> tuple[str, float | None, float]:
        """Inject one update as `agent`; (kind, answer time or None, injection time)."""
        rng, team = self.rng, self.team
        if kind == "press":
            target = self.pressable(agent)
            if target is not None:
                since = self.emu.mark(agent)
                injected = time.perf_counter()
                query = self.emu.press_button(agent, agent, target[0], data=target[1])
                return kind, await self.emu.wait_press_answer(query, agent, since, ANSWER_TIMEOUT_S), injected
            kind = "s"
        if kind == "paste":
            text = rng.choice(BUYER_TEXTS)
            if rng.random() < 0.5:
                text += f" 订单号{rng.choice(team.order_nos)}"
        elif kind == "s":
            text = f"/s {rng.choice(KEYWORDS)}"
        elif kind == "order":
            text = f"/order {rng.choice(team.order_nos)}"
        elif kind == "reminders":
            text = "/reminders"
        else:
            text = f"/handover 买家要求改地址，订单 {rng.choice(team.order_nos)} 请下一班跟进"
        since = self.emu.mark(agent)
        injected = time.perf_counter()
        self.emu.send_text(agent, text)
        return kind, await self.emu.wait_send(agent, since, ANSWER_TIMEOUT_S), injected

    async def step(self, bot: bp.BotProcess, rate: float, seconds: float, agents: list[int]) -> Step:
        step = Step(rate)
        idle = list(agents)
        backlog: list[float] = []
        tasks: set[asyncio.Task] = set()
        arrivals, t = [], 0.0
        while True:
            t += self.rng.expovariate(rate)
            if t >= seconds:
                break
            arrivals.append(t)
        step.sent = len(arrivals)
        cpu0, driver0, rejected0 = bot.cpu_seconds(), time.process_time(), self.emu.rejected_429
        start = time.perf_counter()
        last_answer = start

        async def agent_loop(agent: int, scheduled: float) -> None:
            nonlocal last_answer
            while True:
                kind, answered, _ = await self.act(agent, self.rng.choice(self.kinds))
                if answered is None:
                    step.timeouts += 1
                else:
                    latency = answered - scheduled
                    if self.latency_log is not None:
                        self.latency_log.append(f"{step.rate:g} {scheduled - start:.4f} {kind} {latency * 1000:.2f}")
                    step.latencies.append(latency)
                    step.by_kind.setdefault(kind, []).append(latency)
                    last_answer = max(last_answer, answered)
                await asyncio.sleep(THINK_S)
                if not backlog:
                    idle.append(agent)
                    return
                scheduled = backlog.pop(0)

        for offset in arrivals:
            scheduled = start + offset
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if idle:
                agent = idle.pop(self.rng.randrange(len(idle)))
                task = asyncio.create_task(agent_loop(agent, scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                backlog.append(scheduled)
        while tasks:
            await asyncio.wait(set(tasks))
        step.cpu_s = bot.cpu_seconds() - cpu0
        step.driver_cpu_s = time.process_time() - driver0
        step.rejected_429 = self.emu.rejected_429 - rejected0
        step.wall_s = last_answer - start
        return step


# --- probes -----------------------------------------------------------------------------------------

async def bystanders_during(emu: bp.RecordingEmulator, people: list[int], until: asyncio.Future | asyncio.Task,
                            *, first_after: float, every: float, min_seconds: float, max_seconds: float,
                            cursor: list[int]) -> tuple[list[float], int]:
    """Off-duty agents send /s 退货 (one outstanding each) from `first_after` s on, every `every`
    s, until `until` is done (and at least `min_seconds` passed, at most `max_seconds`)."""
    latencies: list[float] = []
    timeouts = 0
    waits: list[asyncio.Task] = []
    start = time.perf_counter()
    await asyncio.sleep(first_after)

    async def one(agent: int) -> None:
        nonlocal timeouts
        since = emu.mark(agent)
        injected = time.perf_counter()
        emu.send_text(agent, "/s 退货")
        answered = await emu.wait_send(agent, since, ANSWER_TIMEOUT_S)
        if answered is None:
            timeouts += 1
        else:
            latencies.append(answered - injected)

    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= max_seconds or (until.done() and elapsed >= min_seconds):
            break
        agent = people[cursor[0] % len(people)]
        cursor[0] += 1
        waits.append(asyncio.create_task(one(agent)))
        await asyncio.sleep(every)
    if waits:
        await asyncio.gather(*waits)
    return latencies, timeouts


async def claim_probe(emu: bp.RecordingEmulator, team: bp.Team, result: BotResult, name: str, claims: int) -> None:
    cursor = [0]
    for i in range(claims):
        presser = team.on_duty[i % len(team.on_duty)]
        if name == "kefu":
            message = next((m for m in reversed(emu.messages(presser))
                            if any(b.get("callback_data", "").startswith("rem:take:")
                                   for row in (m.get("reply_markup") or {}).get("inline_keyboard", []) for b in row)),
                           None)
            data = f"rem:take:{i + 1}"
            if message is None or not any(b.get("callback_data") == data for row in message["reply_markup"]["inline_keyboard"]
                                          for b in row):
                result.error += f" claim {i + 1}: no digest button {data} in chat {presser};"
                continue
        else:
            message = next((m for m in reversed(emu.messages(presser)) if m.get("reply_markup")), None)
            if message is None:
                result.error += f" claim {i + 1}: no message with buttons in chat {presser};"
                continue
            data = message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        marks = {chat: emu.mark(chat) for chat in team.on_duty}
        pressed = time.perf_counter()
        query = emu.press_button(presser, presser, message["message_id"], data=data)

        def fanout_done() -> float | None:
            if name != "kefu":
                return emu.callback_answers.get(query)
            edits = [next((e.at for e in emu.events.get(chat, ())[marks[chat]:] if e.method == "editMessageText"), None)
                     for chat in team.on_duty]
            return None if any(t is None for t in edits) else max(edits)

        answer_task = asyncio.create_task(emu.wait_press_answer(query, presser, marks[presser], 20, callback_only=True))
        fanout_task = asyncio.create_task(emu.wait(fanout_done, 20))
        latencies, timeouts = await bystanders_during(emu, team.off_duty, fanout_task, first_after=0.02, every=0.1,
                                                      min_seconds=1.0, max_seconds=20, cursor=cursor)
        answered, fanned = await answer_task, await fanout_task
        result.claim_bystanders += latencies
        result.claim_bystander_timeouts += timeouts
        if answered is not None:
            result.claim_press.append(answered - pressed)
        if fanned is not None:
            result.claim_fanout.append(fanned - pressed)
        await asyncio.sleep(0.5)


def taobao_export(limit_bytes: int) -> bytes:
    """A Taobao 订单报表 CSV (GB18030, as exported) just under limit_bytes, rows from
    benchmarks/import_speed.py's synthetic generator."""
    import import_speed as gen

    parts = [(",".join(gen.HEADER) + "\r\n").encode("gb18030")]
    size, i = len(parts[0]), 0
    while True:
        line = gen.csv_line(gen.synthetic_row(i)[0]).encode("gb18030")
        if size + len(line) > limit_bytes:
            break
        parts.append(line)
        size += len(line)
        i += 1
    return b"".join(parts)


def settled(emu: bp.RecordingEmulator, chat: int, since: int) -> float | None:
    """The bot's final word on an upload: a send or edit that is not an import progress text."""
    for event in emu.events.get(chat, ())[since:]:
        if event.ok and not any(marker in event.text for marker in bp.IMPORT_PROGRESS_MARKERS):
            return event.at
    return None


async def import_probe(emu: bp.RecordingEmulator, bot: bp.BotProcess, team: bp.Team, result: BotResult,
                       content: bytes, timeout: float) -> None:
    importer = team.on_duty[-1]
    since = emu.mark(importer)
    bot.reset_peak()
    started = time.perf_counter()
    emu.send_document(importer, "ExportOrderList202611261000.csv", content)
    done = asyncio.create_task(emu.wait(lambda: settled(emu, importer, since), timeout))
    latencies, timeouts = await bystanders_during(emu, team.off_duty, done, first_after=0.05, every=0.1,
                                                  min_seconds=3.0, max_seconds=timeout, cursor=[0])
    finished = await done
    result.import_s = None if finished is None else finished - started
    final = next((e for e in emu.events.get(importer, ())[since:] if e.at == finished), None)
    result.import_word = " ".join((final.text if final else "").split())[:70]
    result.import_bystanders, result.import_bystander_timeouts = latencies, timeouts
    result.import_rss_mb = bot.window_peak_mb()


async def flood_step(load: Load, bot: bp.BotProcess, emu: bp.RecordingEmulator, agents: list[int], seconds: float,
                     result: BotResult) -> None:
    emu.set_rate_limit(FLOOD_LIMIT)
    before_429, first_send = emu.rejected_429, len(emu.send_times)
    try:
        result.flood = await load.step(bot, FLOOD_OFFERED, seconds, agents)
    finally:
        emu.set_rate_limit(None)
    result.flood_429 = emu.rejected_429 - before_429
    times = emu.send_times[first_send:]
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    result.flood_max_window = best


# --- one bot ------------------------------------------------------------------------------------------

async def set_up_bot(name: str, args: argparse.Namespace, workdir: Path, *, profile: str | None = None):
    """A fresh database with the team, a fresh emulator, and how to start bot `name` against them:
    (emu, team, argv, env). `profile`: run kefu under cProfile (pstats written when it stops)."""
    shifts = bp.on_off_shifts()
    db_path = workdir / f"{name}.db"
    team = await bp.seed_team(db_path, shifts, args.agents)
    emu = await bp.start_emulator()
    bp.add_team_to_emulator(emu, team)
    if name == "kefu":
        argv, env = bp.kefu_argv(), bp.kefu_env(emu, db_path, shifts)
        if profile:
            argv = [sys.executable, "-m", "cProfile", "-o", str(Path(profile).resolve()), "-m", "bot", "run"]
    else:
        argv, env = bp.minimal_argv(), bp.base_env(emu)
        env["MINIMAL_RATE_LIMITER"] = "1" if name == "minimal_rl" else "0"
    return emu, team, argv, env


async def run_bot(name: str, args: argparse.Namespace, workdir: Path, import_content: bytes | None) -> BotResult:
    result = BotResult(name)
    emu, team, argv, env = await set_up_bot(name, args, workdir, profile=args.profile)
    bot = bp.BotProcess(name, argv, env, workdir, rss_cap_mb=args.rss_cap_mb)
    latency_log: list[str] | None = [] if args.latencies else None
    load = Load(emu, team, seed=args.seed, latency_log=latency_log)
    try:
        # the bot's own start (the timed cold starts are interleaved between the bots beforehand)
        if await bp.cold_start(emu, bot, team.agents[0]) is None:
            result.error = "no answer to /help at start"
            return result
        if name == "kefu":  # the first tick (5 s after start) sends the digest to everyone on duty
            got = await emu.wait(lambda: all(emu.events.get(chat) for chat in team.on_duty) or None, 30)
            if got is None:
                result.error += " the digest did not reach every on-duty agent;"
            await asyncio.sleep(1.0)
        unsustained = 0
        if args.flood_control:  # Telegram's limits as the emulator models them (bot/emulator/faults.py)
            emu.set_rate_limit(FLOOD_LIMIT)
        for rate in args.rates:
            step = await load.step(bot, rate, args.step_seconds, team.agents)
            result.steps.append(step)
            print(f"  {name:<11} {rate:>5.0f}/s  p50 {step.stats['p50']:8.1f}  p99 {step.stats['p99']:8.1f} ms  "
                  f"answered {step.share:6.1%}  {step.cpu_ms_per_update:5.2f} CPU ms/update  "
                  f"{step.rejected_429} x 429", flush=True)
            unsustained = 0 if step.sustained else unsustained + 1
            if unsustained >= 2 or not bot.alive:
                break
            await asyncio.sleep(1.0)
        emu.set_rate_limit(None)
        result.rss_load_mb = bot.hwm_mb()
        if args.claims:
            await claim_probe(emu, team, result, name, args.claims)
        if import_content is not None:
            await import_probe(emu, bot, team, result, import_content, args.import_timeout)
        if args.flood_seconds and (name == "kefu" or not args.quick):
            await asyncio.sleep(1.0)
            await flood_step(load, bot, emu, team.agents, args.flood_seconds, result)
        result.rss_life_mb = bot.hwm_mb()
        if bot.killed_for_memory:
            result.error += f" killed above {args.rss_cap_mb} MB RSS;"
        elif not bot.alive:
            result.error += f" the process exited: {bot.tail_log(5)}"
        return result
    finally:
        await bot.stop()
        if latency_log is not None:
            Path(f"{args.latencies}.{name}.txt").write_text("\n".join(latency_log) + "\n", encoding="utf-8")
        await emu.stop()


# --- report -------------------------------------------------------------------------------------------

def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b or a != a or b != b:
        return "-"
    return f"{a / b:.2f}x"


def report(results: dict[str, BotResult], args: argparse.Namespace) -> None:
    print()
    print(f"== load, {'Telegram flood control on (bot/emulator/faults.py)' if args.flood_control else 'flood control off'}"
          " (latency ms from injection to the emulator's answer) ==")
    print(f"{'bot':<11} {'rate/s':>6} {'sent':>5} {'answ':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} "
          f"{'done/s':>7} {'CPU ms/upd':>10} {'bot CPU':>7} {'driver':>6} {'429':>4} ok")
    for name, r in results.items():
        for s in r.steps:
            st = s.stats
            print(f"{name:<11} {s.rate:>6.0f} {s.sent:>5} {s.share:>6.1%} {fmt(st['p50']):>8} {fmt(st['p95']):>8} "
                  f"{fmt(st['p99']):>8} {fmt(st['max']):>8} {s.achieved:>7.1f} {fmt(s.cpu_ms_per_update, '.2f'):>10} "
                  f"{s.cpu_s / s.wall_s if s.wall_s else 0:>7.0%} {s.driver_cpu_s / s.wall_s if s.wall_s else 0:>6.0%} "
                  f"{s.rejected_429:>4} {'yes' if s.sustained else 'NO'}")
    print("(bot CPU / driver: CPU time of the bot process / of this process (emulator + load) over the step's"
          " wall time; a driver near 100 % means the measurement, not the bot, is the limit)")
    kefu = results.get("kefu")
    if kefu and kefu.steps:
        print()
        print("kefu p50/p99 ms by kind at each rate:")
        for s in kefu.steps:
            parts = [f"{k} {fmt(bp.percentile([v * 1000 for v in vs], 50), '.0f')}/"
                     f"{fmt(bp.percentile([v * 1000 for v in vs], 99), '.0f')}" for k, vs in sorted(s.by_kind.items())]
            print(f"  {s.rate:>5.0f}/s  " + "  ".join(parts))
    print()
    print("== probes (flood control off) ==")
    for name, r in results.items():
        cb = bp.summary_ms(r.claim_bystanders)
        ib = bp.summary_ms(r.import_bystanders)
        press = bp.summary_ms(r.claim_press)
        fan = bp.summary_ms(r.claim_fanout)
        print(f"{name:<11} claim: press answered p50 {fmt(press['p50'])} max {fmt(press['max'])} ms; "
              f"fan-out done max {fmt(fan['max'])} ms; bystander /s n={cb['n']} p50 {fmt(cb['p50'])} "
              f"p99 {fmt(cb['p99'])} max {fmt(cb['max'])} ms, timeouts {r.claim_bystander_timeouts}")
        if args.import_mb:
            print(f"{'':<11} import {args.import_mb} MB: final word after {fmt(r.import_s, '.2f')} s, peak RSS "
                  f"{fmt(r.import_rss_mb, '.0f')} MB; bystander /s n={ib['n']} p50 {fmt(ib['p50'])} "
                  f"p99 {fmt(ib['p99'])} max {fmt(ib['max'])} ms, timeouts {r.import_bystander_timeouts}")
            print(f"{'':<11} final word: {r.import_word!r}")
    print()
    print(f"== flood control on ({FLOOD_LIMIT} bulk sends/s, per-chat limits), {FLOOD_OFFERED} updates/s offered ==")
    for name, r in results.items():
        if r.flood is None:
            continue
        st = r.flood.stats
        print(f"{name:<11} 429 answers {r.flood_429}; most sends accepted in 1 s {r.flood_max_window} "
              f"(bulk limit {FLOOD_LIMIT}; replies count only per chat); answered {r.flood.share:.1%}; p50 {fmt(st['p50'])} p99 {fmt(st['p99'])} ms")
    print()
    print("== each bot ==")
    for name, r in results.items():
        colds = "/".join(f"{c:.2f}" for c in r.cold_starts)
        print(f"{name:<11} cold start to first /help answer {fmt(r.cold_start_s, '.2f')} s (median of {colds}); sustained "
              f"{r.sustained_rate:.0f}/s; peak RSS after load {r.rss_load_mb:.0f} MB, whole run {r.rss_life_mb:.0f} MB"
              + (f"; PROBLEM:{r.error}" if r.error else ""))
    ref = results.get(REFERENCE)
    if kefu is None or ref is None:
        return
    rate = 30.0 if kefu.step_at(30.0) and ref.step_at(30.0) else None
    ks, rs = (kefu.step_at(rate), ref.step_at(rate)) if rate else (None, None)
    print()
    print(f"== kefu against {BOTS[REFERENCE]} (goal) ==")
    rows = []
    if ks and rs:
        for key in ("p50", "p95", "p99"):
            rows.append((f"{key} at 30/s (ms)", ks.stats[key], rs.stats[key],
                         f"<= {GOAL_P99_RATIO}x" if key == "p99" else ""))
        rows.append(("CPU ms per update at 30/s", ks.cpu_ms_per_update, rs.cpu_ms_per_update, f"<= {GOAL_CPU_RATIO}x"))
    rows.append(("sustained rate (/s)", kefu.sustained_rate, ref.sustained_rate, f">= {GOAL_SUSTAINED}/s"))
    rows.append(("peak RSS after load (MB)", kefu.rss_load_mb, ref.rss_load_mb, f"<= {GOAL_RSS_MB} MB"))
    rows.append(("cold start (s)", kefu.cold_start_s, ref.cold_start_s, f"<= {GOAL_COLD_RATIO}x"))
    rows.append(("claim: bystander p99 (ms)", bp.summary_ms(kefu.claim_bystanders)["p99"],
                 bp.summary_ms(ref.claim_bystanders)["p99"], f"<= {GOAL_BYSTANDER_P99_MS} ms"))
    rows.append(("claim: press answered max (ms)", bp.summary_ms(kefu.claim_press)["max"],
                 bp.summary_ms(ref.claim_press)["max"], f"<= {GOAL_PRESS_MS} ms"))
    if args.import_mb:
        rows.append(("import: bystander p99 (ms)", bp.summary_ms(kefu.import_bystanders)["p99"],
                     bp.summary_ms(ref.import_bystanders)["p99"], f"<= {GOAL_BYSTANDER_P99_MS} ms"))
    print(f"{'':<32} {'kefu':>9} {'reference':>10} {'ratio':>7}  goal")
    for label, a, b, goal in rows:
        print(f"{label:<32} {fmt(a):>9} {fmt(b):>10} {ratio(a, b):>7}  {goal}")
    print()
    print(summary_line(kefu, ref, ks, rs, args))


def summary_line(kefu: BotResult, ref: BotResult, ks: Step | None, rs: Step | None, args: argparse.Namespace) -> str:
    checks = []

    def check(label: str, ok: bool | None, text: str) -> None:
        checks.append((ok, f"{label} {text}"))

    if ks and rs:
        r99 = ks.stats["p99"] / rs.stats["p99"] if rs.stats["p99"] else float("nan")
        check("p99@30/s", r99 <= GOAL_P99_RATIO, f"{ks.stats['p99']:.0f}ms={r99:.1f}x")
        rcpu = ks.cpu_ms_per_update / rs.cpu_ms_per_update if rs.cpu_ms_per_update else float("nan")
        check("CPU/upd", rcpu <= GOAL_CPU_RATIO, f"{ks.cpu_ms_per_update:.2f}ms={rcpu:.1f}x")
    check("sustained", kefu.sustained_rate >= GOAL_SUSTAINED, f"{kefu.sustained_rate:.0f}/s")
    cb, pr = bp.summary_ms(kefu.claim_bystanders), bp.summary_ms(kefu.claim_press)
    check("claim bystander p99", cb["p99"] <= GOAL_BYSTANDER_P99_MS, f"{cb['p99']:.0f}ms")
    check("press", pr["max"] <= GOAL_PRESS_MS, f"{pr['max']:.0f}ms")
    if args.import_mb:
        ib = bp.summary_ms(kefu.import_bystanders)
        check("import bystander p99", ib["p99"] <= GOAL_BYSTANDER_P99_MS and kefu.import_bystander_timeouts == 0,
              f"{ib['p99']:.0f}ms")
    if kefu.cold_start_s and ref.cold_start_s:
        rc = kefu.cold_start_s / ref.cold_start_s
        check("cold start", rc <= GOAL_COLD_RATIO, f"{rc:.1f}x")
    check("RSS", kefu.rss_load_mb <= GOAL_RSS_MB, f"{kefu.rss_load_mb:.0f}MB")
    if kefu.flood is not None:  # the emulator's flood control judges (replies are not bulk: >30/s may be fine)
        steps_429 = sum(s.rejected_429 for s in kefu.steps)
        check("flood", kefu.flood_429 == 0 and steps_429 == 0 and kefu.flood.share >= 0.99,
              f"{kefu.flood_429 + steps_429}x429")
    met = sum(1 for ok, _ in checks if ok)
    body = "; ".join(f"{text} {'ok' if ok else 'MISS'}" for ok, text in checks)
    return f"SUMMARY goals met {met}/{len(checks)}: {body} ({bp.machine_load()})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (< 2 min): rates 10,30,60 at 5 s, 3 claims")
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=None)
    parser.add_argument("--step-seconds", type=float, default=None)
    parser.add_argument("--claims", type=int, default=None)
    parser.add_argument("--import-mb", type=float, default=None, help="size of the uploaded export (0: no import)")
    parser.add_argument("--import-timeout", type=float, default=180)
    parser.add_argument("--flood-seconds", type=float, default=None)
    parser.add_argument("--bots", default="kefu,minimal_rl,minimal")
    parser.add_argument("--rss-cap-mb", type=float, default=1536)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-flood-control", dest="flood_control", action="store_false",
                        help="load steps without the emulator's Telegram flood control (on by default)")
    parser.add_argument("--cold-starts", type=int, default=None, help="cold starts timed per bot, the bots in turn, median shown (default 3; one start swings ±30 %% on a shared machine)")
    parser.add_argument("--only-cold-start", action="store_true",
                        help="only the cold starts (--cold-starts per bot, default 7), the bots' starts interleaved")
    parser.add_argument("--latencies", default=None, metavar="PREFIX",
                        help="write each load answer as 'rate offset_s kind latency_ms' to PREFIX.<bot>.txt")
    parser.add_argument("--profile", default=None, metavar="FILE",
                        help="run kefu under cProfile, stats written to FILE (figures then are not comparable)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.rates = args.rates or ([10, 30, 60] if quick else [10, 20, 30, 40, 60, 80, 100, 135])
    args.step_seconds = args.step_seconds or (5 if quick else 15)
    args.claims = 3 if args.claims is None and quick else (10 if args.claims is None else args.claims)
    args.import_mb = (19.5 if not quick else 19.5) if args.import_mb is None else args.import_mb
    args.flood_seconds = (4 if quick else 10) if args.flood_seconds is None else args.flood_seconds
    args.cold_starts = args.cold_starts or (7 if args.only_cold_start else 3)
    args.bots = [b for b in args.bots.split(",") if b]
    unknown = set(args.bots) - set(BOTS)
    if unknown:
        parser.error(f"unknown bots {sorted(unknown)}; choose from {list(BOTS)}")
    return args


def compile_bytecode() -> None:
    """Bytecode for the project's modules, as a deployed install has it (pip compiles on install;
    this environment may set PYTHONDONTWRITEBYTECODE, which would make every cold start of kefu
    compile ~100 modules from source while the minimal bot compiles one file)."""
    import compileall

    for package in ("bot", "handlers"):
        compileall.compile_dir(str(bp.ROOT / package), quiet=1)


async def interleaved_cold_starts(args: argparse.Namespace) -> tuple[dict[str, BotResult], dict[str, list[float]]]:
    """Each bot on its own emulator (kefu on a seeded database), then rounds of one start per bot
    in turn (`args.cold_starts` rounds), so a change in the machine's load hits every bot alike:
    the bots' results (cold starts, errors) and their CPU seconds by the answer."""
    results = {name: BotResult(name) for name in args.bots}
    cpus: dict[str, list[float]] = {name: [] for name in args.bots}
    with bp.temp_workdir("kefu-cold-") as tmp:
        workdir = Path(tmp)
        setups = {}
        try:
            for name in args.bots:
                setups[name] = await set_up_bot(name, args, workdir)
            for i in range(args.cold_starts):
                for name in args.bots:
                    emu, team, argv, env = setups[name]
                    bot = bp.BotProcess(f"{name}-cold{i}", argv, env, workdir, rss_cap_mb=args.rss_cap_mb)
                    user = team.agents[i % len(team.agents)]
                    cpu_at: list[float] = []

                    def cpu_probe(method: str, params: dict[str, Any], bot=bot, user=user, cpu_at=cpu_at) -> None:
                        # the bot's CPU time as its answer arrives (before work it starts after answering)
                        if not cpu_at and method.lower() == "sendmessage" and str(params.get("chat_id")) == str(user):
                            cpu_at.append(bot.cpu_seconds())

                    emu.on_request = cpu_probe
                    try:
                        took = await bp.cold_start(emu, bot, user)
                    finally:
                        emu.on_request = None
                        await bot.stop()
                    cpu = cpu_at[0] if cpu_at else float("nan")
                    if took is None:
                        results[name].error += f" no answer to /help at start {i + 1}: {bot.tail_log(5)};"
                    else:
                        results[name].cold_starts.append(took)
                        cpus[name].append(cpu)
        finally:
            for setup in setups.values():
                await setup[0].stop()
    for r in results.values():
        r.cold_start_s = bp.percentile(r.cold_starts, 50) if r.cold_starts else None
    return results, cpus


async def cold_starts_only(args: argparse.Namespace) -> int:
    """--only-cold-start: the interleaved cold starts alone, and their summary line."""
    print(f"cold starts: {args.cold_starts} per bot, interleaved, {args.agents} agents; {bp.machine_load()}", flush=True)
    results, cpus = await interleaved_cold_starts(args)
    for name, r in results.items():
        colds = "/".join(f"{c:.2f}" for c in r.cold_starts)
        print(f"{name:<11} cold start to first /help answer {fmt(r.cold_start_s, '.2f')} s (median of {colds}); "
              f"CPU by then {fmt(bp.percentile(cpus[name], 50), '.2f')} s (median)"
              + (f"; PROBLEM:{r.error}" if r.error else ""))
    kefu, ref = results.get("kefu"), results.get(REFERENCE)
    if kefu and ref and kefu.cold_start_s and ref.cold_start_s:
        rc = kefu.cold_start_s / ref.cold_start_s
        cpu_ratio = bp.percentile(cpus["kefu"], 50) / bp.percentile(cpus[REFERENCE], 50)
        print(f"SUMMARY cold start {kefu.cold_start_s:.2f} vs {ref.cold_start_s:.2f} s = {rc:.2f}x "
              f"(goal <= {GOAL_COLD_RATIO}x) {'ok' if rc <= GOAL_COLD_RATIO else 'MISS'}; CPU by the answer "
              f"{cpu_ratio:.2f}x ({bp.machine_load()})")
    return 0


async def main_async(args: argparse.Namespace) -> int:
    compile_bytecode()
    if args.only_cold_start:
        return await cold_starts_only(args)
    print(f"load benchmark: {args.agents} agents ({args.agents // 2} on duty), rates {args.rates} /s, "
          f"{args.step_seconds:.0f} s each; {bp.machine_load()}", flush=True)
    import_content = None
    if args.import_mb:
        import_content = taobao_export(int(args.import_mb * 2**20))
    # the cold starts first, the bots' in turn (a machine busier during one bot's block would
    # otherwise count against that bot alone); each bot's own start before its load is not counted
    print(f"- cold starts: {args.cold_starts} per bot, interleaved", flush=True)
    colds, _ = await interleaved_cold_starts(args)
    results: dict[str, BotResult] = {}
    with bp.temp_workdir("kefu-load-") as tmp:
        for name in args.bots:
            print(f"- {BOTS[name]}", flush=True)
            results[name] = await run_bot(name, args, Path(tmp), import_content)
            results[name].cold_starts, results[name].cold_start_s = colds[name].cold_starts, colds[name].cold_start_s
            results[name].error += colds[name].error
    report(results, args)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR)
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
