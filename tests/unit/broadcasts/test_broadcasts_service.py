"""BroadcastService with a fake clock and a real SQLite file: drafts, audiences, the delivery
rows that make resuming safe, acknowledgements, urgent re-notify and schedules."""

import asyncio
from datetime import date, timedelta

import pytest

from bot.broadcasts import (
    Audience,
    BroadcastService,
    Content,
    Pacer,
    Rule,
    select_recipients,
)
from bot.clock import FakeClock, to_ts
from bot.people import PeopleService, UserError
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI, local

SHIFTS = parse_shifts("day=08:30-17:30;night=17:30-01:00")
SUP, SUP2, A1, A2, N1, GONE = 1, 2, 11, 12, 21, 99
EVERYONE = Audience("all")


@pytest.fixture
def clock():
    return FakeClock(local("2026-11-23 10:00"))  # Monday, day shift


@pytest.fixture
async def svc(db, clock):
    now = to_ts(clock.now())
    rows = [
        (SUP, "supervisor", "day", 1), (SUP2, "supervisor", "night", 1), (A1, "agent", "day", 1),
        (A2, "agent", "day", 1), (N1, "agent", "night", 1), (GONE, "agent", "day", 0),
    ]
    for tg_id, role, shift, active in rows:
        await db.execute(
            "INSERT INTO users (tg_id, full_name, role, shift, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tg_id, f"u{tg_id}", role, shift, active, now, now),
        )
    people = PeopleService(db, clock, (), SHIFTS, SHANGHAI)
    return BroadcastService(db, clock, people, SHIFTS, SHANGHAI)


async def person(svc, tg_id):
    return await svc.people.get(tg_id)


async def ready_draft(svc, text="通知", audience=EVERYONE, *, ack=True, urgent=False, author=SUP, schedule=None):
    actor = await person(svc, author)
    draft = await svc.create_draft(actor, Content("text", text), pin_available=False, schedule=schedule)
    for name, value in (("audience", audience), ("ack_required", ack), ("urgent", urgent), ("silent", False)):
        draft = await svc.choose(draft.id, actor, name, value)
    return draft


async def deliver_all(svc, broadcast_id, outcome=lambda tg_id: ("sent", 100 + tg_id)):
    while (tg_id := await svc.claim_next(broadcast_id)) is not None:
        status, message_id = outcome(tg_id)
        await svc.record(broadcast_id, tg_id, status, message_id=message_id)


# --- audiences ---------------------------------------------------------------------------------
@pytest.mark.parametrize("audience, moment, expected", [
    (Audience("all"), "2026-11-23 10:00", {SUP2, A1, A2, N1}),
    (Audience("shift", "day"), "2026-11-23 10:00", {A1, A2}),
    (Audience("shift", "night"), "2026-11-23 10:00", {SUP2, N1}),
    (Audience("duty"), "2026-11-23 10:00", {A1, A2}),
    (Audience("duty"), "2026-11-24 00:30", {SUP2, N1}),  # the night shift crosses midnight
    (Audience("duty"), "2026-11-24 03:00", set()),
    (Audience("role", "agent"), "2026-11-23 10:00", {A1, A2, N1}),  # exactly that role, active only
    (Audience("role", "supervisor"), "2026-11-23 10:00", {SUP2}),
    (Audience("people", people=(A2, N1, GONE)), "2026-11-23 10:00", {A2, N1}),
])
async def test_audiences_resolve_at_the_moment_without_author_or_inactive(svc, audience, moment, expected):
    people = await svc.people.all()
    chosen = select_recipients(people, audience, SHIFTS, local(moment), SHANGHAI, exclude=(SUP,))
    assert {p.tg_id for p in chosen} == expected


def test_audience_encoding_and_toggling():
    for audience in (Audience("all"), Audience("duty"), Audience("shift", "night"), Audience("role", "agent"),
                     Audience("people", people=(3, 1))):
        assert Audience.decode(audience.encode()) == audience
    picked = Audience("people").toggled(5).toggled(7).toggled(5)
    assert picked.people == (7,) and picked.complete and not Audience("people").complete


