"""Parse and validate an export in a separate process (issue 12).

openpyxl (and csv, json) hold the GIL for long stretches: in a worker thread a legitimate XLSX
at the shared-strings cap made another agent's /help wait ~300 ms. So the reading runs in a
child process started through a `forkserver` (never `fork`: the bot has threads), which writes
the parsed rows, a batch at a time, into a spool file on disk. The parent only receives small
messages (rows read so far, the rejected rows to keep, the final counts) over a pipe, then reads
the spool back and writes it in one short transaction (bot.orders.importer).

The child is bounded: its address space is capped (RLIMIT_AS, `CHILD_MEMORY_MAX`), so a file
that needs too much memory raises MemoryError there rather than starving the machine; it is
killed after `PARSE_TIMEOUT_S`; it exits on its own when the process that started it dies (a
kill -9 of the bot leaves no orphan behind). A crash, MemoryError or timeout becomes a
NotAnExport with a Chinese reason ("parse_crashed", "parse_memory", "parse_timeout"): nothing is
written and nobody waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import re
import signal
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from itertools import islice
from pathlib import Path
from typing import Any

from bot.orders.model import NormalizedOrder, RejectedRow
from bot.orders.readers import NotAnExport, Source

log = logging.getLogger(__name__)

#: Address space of the parsing process. It starts at ~175 MB of address space (openpyxl
#: preloaded; 37 MB resident), plus 64 MB per extra malloc arena; the largest legitimate file the
#: limits allow (an XLSX whose shared strings are just under the 24 MB cap) peaks at ~160 MB RSS
#: in the child (benchmarks/hostile_files.py). 1 GB leaves room and still keeps a hostile file
#: from exhausting the machine.
CHILD_MEMORY_MAX = 1024 * 2**20
#: Wall-clock limit of one parse. A 1,000,000-row export parses in ~30 s on 2 busy cores.
PARSE_TIMEOUT_S = 600.0
#: Rows per pickle in the spool (the parent loads one at a time while others are being served).
SPOOL_CHUNK = 2_000
#: The parser yields the CPU to the bot on a busy machine: a bystander's command comes first
#: (`kefu import`, with nobody waiting, passes 0).
CHILD_NICENESS = 10
#: Rejected rows kept with their details (a file re-saved by Excel can reject every row).
REJECTED_KEPT = 20_000
_START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"

#: on_batch(rows_read, rejected in the batch, rejected rows to keep, the ParsedFile so far)
OnBatch = Callable[[int, int, list[RejectedRow], "ParsedFile"], Awaitable[Any]]


@dataclass(frozen=True)
class ParseJob:
    path: str
    kind: str  # "export" (a file: bot.orders.readers) or "push" (a POST /api/orders body)
    spool: str
    filename: str
    tz: tzinfo
    now: int
    platform: str | None = None
    shop: str | None = None
    max_bytes: int | None = None
    batch_size: int = 10_000
    keep_orders: bool = False
    memory_max: int | None = CHILD_MEMORY_MAX
    rejected_kept: int = REJECTED_KEPT
    niceness: int = CHILD_NICENESS
    #: Files the child removes when it finds itself orphaned (the bot was killed).
    owned: tuple[str, ...] = ()


@dataclass
class ParseResult:
    platform: str | None
    format: str
    rows_read: int
    skipped: int
    unknown_words: list[tuple[str, str, int]]
    batches: int
    peak_rss_kb: int = 0
    #: A push with unreadable items: each item's reason (nothing spooled, nothing to write).
    errors: list[dict] | None = None
    #: A push that is not a readable body at all: (reason, detail) of bot.orders.push.BodyError.
    body_error: tuple[str, str] | None = None


def order_params(order: NormalizedOrder, source: str, now: int) -> tuple:
    """The row of `orders` for one normalised order (times → unix seconds, amount → cents)."""
    return (
        order.platform,
        order.order_no,
        order.shop,
        order.status,
        order.status_raw,
        int(order.refunding),
        int(order.presale),
        None if order.created_at is None else int(order.created_at.timestamp()),
        None if order.paid_at is None else int(order.paid_at.timestamp()),
        None if order.shipped_at is None else int(order.shipped_at.timestamp()),
        None if order.amount is None else int(order.amount * 100),
        order.buyer,
        order.item_title,
        order.tracking_no,
        order.carrier,
        int(order.on_hold),
        None if order.ship_from is None else int(order.ship_from.timestamp()),
        None if order.ship_by is None else int(order.ship_by.timestamp()),
        source,
        now,
        now,
    )


def unknown_words(counter: Any) -> list[tuple[str, str, int]]:
    """(column, word, rows) from a reader's counter, most frequent first."""
    return sorted(((c, w, n) for (c, w), n in counter.items()), key=lambda t: (-t[2], t[0], t[1]))


