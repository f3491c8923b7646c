"""Migrations, transactions and the online backup."""

import asyncio
import sqlite3

import pytest

from bot.db import (
    Database,
    Migration,
    MigrationError,
    available_migrations,
    insert_id,
    split_statements,
)


async def test_migrations_apply_once(tmp_path):
    db = await Database.open(tmp_path / "a" / "k.db")
    latest = available_migrations()[-1].version
    assert await db.user_version() == latest
    assert await db.migrate() == []  # second run is a no-op
    await db.close()
    db = await Database.open(tmp_path / "a" / "k.db")
    assert await db.user_version() == latest
    await db.close()


async def test_failed_migration_rolls_back(tmp_path):
    db = await Database.open(tmp_path / "k.db", migrate=False)
    bad = [
        Migration(1, "0001_ok.sql", "CREATE TABLE a (x INTEGER);"),
        Migration(2, "0002_bad.sql", "CREATE TABLE b (x INTEGER);\nINSERT INTO nowhere VALUES (1);"),
    ]
    with pytest.raises(MigrationError, match="0002_bad.sql"):
        await db.migrate(bad)
    assert await db.user_version() == 1
    tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "a" in tables and "b" not in tables
    await db.close()


def test_split_statements_keeps_triggers_whole():
    sql = "CREATE TABLE t (x);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1;\nEND;\n-- done\n"
    assert len(split_statements(sql)) == 2


async def test_transaction_rolls_back_on_error(db):
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO notices (key, sent_at) VALUES ('k', 1)")
            raise RuntimeError("boom")
    assert await db.fetchone("SELECT * FROM notices") is None


async def test_pragmas(db):
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    async with db.transaction():  # inside a transaction reads use the write connection
        assert (await db.fetchone("PRAGMA busy_timeout"))[0] == 15000  # writes wait for other processes
    assert (await db.fetchone("PRAGMA busy_timeout"))[0] == 0  # the loop's own reads never sleep
    assert (await db.reader.execute_fetchall("PRAGMA busy_timeout"))[0][0] == 15000  # the reads sent to a thread may


async def test_backup_is_a_consistent_copy_while_open(db, tmp_path):
    await db.execute("INSERT INTO notices (key, sent_at) VALUES ('a', 1)")
    target = await db.backup(tmp_path / "backup" / "copy.db")
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT key FROM notices").fetchall() == [("a",)]
    copy.close()


async def test_execute_counts_changed_rows_and_insert_returns_the_id(db):
    first = await db.insert("INSERT INTO notices (key, sent_at) VALUES ('a', 1)")
    second = await db.insert("INSERT INTO notices (key, sent_at) VALUES ('b', 1)")
    assert second == first + 1
    assert await db.execute("UPDATE notices SET sent_at = 2 WHERE key = 'zzz'") == 0
    assert await db.execute("UPDATE notices SET sent_at = 2") == 2


@pytest.mark.parametrize("where", ["file", ":memory:"])
async def test_a_read_never_sees_another_tasks_uncommitted_transaction(tmp_path, where):
    """Updates run concurrently: a read while another handler's transaction is open never sees
    its uncommitted change (on a file: the read connection, at once; in memory: it waits)."""
    db = await Database.open(tmp_path / "k.db" if where == "file" else ":memory:", migrate=False)
    await db.execute("CREATE TABLE t (x INTEGER)")
    inside, release = asyncio.Event(), asyncio.Event()

    async def writer():
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
            assert (await db.fetchone("SELECT count(*) FROM t"))[0] == 1  # its own change: visible
            inside.set()
            await release.wait()
            raise RuntimeError("rolled back")

    task = asyncio.create_task(writer())
    await inside.wait()
    read = asyncio.create_task(db.fetchone("SELECT count(*) FROM t"))
    await asyncio.sleep(0.05)
    if where == "file":
        assert read.done() and (await read)[0] == 0  # committed data only, without waiting
    else:
        assert not read.done()  # waits while the other transaction is open
    release.set()
    with pytest.raises(RuntimeError):
        await task
    assert (await read)[0] == 0  # never saw the row that was rolled back
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO t VALUES (2)")
    assert (await db.fetchone("SELECT count(*) FROM t"))[0] == 1  # a commit is seen at once
    await db.close()