async def test_forged_audiences_are_refused(svc):
    actor = await person(svc, SUP)
    draft = await svc.create_draft(actor, Content("text", "x"), pin_available=False)
    for bad in (Audience("shift", "weekend"), Audience("role", "boss")):
        with pytest.raises(UserError) as caught:
            await svc.choose(draft.id, actor, "audience", bad)
        assert caught.value.code == "bad_audience"


# --- drafts ------------------------------------------------------------------------------------
async def test_dialogue_order_and_urgent_implies_acknowledgement(svc):
    actor = await person(svc, SUP)
    draft = await svc.create_draft(actor, Content("text", "x"), pin_available=True)
    assert draft.next_choice() == "audience"
    draft = await svc.choose(draft.id, actor, "audience", Audience("people"))
    assert draft.next_choice() == "audience"  # chosen people, but nobody yet
    draft = await svc.choose(draft.id, actor, "audience", Audience("people", people=(A1,)))
    assert draft.next_choice() == "ack_required"
    draft = await svc.choose(draft.id, actor, "ack_required", False)
    draft = await svc.choose(draft.id, actor, "urgent", True)
    assert draft.ack_required is True and draft.next_choice() == "pin"
    draft = await svc.choose(draft.id, actor, "pin", True)
    draft = await svc.choose(draft.id, actor, "silent", False)
    assert draft.next_choice() is None
    reset = await svc.reset_choices(draft.id, actor, pin_available=False)
    assert reset.next_choice() == "audience" and reset.pin is False


async def test_drafts_belong_to_their_author_and_empty_text_is_refused(svc):
    actor, other = await person(svc, SUP), await person(svc, SUP2)
    with pytest.raises(UserError, match="empty"):
        await svc.create_draft(actor, Content("text", "  "), pin_available=False)
    draft = await svc.create_draft(actor, Content("text", "x"), pin_available=False)
    with pytest.raises(UserError, match="not_author"):
        await svc.choose(draft.id, other, "audience", Audience("all"))
    await svc.cancel(draft.id, actor)
    with pytest.raises(UserError, match="already_cancelled"):
        await svc.choose(draft.id, actor, "audience", Audience("all"))


async def test_start_sending_creates_one_row_per_recipient_once(svc):
    draft = await ready_draft(svc, audience=Audience("role", "agent"))
    actor = await person(svc, SUP)
    await svc.people.mark_blocked(N1)
    broadcast = await svc.start_sending(draft.id, actor)
    assert broadcast.status == "sending"
    counts = await svc.counts(broadcast.id)
    assert (counts.total, counts.pending, counts.blocked) == (3, 2, 1)  # already blocked: recorded, not tried
    with pytest.raises(UserError, match="already_sent"):
        await svc.start_sending(draft.id, actor)
    assert (await svc.counts(broadcast.id)).total == 3


async def test_no_recipients_is_refused_and_the_draft_stays(svc, clock):
    draft = await ready_draft(svc, audience=Audience("duty"))
    clock.set(local("2026-11-24 03:00"))
    with pytest.raises(UserError, match="no_recipients"):
        await svc.start_sending(draft.id, await person(svc, SUP))
    assert (await svc.get(draft.id)).status == "draft"


# --- delivery rows -----------------------------------------------------------------------------
async def test_claim_record_and_finish(svc):
    broadcast = await svc.start_sending((await ready_draft(svc)).id, await person(svc, SUP))
    outcomes = {SUP2: ("sent", 1), A1: ("blocked", None), A2: ("failed", None), N1: ("sent", 2)}
    claimed = await svc.claim_next(broadcast.id)
    assert not await svc.finish(broadcast.id)  # a row is in flight
    await svc.record(broadcast.id, claimed, *outcomes[claimed][:1], message_id=outcomes[claimed][1])
    await deliver_all(svc, broadcast.id, lambda tg: outcomes[tg])
    counts = await svc.counts(broadcast.id)
    assert (counts.total, counts.sent, counts.blocked, counts.failed, counts.attempted) == (4, 2, 1, 1, 4)
    assert await svc.finish(broadcast.id) and not await svc.finish(broadcast.id)
    assert (await svc.get(broadcast.id)).status == "done"


