"""The handover book (交接本): items written before a shift ends, handed to every following shift
until someone resolves them, each handing confirmed (taken over) by the incoming shift.

No Telegram here: the service takes ids, text and a clock, and answers with plain records.
Every change to an item is kept in handover_history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, to_ts
from bot.db import Database
from bot.handover.model import (
    KINDS,
    NOTE_LIMIT,
    TEXT_LIMIT,
    Attachment,
    CardMessage,
    HandoverError,
    HistoryEntry,
    Item,
    SearchResult,
    ShiftStats,
)
from bot.handover.occurrences import (
    occurrence_for,
    occurrence_key,
    previous_end,
    split_key,
    windows_between,
)
from bot.handover.orders import DueOrder, OrderRef, due_within, known_orders
from bot.handover.text import (
    choose_order_no,
    order_candidates,
    order_query,
    parse_date,
    split_urgent,
)
from bot.reminders import RuleBook
from bot.settings import Settings
from bot.shifts import ShiftWindow

SEARCH_LIMIT = 20

# An item with the shift it was last handed to (the newest delivery) and how often it was handed.
ITEM_SELECT = """
SELECT i.*,
       (SELECT COUNT(*) FROM handover_deliveries c WHERE c.item_id = i.id) AS handed_count,
       d.occurrence AS handed_to, d.delivered_at AS handed_at, d.taken_by, d.taken_at
FROM handover_items i
LEFT JOIN handover_deliveries d ON d.rowid = (
    SELECT x.rowid FROM handover_deliveries x WHERE x.item_id = i.id
    ORDER BY x.occurrence_start DESC, x.delivered_at DESC LIMIT 1)
