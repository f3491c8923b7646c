"""SQL of the people feature; the only module that writes its tables: users, invites,
join_failures and audit_log (0001_core.sql).

Other features read `users` (names and roles joined into their lists, the KPI read model) but
never write it; writes go through `PeopleService` (and the sandbox's demo team through
`PeopleService.seed_members`). Methods taking `conn` run inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from bot.db import Database, incoming, upsert_sql

_ORDER_BY_RANK = "ORDER BY CASE role WHEN 'admin' THEN 0 WHEN 'supervisor' THEN 1 ELSE 2 END, shift, employee_no, tg_id"

_ADMIN_SQL = upsert_sql(
    "users", ("tg_id", "username", "full_name", "role", "active", "created_at", "updated_at"), ("tg_id",),
    {"role": "'admin'", "active": "1", "username": incoming("username"), "full_name": incoming("full_name"),
     "updated_at": incoming("updated_at")},
)
_MEMBER_SQL = upsert_sql(
    "users", ("tg_id", "username", "full_name", "role", "active", "invited_by", "created_at", "updated_at"), ("tg_id",),
    {"role": incoming("role"), "active": "1", "username": incoming("username"), "full_name": incoming("full_name"),
     "invited_by": incoming("invited_by"), "updated_at": incoming("updated_at")},
)


class PeopleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users ---------------------------------------------------------------------------------

    async def user(self, tg_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone("SELECT * FROM users WHERE tg_id = ?", (tg_id,))

    async def user_in(self, conn, tg_id: int) -> sqlite3.Row | None:
        cursor = await conn.execute("SELECT * FROM users WHERE tg_id = ?", (tg_id,))
        return await cursor.fetchone()

    async def users(self, *, active_only: bool = False) -> list[sqlite3.Row]:
        """Admins, then supervisors, then agents; by shift and 工号 within a role."""
        where = "WHERE active = 1" if active_only else ""
        return await self.db.fetchall(f"SELECT * FROM users {where} {_ORDER_BY_RANK}")

    async def by_username(self, username: str) -> sqlite3.Row | None:
        return await self.db.fetchone("SELECT * FROM users WHERE lower(username) = lower(?)", (username,))

    async def by_employee_no(self, employee_no: str) -> sqlite3.Row | None:
        return await self.db.fetchone("SELECT * FROM users WHERE employee_no = ?", (employee_no,))

    async def employee_no_taken(self, employee_no: str, besides: int) -> bool:
        row = await self.db.fetchone(
            "SELECT tg_id FROM users WHERE employee_no = ? AND tg_id != ?", (employee_no, besides)
        )
        return row is not None

    async def employee_numbers(self) -> list[str]:
        rows = await self.db.fetchall("SELECT employee_no FROM users WHERE employee_no IS NOT NULL")
        return [row["employee_no"] for row in rows]

    async def other_active_admins(self, tg_id: int) -> int:
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND active = 1 AND tg_id != ?", (tg_id,)
        )
        return int(row[0])

    async def make_admin(self, conn, tg_id: int, username: str | None, full_name: str, now: int) -> None:
        """Insert an active admin, or make the stored person one (names refreshed)."""
        await conn.execute(_ADMIN_SQL, (tg_id, username, full_name, "admin", 1, now, now))

    async def make_member(self, conn, tg_id: int, username: str | None, full_name: str, role: str,
                          invited_by: int, now: int) -> None:
        """Insert an active member with `role`, or make the stored person one."""
        await conn.execute(_MEMBER_SQL, (tg_id, username, full_name, role, 1, invited_by, now, now))

    async def add_member(self, conn, *, tg_id: int, username: str | None, full_name: str, display_name: str,
                         employee_no: str | None, role: str, shift: str | None, now: int) -> None:
        """A complete active member at once (the sandbox's demo team)."""
        await conn.execute(
            "INSERT INTO users (tg_id, username, full_name, display_name, employee_no, role, shift, active,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (tg_id, username, full_name, display_name, employee_no, role, shift, now, now),
        )

    async def set_names(self, tg_id: int, username: str | None, full_name: str) -> None:
        """Fresh Telegram names; clears the 'blocked' mark."""
        await self.db.execute(
            "UPDATE users SET username = ?, full_name = ?, blocked_at = NULL WHERE tg_id = ?",
            (username, full_name, tg_id),
        )

    async def set_blocked_at(self, tg_id: int, at: int | None) -> None:
        await self.db.execute("UPDATE users SET blocked_at = ? WHERE tg_id = ?", (at, tg_id))

    async def update_user(self, conn, tg_id: int, changes: dict[str, object], now: int) -> None:
        """Set these columns (names chosen by the service, never by a user) and updated_at."""
        assignments = ", ".join(f"{column} = ?" for column in changes)
        await conn.execute(
            f"UPDATE users SET {assignments}, updated_at = ? WHERE tg_id = ?", (*changes.values(), now, tg_id)
        )

    # -- invites and join failures -------------------------------------------------------------

    async def add_invite(self, conn, code: str, role: str, created_by: int, now: int, expires_at: int) -> None:
        await conn.execute(
            "INSERT INTO invites (code, role, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (code, role, created_by, now, expires_at),
        )

    async def invite_in(self, conn, code: str) -> sqlite3.Row | None:
        cursor = await conn.execute("SELECT * FROM invites WHERE code = ?", (code,))
        return await cursor.fetchone()

    async def use_invite(self, conn, code: str, tg_id: int, now: int) -> None:
        await conn.execute("UPDATE invites SET used_by = ?, used_at = ? WHERE code = ?", (tg_id, now, code))

    async def expire_open_invites(self, conn, creator: int, now: int) -> int:
        """End the creator's unused, unexpired codes now; how many."""
        cursor = await conn.execute(
            "UPDATE invites SET expires_at = ? WHERE created_by = ? AND used_by IS NULL AND expires_at > ?",
            (now, creator, now),
        )
        return cursor.rowcount

    async def open_invites(self, creator: int, now: int) -> int:
        row = await self.db.fetchone(
            "SELECT COUNT(*) FROM invites WHERE created_by = ? AND used_by IS NULL AND expires_at > ?",
            (creator, now),
        )
        return int(row[0])

    async def inviter_id(self, tg_id: int) -> int | None:
        """Who created the invitation this person last joined with."""
        row = await self.db.fetchone(
            "SELECT created_by FROM invites WHERE used_by = ? ORDER BY used_at DESC LIMIT 1", (tg_id,))
        return row["created_by"] if row else None

    async def join_failures_in(self, conn, tg_id: int, since: int) -> int:
        cursor = await conn.execute("SELECT COUNT(*) FROM join_failures WHERE tg_id = ? AND at > ?", (tg_id, since))
        return int((await cursor.fetchone())[0])

    async def add_join_failure(self, conn, tg_id: int, now: int) -> None:
        await conn.execute("INSERT INTO join_failures (tg_id, at) VALUES (?, ?)", (tg_id, now))

    # -- audit log -----------------------------------------------------------------------------

    async def audit(self, conn, at: int, actor: int | None, action: str, detail: str) -> None:
        await conn.execute(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)", (at, actor, action, detail)
        )

