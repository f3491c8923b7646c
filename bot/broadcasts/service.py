"""Broadcasts: drafts, recipients, delivery rows, acknowledgements, urgent re-notify and
scheduled announcements. No Telegram here: the handlers send; this records and decides.

The per-recipient rows are the resume point after a crash: a row is claimed ('sending') just
before its message goes out and settled right after, so a restart sends only 'pending' rows.
A row left 'sending' by a crash may or may not have arrived; it is never re-sent (no double
sends) and shows as failed, so "remind the rest" can still reach that person.

The SQL is in bot/broadcasts/store.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.broadcasts.audience import Audience, select_recipients, validate
from bot.broadcasts.model import (
    CHOICES,
    Broadcast,
    Content,
    Counts,
    Recipient,
    Schedule,
)
from bot.broadcasts.store import BroadcastStore
from bot.broadcasts.when import DEFAULT_GRACE, Due, Rule, due_occurrences, next_run
from bot.clock import Clock, from_ts, to_ts
from bot.db import Database
from bot.people import PeopleService, Person, UserError
from bot.shifts import Shift, shifts_on

#: Telegram's limits, minus nothing: the handlers check the rendered copy against these.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
MAX_RENOTIFY = 3
INTERRUPTED = "interrupted"
KNOWN_BLOCKED = "blocked before sending"

@dataclass(frozen=True)
class Fired:
    """The result of one due schedule at a tick: the broadcast it started (if any) and the
    occurrences that were missed (reported to the author)."""

    schedule: Schedule
    broadcast: Broadcast | None
    missed: tuple[datetime, ...]


class BroadcastService:
    def __init__(self, db: Database, clock: Clock, people: PeopleService, shifts: Sequence[Shift], tz: tzinfo,
                 *, grace: timedelta = DEFAULT_GRACE) -> None:
        self.db = db
        self.clock = clock
        self.people = people
        self.shifts = tuple(shifts)
        self.tz = tz
        self.grace = grace
        self.store = BroadcastStore(db)

    def _now(self) -> int:
        return to_ts(self.clock.now())

    # --- drafts -------------------------------------------------------------------------------
    async def create_draft(self, author: Person, content: Content, *, pin_available: bool,
                           schedule: tuple[Rule, str] | None = None) -> Broadcast:
        """A new draft; pin is settled as "no" up front when there is no team group to pin in."""
        if content.kind == "text" and not content.body_html.strip():
            raise UserError("empty")
        if content.kind != "text" and not content.file_id:
            raise UserError("unsupported_content")
        rule, rule_text = schedule if schedule else (None, None)
        broadcast_id = await self.store.add_draft(
            author.tg_id, content.kind, content.body_html, content.file_id, content.file_name,
            None if pin_available else 0, rule.encode() if rule else None, rule_text, self._now(),
        )
        return await self.get(broadcast_id)

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self.store.broadcast(broadcast_id)
        return Broadcast.from_row(row) if row else None

    async def require(self, broadcast_id: int) -> Broadcast:
        """A broadcast that was sent (or is being sent): rosters and reminders need one."""
        found = await self.get(broadcast_id)
        if found is None or found.status not in ("sending", "done"):
            raise UserError("gone")
        return found

    async def draft_for(self, broadcast_id: int, actor: Person) -> Broadcast:
        """The draft the actor is composing; refused once sent, cancelled, or someone else's."""
        draft = await self.get(broadcast_id)
        if draft is None:
            raise UserError("gone")
        if draft.author_id != actor.tg_id:
            raise UserError("not_author")
        if draft.status != "draft":
            raise UserError("already_" + ("cancelled" if draft.status == "cancelled" else "sent"))
        return draft

    async def choose(self, broadcast_id: int, actor: Person, name: str, value: object) -> Broadcast:
        """Record one answer of the composing dialogue. Urgent implies acknowledgement: the
        re-notify follows those who have not pressed 收到."""
        if name not in CHOICES:
            raise ValueError(f"unknown choice {name!r}")
        await self.draft_for(broadcast_id, actor)
        changes: dict[str, object] = {}
        if name == "audience":
            audience = validate(value if isinstance(value, Audience) else Audience.decode(str(value)), self.shifts)
            changes["audience"] = audience.encode()
        else:
            changes[name] = int(bool(value))
            if name == "urgent" and value:
                changes["ack_required"] = 1
                changes["silent"] = 0  # an urgent announcement always rings; the preview says so
            if name == "silent" and value and (await self.get(broadcast_id)).urgent:
                raise UserError("urgent_not_silent")
        await self.store.set_draft_choices(broadcast_id, changes)
        return await self.get(broadcast_id)

    async def reset_choices(self, broadcast_id: int, actor: Person, *, pin_available: bool) -> Broadcast:
        await self.draft_for(broadcast_id, actor)
        await self.store.reset_draft_choices(broadcast_id, None if pin_available else 0)
        return await self.get(broadcast_id)

    async def cancel(self, broadcast_id: int, actor: Person) -> Broadcast:
        await self.draft_for(broadcast_id, actor)
        await self.store.cancel_draft(broadcast_id)
        return await self.get(broadcast_id)

    async def set_panel(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        """Remember the author's compose/progress message, so a resumed delivery edits it."""
        await self.store.set_panel(broadcast_id, chat_id, message_id)

    async def resolve(self, broadcast: Broadcast) -> list[Person]:
        """Who the audience means right now (the author is never among them)."""
        audience = broadcast.audience_spec
        if audience is None:
            return []
        return select_recipients(await self.people.all(active_only=True), audience, self.shifts,
                                 self.clock.now(), self.tz, exclude=(broadcast.author_id,))

    async def pickable(self, author_id: int) -> list[Person]:
        """The people a supervisor may choose one by one: every active member but themselves."""
        return [p for p in await self.people.all(active_only=True) if p.tg_id != author_id]

    # --- sending ------------------------------------------------------------------------------
    async def start_sending(self, broadcast_id: int, actor: Person) -> Broadcast:
        """发送: the draft becomes a broadcast with one pending row per recipient, atomically,
        so a second press (or a crash right after) cannot start it twice."""
        draft = await self.draft_for(broadcast_id, actor)
        if draft.next_choice() is not None:
            raise UserError("incomplete")
        if draft.is_schedule_draft:
            raise UserError("gone")
        recipients = await self.resolve(draft)
        if not recipients:
            raise UserError("no_recipients")
        now = self._now()
        async with self.db.transaction() as conn:
            if await self.store.start_sending(conn, draft.id, now) != 1:
                raise UserError("already_sent")
            await self._insert_recipients(conn, draft.id, recipients)
        return await self.get(draft.id)

    async def _insert_recipients(self, conn, broadcast_id: int, recipients: Sequence[Person]) -> None:
        """People already known to have blocked the bot are recorded as such and not tried."""
        await self.store.add_recipients(
            conn,
            [(broadcast_id, p.tg_id, "blocked" if p.blocked_at else "pending", KNOWN_BLOCKED if p.blocked_at else None)
             for p in recipients],
        )

    async def unfinished(self) -> list[Broadcast]:
        rows = await self.store.sending()
        return [Broadcast.from_row(r) for r in rows]

    async def release_interrupted(self, broadcast_id: int) -> int:
        """Rows claimed by a process that died: unknown whether they arrived, so never re-sent."""
        return await self.store.release_interrupted(broadcast_id, INTERRUPTED)

    async def claim_next(self, broadcast_id: int) -> int | None:
        """Take the next pending recipient (marks it 'sending'); None when none are left."""
        return await self.store.claim_next(broadcast_id)

    async def unclaim(self, broadcast_id: int, tg_id: int) -> None:
        """Give a claimed row back untried (the bot is stopping before it was sent)."""
        await self.store.unclaim(broadcast_id, tg_id)

    async def record(self, broadcast_id: int, tg_id: int, status: str, *, message_id: int | None = None,
                     error: str | None = None) -> None:
        if status not in ("sent", "blocked", "failed"):
            raise ValueError(f"bad delivery status {status!r}")
        now = self._now()
        await self.store.settle(broadcast_id, tg_id, status, message_id, error, now if status == "sent" else None)

    async def counts(self, broadcast_id: int) -> Counts:
        rows = await self.store.status_counts(broadcast_id)
        by_status = {r["status"]: r["n"] for r in rows}
        return Counts(
            total=sum(by_status.values()),
            acked=sum(r["acked"] for r in rows),
            **{s: by_status.get(s, 0) for s in ("pending", "sending", "sent", "blocked", "failed")},
        )

    async def finish(self, broadcast_id: int) -> bool:
        """Mark the broadcast done once no row is pending or in flight; True if it was just done."""
        return bool(await self.store.finish(broadcast_id, self._now()))

    async def set_team_message(self, broadcast_id: int, message_id: int) -> None:
        await self.store.set_team_message(broadcast_id, message_id)

    async def set_team_pinned(self, broadcast_id: int) -> None:
        await self.store.set_team_pinned(broadcast_id)

    # --- acknowledgement and rosters ----------------------------------------------------------
    async def recipient(self, broadcast_id: int, tg_id: int) -> Recipient | None:
        row = await self.store.recipient(broadcast_id, tg_id)
        return Recipient.from_row(row) if row else None

    async def acknowledge(self, broadcast_id: int, tg_id: int, message_id: int | None = None) -> tuple[Recipient, bool]:
        """收到: record who and when (once). Pressing the button proves the copy arrived, so a row
        a crash left unknown becomes 'sent'. Returns the row and whether this press recorded it."""
        broadcast = await self.get(broadcast_id)
        current = await self.recipient(broadcast_id, tg_id)
        if broadcast is None or current is None or not broadcast.ack_required:
            raise UserError("not_recipient")
        if current.acked_at is not None:
            return current, False
        await self.store.acknowledge(broadcast_id, tg_id, message_id, self._now())
        return await self.recipient(broadcast_id, tg_id), True

    async def roster(self, broadcast_id: int) -> list[Recipient]:
        rows = await self.store.roster(broadcast_id)
        return [Recipient.from_row(r) for r in rows]

    async def unacked(self, broadcast_id: int) -> list[Recipient]:
        """Those who got the copy and have not pressed 收到 (the "remind the rest" list)."""
        return [r for r in await self.roster(broadcast_id) if r.status == "sent" and r.acked_at is None]

    async def mark_notified(self, broadcast_id: int, tg_id: int, *, renotify: bool) -> None:
        """A reminder went out; urgent re-notifications also count toward the limit of three."""
        await self.store.mark_notified(broadcast_id, tg_id, self._now(), 1 if renotify else 0)

    async def recent(self, limit: int = 10) -> list[tuple[Broadcast, Counts]]:
        rows = await self.store.recent(limit)
        return [(Broadcast.from_row(r), await self.counts(r["id"])) for r in rows]

    async def due_renotifies(self, interval: timedelta, limit: int = MAX_RENOTIFY) -> list[tuple[Broadcast, Recipient]]:
        """Urgent copies not acknowledged, last notified at least `interval` ago, fewer than `limit`
        re-notifications so far, whose recipient is on duty now (others wait for their shift)."""
        now = self._now()
        rows = await self.store.renotify_candidates(limit, now - int(interval.total_seconds()))
        working = set(shifts_on(self.shifts, self.clock.now(), self.tz))
        on_duty = {p.tg_id for p in await self.people.all(active_only=True) if p.shift in working}
        due = [Recipient.from_row(r) for r in rows if r["tg_id"] in on_duty]
        broadcasts = {b: await self.get(b) for b in {r.broadcast_id for r in due}}
        return [(broadcasts[r.broadcast_id], r) for r in due]

    # --- scheduled announcements --------------------------------------------------------------
    async def save_schedule(self, broadcast_id: int, actor: Person) -> Schedule:
        """保存: the draft becomes the schedule's template; the first run is computed now."""
        draft = await self.draft_for(broadcast_id, actor)
        if not draft.is_schedule_draft:
            raise UserError("gone")
        if draft.next_choice() is not None:
            raise UserError("incomplete")
        rule = Rule.decode(draft.schedule_rule)
        first = next_run(rule, self.clock.now(), self.tz)
        if first is None:
            raise UserError("schedule_past")
        same = await self.store.same_schedule(
            draft.schedule_rule, draft.kind, draft.body_html, draft.file_id, draft.audience, draft.ack_required,
            draft.urgent, draft.pin, draft.silent,
        )
        if same is not None:  # an identical schedule already runs: saving it again would send twice
            raise UserError("schedule_duplicate", id=same)
        async with self.db.transaction() as conn:
            if await self.store.make_template(conn, draft.id) != 1:
                raise UserError("already_sent")
            schedule_id = await self.store.add_schedule(
                conn, draft.id, draft.author_id, draft.schedule_rule, draft.schedule_text or "", to_ts(first),
                int(self.grace.total_seconds() // 60), self._now(),
            )
        return await self.get_schedule(schedule_id)

    async def create_schedule(self, author: Person, content: Content, rule: Rule, rule_text: str, *,
                              audience: Audience, ack_required: bool = True, urgent: bool = False,
                              pin: bool = False, silent: bool = False) -> Schedule:
        """A schedule in one step (demo seed, scripts): a draft with every choice, then saved."""
        draft = await self.create_draft(author, content, pin_available=True, schedule=(rule, rule_text))
        for name, value in (("audience", audience), ("ack_required", ack_required), ("urgent", urgent),
                            ("pin", pin), ("silent", silent)):
            await self.choose(draft.id, author, name, value)
        return await self.save_schedule(draft.id, author)

    async def get_schedule(self, schedule_id: int) -> Schedule | None:
        row = await self.store.schedule(schedule_id)
        return Schedule.from_row(row) if row else None

    async def schedules(self) -> list[tuple[Schedule, Broadcast]]:
        """Schedules still in force (paused ones included), soonest first."""
        rows = await self.store.active_schedules()
        result = []
        for row in rows:
            schedule = Schedule.from_row(row)
            result.append((schedule, await self.get(schedule.template_id)))
        return result

    async def _live_schedule(self, schedule_id: int) -> Schedule:
        schedule = await self.get_schedule(schedule_id)
        if schedule is None or schedule.status != "active":
            raise UserError("schedule_gone")
        return schedule

    async def set_paused(self, schedule_id: int, paused: bool) -> Schedule:
        """Pause, or resume from now on (what fell due while paused is not sent afterwards)."""
        schedule = await self._live_schedule(schedule_id)
        if paused:
            await self.store.pause(schedule.id)
        else:
            upcoming = next_run(Rule.decode(schedule.rule), self.clock.now(), self.tz)
            if upcoming is None:
                raise UserError("schedule_past")
            await self.store.resume(schedule.id, to_ts(upcoming))
        return await self.get_schedule(schedule.id)

    async def pause_schedules_of(self, author_id: int) -> list[Schedule]:
        """The author left the team: their running schedules stop firing until someone resumes them."""
        ids = await self.store.pause_running_of(author_id)
        return [await self.get_schedule(i) for i in ids]

    async def drop_undelivered(self, tg_id: int) -> int:
        """Copies not sent yet to someone who left the team are not sent at all."""
        return await self.store.drop_pending_of(tg_id)

    async def delete_schedule(self, schedule_id: int) -> Schedule:
        schedule = await self._live_schedule(schedule_id)
        await self.store.delete_schedule(schedule.id)
        return await self.get_schedule(schedule.id)

    async def fire_due(self) -> list[Fired]:
        """Every active schedule whose time has come: start its broadcast (within the grace
        period) or report it missed, and move it to its next run, in one transaction each, so
        a restart neither loses nor repeats an occurrence."""
        now_dt = self.clock.now()
        rows = await self.store.due_schedules(to_ts(now_dt))
        fired = []
        for row in rows:
            schedule = Schedule.from_row(row)
            due = due_occurrences(Rule.decode(schedule.rule), from_ts(schedule.next_run), now_dt, self.tz,
                                  timedelta(minutes=schedule.grace_minutes))
            if due is None:
                continue
            result = await self._fire(schedule, due)
            if result is not None:
                fired.append(result)
        return fired

    async def _fire(self, schedule: Schedule, due: Due) -> Fired | None:
        template = await self.get(schedule.template_id)
        recipients = await self.resolve(template) if due.fire_at is not None and template is not None else []
        now = self._now()
        latest = due.fire_at or due.missed[-1]
        broadcast_id = None
        async with self.db.transaction() as conn:
            advanced = await self.store.advance(
                conn, schedule.id, schedule.next_run, to_ts(due.next_run) if due.next_run else None, to_ts(latest),
                "active" if due.next_run else "finished",
            )
            if advanced != 1:
                return None  # another tick took it
            if due.fire_at is not None and template is not None:
                broadcast_id = await self.store.start_from_template(
                    conn, template.id, schedule.id, now, to_ts(due.fire_at)
                )
                await self._insert_recipients(conn, broadcast_id, recipients)
        refreshed = await self.get_schedule(schedule.id)
        return Fired(refreshed, await self.get(broadcast_id) if broadcast_id else None, due.missed)