"""


class HandoverService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.shifts = settings.shifts
        self.tz = settings.tz

    def _now(self) -> int:
        return to_ts(self.clock.now())

    def occurrence_for(self, shift_name: str | None, moment: datetime | None = None) -> ShiftWindow:
        return occurrence_for(self.shifts, moment or self.clock.now(), self.tz, shift_name)

    # --- writing ----------------------------------------------------------------------------
    async def log_item(
        self,
        author_id: int,
        author_shift: str | None,
        text: str,
        *,
        kind: str = "other",
        attachment: Attachment | None = None,
    ) -> Item:
        """Log an item for the next shift. `!` first marks it urgent; an order number links it."""
        if kind not in KINDS:
            raise HandoverError("bad_kind", value=kind)
        urgent, body = split_urgent(text)
        self._check_text(body)
        order_no = await self._order_no(body)
        window = self.occurrence_for(author_shift)
        now = self._now()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO handover_items (author_id, occurrence, occurrence_start, created_at, updated_at, text,"
                " kind, urgent, order_no, attachment_file_id, attachment_type, attachment_name)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    author_id, occurrence_key(window), to_ts(window.start), now, now, body, kind, int(urgent),
                    order_no,
                    attachment.file_id if attachment else None,
                    attachment.type if attachment else None,
                    attachment.name if attachment else None,
                ),
            )
            item_id = cursor.lastrowid
            after = {"text": body, "kind": kind, "urgent": urgent, "order_no": order_no}
            if attachment:
                after["attachment"] = attachment.type
            await self._history(conn, item_id, author_id, "create", {}, after)
        return await self.require(item_id)

    async def edit_text(self, item_id: int, actor_id: int, text: str) -> Item:
        """The author replaces the text (within the edit window); urgency and order are re-read."""
        item = await self.check_editable(item_id, actor_id)
        urgent, body = split_urgent(text)
        self._check_text(body)
        order_no = await self._order_no(body)
        return await self._change(item, actor_id, "edit", text=body, urgent=urgent, order_no=order_no)

    async def set_kind(self, item_id: int, actor_id: int, kind: str) -> Item:
        if kind not in KINDS:
            raise HandoverError("bad_kind", value=kind)
        item = await self.check_editable(item_id, actor_id)
        return await self._change(item, actor_id, "kind", kind=kind)

    async def withdraw(self, item_id: int, actor_id: int) -> Item:
        item = await self.check_editable(item_id, actor_id)
        return await self._change(item, actor_id, "withdraw", status="withdrawn", withdrawn_at=self._now())

    async def take_over(self, item_id: int, actor_id: int, actor_shift: str | None, *,
                        supervisor: bool = False) -> Item:
        """Confirm, for the shift the item was last handed to, that someone has it now: a person of
        that shift (or a supervisor, acting for it), never the item's own author."""
        item = await self.require(item_id)
        self.check_open(item)
        if actor_id == item.author_id:
            raise HandoverError("own_item", id=item_id)
        now = self._now()
        # Checked again inside the write transaction: two people pressing 已接手 at once (updates
        # run concurrently), or a resolve in between, leave exactly one outcome.
        async with self.db.transaction() as conn:
            cursor = await conn.execute("SELECT status FROM handover_items WHERE id = ?", (item_id,))
            current = await cursor.fetchone()
            if current is None or current["status"] != "open":
                self.check_open(await self.require(item_id))
            cursor = await conn.execute(
                "SELECT occurrence, taken_by, taken_at FROM handover_deliveries WHERE item_id = ?"
                " ORDER BY occurrence_start DESC, delivered_at DESC LIMIT 1",
                (item_id,),
            )
            latest = await cursor.fetchone()
            if latest is None:
                raise HandoverError("not_handed_over", id=item_id)
            if latest["taken_by"] is not None:
                raise HandoverError("already_taken", id=item_id, by=latest["taken_by"], at=latest["taken_at"])
            incoming = split_key(latest["occurrence"])[0]
            if not supervisor and actor_shift != incoming:
                raise HandoverError("not_your_shift", id=item_id, shift=incoming)
            cursor = await conn.execute(
                "UPDATE handover_deliveries SET taken_by = ?, taken_at = ?"
                " WHERE item_id = ? AND occurrence = ? AND taken_by IS NULL",
                (actor_id, now, item_id, latest["occurrence"]),
            )
            if cursor.rowcount != 1:  # cannot happen under the transaction; refuse rather than overwrite
                raise HandoverError("already_taken", id=item_id, by=None, at=None)
            await self._history(conn, item_id, actor_id, "take", {}, {"occurrence": latest["occurrence"]})
        return await self.require(item_id)

    async def resolve(self, item_id: int, actor_id: int, actor_shift: str | None, note: str = "") -> Item:
        """Close the item for good, with a short note on what was done."""
        note = " ".join(note.split())
        if len(note) > NOTE_LIMIT:
            raise HandoverError("note_too_long", limit=NOTE_LIMIT, length=len(note))
        item = await self.require(item_id)
        self.check_open(item)
        occurrence = occurrence_key(self.occurrence_for(actor_shift))
        return await self._change(
            item, actor_id, "resolve",
            status="resolved", resolved_by=actor_id, resolved_at=self._now(),
            resolved_occurrence=occurrence, resolution_note=note,
        )

    async def _change(self, item: Item, actor_id: int, action: str, **changes: Any) -> Item:
        """Apply changes to a still-open item and keep the before/after in history."""
        current = {name: getattr(item, name) for name in changes}
        changed = {name: value for name, value in changes.items() if current[name] != value}
        if not changed:
            return item
        assignments = ", ".join(f"{name} = ?" for name in changed)
        values = [int(v) if isinstance(v, bool) else v for v in changed.values()]
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE handover_items SET {assignments}, updated_at = ? WHERE id = ? AND status = 'open'",
                (*values, self._now(), item.id),
            )
            if cursor.rowcount == 0:  # closed meanwhile by someone else
                fresh = await self.require(item.id)
                self.check_open(fresh)
            before = {name: current[name] for name in changed}
            await self._history(conn, item.id, actor_id, action, before, changed)
        return await self.require(item.id)

    async def check_editable(self, item_id: int, actor_id: int) -> Item:
        """The item, if this person may still edit or withdraw it; else the refusal."""
        item = await self.require(item_id)
        if item.author_id != actor_id:
            raise HandoverError("not_author", id=item_id)
        self.check_open(item)
        if not item.editable_at(self._now()):
            raise HandoverError("edit_window_over", id=item_id, until=item.editable_until)
        return item

    @staticmethod
    def check_open(item: Item) -> None:
        if item.status == "resolved":
            raise HandoverError("already_resolved", id=item.id, by=item.resolved_by, at=item.resolved_at)
        if item.status == "withdrawn":
            raise HandoverError("already_withdrawn", id=item.id)

    @staticmethod
    def _check_text(text: str) -> None:
        if not text.strip():
            raise HandoverError("empty_text")
        if len(text) > TEXT_LIMIT:
            raise HandoverError("text_too_long", limit=TEXT_LIMIT, length=len(text))

    async def _order_no(self, text: str) -> str | None:
        candidates = order_candidates(text)
        known = await known_orders(self.db, (c.number for c in candidates))
        return choose_order_no(candidates, set(known))

    async def _history(self, conn, item_id: int, actor: int, action: str, before: dict, after: dict) -> None:
        await conn.execute(
            "INSERT INTO handover_history (item_id, at, actor, action, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, self._now(), actor, action, _json(before), _json(after)),
        )

    # --- reading ----------------------------------------------------------------------------
    async def get(self, item_id: int) -> Item | None:
        row = await self.db.fetchone(f"{ITEM_SELECT} WHERE i.id = ?", (item_id,))
        return Item.from_row(row) if row else None

    async def require(self, item_id: int) -> Item:
        item = await self.get(item_id)
        if item is None:
            raise HandoverError("no_such_item", id=item_id)
        return item

    async def open_items(self) -> list[Item]:
        """Every open item, urgent first, then oldest first."""
        rows = await self.db.fetchall(
            f"{ITEM_SELECT} WHERE i.status = 'open' ORDER BY i.urgent DESC, i.created_at, i.id"
        )
        return [Item.from_row(r) for r in rows]

    async def owned_by(self, tg_id: int) -> list[Item]:
        """Open items this person wrote, or took over for the shift they were last handed to."""
        rows = await self.db.fetchall(
            f"{ITEM_SELECT} WHERE i.status = 'open' AND (i.author_id = ? OR d.taken_by = ?)"
            " ORDER BY i.urgent DESC, i.created_at, i.id",
            (tg_id, tg_id),
        )
        return [Item.from_row(r) for r in rows]

    async def history(self, item_id: int) -> list[HistoryEntry]:
        rows = await self.db.fetchall(
            "SELECT * FROM handover_history WHERE item_id = ? ORDER BY id", (item_id,)
        )
        return [HistoryEntry(r["at"], r["actor"], r["action"], json.loads(r["before"]), json.loads(r["after"])) for r in rows]

    async def search(
        self,
        query: str,
        *,
        relative_days: Mapping[str, int] | None = None,
        kind_names: Mapping[str, str] | None = None,
        limit: int = SEARCH_LIMIT,
    ) -> SearchResult:
        """Search the whole book (resolved and withdrawn items too), newest first.

        A date (2026-11-23, 11-23, 11月23日, 今天) finds the items written that day; an order
        number (`#` or six digits or more) the items about that order; a kind's name that kind;
        anything else is a keyword in the text or the resolution note.
        """
        query = " ".join(query.split())
        if not query:
            raise HandoverError("empty_query")
        today = self.clock.now().astimezone(self.tz).date()
        day = parse_date(query, today, relative_days or {})
        if day is not None:
            start = datetime.combine(day, datetime.min.time(), self.tz)
            end = datetime.combine(day + timedelta(days=1), datetime.min.time(), self.tz)
            return await self._search("date", day.isoformat(), "i.created_at >= ? AND i.created_at < ?",
                                      (to_ts(start), to_ts(end)), limit)
        number = order_query(query)
        if number is not None:
            return await self._search("order", number, "(i.order_no = ? OR instr(i.text, ?) > 0)",
                                      (number, number), limit)
        for code, name in (kind_names or {}).items():
            if query == name:
                return await self._search("kind", code, "i.kind = ?", (code,), limit)
        lowered = query.lower()
        return await self._search(
            "keyword", query,
            "(instr(lower(i.text), ?) > 0 OR instr(lower(i.resolution_note), ?) > 0"
            " OR instr(lower(coalesce(i.attachment_name, '')), ?) > 0)",
            (lowered, lowered, lowered), limit,
        )

    async def _search(self, mode: str, value: str, where: str, params: tuple, limit: int) -> SearchResult:
        total = await self.db.fetchone(f"SELECT COUNT(*) FROM handover_items i WHERE {where}", params)
        rows = await self.db.fetchall(
            f"{ITEM_SELECT} WHERE {where} ORDER BY i.created_at DESC, i.id DESC LIMIT ?", (*params, limit)
        )
        return SearchResult(mode, value, [Item.from_row(r) for r in rows], int(total[0]))

    async def stats(self, since: datetime, until: datetime) -> list[ShiftStats]:
        """Per shift occurrence starting in [since, until], newest first: items written, handed
        to it, taken over (and how fast, from the handing to the take-over), resolved."""
        windows = windows_between(self.shifts, since, until, self.tz)
        keys = [occurrence_key(w) for w in windows]
        if not keys:
            return []
        marks = ", ".join("?" for _ in keys)
        written = {
            r[0]: r[1] for r in await self.db.fetchall(
                f"SELECT occurrence, COUNT(*) FROM handover_items WHERE status != 'withdrawn'"
                f" AND occurrence IN ({marks}) GROUP BY occurrence", keys)
        }
        handed = {
            r["occurrence"]: r for r in await self.db.fetchall(
                "SELECT occurrence, COUNT(*) AS received, COUNT(taken_at) AS taken,"
                " AVG(taken_at - delivered_at) AS avg_take, MAX(taken_at - delivered_at) AS max_take"
                f" FROM handover_deliveries WHERE occurrence IN ({marks}) GROUP BY occurrence", keys)
        }
        resolved = {
            r[0]: r[1] for r in await self.db.fetchall(
                f"SELECT resolved_occurrence, COUNT(*) FROM handover_items WHERE status = 'resolved'"
                f" AND resolved_occurrence IN ({marks}) GROUP BY resolved_occurrence", keys)
        }
        result = []
        for window, key in sorted(zip(windows, keys), key=lambda pair: pair[0].start, reverse=True):
            h = handed.get(key)
            result.append(ShiftStats(
                occurrence=key,
                shift=window.shift.name,
                start=to_ts(window.start),
                written=written.get(key, 0),
                received=h["received"] if h else 0,
                taken=h["taken"] if h else 0,
                avg_take_minutes=h["avg_take"] / 60 if h and h["avg_take"] is not None else None,
                max_take_minutes=h["max_take"] / 60 if h and h["max_take"] is not None else None,
                resolved=resolved.get(key, 0),
            ))
        return result

    async def orders(self, numbers: Iterable[str]) -> dict[str, OrderRef]:
        """Which of these order numbers are stored orders (for links on the item cards)."""
        return await known_orders(self.db, numbers)

    # --- shift change -----------------------------------------------------------------------
    async def ensure_epoch(self) -> int:
        await self.db.execute(
            "INSERT OR IGNORE INTO handover_state (key, value) VALUES ('epoch', ?)", (str(self._now()),)
        )
        return await self.epoch()

    async def epoch(self) -> int:
        row = await self.db.fetchone("SELECT value FROM handover_state WHERE key = 'epoch'")
        return int(row[0]) if row else self._now()

    async def hand_over_to(self, window: ShiftWindow) -> int:
        """Hand every open item written before this shift began to it; returns how many are new.

        Called on every tick while the shift runs, so items written later by the previous
        shift (or for it) still reach it.
        """
        start = to_ts(window.start)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO handover_deliveries (item_id, occurrence, occurrence_start, delivered_at)"
                " SELECT id, ?, ?, ? FROM handover_items WHERE status = 'open' AND occurrence_start < ?",
                (occurrence_key(window), start, self._now(), start),
            )
            return cursor.rowcount

    async def handed_items(self, occurrence: str) -> list[Item]:
        """The open items handed to this shift occurrence, urgent first, then oldest first."""
        rows = await self.db.fetchall(
            f"{ITEM_SELECT} JOIN handover_deliveries s ON s.item_id = i.id AND s.occurrence = ?"
            " WHERE i.status = 'open' ORDER BY i.urgent DESC, i.created_at, i.id",
            (occurrence,),
        )
        return [Item.from_row(r) for r in rows]

    async def due_orders(self, window: ShiftWindow) -> list[DueOrder]:
        """Orders due for 催付 or shipping during this shift, or in the gap just before it."""
        start = previous_end(self.shifts, window, self.tz)
        return await due_within(self.db, RuleBook.from_settings(self.settings), start, window.end)

    async def notice_status(self, occurrence: str, kind: str, tg_id: int) -> str | None:
        row = await self.db.fetchone(
            "SELECT status FROM handover_notices WHERE occurrence = ? AND kind = ? AND tg_id = ?",
            (occurrence, kind, tg_id),
        )
        return row[0] if row else None

    async def record_notice(self, occurrence: str, kind: str, tg_id: int, status: str) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO handover_notices (occurrence, kind, tg_id, status, at) VALUES (?, ?, ?, ?, ?)",
            (occurrence, kind, tg_id, status, self._now()),
        )

    async def has_card(self, item_id: int, occurrence: str, chat_id: int) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM handover_cards WHERE item_id = ? AND occurrence = ? AND chat_id = ?",
            (item_id, occurrence, chat_id),
        )
        return row is not None

    async def record_card(self, item_id: int, occurrence: str, chat_id: int, message_id: int) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO handover_cards (item_id, occurrence, chat_id, message_id, sent_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (item_id, occurrence, chat_id, message_id, self._now()),
        )

    async def cards(self, item_id: int) -> list[CardMessage]:
        rows = await self.db.fetchall(
            "SELECT * FROM handover_cards WHERE item_id = ? AND message_id > 0 ORDER BY sent_at", (item_id,)
        )
        return [CardMessage(r["item_id"], r["occurrence"], r["chat_id"], r["message_id"]) for r in rows]

    async def due_alerts(self) -> dict[str, list[Item]]:
        """Items handed to a shift and not taken over KEFU_HANDOVER_ACK_MINUTES later, by shift.

        Only an item's newest handing counts: if the bot was down and the item has since been
        handed to a later shift, the older one is marked superseded instead of alerted.
        """
        cutoff = self._now() - self.settings.kefu_handover_ack_minutes * 60
        rows = await self.db.fetchall(
            "SELECT d.item_id, d.occurrence, d.rowid AS rid,"
            " (SELECT x.rowid FROM handover_deliveries x WHERE x.item_id = d.item_id"
            "  ORDER BY x.occurrence_start DESC, x.delivered_at DESC LIMIT 1) AS latest"
            " FROM handover_deliveries d JOIN handover_items i ON i.id = d.item_id"
            " WHERE d.taken_at IS NULL AND d.alert IS NULL AND d.delivered_at <= ? AND i.status = 'open'"
            " ORDER BY d.occurrence_start, d.item_id",
            (cutoff,),
        )
        superseded = [(r["item_id"], r["occurrence"]) for r in rows if r["rid"] != r["latest"]]
        if superseded:
            await self._mark_alert(superseded, "superseded")
        due: dict[str, list[Item]] = {}
        for row in rows:
            if row["rid"] == row["latest"]:
                due.setdefault(row["occurrence"], []).append(await self.require(row["item_id"]))
        for items in due.values():
            items.sort(key=lambda i: (not i.urgent, i.created_at, i.id))
        return due

    async def mark_alerted(self, occurrence: str, item_ids: Iterable[int]) -> None:
        await self._mark_alert([(item_id, occurrence) for item_id in item_ids], "sent")

    async def _mark_alert(self, pairs: list[tuple[int, str]], status: str) -> None:
        now = self._now()
        await self.db.executemany(
            "UPDATE handover_deliveries SET alert = ?, alerted_at = ? WHERE item_id = ? AND occurrence = ?",
            [(status, now, item_id, occurrence) for item_id, occurrence in pairs],
        )


def _json(values: dict) -> str:
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)


def age_minutes(item_or_ts: Item | int, now: int) -> int:
    created = item_or_ts.created_at if isinstance(item_or_ts, Item) else item_or_ts
    return max(0, (now - created) // 60)
