"""The handover book (交接本): items written before a shift ends, handed to every following shift
until someone resolves them, each handing confirmed (taken over) by the incoming shift.

No Telegram here: the service takes ids, text and a clock, and answers with plain records.
Every change to an item is kept in handover_history. The SQL is in bot/handover/store.py.
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
from bot.handover.store import SEARCH_DATE, SEARCH_KEYWORD, SEARCH_KIND, SEARCH_ORDER, HandoverStore
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

class HandoverService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.shifts = settings.shifts
        self.tz = settings.tz
        self.store = HandoverStore(db)

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
        async with self.db.transaction(on_loop=True) as conn:
            item_id = await self.store.add_item(conn, (
                author_id, occurrence_key(window), to_ts(window.start), now, now, body, kind, int(urgent),
                order_no,
                attachment.file_id if attachment else None,
                attachment.type if attachment else None,
                attachment.name if attachment else None,
            ))
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
        async with self.db.transaction(on_loop=True) as conn:
            if await self.store.item_status_in(conn, item_id) != "open":
                self.check_open(await self.require(item_id))
            latest = await self.store.latest_delivery_in(conn, item_id)
            if latest is None:
                raise HandoverError("not_handed_over", id=item_id)
            if latest["taken_by"] is not None:
                raise HandoverError("already_taken", id=item_id, by=latest["taken_by"], at=latest["taken_at"])
            incoming = split_key(latest["occurrence"])[0]
            if not supervisor and actor_shift != incoming:
                raise HandoverError("not_your_shift", id=item_id, shift=incoming)
            if await self.store.take(conn, item_id, latest["occurrence"], actor_id, now) != 1:  # cannot happen under the transaction; refuse rather than overwrite
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
        values = {name: int(v) if isinstance(v, bool) else v for name, v in changed.items()}
        async with self.db.transaction(on_loop=True) as conn:
            if await self.store.update_open_item(conn, item.id, values, self._now()) == 0:  # closed meanwhile by someone else
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
        await self.store.add_history(conn, item_id, self._now(), actor, action, _json(before), _json(after))

    # --- reading ----------------------------------------------------------------------------
    async def get(self, item_id: int) -> Item | None:
        row = await self.store.item(item_id)
        return Item.from_row(row) if row else None

    async def require(self, item_id: int) -> Item:
        item = await self.get(item_id)
        if item is None:
            raise HandoverError("no_such_item", id=item_id)
        return item

    async def open_items(self) -> list[Item]:
        """Every open item, urgent first, then oldest first."""
        rows = await self.store.open_items()
        return [Item.from_row(r) for r in rows]

    async def owned_by(self, tg_id: int) -> list[Item]:
        """Open items this person wrote, or took over for the shift they were last handed to."""
        rows = await self.store.open_items_of(tg_id)
        return [Item.from_row(r) for r in rows]

    async def history(self, item_id: int) -> list[HistoryEntry]:
        rows = await self.store.history(item_id)
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
            return await self._search("date", day.isoformat(), SEARCH_DATE, (to_ts(start), to_ts(end)), limit)
        number = order_query(query)
        if number is not None:
            return await self._search("order", number, SEARCH_ORDER, (number, number), limit)
        for code, name in (kind_names or {}).items():
            if query == name:
                return await self._search("kind", code, SEARCH_KIND, (code,), limit)
        lowered = query.lower()
        return await self._search("keyword", query, SEARCH_KEYWORD, (lowered, lowered, lowered), limit)

    async def _search(self, mode: str, value: str, where: str, params: tuple, limit: int) -> SearchResult:
        rows, total = await self.store.search(where, params, limit)
        return SearchResult(mode, value, [Item.from_row(r) for r in rows], total)

    async def stats(self, since: datetime, until: datetime) -> list[ShiftStats]:
        """Per shift occurrence starting in [since, until], newest first: items written, handed
        to it, taken over (and how fast, from the handing to the take-over), resolved."""
        windows = windows_between(self.shifts, since, until, self.tz)
        keys = [occurrence_key(w) for w in windows]
        if not keys:
            return []
        written = await self.store.written_per_occurrence(keys)
        handed = await self.store.handed_per_occurrence(keys)
        resolved = await self.store.resolved_per_occurrence(keys)
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
        await self.store.ensure_epoch(self._now())
        return await self.epoch()

    async def epoch(self) -> int:
        epoch = await self.store.epoch()
        return epoch if epoch is not None else self._now()

    async def hand_over_to(self, window: ShiftWindow) -> int:
        """Hand every open item written before this shift began to it; returns how many are new.

        Called on every tick while the shift runs, so items written later by the previous
        shift (or for it) still reach it.
        """
        return await self.store.hand_over(occurrence_key(window), to_ts(window.start), self._now())

    async def handed_items(self, occurrence: str) -> list[Item]:
        """The open items handed to this shift occurrence, urgent first, then oldest first."""
        rows = await self.store.handed_items(occurrence)
        return [Item.from_row(r) for r in rows]

    async def due_orders(self, window: ShiftWindow) -> list[DueOrder]:
        """Orders due for 催付 or shipping during this shift, or in the gap just before it."""
        start = previous_end(self.shifts, window, self.tz)
        return await due_within(self.db, RuleBook.from_settings(self.settings), start, window.end)

    async def notice_status(self, occurrence: str, kind: str, tg_id: int) -> str | None:
        return await self.store.notice_status(occurrence, kind, tg_id)

    async def record_notice(self, occurrence: str, kind: str, tg_id: int, status: str) -> None:
        await self.store.set_notice(occurrence, kind, tg_id, status, self._now())

    async def has_card(self, item_id: int, occurrence: str, chat_id: int) -> bool:
        return await self.store.has_card(item_id, occurrence, chat_id)

    async def record_card(self, item_id: int, occurrence: str, chat_id: int, message_id: int) -> None:
        await self.store.set_card(item_id, occurrence, chat_id, message_id, self._now())

    async def cards(self, item_id: int) -> list[CardMessage]:
        rows = await self.store.cards(item_id)
        return [CardMessage(r["item_id"], r["occurrence"], r["chat_id"], r["message_id"]) for r in rows]

    async def due_alerts(self) -> dict[str, list[Item]]:
        """Items handed to a shift and not taken over KEFU_HANDOVER_ACK_MINUTES later, by shift.

        Only an item's newest handing counts: if the bot was down and the item has since been
        handed to a later shift, the older one is marked superseded instead of alerted.
        """
        cutoff = self._now() - self.settings.kefu_handover_ack_minutes * 60
        rows = await self.store.untaken(cutoff)
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
        await self.store.mark_alert(pairs, status, self._now())


def _json(values: dict) -> str:
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)


def age_minutes(item_or_ts: Item | int, now: int) -> int:
    created = item_or_ts.created_at if isinstance(item_or_ts, Item) else item_or_ts
    return max(0, (now - created) // 60)