async def test_without_a_reader_a_transaction_waits_for_reads_under_way_and_reads_queue_behind_it():
    db = await Database.open(":memory:", migrate=False)
    await db.execute("CREATE TABLE t (x INTEGER)")
    await db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(2000)])
    order: list[str] = []

    async def read(tag):
        await db.fetchall("SELECT a.x FROM t a, t b WHERE a.x < 3 AND b.x < 300")
        order.append(tag)

    async def write():
        await db.execute("INSERT INTO t VALUES (-1)")
        order.append("write")

    first = asyncio.create_task(read("read before"))
    await asyncio.sleep(0)
    w = asyncio.create_task(write())
    await asyncio.sleep(0)
    later = asyncio.create_task(read("read after"))
    await asyncio.gather(first, w, later)
    assert order == ["read before", "write", "read after"]
    await db.close()


async def test_a_task_started_inside_a_transaction_is_not_part_of_it(db):
    """It inherits the transaction's context variable but is another task: its write waits for
    the transaction to end and survives its rollback, and a later write of it still takes the
    lock (never lands inside another task's transaction)."""
    await db.execute("CREATE TABLE t (x INTEGER)")
    started: list[asyncio.Task] = []
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t VALUES (1)")
            started.append(asyncio.create_task(db.execute("INSERT INTO t VALUES (2)")))
            await asyncio.sleep(0.05)
            assert not started[0].done()  # waits for the lock, not inside this transaction
            raise RuntimeError("roll back")
    await started[0]
    assert [r["x"] for r in await db.fetchall("SELECT x FROM t")] == [2]

    async def later():
        await asyncio.sleep(0.05)  # by now the first transaction is over
        await db.execute("INSERT INTO t VALUES (4)")

    async with db.transaction():
        child = asyncio.create_task(later())
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:  # another transaction, rolled back
            await conn.execute("INSERT INTO t VALUES (3)")
            await asyncio.sleep(0.1)  # the child writes meanwhile: it must wait, not join
            assert not child.done()
            raise RuntimeError("roll back")
    await child
    assert sorted(r["x"] for r in await db.fetchall("SELECT x FROM t")) == [2, 4]


async def test_a_full_temp_folder_is_told_apart_from_a_full_database_disk(db, tmp_path, monkeypatch):
    """SQLITE_FULL does not say which disk: the free space does (a small tmpfs for /tmp)."""
    import shutil
    import tempfile

    full = sqlite3.OperationalError("database or disk is full")
    real = shutil.disk_usage
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def usage(free_in_temp: int, free_for_db: int):
        def disk_usage(path):
            got = real(path)
            free = free_in_temp if str(path) == str(temp) else free_for_db
            return type(got)(got.total, got.total - free, free)
        return disk_usage

    monkeypatch.setattr(shutil, "disk_usage", usage(1 << 20, 1 << 34))
    assert db.note_fault(full) == "temp_full"
    monkeypatch.setattr(shutil, "disk_usage", usage(1 << 20, 1 << 20))
    assert db.note_fault(full) == "disk_full"
    monkeypatch.setattr(shutil, "disk_usage", usage(1 << 34, 1 << 34))
    assert db.note_fault(full) == "disk_full"  # e.g. the database's page limit


# --- reads on the event loop's thread (issue 13, p99) ----------------------------------------------

#: Counts to 2,000,000 in SQLite: tens of milliseconds, far over the inline budget.
SLOW_COUNT = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) SELECT count(*) FROM n"


class LoopTicks:
    """Counts the event loop's passes (a task yielding every `every` seconds) while in use: shows
    that the loop kept running while something else waited."""

    def __init__(self, every: float = 0.0) -> None:
        self.every = every
        self.count = 0

    async def _tick(self) -> None:
        while True:
            self.count += 1
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> "LoopTicks":
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info) -> None:
        self._task.cancel()


async def test_a_read_outside_a_transaction_runs_on_the_loops_thread(db):
    await db.execute("INSERT INTO notices (key, sent_at) VALUES ('a', 1)")
    before = db.inline.inline_reads
    assert (await db.fetchone("SELECT key FROM notices"))["key"] == "a"
    assert [row["key"] for row in await db.fetchall("SELECT key FROM notices")] == ["a"]
    assert db.inline.inline_reads == before + 2 and db.inline.deferred == 0
    async with db.transaction() as conn:  # inside its own transaction a task reads its own changes
        await conn.execute("INSERT INTO notices (key, sent_at) VALUES ('b', 1)")
        assert len(await db.fetchall("SELECT key FROM notices")) == 2
    assert db.inline.inline_reads == before + 2