# --- the child ------------------------------------------------------------------------------------


def _limit_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError) as exc:  # not on this platform: the timeout still holds
        log.warning("parsing process not memory-limited: %s", exc)


_FINISHED = threading.Event()


def _watch_parent(conn: Any, owned: tuple[str, ...]) -> None:
    """Exit when the process that started us is gone (kill -9 of the bot): a parser must not go
    on for nobody. Our parent is the forkserver, which outlives the bot while we run (we hold
    its "alive" pipe), so we watch our end of the pipe to the bot: a pipe's write end reports
    POLLERR once nobody can read it any more."""
    import select

    fd = conn.fileno()

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
        while not _FINISHED.is_set():
            for _, events in poller.poll(500):
                if events & (select.POLLERR | select.POLLHUP) and not _FINISHED.is_set():
                    for path in owned:
                        with contextlib.suppress(OSError):
                            os.unlink(path)
                    os._exit(70)

    threading.Thread(target=watch, name="kefu-parse-watch", daemon=True).start()


def _peak_rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _spool(spool: Any, params: list[tuple], orders: list[NormalizedOrder] | None) -> int:
    """Write params (and orders, when kept) as small pickles; returns how many."""
    count = 0
    for start in range(0, len(params), SPOOL_CHUNK):
        # small pickles: the parent unpickles each holding its GIL, a few ms at a time
        end = start + SPOOL_CHUNK
        pickle.dump((params[start:end], None if orders is None else orders[start:end]), spool,
                    protocol=pickle.HIGHEST_PROTOCOL)
        count += 1
    return count


def _parse_push(job: ParseJob) -> ParseResult:
    from bot.orders.push import BodyError, read_body

    with open(job.path, "rb") as handle:
        body = handle.read()
    if job.path in job.owned:
        with contextlib.suppress(OSError):
            os.unlink(job.path)
    try:
        records, orders, errors, ctx = read_body(body, job.tz)
    except BodyError as exc:
        return ParseResult(None, "api", 0, 0, [], 0, body_error=(exc.reason, exc.detail))
    result = ParseResult(None, "api", len(records), 0, unknown_words(ctx.unknown), 0)
    if errors:
        result.errors = errors
        return result
    del records, body
    with open(job.spool, "wb") as spool:
        result.batches = _spool(spool, [order_params(o, "api", job.now) for o in orders], None)
    return result