async def test_resume_after_a_crash_sends_only_the_rest_and_never_twice(svc):
    """Rows sent before the crash stay sent; the one in flight is not re-sent; the rest go out."""
    broadcast = await svc.start_sending((await ready_draft(svc)).id, await person(svc, SUP))
    first = await svc.claim_next(broadcast.id)
    await svc.record(broadcast.id, first, "sent", message_id=1)
    in_flight = await svc.claim_next(broadcast.id)  # the process dies here
    assert [b.id for b in await svc.unfinished()] == [broadcast.id]
    assert await svc.release_interrupted(broadcast.id) == 1
    resumed = []
    while (tg_id := await svc.claim_next(broadcast.id)) is not None:
        resumed.append(tg_id)
        await svc.record(broadcast.id, tg_id, "sent", message_id=tg_id)
    assert first not in resumed and in_flight not in resumed and len(resumed) == 2
    counts = await svc.counts(broadcast.id)
    assert (counts.sent, counts.failed) == (3, 1)
    # 收到 on the copy that did arrive proves it: the row becomes sent
    recipient, recorded = await svc.acknowledge(broadcast.id, in_flight, message_id=77)
    assert recorded and recipient.status == "sent" and recipient.message_id == 77
    # a stop before sending gives the claimed row back
    second = await svc.start_sending((await ready_draft(svc)).id, await person(svc, SUP))
    taken = await svc.claim_next(second.id)
    await svc.unclaim(second.id, taken)
    assert (await svc.counts(second.id)).pending == 4


async def test_acknowledge_once_only_by_recipients(svc, clock):
    broadcast = await svc.start_sending((await ready_draft(svc)).id, await person(svc, SUP))
    await deliver_all(svc, broadcast.id)
    clock.advance(minutes=3)
    recipient, recorded = await svc.acknowledge(broadcast.id, A1)
    assert recorded and recipient.acked_at == to_ts(clock.now())
    clock.advance(minutes=3)
    again, recorded = await svc.acknowledge(broadcast.id, A1)
    assert not recorded and again.acked_at == recipient.acked_at
    with pytest.raises(UserError, match="not_recipient"):
        await svc.acknowledge(broadcast.id, SUP)
    roster = await svc.roster(broadcast.id)
    assert roster[0].tg_id == A1 and roster[0].name == f"u{A1}"
    assert {r.tg_id for r in await svc.unacked(broadcast.id)} == {SUP2, A2, N1}
    assert (await svc.counts(broadcast.id)).acked == 1
    no_ack = await svc.start_sending((await ready_draft(svc, ack=False)).id, await person(svc, SUP))
    await deliver_all(svc, no_ack.id)
    with pytest.raises(UserError, match="not_recipient"):
        await svc.acknowledge(no_ack.id, A1)


async def test_urgent_renotify_due_only_on_duty_every_interval_at_most_three(svc, clock):
    clock.set(local("2026-11-23 09:00"))
    urgent = await svc.start_sending((await ready_draft(svc, urgent=True)).id, await person(svc, SUP))
    plain = await svc.start_sending((await ready_draft(svc, text="普通")).id, await person(svc, SUP))
    await deliver_all(svc, urgent.id)
    await deliver_all(svc, plain.id)
    interval = timedelta(minutes=10)

    async def due():
        return sorted((b.id, r.tg_id) for b, r in await svc.due_renotifies(interval))

    clock.set(local("2026-11-23 09:09"))
    assert await due() == []
    clock.set(local("2026-11-23 09:10"))
    assert await due() == [(urgent.id, A1), (urgent.id, A2)]  # day shift on duty; not the plain one
    await svc.acknowledge(urgent.id, A2)
    for _ in range(3):
        assert (urgent.id, A1) in await due()
        await svc.mark_notified(urgent.id, A1, renotify=True)
        assert (urgent.id, A1) not in await due()  # just notified: wait the interval
        clock.advance(interval)
    clock.set(local("2026-11-23 11:00"))
    assert await due() == []  # A1: three times is the limit; A2 acknowledged; night shift off duty
    clock.set(local("2026-11-23 18:00"))
    assert await due() == [(urgent.id, SUP2), (urgent.id, N1)]


