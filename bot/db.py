"""SQLite storage: one aiosqlite connection per process, numbered SQL migrations, online backup.

Writes that span several statements go through `transaction()`, which serialises them with an
asyncio lock and `BEGIN IMMEDIATE`, so two handlers never interleave half-done changes.

Read isolation (issue 13: updates run concurrently). SQLite shows a connection its own
uncommitted changes, so with one shared connection a read running while another handler's
transaction is open would see that transaction's half-done state (and might act on a change that
is then rolled back). So reads outside a transaction use a second, read-only connection (WAL mode:
it sees only committed data and never waits for the writer, so a long import does not hold up
anyone's /s). Inside its own transaction a task reads on the write connection (it sees its own
changes, as before). An in-memory database cannot be shared by two connections: there reads
outside a transaction wait while a write transaction is open, and a transaction starts only when
the reads under way have finished (new reads queue behind it, so writes are never starved).

Reads on the event loop's own thread (issue 13, p99). Outside a transaction a read first runs
right where it is asked, on a third, plain read-only connection (`InlineReader`): an indexed
lookup takes tens of microseconds there, while a trip to a connection's thread and back costs more
than that and, on a busy machine, waits for the interpreter lock once each way (a few ms each,
the tail of every reply). A read is never allowed to hold the loop: SQLite's progress handler
stops it after `INLINE_READ_BUDGET_S`, it runs again on the reader's thread, and its SQL goes to
the thread from then on (the handler runs between SQLite's steps, so one long step, such as
sorting the rows gathered so far or a whole-table `count(*)`, can outlast the budget: such SQL
belongs in a transaction on the write thread). A read the file's lock refuses at once (another
process's checkpoint) also goes to the thread, which may wait for it. Each inline read ends with a pass through the
loop, as a thread read did, so a task reading in a loop never starves the others.

Writes on the loop's thread too, for the same reason (`LoopWriter`: the write connection itself,
used directly while the write lock is held, when its thread has nothing to do). A single write
statement runs there within the same budget (stopped, SQLite rolls it back and it runs on the
write thread), and a transaction opened with `transaction(on_loop=True)` (the few statements
behind a button press or a handover note) runs there whole. Neither waits for the file's lock on
the loop: when another process holds it, the work goes to the write thread, which waits for it.
The write connection does not checkpoint the WAL at a commit (that may fsync, on the loop's
thread); a passive checkpoint runs on the reader's thread every `CHECKPOINT_EVERY` commits and
after each transaction on the write thread. Bulk work (imports, reports, the reminder scan,
migrations) keeps its transactions on the write thread; so do statements that cannot run inside
a transaction (PRAGMA, VACUUM, …).
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence, Sized
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

#: How long a write waits for another process's transaction (e.g. `kefu import` of a big file).
BUSY_TIMEOUT_MS = 15000

_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)

#: The Database whose transaction is open, and the task that opened it. A task started inside
#: the transaction inherits this variable but is another task: it is not part of the transaction
#: (its statements wait for the lock like everyone else's, also after the transaction ended).
_IN_TRANSACTION: contextvars.ContextVar[tuple[Database, asyncio.Task | None] | None] = contextvars.ContextVar(
    "kefu_db_transaction", default=None)


def _inside(db: Database) -> bool:
    """The current task is the one inside `db`'s open transaction."""
    held = _IN_TRANSACTION.get()
    return held is not None and held[0] is db and held[1] is asyncio.current_task()