def _parse(conn: Any, job: ParseJob) -> ParseResult:
    if job.kind == "push":
        return _parse_push(job)
    from bot.orders.readers import open_export

    source = open(job.path, "rb")  # noqa: SIM115 - the reader owns and closes it
    if job.path in job.owned:
        # the upload's temporary copy: gone from the disk now, readable through our handle (a
        # kill -9 of everyone leaves no file behind)
        with contextlib.suppress(OSError):
            os.unlink(job.path)
    reader = open_export(
        source, tz=job.tz, filename=job.filename, platform=job.platform, shop=job.shop, max_bytes=job.max_bytes
    )
    batches = kept = 0
    with reader, open(job.spool, "wb") as spool:
        items = iter(reader)
        source, now = reader.format.name, job.now
        while True:
            params: list[tuple] = []
            orders: list[NormalizedOrder] = []
            rejected: list[RejectedRow] = []
            for item in islice(items, job.batch_size):
                if item.__class__ is NormalizedOrder:
                    params.append(order_params(item, source, now))
                    if job.keep_orders:
                        orders.append(item)
                else:
                    rejected.append(item)
            if not params and not rejected:
                break
            batches += _spool(spool, params, orders if job.keep_orders else None)
            keep = rejected[: max(0, job.rejected_kept - kept)]
            kept += len(keep)
            spool.flush()  # the parent may read every pickle counted so far while we go on
            conn.send(("batch", reader.rows_read, len(rejected), keep, batches))
        return ParseResult(
            platform=reader.platform,
            format=reader.format.name,
            rows_read=reader.rows_read,
            skipped=reader.skipped,
            unknown_words=unknown_words(reader.context.unknown),
            batches=batches,
        )


def child_main(conn: Any, job: ParseJob) -> None:
    """Entry point of the parsing process: every outcome is one last message on `conn`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the parent's to handle
    if job.niceness:
        with contextlib.suppress(OSError, AttributeError):
            os.nice(job.niceness)
    _watch_parent(conn, job.owned)
    _limit_memory(job.memory_max)
    outcome: tuple
    try:
        result = _parse(conn, job)
        result.peak_rss_kb = _peak_rss_kb()
        outcome = ("done", result)
    except NotAnExport as exc:
        outcome = ("refused", exc)
    except MemoryError:
        outcome = ("failed", "parse_memory", "")  # frames released here, so sending works again
    except OSError as exc:
        outcome = ("oserror", exc.errno, exc.strerror or str(exc), exc.filename)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which logs it
        outcome = ("failed", "parse_crashed", f"{type(exc).__name__}: {exc}"[:500])
    # From here on the parent may take the spool and close the pipe at any moment: the watcher
    # stands down (it would otherwise read that close as the bot's death and remove the spool).
    _FINISHED.set()
    try:
        conn.send(outcome)
    except MemoryError:
        conn.send(("failed", "parse_memory", ""))
    except OSError:  # the bot is gone: nobody will read the spool
        for path in job.owned:
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        conn.close()


# --- the parent -----------------------------------------------------------------------------------


@dataclass
class ParsedFile:
    """What the child read: counts and the spool of parsed batches (remove it with `close`)."""

    result: ParseResult
    spool: str
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_count: int = 0

    #: Pickles written by the child so far (all of them once `result` is set) and read by us.
    written: int = 0
    read: int = 0
    _handle: Any = None

    def hold(self) -> None:
        """Open the spool and remove its name: the data lives as long as this process holds it."""
        if self._handle is None:
            self._handle = open(self.spool, "rb")  # noqa: SIM115 - closed by close()
        with contextlib.suppress(OSError):
            os.unlink(self.spool)

    def batches(self) -> Iterator[Callable[[], tuple[list[tuple], list[NormalizedOrder] | None]]]:
        """Loaders, one per spooled pickle not read yet (params, orders or None), to be called in
        a worker thread one after the other. Usable while the child still writes the spool."""
        if self._handle is None:
            self._handle = open(self.spool, "rb")  # noqa: SIM115 - closed by close()
        handle = self._handle
        while self.read < self.written:
            self.read += 1
            yield lambda: pickle.load(handle)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        with contextlib.suppress(OSError):
            os.unlink(self.spool)


_PRELOADED = False


# The forkserver listens on a Unix socket in multiprocessing's own temp folder, which it makes
# under TMPDIR as .../pymp-XXXXXXXX/listener-XXXXXXXX; such a path cannot pass 107 bytes.
_SOCKET_PATH_MAX = 107
_SOCKET_NAME_ROOM = len("/pymp-XXXXXXXX/listener-XXXXXXXX")


def _socket_folder_fits() -> None:
    """A long TMPDIR would leave the forkserver unable to listen ("AF_UNIX path too long") and
    every import failing: then multiprocessing's folder (only its socket lives there) goes
    under /tmp, while uploads and spools stay in TMPDIR."""
    if len(os.fsencode(tempfile.gettempdir())) + _SOCKET_NAME_ROOM <= _SOCKET_PATH_MAX:
        return
    from multiprocessing import util

    saved = tempfile.tempdir
    tempfile.tempdir = "/tmp"
    try:
        util.get_temp_dir()  # made now and kept by multiprocessing for this process
    finally:
        tempfile.tempdir = saved


def _context() -> Any:
    global _PRELOADED
    ctx = multiprocessing.get_context(_START_METHOD)
    if _START_METHOD == "forkserver" and not _PRELOADED:
        _socket_folder_fits()
        # The server imports the readers once; every parse then starts in milliseconds.
        ctx.set_forkserver_preload(["bot.orders.parsing", "openpyxl"])
        _PRELOADED = True
    return ctx


def _temp_prefix(what: str) -> str:
    """Temp files carry the bot's pid: a file whose bot is gone is a leftover (`sweep_leftovers`)."""
    return f"kefu-{what}-{os.getpid()}-"


