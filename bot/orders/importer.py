"""Store orders: file imports, pushes from the HTTP endpoint, lookups for the /order card.

Import rules (issue 4):
- One file is ONE transaction. A crash, a cancellation or a fatal error midway (for example bad
  bytes after the first megabyte) rolls everything back; `dry_run` runs the very same path and
  rolls back at the end, so its counts are exact.
- Orders are upserted by (platform, order_no). Re-importing a file changes nothing: a row is only
  rewritten when a value differs, so the second run reports every order as unchanged.
- Status never moves back. Lifecycle order: unpaid < paid_unshipped < partially_shipped <
  shipped < completed; `closed` is terminal and may follow any status. An incoming row whose
  status is EARLIER than the stored one (an older export) does not touch status, status_raw or
  refunding; it may only fill in fields that are still empty. A row at the same or a later
  status (or `closed`) replaces them, but never blanks a stored time, amount or text with an
  empty cell. `presale` only ever turns on.
- Parse first, then write (issue 12): the whole file is parsed and validated in a separate
  process (bot.orders.parsing: memory-capped, timed out, never holding this process's GIL) a
  batch at a time into a spool file on disk, holding no lock, so a big or hostile file never
  blocks the event loop, other writers or other people's commands. Only then is it written, in
  one short transaction.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from bot.clock import Clock, from_ts, to_ts
from bot.db import Database
from bot.orders import text
from bot.orders.model import (
    PLATFORMS,
    NormalizedOrder,
    RejectedRow,
)
from bot.orders.parsing import (  # order_params, unknown_words: used by the API too
    CHILD_MEMORY_MAX,
    CHILD_NICENESS,
    PARSE_TIMEOUT_S,
    REJECTED_KEPT,
    ParsedFile,
    order_params,
    parse_file,
    unknown_words,
)
from bot.orders.readers import NotAnExport, Source
from bot.orders.store import OrderBatchWriter, OrderStaging, OrderStore
from bot.render import mask_phone

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000  # measured best of 2k/5k/10k/20k on the 1M-row benchmark
PROGRESS_EVERY = 20_000
#: A file import stages ALL its rows before the write transaction, a chunk at a time (each chunk
#: holds the connection for milliseconds), in a scratch table of its own: two imports at once
#: never mix their rows. The transaction then only merges, a chunk per statement.
STAGE_CHUNK = 2_000

Progress = Callable[[int], Awaitable[Any]]


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def orders(self) -> int:
        return self.inserted + self.updated + self.unchanged


class OrderWriter:
    """Upserts batches inside an open transaction and counts what each did."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.rows = OrderStore.writer(conn)
        self.received = 0
        self.changed = 0
        self._before = 0

    async def begin(self) -> None:
        self._before = await self.rows.count()
        await self.rows.prepare()

    async def write(self, params: Sequence[tuple]) -> None:
        if not params:
            return
        self.changed += await self.rows.upsert(params)  # rows inserted or changed (not trigger rows)
        self.received += len(params)

    async def finish(self) -> UpsertCounts:
        inserted = await self.rows.count() - self._before
        updated = self.changed - inserted
        return UpsertCounts(inserted, updated, self.received - inserted - updated)


class _Stager:
    """Stages spooled rows in a scratch table of their own (bot.orders.store.OrderStaging), a chunk
    per short transaction (while the child may still be parsing), then merges them into `orders`
    in one transaction, a chunk per statement. Nothing reaches `orders` before `merge`; `drop`
    removes the table."""

    def __init__(self, db: Database, on_order: Callable[[NormalizedOrder], None] | None = None) -> None:
        self.db, self.on_order = db, on_order
        self.staging = OrderStaging(db)
        self.received = 0

    async def stage(self, parsed: ParsedFile) -> None:
        """Everything the child has spooled so far."""
        await self.staging.create()
        for load in parsed.batches():
            params, orders = await asyncio.to_thread(load)
            if self.on_order is not None and orders:
                for order in orders:
                    self.on_order(order)
            for start in range(0, len(params), STAGE_CHUNK):
                await self.staging.insert(params[start : start + STAGE_CHUNK])
            self.received += len(params)

    async def merge(self, finish: Callable[[OrderBatchWriter, UpsertCounts], Awaitable[None]]) -> UpsertCounts:
        """One transaction; `finish(rows, counts)` runs inside it (records the batch, or raises to
        roll back)."""
        async with self.db.transaction() as conn:
            rows = OrderStore.writer(conn)
            before = await rows.count()
            changed = 0
            # A chunk per statement: the connection's one thread serves other people's queries
            # between them (one statement for all rows kept them waiting the whole merge).
            for start in range(0, self.received, STAGE_CHUNK):
                changed += await rows.merge_staged(self.staging, start, start + STAGE_CHUNK)
            inserted = await rows.count() - before
            counts = UpsertCounts(inserted, changed - inserted, self.received - changed)
            await finish(rows, counts)
        return counts

    async def drop(self) -> None:
        try:
            await asyncio.shield(self.staging.drop())
        except Exception as exc:  # noqa: BLE001 - a leftover scratch table goes with the connection
            log.warning("staging table %s not dropped: %s", self.staging.name, exc)