# --- schedules ---------------------------------------------------------------------------------
async def schedule(svc, rule, text="例会", **options):
    actor = await person(svc, SUP)
    return await svc.create_schedule(actor, Content("text", text), rule, "rule", audience=Audience("all"), **options)


async def test_schedule_fires_once_at_its_time_and_moves_to_the_next(svc, clock):
    clock.set(local("2026-11-22 12:00"))  # Sunday
    weekly = await schedule(svc, Rule("weekly", 8, 0, (0,)))
    assert weekly.next_run == to_ts(local("2026-11-23 08:00"))
    clock.set(local("2026-11-23 07:59"))
    assert await svc.fire_due() == []
    clock.set(local("2026-11-23 08:00"))
    [fired] = await svc.fire_due()
    assert fired.broadcast.status == "sending" and fired.broadcast.schedule_id == weekly.id and fired.missed == ()
    assert fired.broadcast.sent_at == to_ts(local("2026-11-23 08:00"))
    assert (await svc.counts(fired.broadcast.id)).total == 4
    assert fired.schedule.next_run == to_ts(local("2026-11-30 08:00"))
    assert await svc.fire_due() == []  # a second tick (or a restart) does not repeat it


async def test_missed_schedule_within_grace_is_sent_beyond_is_reported(svc, clock):
    clock.set(local("2026-11-22 12:00"))
    daily = await schedule(svc, Rule("daily", 9, 0))
    clock.set(local("2026-11-23 09:29"))  # down since before 09:00, back within 30 minutes
    [fired] = await svc.fire_due()
    assert fired.broadcast is not None and fired.missed == ()
    clock.set(local("2026-11-24 11:00"))  # down over the next 09:00, back too late
    [fired] = await svc.fire_due()
    assert fired.broadcast is None and fired.missed == (local("2026-11-24 09:00"),)
    assert fired.schedule.next_run == to_ts(local("2026-11-25 09:00")) and fired.schedule.status == "active"
    assert [s.id for s, _ in await svc.schedules()] == [daily.id]


async def test_one_off_schedule_finishes_after_running(svc, clock):
    once = await schedule(svc, Rule("once", 9, 0, on=date(2026, 12, 1)))
    clock.set(local("2026-12-01 09:01"))
    [fired] = await svc.fire_due()
    assert fired.broadcast is not None and fired.schedule.status == "finished" and fired.schedule.next_run is None
    assert await svc.schedules() == []
    with pytest.raises(UserError, match="schedule_gone"):
        await svc.set_paused(once.id, True)


async def test_pause_resume_and_delete(svc, clock):
    weekly = await schedule(svc, Rule("weekly", 8, 0, (0,)))
    assert weekly.next_run == to_ts(local("2026-11-30 08:00"))
    await svc.set_paused(weekly.id, True)
    clock.set(local("2026-12-07 09:00"))
    assert await svc.fire_due() == []  # paused: neither sent nor reported
    resumed = await svc.set_paused(weekly.id, False)
    assert resumed.next_run == to_ts(local("2026-12-14 08:00")) and not resumed.paused
    await svc.delete_schedule(weekly.id)
    assert await svc.schedules() == []
    clock.set(local("2026-12-14 08:00"))
    assert await svc.fire_due() == []