_LEFTOVER = re.compile(r"kefu-(?:upload|import)-(\d+)-")


def sweep_leftovers() -> list[str]:
    """Remove the upload copies and spools of bots that no longer run. The parsing process
    removes them when its bot dies, but a bot killed between making one and starting the process
    leaves it behind. Returns the names removed."""
    removed = []
    folder = tempfile.gettempdir()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _LEFTOVER.match(name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def warm_up() -> None:
    """Start the forkserver now (it imports the readers once, ~1 s on a busy machine), so the
    first upload is not the one that waits for it; remove what killed bots left in the temp
    folder. Blocking: call it in a worker thread."""
    if removed := sweep_leftovers():
        log.info("removed %d temp files of bots that no longer run", len(removed))
    _context()
    if _START_METHOD == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _write_temp(data: Any) -> str:
    fd, path = tempfile.mkstemp(prefix=_temp_prefix("upload"))
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:  # a binary file object, from where it stands
                while chunk := data.read(1 << 20):
                    handle.write(chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return path


async def _readable(conn: Any, timeout: float) -> bool:
    """Wait until `conn` has data (or EOF) without a thread; False on timeout."""
    if conn.poll():
        return True
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = conn.fileno()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(True))
    try:
        return await asyncio.wait_for(ready, max(timeout, 0.0))
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def parse_file(
    source: Source,
    *,
    filename: str,
    tz: tzinfo,
    now: int,
    platform: str | None = None,
    shop: str | None = None,
    max_bytes: int | None = None,
    batch_size: int = 10_000,
    keep_orders: bool = False,
    on_batch: OnBatch | None = None,
    timeout: float = PARSE_TIMEOUT_S,
    memory_max: int | None = CHILD_MEMORY_MAX,
    rejected_kept: int = REJECTED_KEPT,
    kind: str = "export",
    niceness: int = CHILD_NICENESS,
) -> ParsedFile:
    """Parse `source` in a child process into a spool file. Raises NotAnExport (a refusal, or the
    child crashed / ran out of memory / of time) or OSError (the file could not be read).

    `on_batch(rows_read, rejected_in_batch, rejected_rows_to_keep)` is awaited after each batch;
    `parsed.batches()` then already yields what the child spooled so far (stage while it parses).
    """
    fd, spool = tempfile.mkstemp(prefix=_temp_prefix("import"))
    os.close(fd)
    parsed = ParsedFile(result=None, spool=spool)  # type: ignore[arg-type]
    temp_source: str | None = None
    process = None
    receiver = sender = None
    ok = False
    try:
        if isinstance(source, (str, Path)):
            path = str(source)
        else:  # the upload's bytes: the child reads them from a file, not through the pipe
            temp_source = path = await asyncio.to_thread(_write_temp, source)
        job = ParseJob(
            path=path, kind=kind, spool=spool, filename=filename, tz=tz, now=now, platform=platform, shop=shop,
            max_bytes=max_bytes, batch_size=batch_size, keep_orders=keep_orders, memory_max=memory_max,
            rejected_kept=rejected_kept, niceness=niceness,
            owned=(spool,) if temp_source is None else (spool, temp_source),
        )
        ctx = _context()
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(target=child_main, args=(sender, job), name="kefu-parse", daemon=True)
        await asyncio.to_thread(process.start)  # the first start launches the forkserver
        sender.close()
        log.debug("parsing %s in process %d", filename, process.pid)
        deadline = time.monotonic() + timeout
        while True:
            if not await _readable(receiver, deadline - time.monotonic()):
                log.warning("parsing %s took over %.0f s: stopped", filename, timeout)
                raise NotAnExport("parse_timeout", filename=filename, minutes=max(1, round(timeout / 60)))
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                await asyncio.to_thread(process.join, 5)
                log.error("the parsing process for %s died (exit code %s)", filename, process.exitcode)
                raise NotAnExport("parse_crashed", filename=filename) from None
            what = message[0]
            if what == "batch":
                _, rows_read, rejected_count, keep, parsed.written = message
                parsed.rejected_count += rejected_count
                parsed.rejected.extend(keep)
                if on_batch is not None:
                    await on_batch(rows_read, rejected_count, keep, parsed)
                continue
            if what == "done":
                parsed.result = message[1]
                parsed.written = parsed.result.batches
                parsed.hold()  # from now on only our handle keeps the spool: a kill -9 leaves no file
                log.info("parsed %s in a separate process: %d rows, peak RSS %.0f MB", filename,
                         parsed.result.rows_read, parsed.result.peak_rss_kb / 1024)
                ok = True
                return parsed
            if what == "refused":
                raise message[1]
            if what == "oserror":
                _, errno, strerror, name = message
                raise OSError(errno, strerror, name)
            _, reason, detail = message
            if detail:
                log.error("parsing %s failed in the child: %s", filename, detail)
            else:
                log.warning("parsing %s ran out of memory in the child (limit %s bytes)", filename, memory_max)
            raise NotAnExport(reason, filename=filename)
    finally:
        if receiver is not None:
            receiver.close()
        if sender is not None:
            sender.close()
        if process is not None and process.pid is not None:
            if process.is_alive():
                process.kill()
            await asyncio.shield(asyncio.to_thread(process.join, 10))
            with contextlib.suppress(ValueError):
                process.close()
        if temp_source is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_source)
        if not ok:
            parsed.close()


async def parse_push(body: bytes, *, tz: tzinfo, now: int, timeout: float = PARSE_TIMEOUT_S,
                     memory_max: int | None = CHILD_MEMORY_MAX) -> ParsedFile:
    """A POST /api/orders body read and validated in the parsing process (json.loads of a big
    body would hold this process's GIL for its whole length). Raises BodyError for a body that
    is not readable; `result.errors` lists unreadable items (then nothing is spooled)."""
    parsed = await parse_file(body, filename="", tz=tz, now=now, timeout=timeout, memory_max=memory_max, kind="push")
    if parsed.result.body_error is not None:
        parsed.close()
        from bot.orders.push import BodyError

        raise BodyError(*parsed.result.body_error)
    return parsed


__all__ = ["CHILD_MEMORY_MAX", "PARSE_TIMEOUT_S", "ParseResult", "ParsedFile", "child_main", "parse_file", "parse_push", "warm_up"]
