"""SQL of the cases feature; the only module that reads or writes the cases, case_evidence,
case_approvals and case_history tables (migration 0009_cases.sql).

The link to a stored order reads through the orders feature's public face (`bot.orders.find_orders`),
never the orders table itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.cases.model import UNFINISHED, Approval, Case, Evidence, HistoryEntry
from bot.clock import from_ts, to_ts
from bot.db import Database, insert_id

CASE_COLUMNS = (
    "platform", "shop", "order_no", "order_id", "buyer", "buyer_phone", "buyer_address", "item", "problem",
    "resolution", "amount_cents", "shipping_payer", "responsible", "responsible_person", "needs_supervisor",
    "description", "notes", "state", "opened_by", "owner", "due_at", "opened_at", "updated_at",
    "finished_at", "source",
)


def _moment(ts: int | None) -> datetime | None:
    return None if ts is None else from_ts(ts)


def _ts(value: Any) -> Any:
    return to_ts(value) if isinstance(value, datetime) else value


def case_from_row(row: sqlite3.Row, approval: Approval | None = None, evidence: Sequence[Evidence] = ()) -> Case:
    values = {name: row[name] for name in CASE_COLUMNS}
    for name in ("due_at", "opened_at", "updated_at", "finished_at"):
        values[name] = _moment(values[name])
    values["needs_supervisor"] = bool(values["needs_supervisor"])
    return Case(id=row["id"], approval=approval, evidence=tuple(evidence), **values)


def approval_from_row(row: sqlite3.Row) -> Approval:
    return Approval(
        id=row["id"], case_id=row["case_id"], requester=row["requester"], approver=row["approver"],
        level=row["level"], reasons=tuple(r for r in row["reasons"].split(",") if r),
        resolution=row["resolution"], amount_cents=row["amount_cents"], state=row["state"],
        submitted_at=from_ts(row["submitted_at"]), deliver_at=from_ts(row["deliver_at"]),
        delivered_at=_moment(row["delivered_at"]), remind_at=from_ts(row["remind_at"]),
        reminded_at=_moment(row["reminded_at"]), escalate_at=from_ts(row["escalate_at"]),
        escalated_at=_moment(row["escalated_at"]), nudged_at=_moment(row["nudged_at"]),
        decided_by=row["decided_by"], decided_at=_moment(row["decided_at"]),
        decision_reason=row["decision_reason"],
    )


def evidence_from_row(row: sqlite3.Row) -> Evidence:
    return Evidence(
        id=row["id"], case_id=row["case_id"], kind=row["kind"], file_id=row["file_id"],
        file_unique_id=row["file_unique_id"], caption=row["caption"], added_by=row["added_by"],
        added_at=from_ts(row["added_at"]),
    )


def history_from_row(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"], case_id=row["case_id"], at=from_ts(row["at"]), actor=row["actor"], action=row["action"],
        field=row["field"], old=row["old"], new=row["new"], detail=row["detail"],
    )


class CaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes (each inside the caller's transaction) --------------------------------------------

    async def insert_case(self, conn, values: dict[str, Any]) -> int:
        names = [n for n in CASE_COLUMNS if n in values]
        return await insert_id(
            conn,
            f"INSERT INTO cases ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [_ts(values[n]) for n in names],
        )

    async def update_case(self, conn, case_id: int, changes: dict[str, Any]) -> None:
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await conn.execute(
            f"UPDATE cases SET {assignments} WHERE id = ?", [*(_ts(v) for v in changes.values()), case_id]
        )

    async def add_history(
        self, conn, case_id: int, at: datetime, actor: int | None, action: str,
        field: str = "", old: str = "", new: str = "", detail: str = "",
    ) -> None:
        await conn.execute(
            "INSERT INTO case_history (case_id, at, actor, action, field, old, new, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (case_id, to_ts(at), actor, action, field, old, new, detail),
        )

    async def add_evidence(self, conn, case_id: int, kind: str, file_id: str, file_unique_id: str,
                           caption: str, actor: int, at: datetime) -> int:
        return await insert_id(
            conn,
            "INSERT INTO case_evidence (case_id, kind, file_id, file_unique_id, caption, added_by, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (case_id, kind, file_id, file_unique_id, caption, actor, to_ts(at)),
        )

    async def insert_approval(self, conn, values: dict[str, Any]) -> int:
        names = list(values)
        return await insert_id(
            conn,
            f"INSERT INTO case_approvals ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [_ts(v) for v in values.values()],
        )

    async def update_approval(self, conn, approval_id: int, changes: dict[str, Any], *, only_pending: bool = True) -> int:
        assignments = ", ".join(f"{name} = ?" for name in changes)
        where = " AND state = 'pending'" if only_pending else ""
        cursor = await conn.execute(
            f"UPDATE case_approvals SET {assignments} WHERE id = ?{where}",
            [*(_ts(v) for v in changes.values()), approval_id],
        )
        return cursor.rowcount

    async def case_in(self, conn, case_id: int) -> Case | None:
        """The case with its latest approval, read inside the caller's transaction."""
        cursor = await conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,))
        row = await cursor.fetchone()
        if row is None:
            return None
        cursor = await conn.execute(
            "SELECT * FROM case_approvals WHERE case_id = ? ORDER BY id DESC LIMIT 1", (case_id,)
        )
        latest = await cursor.fetchone()
        return case_from_row(row, None if latest is None else approval_from_row(latest))

    async def approval_in(self, conn, approval_id: int) -> Approval | None:
        cursor = await conn.execute("SELECT * FROM case_approvals WHERE id = ?", (approval_id,))
        row = await cursor.fetchone()
        return None if row is None else approval_from_row(row)

    async def pending_approval_in(self, conn, case_id: int) -> Approval | None:
        cursor = await conn.execute(
            "SELECT * FROM case_approvals WHERE case_id = ? AND state = 'pending'", (case_id,)
        )
        row = await cursor.fetchone()
        return None if row is None else approval_from_row(row)

    # -- reads -------------------------------------------------------------------------------------

    async def get(self, case_id: int, *, with_evidence: bool = True) -> Case | None:
        row = await self.db.fetchone("SELECT * FROM cases WHERE id = ?", (case_id,))
        if row is None:
            return None
        approval = await self.latest_approval(case_id)
        evidence = await self.evidence(case_id) if with_evidence else ()
        return case_from_row(row, approval, evidence)

    async def latest_approval(self, case_id: int) -> Approval | None:
        row = await self.db.fetchone(
            "SELECT * FROM case_approvals WHERE case_id = ? ORDER BY id DESC LIMIT 1", (case_id,)
        )
        return None if row is None else approval_from_row(row)

    async def approval(self, approval_id: int) -> Approval | None:
        row = await self.db.fetchone("SELECT * FROM case_approvals WHERE id = ?", (approval_id,))
        return None if row is None else approval_from_row(row)

    async def approvals(self, case_id: int) -> list[Approval]:
        rows = await self.db.fetchall("SELECT * FROM case_approvals WHERE case_id = ? ORDER BY id", (case_id,))
        return [approval_from_row(r) for r in rows]

    async def evidence(self, case_id: int) -> list[Evidence]:
        rows = await self.db.fetchall("SELECT * FROM case_evidence WHERE case_id = ? ORDER BY id", (case_id,))
        return [evidence_from_row(r) for r in rows]

    async def history(self, case_id: int | None = None) -> list[HistoryEntry]:
        if case_id is None:
            rows = await self.db.fetchall("SELECT * FROM case_history ORDER BY case_id, at, id")
        else:
            rows = await self.db.fetchall("SELECT * FROM case_history WHERE case_id = ? ORDER BY at, id", (case_id,))
        return [history_from_row(r) for r in rows]

    async def search(
        self, *, owner: int | None = None, party: int | None = None, unfinished: bool = False,
        order_no: str | None = None, keyword: str | None = None, opened_from: datetime | None = None,
        opened_to: datetime | None = None, limit: int | None = None,
    ) -> list[Case]:
        """Cases matching every filter given, newest first, each with its latest approval.

        party: cases the person opened, owns, or has been asked to approve (what an agent may see)."""
        where, params = [], []
        if owner is not None:
            where.append("c.owner = ?")
            params.append(owner)
        if party is not None:
            where.append(
                "(c.owner = ? OR c.opened_by = ? OR EXISTS (SELECT 1 FROM case_approvals a"
                " WHERE a.case_id = c.id AND (a.approver = ? OR a.requester = ?)))"
            )
            params += [party] * 4
        if unfinished:
            where.append(f"c.state IN ({', '.join('?' for _ in UNFINISHED)})")
            params += list(UNFINISHED)
        if order_no:
            where.append("c.order_no = ?")
            params.append(order_no)
        if keyword:
            like = "%" + keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                "(c.order_no LIKE ? ESCAPE '\\' OR c.buyer LIKE ? ESCAPE '\\' OR c.item LIKE ? ESCAPE '\\'"
                " OR c.description LIKE ? ESCAPE '\\' OR c.notes LIKE ? ESCAPE '\\')"
            )
            params += [like] * 5
        if opened_from is not None:
            where.append("c.opened_at >= ?")
            params.append(to_ts(opened_from))
        if opened_to is not None:
            where.append("c.opened_at < ?")
            params.append(to_ts(opened_to))
        sql = "SELECT c.* FROM cases c" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY c.id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = await self.db.fetchall(sql, params)
        latest = await self._latest_approvals([r["id"] for r in rows])
        return [case_from_row(r, latest.get(r["id"])) for r in rows]

    async def _latest_approvals(self, case_ids: list[int]) -> dict[int, Approval]:
        found: dict[int, Approval] = {}
        for start in range(0, len(case_ids), 500):
            chunk = case_ids[start:start + 500]
            rows = await self.db.fetchall(
                f"SELECT * FROM case_approvals WHERE id IN (SELECT MAX(id) FROM case_approvals"
                f" WHERE case_id IN ({', '.join('?' for _ in chunk)}) GROUP BY case_id)",
                chunk,
            )
            found.update({r["case_id"]: approval_from_row(r) for r in rows})
        return found

    async def pending_approvals(self, approver: int | None = None) -> list[Approval]:
        sql = "SELECT * FROM case_approvals WHERE state = 'pending'"
        params: list[Any] = []
        if approver is not None:
            sql += " AND approver = ?"
            params.append(approver)
        rows = await self.db.fetchall(sql + " ORDER BY submitted_at, id", params)
        return [approval_from_row(r) for r in rows]

    async def decided_approvals(self, since: datetime, until: datetime) -> list[Approval]:
        rows = await self.db.fetchall(
            "SELECT * FROM case_approvals WHERE state IN ('approved', 'rejected') AND decided_at >= ? AND decided_at < ?"
            " ORDER BY decided_at",
            (to_ts(since), to_ts(until)),
        )
        return [approval_from_row(r) for r in rows]

    async def moves_in(self, since: datetime, until: datetime, target: str) -> list[tuple[int, datetime]]:
        """(case id, moment) of every move into `target` between the two moments (history)."""
        rows = await self.db.fetchall(
            "SELECT case_id, at FROM case_history WHERE action IN ('move', 'opened') AND field = 'state' AND new = ?"
            " AND at >= ? AND at < ? ORDER BY at",
            (target, to_ts(since), to_ts(until)),
        )
        return [(r["case_id"], from_ts(r["at"])) for r in rows]