async def test_a_read_over_the_budget_is_stopped_and_runs_on_the_readers_thread_from_then_on(db):
    """SQLite's progress handler stops a long read on the loop's thread; it runs again on the
    reader's thread (the right answer), and its SQL goes there directly next time."""
    async with LoopTicks() as ticks:
        assert (await db.fetchone(SLOW_COUNT))[0] == 2_000_000
        assert SLOW_COUNT in db.inline.slow and db.inline.deferred == 1
        seen = ticks.count
        assert (await db.fetchall(SLOW_COUNT))[0][0] == 2_000_000
        assert db.inline.deferred == 2
        assert ticks.count > seen + 10  # the loop ran other work while the thread counted


async def test_each_inline_read_passes_through_the_loop(db):
    """A task reading in a loop lets others run between its reads, as reads on a thread did."""
    order: list[str] = []

    async def reads():
        for _ in range(3):
            await db.fetchone("SELECT 1")
            order.append("read")

    async def other():
        for _ in range(3):
            order.append("other")
            await asyncio.sleep(0)

    await asyncio.gather(reads(), other())
    assert order.index("other") < order.index("read") and order[-1] == "read" and "other" in order[1:4]


def test_a_read_the_files_lock_refuses_is_deferred_not_remembered_as_slow(tmp_path):
    """A lock held by another process (a rollback-journal file here) refuses the loop's read at
    once, never making the loop sleep: it goes to the reader's thread, which may wait."""
    from bot.db import DEFERRED, InlineReader

    path = tmp_path / "k.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("INSERT INTO t VALUES (1)")
    reader = InlineReader(path)
    other.execute("BEGIN EXCLUSIVE")
    assert reader.read("SELECT count(*) FROM t", (), one=True) is DEFERRED
    assert reader.slow == set() and reader.deferred == 1
    other.execute("COMMIT")
    assert reader.read("SELECT count(*) FROM t", (), one=True)[0] == 1
    reader.close()
    other.close()


async def test_an_inline_read_error_is_raised_and_named_like_a_threaded_one(db):
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await db.fetchone("SELECT * FROM no_such_table")
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|attempt to write"):
        await db.fetchall("INSERT INTO notices (key, sent_at) VALUES ('x', 1) RETURNING key")


# --- writes on the event loop's thread (issue 13, p99) ---------------------------------------------

NOTICE_INSERT = "INSERT INTO notices (key, sent_at) VALUES (?, 1)"


def pages_in_file(db) -> int:
    """The database file header's page count: it changes only when the WAL is checkpointed."""
    with open(db.path, "rb") as f:
        return int.from_bytes(f.read(32)[28:32], "big")


async def test_a_single_write_runs_on_the_loops_thread_and_is_seen_at_once(db):
    commits = db.writer.commits
    row_id = await db.insert(NOTICE_INSERT, ("a",))
    assert await db.execute("UPDATE notices SET sent_at = 2 WHERE key = 'a'") == 1
    assert db.writer.commits == commits + 2 and db.writer.deferred == 0
    assert tuple(await db.fetchone("SELECT rowid, sent_at FROM notices WHERE key = 'a'")) == (row_id, 2)


async def test_a_write_stopped_over_the_budget_is_written_exactly_once(db, monkeypatch):
    """SQLite may report a statement as stopped after its autocommit already happened (the
    progress handler also runs as a statement ends): a stopped write must then not be run again
    on top of itself. With the handler called at every step and budgets from none to plenty,
    every insert lands once, whether it finished on the loop or on the thread."""
    import random

    import bot.db

    monkeypatch.setattr(bot.db, "_PROGRESS_STEPS", 1)
    rng = random.Random(13)
    for i in range(200):
        db.writer.budget_s = rng.choice([0.0, 1e-6, 2e-5, 5e-5, 1e-4, 1e-3])
        db.writer.slow.clear()
        await db.insert(NOTICE_INSERT, (f"k{i}",))  # a second landing would break the unique key
    assert db.writer.deferred > 20  # many were stopped and sent to the thread
    assert (await db.fetchone("SELECT count(*) FROM notices"))[0] == 200