def _first_row(conn: sqlite3.Connection, sql: str, params: Sequence[Any] | dict) -> sqlite3.Row | None:
    """A one-row read done whole in the connection's thread (issue 13, CPU per update): one hop
    to that thread instead of three (execute, fetchone, close the cursor), as aiosqlite's own
    `execute_fetchall` does for many rows."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.fetchone()
    finally:
        cursor.close()


#: Longest a read may run on the event loop's thread before SQLite stops it (it then runs on the
#: reader's thread, as every later run of the same SQL does).
INLINE_READ_BUDGET_S = 0.003
#: SQLite virtual-machine steps between two looks at the clock during an inline read.
_PROGRESS_STEPS = 1000
#: SQL texts remembered as too slow to read inline (at most; dynamic SQL beyond it runs inline).
_SLOW_SQL_KEPT = 1024
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_INTERRUPT = 5, 6, 9
#: `InlineReader.read`'s answer when the read must run on the reader's thread instead.
DEFERRED = object()


class _Budgeted:
    """SQL run on the event loop's thread within a time budget (SQLite's progress handler looks
    at the clock); SQL that went over it is remembered and goes to a thread from then on."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        #: SQL that ran over the budget once.
        self.slow: set[str] = set()
        #: Statements sent to a thread instead (over the budget, or the file's lock was held).
        self.deferred = 0
        self._deadline = 0.0

    def _over_budget(self) -> bool:
        return time.perf_counter() > self._deadline

    def _start_clock(self) -> None:
        self._deadline = time.perf_counter() + self.budget_s

    def _defer(self, sql: str | None = None) -> object:
        """Count a statement sent to a thread; `sql`, stopped over the budget, is remembered."""
        if sql is not None and len(self.slow) < _SLOW_SQL_KEPT:
            self.slow.add(sql)
        self.deferred += 1
        return DEFERRED


def _refusal(exc: sqlite3.OperationalError) -> int | None:
    """The result code when SQLite stopped the statement (over the budget) or the file's lock
    refused it at once; None for any other error."""
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    return code if code in (_SQLITE_INTERRUPT, _SQLITE_BUSY, _SQLITE_LOCKED) else None


class InlineReader(_Budgeted):
    """A read-only connection used on the event loop's thread (see the module text): reads that
    finish within the budget return at once; the others return DEFERRED."""

    def __init__(self, path: Path, budget_s: float = INLINE_READ_BUDGET_S) -> None:
        super().__init__(budget_s)
        # Not tied to a thread: a Database may be closed from another thread than it was used on.
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.inline_reads = 0
        try:
            # as the other connections, but never sleeping on the loop for a lock
            for pragma in ("PRAGMA busy_timeout=0", *_PRAGMAS[2:], "PRAGMA query_only=1"):
                self.conn.execute(pragma)
            self.conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
        except BaseException:
            self.conn.close()
            raise

    def read(self, sql: str, params: Sequence[Any] | dict, *, one: bool) -> Any:
        """The first row (one) or all rows, or DEFERRED: over the budget (the SQL is remembered)
        or refused by the file's lock. Other SQLite errors are raised."""
        if sql in self.slow:
            return self._defer()
        self._start_clock()
        try:
            cursor = self.conn.execute(sql, params)
            try:
                rows = cursor.fetchone() if one else cursor.fetchall()
            finally:
                cursor.close()  # ends the statement: no read snapshot is kept open
        except sqlite3.OperationalError as exc:
            code = _refusal(exc)
            if code is None:
                raise
            return self._defer(sql if code == _SQLITE_INTERRUPT else None)
        self.inline_reads += 1
        return rows

    def close(self) -> None:
        self.conn.close()


#: Statements that manage transactions themselves or cannot run inside one: never wrapped in
#: the loop writer's BEGIN … COMMIT (they run as before, on the write thread).
_NOT_IN_A_TRANSACTION = re.compile(r"\s*(PRAGMA|VACUUM|ATTACH|DETACH|BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b",
                                   re.IGNORECASE)
#: Commits on the loop's writer between two passive WAL checkpoints (run on the reader's thread).
CHECKPOINT_EVERY = 200


