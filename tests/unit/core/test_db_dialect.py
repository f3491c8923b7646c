"""The SQLite dialect builders at the end of bot/db.py, run against a real database: each says
what it promises (the stores rely on exactly this)."""

from bot.db import (
    Database,
    contains,
    greatest,
    incoming,
    insert_id,
    insert_ignore_sql,
    insert_replace_sql,
    insertion_order,
    least,
    staging_table_sql,
    upsert_sql,
)


async def _scratch(tmp_path) -> Database:
    db = await Database.open(tmp_path / "d.db", migrate=False)
    await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL, note TEXT)")
    return db


async def test_insert_ignore_keeps_the_first_row_and_counts_what_it_inserted(tmp_path):
    db = await _scratch(tmp_path)
    sql = insert_ignore_sql("t", ("k", "v"))
    assert await db.execute(sql, ("a", 1)) == 1
    assert await db.execute(sql, ("a", 2)) == 0
    assert [tuple(r) for r in await db.fetchall("SELECT k, v FROM t")] == [("a", 1)]
    await db.execute("CREATE TABLE src (k TEXT, v INTEGER)")
    await db.executemany("INSERT INTO src VALUES (?, ?)", [("a", 9), ("b", 3)])
    assert await db.execute(insert_ignore_sql("t", ("k", "v"), select="SELECT k, v FROM src WHERE v > ?"), (0,)) == 1
    assert [tuple(r) for r in await db.fetchall("SELECT k, v FROM t ORDER BY k")] == [("a", 1), ("b", 3)]
    await db.close()


async def test_insert_replace_overwrites_the_clashing_row(tmp_path):
    db = await _scratch(tmp_path)
    sql = insert_replace_sql("t", ("k", "v", "note"))
    await db.execute(sql, ("a", 1, "x"))
    await db.execute(sql, ("a", 2, None))
    assert [tuple(r) for r in await db.fetchall("SELECT k, v, note FROM t")] == [("a", 2, None)]
    await db.close()


async def test_upsert_updates_only_what_the_where_allows(tmp_path):
    db = await _scratch(tmp_path)
    sql = upsert_sql("t", ("k", "v", "note"), ("k",), {"v": greatest("t.v", incoming("v")), "note": incoming("note")},
                     where=f"{incoming('v')} IS NOT t.v")
    assert await db.execute(sql, ("a", 5, "first")) == 1
    assert await db.execute(sql, ("a", 3, "lower")) == 1  # v stays 5 (greatest), note changes
    assert await db.execute(sql, ("a", 5, "same v")) == 0  # where: nothing offered differs in v
    assert tuple(await db.fetchone("SELECT v, note FROM t")) == (5, "lower")
    await db.close()


async def test_upsert_from_a_staging_table_applies_rows_in_insertion_order(tmp_path):
    db = await _scratch(tmp_path)
    create, staging = staging_table_sql("incoming_rows", ("k", "v", "note"))
    sql = upsert_sql("t", ("k", "v", "note"), ("k",), {"v": incoming("v"), "note": incoming("note")},
                     from_table=staging, order_by=insertion_order())
    async with db.transaction() as conn:
        await conn.execute(create)
        await conn.executemany(f"INSERT INTO {staging} (k, v, note) VALUES (?, ?, ?)",
                               [("a", 1, "one"), ("b", 2, "two"), ("a", 3, "three")])
        await conn.execute(sql)
    assert [tuple(r) for r in await db.fetchall("SELECT k, v, note FROM t ORDER BY k")] == [
        ("a", 3, "three"), ("b", 2, "two")]  # the later 'a' of the batch wins
    await db.close()


async def test_insert_id_least_and_contains(tmp_path):
    db = await _scratch(tmp_path)
    await db.execute("CREATE TABLE n (id INTEGER PRIMARY KEY, word TEXT)")
    async with db.transaction() as conn:
        first = await insert_id(conn, "INSERT INTO n (word) VALUES (?)", ("发货提醒",))
        second = await insert_id(conn, "INSERT INTO n (word) VALUES (?)", ("催付",))
    assert (first, second) == (1, 2)
    row = await db.fetchone(f"SELECT {least('?', greatest('?', '?'))}", (5, 1, 9))
    assert row[0] == 5
    found = await db.fetchall(f"SELECT id FROM n WHERE {contains('word', '?')}", ("提醒",))
    assert [r[0] for r in found] == [1]
    await db.close()