async def test_a_long_single_write_goes_to_the_write_thread_from_then_on(db):
    fill = ("INSERT INTO notices (key, sent_at) SELECT 'n' || i, 1 FROM "
            "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT i FROM n)")
    assert await db.execute(fill) == 300_000
    assert fill in db.writer.slow and db.writer.deferred == 1
    assert (await db.fetchone("SELECT count(*) FROM notices"))[0] == 300_000


async def test_a_transaction_on_the_loop_commits_reads_its_own_changes_and_hides_them_from_others(db):
    commits = db.writer.commits
    inside, release = asyncio.Event(), asyncio.Event()

    async def writer():
        async with db.transaction(on_loop=True) as conn:
            first = await insert_id(conn, NOTICE_INSERT, ("a",))
            cursor = await conn.execute(NOTICE_INSERT, ("b",))
            assert cursor.lastrowid == first + 1
            await cursor.close()
            async with conn.execute("SELECT count(*) FROM notices") as cursor:
                assert (await cursor.fetchone())[0] == 2
            assert (await db.fetchone("SELECT count(*) FROM notices"))[0] == 2  # its own changes
            assert await db.execute("UPDATE notices SET sent_at = 5") == 2  # part of the transaction
            inside.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    assert (await db.fetchone("SELECT count(*) FROM notices"))[0] == 0  # not committed yet
    release.set()
    await task
    assert db.writer.commits == commits + 1  # one commit for the whole transaction
    assert [tuple(r) for r in await db.fetchall("SELECT key, sent_at FROM notices ORDER BY key")] == [("a", 5), ("b", 5)]


async def test_a_transaction_on_the_loop_rolls_back_on_error(db):
    with pytest.raises(RuntimeError):
        async with db.transaction(on_loop=True) as conn:
            await conn.execute(NOTICE_INSERT, ("a",))
            raise RuntimeError("boom")
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction(on_loop=True) as conn:
            await conn.execute(NOTICE_INSERT, ("b",))
            await conn.execute(NOTICE_INSERT, ("b",))  # the unique key
    assert await db.fetchone("SELECT * FROM notices") is None
    await db.insert(NOTICE_INSERT, ("c",))  # the connection is usable afterwards
    assert (await db.fetchone("SELECT count(*) FROM notices"))[0] == 1


async def test_while_another_process_holds_the_lock_loop_writes_wait_on_the_thread_not_the_loop(db):
    """Another process's transaction (e.g. `kefu import`) holds the file's write lock: the loop
    keeps running while our writes wait for it on the write thread, then land."""
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def in_transaction():
        async with db.transaction(on_loop=True) as conn:
            await conn.execute(NOTICE_INSERT, ("t",))

    try:
        async with LoopTicks(every=0.01) as ticks:
            single = asyncio.create_task(db.insert(NOTICE_INSERT, ("s",)))
            whole = asyncio.create_task(in_transaction())
            await asyncio.sleep(0.3)
            assert not single.done() and not whole.done()  # waiting for the other process…
            assert ticks.count >= 10  # …without holding the loop
            other.execute("COMMIT")
            await asyncio.wait_for(asyncio.gather(single, whole), 10)
    finally:
        other.close()
    assert db.writer.deferred >= 1  # the first one found the lock held (the other then queued behind it)
    assert {r[0] for r in await db.fetchall("SELECT key FROM notices")} == {"s", "t"}


async def test_the_write_connection_checkpoints_every_so_many_commits_off_the_loop(db, monkeypatch):
    """The write connection never checkpoints at a commit (an fsync on the loop); a passive
    checkpoint on the reader's thread copies the WAL into the database file every so often."""
    import bot.db

    monkeypatch.setattr(bot.db, "CHECKPOINT_EVERY", 5)
    async with db.transaction(on_loop=True):  # the write connection's setting
        assert (await db.fetchone("PRAGMA wal_autocheckpoint"))[0] == 0
    await db.execute("CREATE TABLE big (x BLOB)")
    before = pages_in_file(db)
    while db.writer.commits % 5 != 4:
        await db.insert("INSERT INTO big VALUES (zeroblob(8192))")
    assert pages_in_file(db) == before  # nothing copied yet: no checkpoint at commit
    await db.insert("INSERT INTO big VALUES (zeroblob(8192))")  # the fifth commit
    await db._checkpointing
    assert pages_in_file(db) > before