class LoopWriter(_Budgeted):
    """The write connection, used directly on the event loop's thread (see the module text) while
    the Database's write lock is held: its own thread then has nothing to do. One connection for
    both, so a transaction's scratch tables and its view of the data are the same on either."""

    def __init__(self, conn: sqlite3.Connection, budget_s: float = INLINE_READ_BUDGET_S) -> None:
        super().__init__(budget_s)
        self.conn = conn
        self.commits = 0

    def _at_once(self, sql: str) -> None:
        """Run a statement without sleeping for another process's lock (the connection's busy
        timeout is restored after)."""
        conn = self.conn
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute(sql)
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def statement(self, sql: str, params: Sequence[Any] | dict) -> Any:
        """One statement as its own transaction: its cursor (rowcount, lastrowid), or DEFERRED
        (over the budget, the SQL then remembered; or another process holds the lock): nothing
        written then. In a transaction of its own, not SQLite's autocommit: SQLite may report a
        statement as stopped after its autocommit was already done; here a stopped statement's
        transaction is rolled back whatever it did."""
        if sql in self.slow:
            return self._defer()
        if not self.begin():
            return DEFERRED
        conn = self.conn
        try:
            self._start_clock()
            conn.set_progress_handler(self._over_budget, _PROGRESS_STEPS)
            try:
                cursor = conn.execute(sql, params)
                if cursor.description is not None:  # `… RETURNING`: its rows end the statement
                    cursor.fetchall()
            finally:
                conn.set_progress_handler(None, 0)
            conn.execute("COMMIT")
        except BaseException as exc:
            self.roll_back()
            if isinstance(exc, sqlite3.OperationalError) and _refusal(exc) == _SQLITE_INTERRUPT:
                return self._defer(sql)
            raise
        return cursor

    def roll_back(self) -> None:
        """ROLLBACK, if SQLite has not rolled back already (e.g. after SQLITE_FULL)."""
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def begin(self) -> bool:
        """BEGIN IMMEDIATE; False when another process holds the lock (nothing begun)."""
        try:
            self._at_once("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _refusal(exc) is None:
                raise
            self._defer()
            return False
        return True


class _LoopCursor:
    """The part of aiosqlite's Cursor the stores use, over a cursor of the loop's writer."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def fetchone(self) -> sqlite3.Row | None:
        return self._cursor.fetchone()

    async def fetchall(self) -> list[sqlite3.Row]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def __aenter__(self) -> _LoopCursor:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._cursor.close()


class _LoopResult:
    """What `execute` returns, like aiosqlite's: awaited, a cursor; or `async with … as cursor`."""

    __slots__ = ("_run", "_cursor")

    def __init__(self, run: Any) -> None:
        self._run = run
        self._cursor: _LoopCursor | None = None

    def __await__(self):
        return self._open().__await__()

    async def _open(self) -> _LoopCursor:
        return _LoopCursor(self._run())

    async def __aenter__(self) -> _LoopCursor:
        self._cursor = _LoopCursor(self._run())
        return self._cursor

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class _LoopConnection:
    """The part of aiosqlite's Connection a transaction's body uses, on the loop's writer."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> _LoopResult:
        return _LoopResult(lambda: self._conn.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _LoopResult:
        return _LoopResult(lambda: self._conn.executemany(sql, rows))

    async def execute_fetchall(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()


#: aiosqlite's `_execute(fn, *args)` (run fn in the connection's thread) and `_conn` are not
#: public API (present from 0.17 to at least 0.22): used only when both exist, else fetchone
#: falls back to the public cursor calls, so an aiosqlite upgrade cannot break reads.
_ONE_HOP = hasattr(aiosqlite.Connection, "_execute") and isinstance(getattr(aiosqlite.Connection, "_conn", None), property)


MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class MigrationError(RuntimeError):
    pass


def available_migrations() -> list[Migration]:
    """The migration files shipped in bot/migrations, in version order; gaps and clashes refused."""
    found: dict[int, Migration] = {}
    for entry in resources.files("bot.migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version}: {found[version].name}, {entry.name}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (triggers with inner `;` stay whole)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip() and not current.strip().startswith("--"):
        raise MigrationError(f"incomplete SQL statement: {current.strip()[:60]}")
    return statements


#: How long /api/health and admin alerts keep naming a storage fault after it was last met.
FAULT_MEMORY_SECONDS = 300

#: Storage faults by SQLite primary result code (issue 12): named in admin alerts and /api/health.
_FAULT_CODES = {
    13: "disk_full",  # SQLITE_FULL (also PRAGMA max_page_count reached)
    8: "read_only",  # SQLITE_READONLY
    11: "corrupt",  # SQLITE_CORRUPT
    26: "corrupt",  # SQLITE_NOTADB
    10: "io_error",  # SQLITE_IOERR
    14: "cannot_open",  # SQLITE_CANTOPEN
}
_FAULT_WORDS = (
    ("disk is full", "disk_full"),
    ("readonly database", "read_only"),
    ("malformed", "corrupt"),
    ("not a database", "corrupt"),
    ("disk i/o error", "io_error"),
)


def storage_fault(error: BaseException | None) -> str | None:
    """'disk_full' / 'read_only' / 'corrupt' / 'io_error' / 'cannot_open' when `error` (or its
    cause) is a storage fault rather than a bug, else None (`Database.note_fault` also tells a
    full temp folder, 'temp_full', from a full database disk)."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, sqlite3.Error):
            code = getattr(error, "sqlite_errorcode", None)
            if code is not None and (code & 0xFF) in _FAULT_CODES:
                return _FAULT_CODES[code & 0xFF]
            message = str(error).lower()
            for words, kind in _FAULT_WORDS:
                if words in message:
                    return kind
        if isinstance(error, OSError) and error.errno in (28, 30):  # ENOSPC, EROFS
            return "disk_full" if error.errno == 28 else "read_only"
        error = error.__cause__ or error.__context__
        seen += 1
    return None


#: Free space under which a folder counts as full (SQLite's SQLITE_FULL does not say which one).
NEARLY_FULL_BYTES = 64 * 1024 * 1024


def full_where(db_path: Path) -> str:
    """'temp_full' when the temp folder (SQLite's spill files for sorts, TEMP tables and big
    transactions; maybe another disk, e.g. a small tmpfs) is nearly full and the database's disk
    is not; else 'disk_full' (the database's disk, or its page limit)."""
    try:
        temp_free = shutil.disk_usage(tempfile.gettempdir()).free
        db_free = shutil.disk_usage(db_path.parent).free
    except OSError:
        return "disk_full"
    return "temp_full" if temp_free < NEARLY_FULL_BYTES <= db_free else "disk_full"


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._fault: tuple[str, str, float] | None = None
        self._no_transaction = asyncio.Event()  # set while no write transaction is open or waiting
        self._no_transaction.set()
        self._readers = 0
        self._readers_done = asyncio.Event()
        self._tables: set[str] = set()  # tables known to exist (table_exists)
        #: Reads outside a transaction (see the module text); None: reads share `conn`, gated.
        self.reader: aiosqlite.Connection | None = None
        #: Reads outside a transaction on the loop's thread first (None: in memory).
        self.inline: InlineReader | None = None
        #: Single writes and `transaction(on_loop=True)` on the loop's thread (None: in memory).
        self.writer: LoopWriter | None = None
        self._loop_transaction = False  # the open transaction is on `writer`
        self._checkpointing: asyncio.Task | None = None

    @property
    def fault(self) -> tuple[str, str] | None:
        """The last storage fault (kind, detail) a statement met within FAULT_MEMORY_SECONDS. Not
        cleared by a later success: on a nearly full disk small writes pass while imports fail."""
        if self._fault is None or time.monotonic() - self._fault[2] > FAULT_MEMORY_SECONDS:
            return None
        return self._fault[0], self._fault[1]

    def note_fault(self, error: BaseException) -> str | None:
        kind = storage_fault(error)
        if kind == "disk_full":
            kind = full_where(self.path)
        if kind is not None:
            self._fault = (kind, str(error)[:200], time.monotonic())
        return kind

    async def health(self) -> dict[str, Any]:
        """{"status": "ok"} or {"status": "fault", "storage": kind, "detail": …}: a read, plus the
        last fault any write met (a full disk or a read-only file only shows on writes)."""
        try:
            await self.fetchone("SELECT count(*) FROM sqlite_master")
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            kind = self.note_fault(exc) or "unavailable"
            return {"status": "fault", "storage": kind, "detail": str(exc)[:200]}
        if self.fault is not None:
            return {"status": "fault", "storage": self.fault[0], "detail": self.fault[1]}
        return {"status": "ok"}

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True) -> Database:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: the loop's thread uses it too (LoopWriter), while the lock is held
        conn = await aiosqlite.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        try:
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            # "file is not a database" shows here: close, or the connection's thread keeps the
            # process alive after the failure is reported (a hung `kefu run`).
            await conn.close()
            raise
        db = cls(conn, path)
        if migrate:
            try:
                await db.migrate()
            except BaseException:
                await conn.close()
                raise
        if str(path) != ":memory:":
            try:
                db.reader = await cls._open_reader(path)
                db.inline = InlineReader(path)
                if _ONE_HOP:  # aiosqlite lets us reach its sqlite3 connection
                    # checkpoints: `_committed`. Closed at once: an open cursor on the write
                    # connection (this pragma answers with a row) would hold up a VACUUM.
                    async with conn.execute("PRAGMA wal_autocheckpoint=0"):
                        pass
                    db.writer = LoopWriter(conn._conn)
            except BaseException:
                await db.close()
                raise
        return db

    @staticmethod
    async def _open_reader(path: Path) -> aiosqlite.Connection:
        reader = await aiosqlite.connect(str(path), isolation_level=None)
        reader.row_factory = sqlite3.Row
        try:
            for pragma in (*_PRAGMAS[1:], "PRAGMA query_only=1"):  # the file is in WAL mode already
                await reader.execute(pragma)
        except BaseException:
            await reader.close()
            raise
        return reader

    async def close(self) -> None:
        if self._checkpointing is not None and not self._checkpointing.done():
            await asyncio.wait([self._checkpointing])
        self.writer = None  # its connection is `conn`'s, closed below
        if self.inline is not None:
            inline, self.inline = self.inline, None
            inline.close()
        if self.reader is not None:
            reader, self.reader = self.reader, None
            await reader.close()
        await self.conn.close()

    async def user_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0])

    async def migrate(self, migrations: Sequence[Migration] | None = None) -> list[int]:
        """Apply the pending migrations, each in its own transaction; return the versions applied."""
        applied = []
        self._tables.clear()
        for migration in migrations if migrations is not None else available_migrations():
            if migration.version <= await self.user_version():
                continue
            async with self.transaction() as conn:
                try:
                    for statement in split_statements(migration.sql):
                        await conn.execute(statement)
                except sqlite3.Error as exc:
                    raise MigrationError(f"{migration.name}: {exc}") from exc
                await conn.execute(f"PRAGMA user_version = {migration.version:d}")
            applied.append(migration.version)
        return applied

    @asynccontextmanager
    async def transaction(self, *, on_loop: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One atomic unit of work; rolled back on any exception, cancellation included.
        `on_loop`: a few small statements (a press, a note): run on the loop's thread, unless
        another process holds the file's lock (see the module text). Never for bulk work."""
        async with self._lock:
            self._no_transaction.clear()  # reads from now on wait for this transaction's end
            token = _IN_TRANSACTION.set((self, asyncio.current_task()))
            try:
                while self._readers:  # reads already under way finish first
                    self._readers_done.clear()
                    await self._readers_done.wait()
                if on_loop and self.writer is not None and self._begin_on_loop():
                    async with self._committed_on_loop() as conn:
                        yield conn
                else:
                    async with self._begun():
                        yield self.conn
            finally:
                _IN_TRANSACTION.reset(token)
                self._no_transaction.set()

    def _begin_on_loop(self) -> bool:
        try:
            return self.writer.begin()
        except sqlite3.Error as exc:
            self.note_fault(exc)
            raise

    @asynccontextmanager
    async def _committed_on_loop(self) -> AsyncIterator[Any]:
        """The body of a transaction begun on the loop's writer, then COMMIT (ROLLBACK on any
        exception), as `_begun` does on the write thread."""
        conn = self.writer.conn
        self._loop_transaction = True
        try:
            yield _LoopConnection(conn)
        except BaseException as exc:
            self.note_fault(exc)
            self.writer.roll_back()
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self.note_fault(exc)
                self.writer.roll_back()
                raise
            self._committed()
        finally:
            self._loop_transaction = False

    def _committed(self, *, bulk: bool = False) -> None:
        """Count a commit; every CHECKPOINT_EVERY, and after every transaction on the write
        thread (bulk work: an import may have written thousands of pages), a passive checkpoint
        (it never waits for anyone) on the reader's thread: the write connection, used on the
        loop's thread, never checkpoints at a commit (that may fsync)."""
        if self.writer is None:
            return  # in memory, or SQLite checkpoints by itself
        self.writer.commits += 1
        if (self.writer.commits % CHECKPOINT_EVERY and not bulk) or self.reader is None:
            return
        if self._checkpointing is None or self._checkpointing.done():
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint(), name="kefu-db-checkpoint")

    async def _checkpoint(self) -> None:
        try:
            await self.reader.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: closed meanwhile
            self.note_fault(exc)  # the next commit's checkpoint tries again

    @staticmethod
    async def _to_the_end(operation: Awaitable[Any]) -> Any:
        """Await an operation on a connection's thread; if the caller is cancelled meanwhile, still
        wait until the thread has finished it, then raise the cancellation. The thread cannot be
        stopped (a statement waiting for another process's lock goes on for up to the busy
        timeout): leaving early would release the write lock while the thread still uses the
        connection, and the next write on the loop's thread would block the loop behind it."""
        future = asyncio.ensure_future(operation)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                try:
                    await asyncio.wait([future])
                except asyncio.CancelledError:
                    continue  # cancelled again: the thread is still busy all the same
            raise

    @asynccontextmanager
    async def _begun(self) -> AsyncIterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception."""
        try:
            await self._to_the_end(self.conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:
            self.note_fault(exc)
            raise
        except asyncio.CancelledError:
            await self._rolled_back()  # the BEGIN may have gone through after all: nobody owns it
            raise
        try:
            yield
        except BaseException as exc:
            self.note_fault(exc)
            await self._rolled_back()
            raise
        else:
            try:
                await self._to_the_end(self.conn.execute("COMMIT"))
            except sqlite3.Error as exc:
                self.note_fault(exc)
                await self._rolled_back()
                raise
            self._committed(bulk=True)

    async def _rolled_back(self) -> None:
        """ROLLBACK on the write thread, to the end even if cancelled (no transaction: nothing)."""
        try:
            await self._to_the_end(self.conn.execute("ROLLBACK"))
        except sqlite3.Error:
            pass  # SQLite already rolled back (e.g. after SQLITE_FULL), or nothing was begun

    async def _one_statement(self, sql: str, params: Sequence[Any] | dict) -> aiosqlite.Cursor:
        """One write statement as its own transaction. SQLite makes a single statement atomic by
        itself (autocommit), so this is one round trip to the database thread instead of three
        (BEGIN, the statement, COMMIT: issue 13, CPU per update); it still waits for any open
        transaction (the lock) so it never lands inside another task's."""
        if _inside(self):  # inside our own transaction: part of it
            if self._loop_transaction:
                return self._on_loop_writer(sql, params)
            return await self.conn.execute(sql, params)
        async with self._lock:
            self._no_transaction.clear()
            try:
                while self._readers:
                    self._readers_done.clear()
                    await self._readers_done.wait()
                if self.writer is not None and not _NOT_IN_A_TRANSACTION.match(sql):
                    cursor = self.writer.statement(sql, params)
                    if cursor is not DEFERRED:
                        self._committed()
                        return cursor
                cursor = await self._to_the_end(self.conn.execute(sql, params))
                self._committed()
                return cursor
            except BaseException as exc:
                self.note_fault(exc)
                raise
            finally:
                self._no_transaction.set()

    def _on_loop_writer(self, sql: str, params: Sequence[Any] | dict, *, fetch: str | None = None) -> Any:
        """A statement inside the transaction open on the loop's writer: the cursor, or (fetch "one"
        / "all") its first row / all rows."""
        try:
            cursor = self.writer.conn.execute(sql, params)
            if fetch is None:
                return cursor
            try:
                return cursor.fetchone() if fetch == "one" else cursor.fetchall()
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            self.note_fault(exc)
            raise

    async def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> int:
        """Run one write statement in its own transaction; return how many rows it changed."""
        cursor = await self._one_statement(sql, params)
        return cursor.rowcount

    async def insert(self, sql: str, params: Sequence[Any] | dict = ()) -> int:
        """Run one INSERT in its own transaction; return the new row's id."""
        cursor = await self._one_statement(sql, params)
        return int(cursor.lastrowid)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def table_exists(self, name: str) -> bool:
        """Whether table `name` exists (SQLite's catalogue stays in this module). A table once
        found is remembered (asked on every order lookup; tables are only ever added, by
        migrations, which forget what was remembered)."""
        if name in self._tables:
            return True
        found = await self.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None
        if found:
            self._tables.add(name)
        return found

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for a read: the reader outside a transaction; inside our own
        transaction the write connection (our own changes); without a reader, the write
        connection but not while another task's write transaction is open."""
        if _inside(self):
            yield self.conn
            return
        if self.reader is not None:
            yield self.reader
            return
        while not self._no_transaction.is_set():
            await self._no_transaction.wait()
        self._readers += 1
        try:
            yield self.conn
        finally:
            self._readers -= 1
            if not self._readers:
                self._readers_done.set()

    async def trace_statements(self, callback: Any) -> None:
        """Call `callback(sql)` with every statement any of the connections runs (None: stop);
        for tests and debugging (which index a lookup uses)."""
        if self.inline is not None:
            self.inline.conn.set_trace_callback(callback)
        for conn in (self.reader, self.conn):
            if conn is not None:
                await conn.set_trace_callback(callback)

    async def _read_inline(self, sql: str, params: Sequence[Any] | dict, *, one: bool) -> Any:
        """The read done on the loop's thread (see the module text), or DEFERRED."""
        if _inside(self):  # our own changes are on the transaction's connection
            if not self._loop_transaction:
                return DEFERRED
            return self._on_loop_writer(sql, params, fetch="one" if one else "all")
        if self.inline is None:
            return DEFERRED
        try:
            rows = self.inline.read(sql, params, one=one)
        except sqlite3.Error as exc:
            self.note_fault(exc)
            raise
        if rows is not DEFERRED:
            await asyncio.sleep(0)  # a pass through the loop, as a read on a thread was
        return rows

    async def fetchone(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        row = await self._read_inline(sql, params, one=True)
        if row is not DEFERRED:
            return row
        try:
            async with self._reading() as conn:
                if _ONE_HOP:
                    return await conn._execute(_first_row, conn._conn, sql, params)
                async with conn.execute(sql, params) as cursor:  # the public, three-hop way
                    return await cursor.fetchone()
        except sqlite3.Error as exc:
            self.note_fault(exc)  # a corrupt page shows on reads: /api/health names it too
            raise

    async def fetchall(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        rows = await self._read_inline(sql, params, one=False)
        if rows is not DEFERRED:
            return rows
        try:
            async with self._reading() as conn:
                return list(await conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            self.note_fault(exc)
            raise

    async def backup(self, target: str | Path) -> Path:
        """A consistent copy of the live database (SQLite online backup API)."""
        target = Path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        dest = sqlite3.connect(str(target))
        try:
            async with self._lock:  # never a copy with a transaction half done
                await self._to_the_end(self.conn.backup(dest))
        finally:
            dest.close()
        return target


# --- The SQLite dialect, in one place (issue 14) -----------------------------------------------------
# Feature stores (bot/<feature>/store.py) keep their raw SQL, but every construct only SQLite
# understands is built here, so a second engine could replace these few functions and nothing
# else. tests/unit/core/test_storage_ownership.py refuses such constructs anywhere else.


def _columns(columns: Sequence[str]) -> str:
    return ", ".join(columns)


def placeholders(values: int | Sized | Iterable[Any]) -> str:
    """`?, ?, ?`: one parameter mark per value (of a list, or a count of them), for `IN (…)` and
    VALUES lists; the stores use it instead of joining marks by hand."""
    count = values if isinstance(values, int) else len(list(values))
    return ", ".join("?" * count)


_marks = placeholders


def insert_ignore_sql(table: str, columns: Sequence[str], *, select: str | None = None) -> str:
    """INSERT that skips a row clashing with a unique key (SQLite `INSERT OR IGNORE`): one `?`
    per column, or the rows of `select` (a SELECT of the same columns)."""
    source = select if select is not None else f"VALUES ({_marks(columns)})"
    return f"INSERT OR IGNORE INTO {table} ({_columns(columns)}) {source}"


def insert_replace_sql(table: str, columns: Sequence[str]) -> str:
    """INSERT that replaces the row clashing with a unique key (SQLite `INSERT OR REPLACE`)."""
    return f"INSERT OR REPLACE INTO {table} ({_columns(columns)}) VALUES ({_marks(columns)})"


def incoming(column: str) -> str:
    """The value an upsert tried to insert, inside its update expressions (`excluded.<column>`)."""
    return f"excluded.{column}"


def upsert_sql(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    updates: dict[str, str],
    *,
    from_table: str | None = None,
    from_where: str | None = None,
    order_by: str | None = None,
    where: str | None = None,
) -> str:
    """INSERT … ON CONFLICT (key) DO UPDATE SET column = expression …: one `?` per column, or every
    row of `from_table` (same columns; those matching `from_where`, if given; applied in `order_by`
    order). `updates` expressions name the stored row by the table name and the offered row by
    `incoming(column)`; `where` limits which clashing rows change."""
    if from_table is not None:
        # An upsert fed by a SELECT needs a WHERE clause for SQLite to parse it (`WHERE true`).
        source = f"SELECT {_columns(columns)} FROM {from_table} WHERE {from_where or 'true'}"
        if order_by is not None:
            source += f" ORDER BY {order_by}"
    else:
        source = f"VALUES ({_marks(columns)})"
    assignments = ",\n    ".join(f"{column} = {expr}" for column, expr in updates.items())
    sql = f"INSERT INTO {table} ({_columns(columns)})\n{source}\nON CONFLICT ({_columns(key)}) DO UPDATE SET\n    {assignments}"
    return sql if where is None else f"{sql}\nWHERE {where}"


def greatest(*expressions: str) -> str:
    """The largest of several SQL values (SQLite's multi-argument max(); GREATEST elsewhere)."""
    return f"MAX({', '.join(expressions)})"


def least(*expressions: str) -> str:
    """The smallest of several SQL values (SQLite's multi-argument min(); LEAST elsewhere)."""
    return f"MIN({', '.join(expressions)})"


def contains(text: str, part: str) -> str:
    """SQL condition: `part` occurs in `text` (SQLite's instr(); strpos/POSITION elsewhere)."""
    return f"instr({text}, {part}) > 0"


def insertion_order(alias: str | None = None) -> str:
    """A column that orders a table's rows by insertion, for tables without an id of their own
    (SQLite's implicit rowid)."""
    return "rowid" if alias is None else f"{alias}.rowid"


def insertion_range(alias: str | None = None) -> str:
    """SQL condition: the rows inserted (n, m]th, for `(n, m)` as parameters (insertion order
    counts from 1 in a fresh table). A scratch table's rows merged a chunk per statement."""
    order = insertion_order(alias)
    return f"{order} > ? AND {order} <= ?"


def staging_table_sql(name: str, columns: Sequence[str]) -> tuple[str, str]:
    """(create, qualified name) of a per-connection scratch table (SQLite's TEMP schema): it lives
    as long as the connection and no other connection sees it. `insertion_order()` orders its rows."""
    return f"CREATE TEMP TABLE IF NOT EXISTS {name} ({_columns(columns)})", f"temp.{name}"


async def insert_id(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] | dict = ()) -> int:
    """Run one INSERT on `conn` (inside the caller's transaction) and return the new row's id."""
    cursor = await conn.execute(sql, params)
    row_id = cursor.lastrowid
    await cursor.close()
    return int(row_id)
