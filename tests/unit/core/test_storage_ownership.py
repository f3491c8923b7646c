"""Storage contracts (issue 14), checked over the source: each feature's tables are written only by
its store module (`bot/<feature>/store.py`), SQL statements live only in store modules, and the
constructs only SQLite understands live only in bot/db.py, where a second engine could replace them.

The source is read with `ast`: only string literals count (comments and docstrings may name
anything), f-strings with their fixed parts, and the table named first to bot/db.py's statement
builders (`insert_ignore_sql("handover_state", …)`).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "bot" / "migrations"

#: Who owns which table: the only module allowed to INSERT, UPDATE or DELETE its rows.
OWNERS: dict[str, set[str]] = {
    "bot/people/store.py": {"users", "invites", "join_failures", "audit_log"},
    # A core table (throttled admin alerts), not a feature's: its one module is its store.
    "bot/notices.py": {"notices"},
    "bot/orders/store.py": {"orders", "import_batches", "imports_in_flight"},
    "bot/kb/store.py": {"kb_script_events", "kb_misses"},
    "bot/reminders/store.py": {
        "reminders", "reminder_order_changes", "reminder_messages", "reminder_message_items",
        "reminder_events", "reminder_unstaffed_notes",
    },
    "bot/handover/store.py": {
        "handover_items", "handover_history", "handover_deliveries", "handover_cards", "handover_notices",
        "handover_state",
    },
    "bot/broadcasts/store.py": {"broadcasts", "broadcast_recipients", "broadcast_schedules"},
    # The KPI store READS orders, reminders, handover, broadcasts and users (allowed: reads) and
    # writes only its own two tables.
    "bot/kpi/store.py": {"kpi_nudges", "kpi_sent"},
    # The KPI read model's tables (migration 0012; the logic in bot/kpi/readmodel.py). Migration
    # 0012 also adds triggers on reminders, reminder_events, reminder_message_items and orders that
    # insert dirty marks into kpi_dirty_reminders / kpi_ship_dirty: migration SQL, not scanned here,
    # and they only write the read model's own tables.
    "bot/kpi/readmodel_store.py": {
        "kpi_reminder_facts", "kpi_daily", "kpi_daily_days", "kpi_dirty_reminders", "kpi_ship_daily",
        "kpi_ship_days", "kpi_ship_dirty", "kpi_read_model",
    },
    "bot/cases/store.py": {"cases", "case_evidence", "case_approvals", "case_history"},
}

#: Modules that may hold SQL statements besides the owners above and bot/db.py.
SQL_ALSO_IN: set[str] = set()

#: SQLite's own dialect: allowed in bot/db.py only.
SQLITE_ONLY = {
    "INSERT OR IGNORE / OR REPLACE": r"\bOR\s+(?:IGNORE|REPLACE)\b",
    "ON CONFLICT … DO": r"\bON\s+CONFLICT\b",
    "the incoming row of an upsert (excluded.)": r"\bexcluded\.",
    "PRAGMA": r"\bPRAGMA\b",
    "strftime() in SQL": r"\bstrftime\s*\(\s*'",
    "julianday()": r"\bjulianday\s*\(",
    "datetime('now')": r"\b(?:datetime|date|time)\s*\(\s*'now'",
    "unixepoch()": r"\bunixepoch\s*\(",
    "RETURNING": r"\bRETURNING\b",
    "rowid": r"\b(?:_?rowid_?|oid)\b",
    "last_insert_rowid()": r"\blast_insert_rowid\b",
    "BEGIN IMMEDIATE/EXCLUSIVE": r"\bBEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED)\b",
    "sqlite_master": r"\bsqlite_(?:master|schema|sequence)\b",
    "TEMP tables": r"\bTEMP(?:ORARY)?\s+TABLE\b|\btemp\.\w",
    "GLOB": r"\bGLOB\b",
    "instr() (strpos/POSITION elsewhere)": r"\binstr\s*\(",
    "min()/max() of several values (LEAST/GREATEST elsewhere)": r"\b(?:MIN|MAX|min|max)\([^()]*,",
}
#: Justified exceptions: (module, construct) → why.
SQLITE_EXCEPTIONS: dict[tuple[str, str], str] = {}

WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+(?:temp\.)?(\w+)")
STATEMENT = re.compile(r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b")
BUILDERS = {"insert_ignore_sql", "insert_replace_sql", "upsert_sql"}


@functools.cache
def _sources() -> tuple[tuple[str, ast.Module], ...]:
    """Every module of bot/ and handlers/, parsed once per test process (never modified)."""
    found = []
    for folder in ("bot", "handlers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found.append((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))))
    return tuple(found)


_LITERALS: dict[int, list[str]] = {}


def _literals(tree: ast.Module) -> list[str]:
    """`_literal_texts`, once per module of `_sources()` (kept alive by its cache, so ids stay theirs)."""
    if id(tree) not in _LITERALS:
        _LITERALS[id(tree)] = _literal_texts(tree)
    return _LITERALS[id(tree)]


def _literal_texts(tree: ast.Module) -> list[str]:
    """Every string literal but docstrings; an f-string as its fixed parts joined by `{}`."""
    docstrings = {
        id(node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(p.value if isinstance(p, ast.Constant) else "{}" for p in node.values))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and id(node) not in inside_fstrings):
            texts.append(node.value)
    return texts


def _builder_tables(tree: ast.Module) -> list[str]:
    tables = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in BUILDERS and isinstance(node.args[0].value, str):
                tables.append(node.args[0].value)
    return tables


def _tables() -> set[str]:
    names = set()
    for path in MIGRATIONS.glob("*.sql"):
        names |= set(re.findall(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", path.read_text(encoding="utf-8")))
    return names


def _writes() -> dict[str, set[str]]:
    tables = _tables()
    writes: dict[str, set[str]] = {}
    for module, tree in _sources():
        written = {m for text in _literals(tree) for m in WRITE.findall(text) if m in tables}
        written |= {t for t in _builder_tables(tree) if t in tables}
        if written:
            writes[module] = written
    return writes


def test_every_table_has_one_owner():
    owned = [t for tables in OWNERS.values() for t in tables]
    assert sorted(t for t in set(owned) if owned.count(t) > 1) == []
    assert sorted(_tables() - set(owned)) == [], "a migration added a table: name its store in OWNERS"
    assert sorted(set(owned) - _tables()) == []


def test_only_the_owner_writes_a_table():
    strays = []
    for module, tables in _writes().items():
        strays += [f"{module} writes {t} (owner: {_owner(t)})" for t in sorted(tables - OWNERS.get(module, set()))]
    assert strays == []


def test_the_owners_do_write_their_tables():
    """The scan sees the writes (a check that cannot fail would prove nothing): every store that
    exists writes at least one of its tables."""
    writes = _writes()
    for module in OWNERS:
        assert writes.get(module, set()) & OWNERS[module], module


def test_sql_statements_live_in_store_modules():
    allowed = set(OWNERS) | SQL_ALSO_IN | {"bot/db.py"}
    strays = [
        module for module, tree in _sources()
        if module not in allowed and any(STATEMENT.search(text) for text in _literals(tree))
    ]
    assert strays == []


def test_sqlite_only_constructs_live_in_bot_db():
    found = []
    for module, tree in _sources():
        if module == "bot/db.py":
            continue
        texts = _literals(tree)
        for construct, pattern in SQLITE_ONLY.items():
            if (module, construct) in SQLITE_EXCEPTIONS:
                continue
            if any(re.search(pattern, text) for text in texts):
                found.append(f"{module}: {construct}")
        if any(isinstance(n, ast.Attribute) and n.attr == "lastrowid" for n in ast.walk(tree)):
            found.append(f"{module}: cursor.lastrowid (use bot.db.insert_id)")
    assert found == []


def _owner(table: str) -> str:
    return next((m for m, tables in OWNERS.items() if table in tables), "nobody")


def test_the_scan_recognises_the_constructs():
    samples = {
        "INSERT OR IGNORE / OR REPLACE": "INSERT OR IGNORE INTO t (a) VALUES (?)",
        "ON CONFLICT … DO": "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO NOTHING",
        "rowid": "SELECT rowid FROM t",
        "RETURNING": "UPDATE t SET a = 1 RETURNING id",
        "strftime() in SQL": "SELECT strftime('%s', at) FROM t",
        "datetime('now')": "SELECT datetime('now')",
        "TEMP tables": "DELETE FROM temp.x",
        "instr() (strpos/POSITION elsewhere)": "SELECT 1 WHERE instr(text, ?) > 0",
        "min()/max() of several values (LEAST/GREATEST elsewhere)": "CASE WHEN a THEN MIN(o.paid_at + ?, b) END",
    }
    for construct, sql in samples.items():
        assert re.search(SQLITE_ONLY[construct], sql), construct
    assert not any(re.search(p, "moment.strftime('%Y-%m-%d')") for c, p in SQLITE_ONLY.items() if c != "strftime() in SQL")
    assert WRITE.findall("UPDATE users SET a = ? WHERE b = ?") == ["users"]
    tree = ast.parse('"""INSERT INTO orders"""\nx = f"UPDATE cases SET {a}"\ny = insert_ignore_sql("kb_misses", ("a",))')
    assert sorted(_literal_texts(tree)) == ["UPDATE cases SET {}", "a", "kb_misses"]
    assert _builder_tables(tree) == ["kb_misses"]