async def _stage_and_merge(
    db: Database,
    parsed: ParsedFile,
    *,
    finish: Callable[[OrderBatchWriter, UpsertCounts], Awaitable[None]],
) -> UpsertCounts:
    stager = _Stager(db)
    try:
        await stager.stage(parsed)
        return await stager.merge(finish)
    finally:
        await stager.drop()


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


# --- File import ----------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    platform: str | None
    format: str
    filename: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # rows deliberately left out: JD "(删除)" rows, repeated sub-order rows
    #: The rejected rows with reasons, the first REJECTED_KEPT of them (a file re-saved by Excel
    #: can reject every one of a million rows; their details would not fit in memory).
    rejected: list[RejectedRow] = field(default_factory=list)
    rejected_count: int = 0  # all rejected rows, kept or not
    dry_run: bool = False
    batch_id: int | None = None
    #: Orders now due for a reminder; filled in by the reminders feature, None until then.
    due_count: int | None = None
    #: Who the due reminders go to (display names and chats), filled in with due_count; [] = held.
    due_recipients: list[str] | None = None
    #: Why they are held, when they are (a label code of the reminders feature), else "".
    due_held: str = ""
    #: Status / refund words not in the vocabulary: (column, word, rows), most frequent first.
    #: Their orders were kept with the raw text and read conservatively (reminded).
    unknown_words: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def orders(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def rejected_csv(self) -> bytes:
        """The rejected rows with their reasons and original cells, as a UTF-8-BOM CSV (opens in Excel).

        All of them up to REJECTED_KEPT; `rejected_count` says how many there were in all.
        """
        extra: dict[str, None] = {}
        for row in self.rejected:
            extra.update(dict.fromkeys(row.raw))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([csv_safe(c) for c in (*text.name_list("rejected_csv_columns"), *extra)])
        for row in self.rejected:
            writer.writerow(
                [row.line, row.reason_code, csv_safe(row.message_zh), *(csv_safe(row.raw.get(k, "")) for k in extra)]
            )
        return ("\ufeff" + out.getvalue()).encode("utf-8")

    def to_json(self, *, rejected_limit: int | None = None) -> dict[str, Any]:
        rejected = self.rejected if rejected_limit is None else self.rejected[:rejected_limit]
        return {
            "platform": self.platform,
            "format": self.format,
            "filename": self.filename,
            "rows_read": self.rows_read,
            "orders": self.orders,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "rejected": self.rejected_count,
            "rejected_rows": [r.to_json() for r in rejected],
            "dry_run": self.dry_run,
            "batch_id": self.batch_id,
            "due_count": self.due_count,
            "due_recipients": self.due_recipients,
            "unknown_words": [{"column": c, "word": w, "rows": n} for c, w, n in self.unknown_words],
        }

    def text_zh(self, limit: int = 5) -> str:
        """The Chinese summary for the chat or the terminal."""
        return text.render(
            "summary.j2",
            "summary",
            s=self,
            format_label=text.format_name(self.format),
            platform_label=text.platform_name(self.platform) if self.format == "generic" and self.platform else "",
            limit=limit,
        )


#: A cell starting with one of these is a formula to Excel / LibreOffice / WPS (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """A cell for a CSV we hand out: text that a spreadsheet would run as a formula gets a leading
    apostrophe (shown as text, never evaluated)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def import_file(
    db: Database,
    path_or_bytes: Source,
    *,
    filename: str,
    platform: str | None = None,
    shop: str | None = None,
    dry_run: bool = False,
    clock: Clock,
    tz: tzinfo,
    actor: int | None = None,
    progress: Progress | None = None,
    progress_every: int = PROGRESS_EVERY,
    max_bytes: int | None = None,
    on_order: Callable[[NormalizedOrder], None] | None = None,
    batch_size: int = BATCH_SIZE,
    parse_timeout: float = PARSE_TIMEOUT_S,
    parse_memory_max: int | None = CHILD_MEMORY_MAX,
    parse_niceness: int = CHILD_NICENESS,
) -> ImportSummary:
    """Import one export file in one transaction and say what it did.

    Raises NotAnExport (nothing written) when the file is not an order export, including when
    that is only discovered midway (bad bytes deep in the file), and when the parsing process
    crashed, ran out of memory (`parse_memory_max`) or of time (`parse_timeout` seconds).
    `progress(rows_read)` is awaited about every `progress_every` rows; `on_order` sees every
    normalised order (CLI --json), after the whole file was parsed.
    """
    if platform is not None and platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    if isinstance(path_or_bytes, (str, Path)) and not filename:
        filename = Path(path_or_bytes).name
    now = to_ts(clock.now())
    next_progress = progress_every

    stager = _Stager(db, on_order)

    async def on_batch(rows_read: int, _rejected: int, _kept: list[RejectedRow], so_far: ParsedFile) -> None:
        nonlocal next_progress
        # stage what the child spooled so far while it parses on (two cores: parse and stage overlap)
        await stager.stage(so_far)
        if progress is not None and rows_read >= next_progress:
            await progress(rows_read)
            next_progress = (rows_read // progress_every + 1) * progress_every

    # 1. Parse and validate the whole file first, in a separate process (the GIL stays free for
    #    everyone else), a batch at a time into a spool file on disk: no lock held, memory
    #    bounded, a refusal midway writes nothing.
    try:
        parsed = await parse_file(
            path_or_bytes, filename=filename, tz=tz, now=now, platform=platform, shop=shop, max_bytes=max_bytes,
            batch_size=batch_size, keep_orders=on_order is not None, on_batch=on_batch, timeout=parse_timeout,
            memory_max=parse_memory_max, rejected_kept=REJECTED_KEPT, niceness=parse_niceness,
        )
    except BaseException:
        await stager.drop()  # a refusal midway: the staged rows never reach the orders
        raise
    result = parsed.result
    summary = ImportSummary(platform=result.platform, format=result.format, filename=filename, dry_run=dry_run)
    summary.rows_read, summary.skipped = result.rows_read, result.skipped
    summary.unknown_words = result.unknown_words
    summary.rejected, summary.rejected_count = parsed.rejected, parsed.rejected_count
    # 2. Stage every parsed row in a temp table of this import, a chunk at a time (no lock on
    #    the orders meanwhile), then 3. merge them in ONE short transaction (all-or-nothing).

    async def finish(rows: OrderBatchWriter, counts: UpsertCounts) -> None:
        summary.inserted, summary.updated, summary.unchanged = counts.inserted, counts.updated, counts.unchanged
        if dry_run:
            raise _DryRun()
        summary.batch_id = await rows.record_batch(
            source="file",
            filename=filename,
            format=summary.format,
            platform=summary.platform,
            rows_read=summary.rows_read,
            inserted=summary.inserted,
            updated=summary.updated,
            unchanged=summary.unchanged,
            rejected=summary.rejected_count,
            skipped=summary.skipped,
            created_at=now,
            actor=actor,
        )

    try:
        await stager.stage(parsed)  # the rest
        await stager.merge(finish)
    except _DryRun:
        pass
    finally:
        parsed.close()
        await stager.drop()
    return summary


# --- Pushes (HTTP endpoint) -----------------------------------------------------------------------


async def upsert_orders(
    db: Database,
    orders: Iterable[NormalizedOrder],
    *,
    clock: Clock,
    source: str = "api",
    actor: int | None = None,
    dry_run: bool = False,
    record: bool = True,
) -> UpsertCounts:
    """Upsert already-normalised orders in one transaction (same merge rule as file imports)."""
    now = to_ts(clock.now())
    params = [order_params(o, source, now) for o in orders]
    counts = UpsertCounts()
    try:
        async with db.transaction() as conn:
            writer = OrderWriter(conn)
            await writer.begin()
            for start in range(0, len(params), BATCH_SIZE):
                await writer.write(params[start : start + BATCH_SIZE])
            counts = await writer.finish()
            if dry_run:
                raise _DryRun()
            if record:
                await writer.rows.record_batch(
                    source="api",
                    format=source,
                    rows_read=len(params),
                    inserted=counts.inserted,
                    updated=counts.updated,
                    unchanged=counts.unchanged,
                    created_at=now,
                    actor=actor,
                )
    except _DryRun:
        pass
    return counts


async def upsert_parsed(db: Database, parsed: ParsedFile, *, clock: Clock, actor: int | None = None) -> UpsertCounts:
    """Write a push parsed in the parsing process (bot.orders.parsing.parse_push): the same merge
    and record as `upsert_orders`, in one transaction. Closes `parsed`."""
    now = to_ts(clock.now())

    async def finish(rows: OrderBatchWriter, counts: UpsertCounts) -> None:
        await rows.record_batch(
            source="api", format="api", rows_read=parsed.result.rows_read, inserted=counts.inserted,
            updated=counts.updated, unchanged=counts.unchanged, created_at=now, actor=actor,
        )

    try:
        return await _stage_and_merge(db, parsed, finish=finish)
    finally:
        parsed.close()


# --- Lookups for the /order card and script variables ---------------------------------------------


@dataclass(slots=True, kw_only=True)
class StoredOrder(NormalizedOrder):
    """A row of the orders table: the normalised order plus what storing it added."""

    id: int
    source: str
    first_seen_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> StoredOrder:
        def moment(ts: int | None) -> datetime | None:
            return None if ts is None else from_ts(ts)

        cents = row["amount_cents"]
        return cls(
            id=row["id"],
            platform=row["platform"],
            order_no=row["order_no"],
            shop=row["shop"],
            status=row["status"],
            status_raw=row["status_raw"],
            refunding=bool(row["refunding"]),
            presale=bool(row["presale"]),
            created_at=moment(row["created_at"]),
            paid_at=moment(row["paid_at"]),
            shipped_at=moment(row["shipped_at"]),
            amount=None if cents is None else (Decimal(cents) / 100).quantize(Decimal("0.01")),
            buyer=row["buyer"],
            item_title=row["item_title"],
            tracking_no=row["tracking_no"],
            carrier=row["carrier"],
            on_hold=bool(row["on_hold"]),
            ship_from=moment(row["ship_from"]),
            ship_by=moment(row["ship_by"]),
            source=row["source"],
            first_seen_at=from_ts(row["first_seen_at"]),
            updated_at=from_ts(row["updated_at"]),
        )


def clean_order_no(order_no: str) -> str:
    """An order number as an agent pastes it: spaces, quotes, `=` and tabs removed."""
    return "".join(order_no.split()).strip("\"'=＝")


async def find_orders(db: Database, order_no: str) -> list[StoredOrder]:
    """Every stored order with this number (normally one), most recently updated first."""
    return [StoredOrder.from_row(r) for r in await OrderStore(db).by_number(clean_order_no(order_no))]


async def get_order(db: Database, order_no: str, platform: str | None = None) -> StoredOrder | None:
    """The stored order; without a platform, the most recently updated one with that number."""
    if platform is None:
        found = await find_orders(db, order_no)
        return found[0] if found else None
    row = await OrderStore(db).by_key(platform, clean_order_no(order_no))
    return None if row is None else StoredOrder.from_row(row)


def _local(moment: datetime | None, tz: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def order_variables(order: StoredOrder | NormalizedOrder, tz: tzinfo) -> dict[str, str]:
    """Script variables for one order: all strings, '' when unknown, times local 'YYYY-MM-DD HH:MM'."""
    return {
        "order_no": order.order_no,
        "shop": order.shop,
        "platform": order.platform,
        "platform_name": text.platform_name(order.platform),
        "amount": "" if order.amount is None else f"{order.amount:.2f}",
        "buyer": mask_phone(order.buyer),
        "status": order.status,
        "status_text": text.status_name(order.status),
        "status_raw": order.status_raw,
        "created_at": _local(order.created_at, tz),
        "paid_at": _local(order.paid_at, tz),
        "shipped_at": _local(order.shipped_at, tz),
        "item_title": order.item_title,
        "tracking_no": order.tracking_no,
        "carrier": order.carrier,
    }


__all__ = [
    "ImportSummary", "NotAnExport", "StoredOrder", "UpsertCounts", "find_orders", "get_order",
    "import_file", "order_params", "order_variables", "upsert_orders", "upsert_parsed",
]