async def test_schedule_draft_saves_only_with_a_future_time(svc, clock):
    draft = await ready_draft(svc, schedule=(Rule("once", 11, 0, on=date(2026, 11, 23)), "今天 11:00"))
    with pytest.raises(UserError, match="gone"):
        await svc.start_sending(draft.id, await person(svc, SUP))  # a schedule draft is saved, not sent
    clock.set(local("2026-11-23 11:30"))
    with pytest.raises(UserError, match="schedule_past"):
        await svc.save_schedule(draft.id, await person(svc, SUP))
    clock.set(local("2026-11-23 10:30"))
    saved = await svc.save_schedule(draft.id, await person(svc, SUP))
    assert saved.rule_text == "今天 11:00" and (await svc.get(draft.id)).status == "template"


async def test_visible_numbers_count_only_sent_broadcasts_in_sending_order(svc, clock):
    """Drafts, cancelled drafts and schedule templates take internal ids but no number; a sent
    broadcast and a fired schedule take the next number, 1, 2, 3 (migration 0013)."""
    actor = await person(svc, SUP)
    clock.set(local("2026-11-23 10:00"))
    template = await schedule(svc, Rule("daily", 11, 0))
    dropped = await ready_draft(svc, "写错了")
    await svc.cancel(dropped.id, actor)
    waiting = await ready_draft(svc, "先不发")
    first = await svc.start_sending((await ready_draft(svc, "第一条")).id, actor)
    assert first.id == 4 and first.number == 1
    clock.set(local("2026-11-23 11:00"))
    [fired] = await svc.fire_due()
    assert fired.broadcast.number == 2 and fired.broadcast.schedule_id == template.id
    later = await svc.start_sending(waiting.id, actor)  # composed earlier, sent later: numbered when sent
    assert later.number == 3
    assert [(await svc.get(i)).number for i in (1, 2)] == [None, None]  # template, cancelled draft
    assert [b.number for b, _ in await svc.recent()] == [3, 2, 1]  # /broadcasts: newest number first


async def test_migration_0013_numbers_existing_broadcasts_in_id_order(tmp_path):
    from bot.db import Database, available_migrations

    db = await Database.open(tmp_path / "old.db", migrate=False)
    await db.migrate([m for m in available_migrations() if m.version < 13])
    for status in ("template", "done", "cancelled", "draft", "done", "sending"):
        await db.execute("INSERT INTO broadcasts (author_id, status, kind, created_at) VALUES (1, ?, 'text', 0)",
                         (status,))
    await db.migrate()
    rows = await db.fetchall("SELECT status, number FROM broadcasts ORDER BY id")
    assert [(r["status"], r["number"]) for r in rows] == [
        ("template", None), ("done", 1), ("cancelled", None), ("draft", None), ("done", 2), ("sending", 3)]
    with pytest.raises(Exception, match="UNIQUE"):
        await db.execute("UPDATE broadcasts SET number = 1 WHERE id = 6")
    await db.close()


# --- pacing ------------------------------------------------------------------------------------
async def test_pacer_never_exceeds_the_window_and_spaces_sends():
    pacer = Pacer(rate=200, window_limit=10, window=0.2)
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def send():
        await pacer.acquire()
        starts.append(loop.time())
        await asyncio.sleep(0.002)
        pacer.release()

    await asyncio.gather(*(send() for _ in range(40)))
    assert len(starts) == 40
    for start in starts:  # the window limit binds here (10 per 0.2 s is slower than 200/s)
        assert sum(1 for other in starts if start <= other < start + 0.2) <= 10
    assert starts[-1] - starts[0] >= 0.6


async def test_pacer_keeps_its_pace_without_bursts():
    pacer = Pacer(rate=100, window_limit=1000)
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    for _ in range(30):
        async with pacer:
            starts.append(loop.time())
    assert 29 / 100 * 0.95 <= starts[-1] - starts[0] <= 29 / 100 * 1.5
    for start in starts:  # never more than one slot early: no catch-up bursts
        assert sum(1 for other in starts if start <= other < start + 0.05) <= 6