async def test_a_bulk_transaction_is_checkpointed_after_its_commit(db):
    """A transaction on the write thread (an import) may write thousands of pages: the WAL is
    copied into the database file after it, not only every so many commits."""
    await db.execute("CREATE TABLE big (x BLOB)")
    before = pages_in_file(db)
    async with db.transaction() as conn:
        await conn.executemany("INSERT INTO big VALUES (zeroblob(8192))", [()] * 50)
    await db._checkpointing
    assert pages_in_file(db) > before + 50


async def test_statements_that_cannot_run_in_a_transaction_still_run_alone(db):
    await db.execute("INSERT INTO notices (key, sent_at) VALUES ('a', 1)")
    await db.execute("VACUUM")  # "cannot VACUUM from within a transaction" if wrapped
    async with db.transaction(on_loop=True):
        await db.execute("PRAGMA user_version = 77")
    assert (await db.fetchone("PRAGMA user_version"))[0] == 77


async def test_a_write_cancelled_on_the_thread_keeps_the_lock_until_the_thread_is_done(db):
    """Another process holds the file's lock, so a write waits on the write thread; its task is
    cancelled (a stop, a shutdown). The thread cannot be stopped: the write lock stays held until
    it is done, so the next write never uses the connection beside it (that blocked the loop
    for up to the busy timeout)."""
    other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        async with LoopTicks(every=0.01) as ticks:
            first = asyncio.create_task(db.execute(NOTICE_INSERT, ("a",)))
            await asyncio.sleep(0.2)
            first.cancel()
            second = asyncio.create_task(db.execute(NOTICE_INSERT, ("b",)))
            await asyncio.sleep(0.3)
            seen = ticks.count
            await asyncio.sleep(0.3)
            assert ticks.count > seen + 10  # the loop runs while both wait for the other process
            assert not first.done() and not second.done()  # the cancelled one still holds the lock
            other.execute("COMMIT")
            assert await asyncio.wait_for(second, 10) == 1
            with pytest.raises(asyncio.CancelledError):
                await first
    finally:
        other.close()
    # the cancelled statement was already on its way: SQLite wrote it; nothing is left open
    assert {r[0] for r in await db.fetchall("SELECT key FROM notices")} == {"a", "b"}


async def test_a_transaction_cancelled_while_waiting_for_the_lock_leaves_none_open(db):
    """The BEGIN on the write thread goes through after its task was cancelled: it is rolled
    back, not left open for every later write to fail on (or to swallow them until a restart)."""
    other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    async def press():
        async with db.transaction(on_loop=True) as conn:  # to the thread: the lock is held elsewhere
            await conn.execute(NOTICE_INSERT, ("press",))

    try:
        task = asyncio.create_task(press())
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.sleep(0.1)
        other.execute("COMMIT")
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    finally:
        other.close()
    assert not db.writer.conn.in_transaction
    await db.insert(NOTICE_INSERT, ("after",))
    async with db.transaction(on_loop=True) as conn:
        await conn.execute(NOTICE_INSERT, ("after2",))
    await db.close()
    copy = sqlite3.connect(db.path)
    assert {r[0] for r in copy.execute("SELECT key FROM notices")} == {"after", "after2"}
    copy.close()


async def test_a_single_write_with_returning_still_commits_on_the_loop(db):
    assert await db.insert("INSERT INTO notices (key, sent_at) VALUES ('r', 1) RETURNING rowid") > 0
    assert (await db.fetchone("SELECT count(*) FROM notices"))[0] == 1


async def test_in_memory_a_transaction_on_the_loop_runs_on_the_write_thread_as_before():
    """An in-memory database has no second connection: `on_loop` transactions fall back to the
    write thread, with the same commit and rollback."""
    db = await Database.open(":memory:", migrate=False)
    await db.execute("CREATE TABLE t (x INTEGER)")
    assert db.writer is None and db.inline is None
    async with db.transaction(on_loop=True) as conn:
        await conn.execute("INSERT INTO t VALUES (1)")
        assert (await db.fetchone("SELECT count(*) FROM t"))[0] == 1
    with pytest.raises(RuntimeError):
        async with db.transaction(on_loop=True) as conn:
            await conn.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("boom")
    assert [r[0] for r in await db.fetchall("SELECT x FROM t")] == [1]
    await db.close()
