"""Hostile input benchmark (issue 12): each hostile file kind sent to the running bot (`kefu run`
as a process against the project's Bot API emulator), with the time until the bot refuses or
imports it, the bot process's peak RSS, and how long another agent's /help waited meanwhile.

    .venv/bin/python benchmarks/hostile_files.py --quick   # ~1.5 minutes, 25 s per kind at most
    .venv/bin/python benchmarks/hostile_files.py           # 150 s per kind at most
    options: --kinds xlsx_bomb,xfd_rows --timeout 60 --rss-cap-mb 1536 --bomb-mb 2048 --keep DIR

Kinds (generated into a temp dir; --keep DIR keeps them):
- xlsx_bomb     an .xlsx (~2 MB) whose sharedStrings.xml inflates to --bomb-mb MB (1 MB strings)
- xfd_rows      an .xlsx (~1 MB): the generic header, then 200,000 rows each with one cell at XFD
- cols_100k     a CSV: the generic header plus 100,000 more columns, 20 rows as wide
- line_10mb     a CSV of one 10 MB line (no line break)
- json_nested   POST /api/orders with 100,000 nested arrays
- json_1e30     POST /api/orders with one order whose amount is 1e30
- json_push_18mb  a legitimate POST /api/orders of ~18 MB (~50,000 orders, under the 20 MB body limit):
                must be written (HTTP 200); read in the parsing process, not the bot's
- xlsx_strings_cap  a well-formed .xlsx whose sharedStrings.xml is just under the cap (24 MB, ~1M
                distinct strings, all held by openpyxl) and 1,000 rows: the peak memory the limits allow
Files are uploaded in the private chat of an agent through the emulator; the JSON goes to the
bot's HTTP API on 127.0.0.1 (KEFU_API_TOKEN / KEFU_API_PORT set for the bot process).

Per kind a fresh bot process on a fresh database (seeded through bot.people/bot.orders): a kind
cannot leave the next one a poisoned state. Timing starts at the upload (or the POST) and stops
at the bot's final word: the first send or edit in that chat that is not an import progress
text (for the API, the HTTP response). A second agent sends /help 50 ms after the upload and
then every 250 ms (three agents taking turns, one /help outstanding each); the longest wait is
reported (">" when still unanswered at the end). Peak RSS is the process's VmHWM (sampled every
20 ms as well; above --rss-cap-mb the process is killed, and the kind reported as killed). Each
kind ends at --timeout at the latest, and the bot process is always stopped.

Goals (issue 12): refusal ≤ 2 s, peak RSS ≤ 300 MB, a bystander never waits more than 200 ms.

Measured on today's main (b8eacb8), `benchmarks/hostile_files.py` (150 s per kind), 2 shared cores:
xlsx_bomb killed at the 1.5 GB cap 8.8 s after the upload (/help waited 49 ms); xfd_rows answered
after 145.6 s (200,000 rows rejected, 109 MB, /help 298 ms); cols_100k imported in 0.27 s (108 MB);
line_10mb refused in 0.16 s (113 MB); json_nested and json_1e30: HTTP 500 in 0.10 / 0.05 s.

After issue 12 (branch w3-12), `benchmarks/hostile_files.py --quick`, 2 shared cores, load ~2.5:
xlsx_bomb refused in 0.11 s (106 MB, /help 17 ms: part checked from the zip directory);
xfd_rows refused in 0.16 s (106 MB, /help 50 ms: sheet scanned for cells beyond column 1000);
cols_100k refused in 0.24 s (115 MB, /help 29 ms); line_10mb refused in 0.17 s (131 MB, /help 27 ms);
json_nested HTTP 400 too_deep in 0.17 s (101 MB, /help 67 ms); json_1e30 HTTP 400 invalid_orders in
0.15 s (99 MB, /help 37 ms); xlsx_strings_cap (a legitimate import at the shared-strings cap)
imported in 10.6 s at 227 MB peak, but /help waited 295 ms (openpyxl holds the GIL in the worker
thread): 6/7 kinds within every goal. Before the 24 MB cap, 62 MB of shared strings peaked at 439 MB.

With the parser in its own process (issue 12, branch s3-12; bot/orders/parsing.py), `--quick`,
load average 1.5-1.8: 8/8 kinds within every goal. Refusals 0.12-0.35 s with /help 6-124 ms;
xlsx_strings_cap imported in 10.0 s, bot 107 MB, parser 161 MB, /help 37 ms (was 295 ms);
json_push_18mb (42,155 orders) written in 1.98 s, bot 137 MB, parser 140 MB, /help 26 ms.
The "child RSS" column is the largest descendant of the bot (the forkserver idles at ~50 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import socket
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _botproc as bp  # noqa: E402

GOAL_REFUSE_S = 2.0
GOAL_RSS_MB = 300
GOAL_BYSTANDER_MS = 200
API_TOKEN = "bench-hostile-token"
HEADER = ["platform", "order_no", "shop", "status", "created_at", "amount"]
KINDS = ["xlsx_bomb", "xfd_rows", "cols_100k", "line_10mb", "json_nested", "json_1e30", "xlsx_strings_cap",
         "json_push_18mb"]
#: Legitimate files: they must import (not be refused); the 2 s refusal goal does not apply to them.
LEGIT = {"xlsx_strings_cap", "json_push_18mb"}


# --- the hostile files ----------------------------------------------------------------------------

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '{shared}</Types>'
)
SHARED_OVERRIDE = ('<Override PartName="/xl/sharedStrings.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="订单" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>{shared}</Relationships>'
)
SHARED_REL = ('<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
              'sharedStrings" Target="sharedStrings.xml"/>')
SHEET_OPEN = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
              '<dimension ref="{dim}"/><sheetData>')
SHEET_CLOSE = "</sheetData></worksheet>"
COLS = "ABCDEF"


def _inline(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _xlsx(path: Path, sheet_rows, *, dim: str, shared_writer=None) -> None:
    """A minimal valid workbook: sheet rows streamed from `sheet_rows` (an iterable of XML
    strings), sharedStrings.xml streamed by `shared_writer(file)` when given."""
    shared = shared_writer is not None
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES.format(shared=SHARED_OVERRIDE if shared else ""))
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.format(shared=SHARED_REL if shared else ""))
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(SHEET_OPEN.format(dim=dim).encode())
            batch: list[str] = []
            for row in sheet_rows:
                batch.append(row)
                if len(batch) >= 5000:
                    sheet.write("".join(batch).encode())
                    batch.clear()
            sheet.write("".join(batch).encode())
            sheet.write(SHEET_CLOSE.encode())
        if shared:
            with zf.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
                shared_writer(f)


def make_xlsx_bomb(path: Path, inflated_mb: int) -> None:
    """Shared strings that inflate to `inflated_mb` MB: the header names, then 1 MB strings that
    the data rows point at (deflate packs 1 MB of one letter into about 1 KB)."""
    big = inflated_mb
    block = b"<si><t>" + b"A" * (1 << 20) + b"</t></si>"

    def shared(f) -> None:
        f.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxml'
                f'formats.org/spreadsheetml/2006/main" count="{len(HEADER) + big}" uniqueCount="{len(HEADER) + big}">'
                .encode())
        for name in HEADER:
            f.write(f"<si><t>{name}</t></si>".encode())
        for _ in range(big):
            f.write(block)
        f.write(b"</sst>")

    def rows():
        yield '<row r="1">' + "".join(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate(COLS)) + "</row>"
        for k in range(big):
            r = k + 2
            yield f'<row r="{r}"><c r="B{r}" t="s"><v>{len(HEADER) + k}</v></c></row>'

    _xlsx(path, rows(), dim=f"A1:F{big + 1}", shared_writer=shared)


def make_xlsx_strings_cap(path: Path) -> None:
    """The memory worst case the limits let in: a well-formed workbook whose sharedStrings.xml is
    just under the cap of bot/orders/limits.py (XLSX_SHARED_STRINGS_MAX), of distinct short
    strings (openpyxl keeps all of them in memory), and 1,000 order rows pointing at some of them."""
    from bot.orders.limits import XLSX_SHARED_STRINGS_MAX

    count = 0
    per = len("<si><t>S0000000000000</t></si>")
    total = (XLSX_SHARED_STRINGS_MAX - 2**20) // per

    def shared(f) -> None:
        nonlocal count
        f.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxml'
                b'formats.org/spreadsheetml/2006/main">')
        for name in HEADER:
            f.write(f"<si><t>{name}</t></si>".encode())
        batch = []
        for i in range(total):
            batch.append(f"<si><t>S{i:013d}</t></si>")
            if len(batch) >= 10000:
                f.write("".join(batch).encode())
                batch.clear()
        f.write("".join(batch).encode())
        f.write(b"</sst>")

    def rows():
        yield '<row r="1">' + "".join(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate(COLS)) + "</row>"
        for r in range(2, 1002):
            cells = [_inline(f"A{r}", "taobao"), f'<c r="B{r}" t="s"><v>{len(HEADER) + r * 500}</v></c>',
                     _inline(f"C{r}", "店"), _inline(f"D{r}", "paid_unshipped"),
                     _inline(f"E{r}", "2026-11-25 10:00:00"), _inline(f"F{r}", "1.00")]
            yield f'<row r="{r}">' + "".join(cells) + "</row>"

    _xlsx(path, rows(), dim="A1:F1001", shared_writer=shared)


def make_xfd_rows(path: Path, rows_count: int = 200_000) -> None:
    def rows():
        yield '<row r="1">' + "".join(_inline(f"{c}1", name) for c, name in zip(COLS, HEADER)) + "</row>"
        for r in range(2, rows_count + 2):
            yield f'<row r="{r}"><c r="XFD{r}"><v>1</v></c></row>'

    _xlsx(path, rows(), dim=f"A1:XFD{rows_count + 1}")


def make_cols_100k(path: Path, extra: int = 100_000, rows_count: int = 20) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADER + [f"c{i}" for i in range(extra)]) + "\r\n")
        for r in range(rows_count):
            f.write(f"taobao,{bp.order_no(900_000 + r)},店,paid_unshipped,2026-11-25 10:00:00,1.00,"
                    + ",".join("x" for _ in range(extra)) + "\r\n")


def make_line_10mb(path: Path, size: int = 10 * 2**20) -> None:
    start = ",".join(HEADER).encode() + b","
    path.write_bytes(start + b"x" * (size - len(start)))


def json_nested(depth: int = 100_000) -> bytes:
    return b"[" * depth + b"]" * depth


def json_1e30() -> bytes:
    order = {"platform": "taobao", "order_no": bp.order_no(800_000), "shop": "小棉袄旗舰店", "status": "paid_unshipped",
             "created_at": "2026-11-25T10:00:00+08:00", "paid_at": "2026-11-25T10:01:00+08:00", "buyer": "b"}
    return json.dumps([order], ensure_ascii=False).replace('"buyer"', '"amount": 1e30, "buyer"').encode()


def json_push(limit: int) -> bytes:
    """A legitimate ERP push just under the 20 MB body limit: a JSON array of full orders."""
    parts, size, i = [], 2, 0
    while True:
        item = json.dumps({
            "platform": "taobao", "order_no": str(4_100_000_000_000_000_000 + i), "shop": "小棉袄旗舰店",
            "status": "paid_unshipped", "status_raw": "买家已付款，等待卖家发货", "created_at": "2026-11-25 10:00:00",
            "paid_at": "2026-11-25 10:01:00", "amount": "129.00", "buyer": f"tb_buyer_{i}",
            "item_title": "加厚羽绒服 冬季 男女同款 " * 3, "tracking_no": "", "carrier": "",
        }, ensure_ascii=False).encode()
        if size + len(item) + 1 > limit:
            break
        parts.append(item)
        size += len(item) + 1
        i += 1
    return b"[" + b",".join(parts) + b"]"


def generate(kinds: list[str], folder: Path, bomb_mb: int) -> dict[str, tuple[str, bytes | Path]]:
    """kind → ("upload", path) or ("api", body)."""
    made: dict[str, tuple[str, bytes | Path]] = {}
    for kind in kinds:
        started = time.perf_counter()
        if kind == "xlsx_bomb":
            path = folder / "订单_bomb.xlsx"
            make_xlsx_bomb(path, bomb_mb)
            made[kind] = ("upload", path)
        elif kind == "xfd_rows":
            path = folder / "订单_xfd.xlsx"
            make_xfd_rows(path)
            made[kind] = ("upload", path)
        elif kind == "cols_100k":
            path = folder / "orders_100k_columns.csv"
            make_cols_100k(path)
            made[kind] = ("upload", path)
        elif kind == "line_10mb":
            path = folder / "orders_one_line.csv"
            make_line_10mb(path)
            made[kind] = ("upload", path)
        elif kind == "xlsx_strings_cap":
            path = folder / "订单_strings.xlsx"
            make_xlsx_strings_cap(path)
            made[kind] = ("upload", path)
        elif kind == "json_nested":
            made[kind] = ("api", json_nested())
        elif kind == "json_1e30":
            made[kind] = ("api", json_1e30())
        elif kind == "json_push_18mb":
            made[kind] = ("api", json_push(18 * 2**20))
        else:
            raise ValueError(kind)
        what = made[kind][1]
        size = what.stat().st_size if isinstance(what, Path) else len(what)
        print(f"  made {kind:<12} {size / 2**20:8.2f} MB in {time.perf_counter() - started:5.1f} s", flush=True)
    return made


# --- one kind against a fresh bot ------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str
    seconds: float | None = None  # to the final word; None: none within the timeout
    answer: str = ""
    http_status: int | None = None
    peak_rss_mb: float = 0.0
    child_peak_mb: float = 0.0  # the largest descendant (forkserver, parsing process)
    children_seen: int = 0
    bystander_max_ms: float | None = None
    bystander_unanswered: bool = False
    bystanders: int = 0
    killed: bool = False
    alive_after: bool = True
    note: str = ""


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children of all its threads, recursively)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


class ChildSampler:
    """Samples the peak RSS (VmHWM) of the bot's descendants every 20 ms: the forkserver and the
    short-lived parsing process. VmHWM only grows, so a sample misses at most the last 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="child-rss", daemon=True)

    def __enter__(self) -> ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.is_set():
            for child in descendants(self.pid):
                try:
                    _, hwm = bp.proc_memory_mb(child)
                except OSError:
                    continue
                self.seen.add(child)
                self.peak_mb = max(self.peak_mb, hwm)
            self._stop.wait(0.02)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def post_api(port: int, body: bytes, timeout: float) -> tuple[int | None, str]:
    import httpx

    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        try:
            response = await client.post(f"http://127.0.0.1:{port}/api/orders", content=body,
                                         headers={"Authorization": f"Bearer {API_TOKEN}",
                                                  "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}"
        return response.status_code, " ".join(response.text.split())[:90]


def final_word(emu: bp.RecordingEmulator, chat: int, since: int) -> bp.Event | None:
    for event in emu.events.get(chat, ())[since:]:
        if event.ok and not any(marker in event.text for marker in bp.IMPORT_PROGRESS_MARKERS):
            return event
    return None


async def run_kind(kind: str, how: str, what: bytes | Path, args: argparse.Namespace, workdir: Path) -> Outcome:
    out = Outcome(kind)
    shifts = bp.on_off_shifts()
    db_path = workdir / f"{kind}.db"
    team = await bp.seed_team(db_path, shifts, 8, orders=50, due=0)
    emu = await bp.start_emulator()
    bp.add_team_to_emulator(emu, team)
    port = free_port()
    env = bp.kefu_env(emu, db_path, shifts, KEFU_API_TOKEN=API_TOKEN, KEFU_API_PORT=str(port),
                      KEFU_API_HOST="127.0.0.1")
    bot = bp.BotProcess(kind, bp.kefu_argv(), env, workdir, rss_cap_mb=args.rss_cap_mb)
    sender, helpers = team.on_duty[0], team.on_duty[1:4]
    sampler: ChildSampler | None = None
    try:
        if await bp.cold_start(emu, bot, sender) is None:
            out.note = "bot did not answer /help at start: " + bot.tail_log(3)
            return out
        await asyncio.sleep(0.3)
        bot.reset_peak()
        sampler = ChildSampler(bot.pid).__enter__()
        since = emu.mark(sender)
        started = time.perf_counter()
        if how == "upload":
            assert isinstance(what, Path)
            emu.send_document(sender, what.name, what.read_bytes())
            done = asyncio.create_task(emu.wait(lambda: final_word(emu, sender, since), args.timeout))
        else:
            assert isinstance(what, bytes)
            done = asyncio.create_task(post_api(port, what, args.timeout))
        waits: list[asyncio.Task] = []
        outstanding: dict[int, asyncio.Task] = {}

        sent_at: dict[asyncio.Task, float] = {}

        async def help_from(agent: int) -> float | None:
            mark = emu.mark(agent)
            sent = time.perf_counter()
            emu.send_text(agent, "/help")
            answered = await emu.wait_send(agent, mark, args.timeout)
            return None if answered is None else answered - sent

        await asyncio.sleep(0.05)
        turn = 0
        while turn == 0 or (not done.done() and time.perf_counter() - started < args.timeout and bot.alive):
            agent = helpers[turn % len(helpers)]
            turn += 1
            if agent not in outstanding or outstanding[agent].done():
                outstanding[agent] = task = asyncio.create_task(help_from(agent))
                sent_at[task] = time.perf_counter()
                waits.append(task)
            await asyncio.wait({done}, timeout=0.25)
        result = await done if done.done() else None
        if not done.done():
            done.cancel()
        finished = time.perf_counter()
        if how == "upload":
            event = result
            if event is not None:
                out.seconds = event.at - started
                out.answer = " ".join(event.text.split())[:90]
        elif result is not None:
            status, text = result
            out.http_status = status
            if status is not None:
                out.seconds = finished - started
            out.answer = f"HTTP {status}: {text}"
        # the bystanders' waits, bounded: whatever is unanswered now waited at least until now
        await asyncio.wait(waits, timeout=max(0.5, min(5.0, args.timeout - (time.perf_counter() - started)))) \
            if waits else None
        # unanswered: waited at least until the bot was killed, or until now
        now = bot.killed_at if bot.killed_for_memory else time.perf_counter()
        worst = 0.0
        for task in waits:
            if task.done() and task.result() is not None:
                worst = max(worst, task.result())
            else:
                out.bystander_unanswered = True
                worst = max(worst, now - sent_at[task])
                task.cancel()
        out.bystanders = len(waits)
        out.bystander_max_ms = worst * 1000 if waits else None
        out.killed = bot.killed_for_memory
        if out.killed:
            out.note = f"killed above the RSS cap {bot.killed_at - started:.1f} s after the upload"
        out.alive_after = bot.alive
        out.peak_rss_mb = max(bot.window_peak_mb(), bot.hwm_mb())
        sampler.__exit__()
        out.child_peak_mb, out.children_seen = sampler.peak_mb, len(sampler.seen)
        if not bot.alive and not out.killed:
            out.note = "process exited: " + " | ".join(bot.tail_log(3).splitlines())
        return out
    finally:
        if sampler is not None:
            sampler.__exit__()
        await bot.stop()
        await emu.stop()


# --- report -----------------------------------------------------------------------------------------

def report(outcomes: list[Outcome], args: argparse.Namespace) -> int:
    print()
    print(f"{'kind':<16} {'final word (s)':>14} {'bot RSS MB':>10} {'child RSS MB':>12} {'/help waited ms':>15}  answer")
    misses = 0
    for o in outcomes:
        seconds = f"{o.seconds:.2f}" if o.seconds is not None else f">{args.timeout:.0f}"
        if o.killed:
            seconds = "killed"
        rss = f"{o.peak_rss_mb:.0f}" + ("!" if o.killed else "")
        wait = "-" if o.bystander_max_ms is None else (">" if o.bystander_unanswered else "") + f"{o.bystander_max_ms:.0f}"
        child = f"{o.child_peak_mb:.0f}" if o.children_seen else "-"
        in_time = o.seconds is not None and (o.kind in LEGIT or o.seconds <= GOAL_REFUSE_S)
        ok = (in_time and max(o.peak_rss_mb, o.child_peak_mb) <= GOAL_RSS_MB and not o.killed
              and (o.bystander_max_ms or 0) <= GOAL_BYSTANDER_MS and not o.bystander_unanswered
              and (o.http_status is None  # a 5xx is a crash, not a refusal; a legitimate push is written
                   or (o.http_status == 200 if o.kind in LEGIT else 400 <= o.http_status < 500)))
        misses += not ok
        extra = o.answer or o.note or "no answer"
        print(f"{o.kind:<16} {seconds:>14} {rss:>10} {child:>12} {wait:>15}  {'ok  ' if ok else 'MISS'} {extra}")
    print(f"goals: refuse <= {GOAL_REFUSE_S:.0f} s (legitimate kinds: {', '.join(sorted(LEGIT))} must import, time "
          f"shown), peak RSS <= {GOAL_RSS_MB} MB for the bot and for each child process (forkserver, parser), bystander /help "
          f"<= {GOAL_BYSTANDER_MS} ms, the API answers 4xx (a 5xx is a crash, not a refusal); '!' = killed at the {args.rss_cap_mb:.0f} MB cap, '>' = still waiting at the end")
    print(f"SUMMARY hostile files: {len(outcomes) - misses}/{len(outcomes)} kinds within every goal "
          f"({bp.machine_load()})")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="at most 25 s per kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--timeout", type=float, default=None, help="seconds per kind (quick 25, else 150)")
    parser.add_argument("--rss-cap-mb", type=float, default=1536)
    parser.add_argument("--bomb-mb", type=int, default=2048, help="what the shared strings inflate to")
    parser.add_argument("--keep", type=Path, help="write the hostile files here and keep them")
    args = parser.parse_args(argv)
    args.timeout = args.timeout or (25.0 if args.quick else 150.0)
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {KINDS}")
    return args


async def main_async(args: argparse.Namespace) -> int:
    print(f"hostile files: {', '.join(args.kinds)}; at most {args.timeout:.0f} s per kind, RSS cap "
          f"{args.rss_cap_mb:.0f} MB; {bp.machine_load()}", flush=True)
    outcomes = []
    with bp.temp_workdir("kefu-hostile-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        made = generate(args.kinds, folder, args.bomb_mb)
        for kind in args.kinds:
            how, what = made[kind]
            outcome = await run_kind(kind, how, what, args, Path(tmp))
            shown = f"{outcome.seconds:.2f} s" if outcome.seconds is not None else "no final word"
            print(f"  {kind:<12} {shown}, peak RSS {outcome.peak_rss_mb:.0f} MB (children {outcome.child_peak_mb:.0f} MB)"
                  + (" (killed at the cap)" if outcome.killed else ""), flush=True)
            outcomes.append(outcome)
    return report(outcomes, args)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR)
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
