"""The reminder engine on a real SQLite file with a fake clock, no Telegram."""

from datetime import timedelta

import pytest

from bot.clock import to_ts
from bot.reminders import ReminderEngine, count_due, due_count, list_due
from bot.reminders.digest import split_digest
from bot.settings import Settings
from tests.conftest import local
from tests.reminder_orders import changed, paid, save, unpaid

H = timedelta(hours=1)


@pytest.fixture
def make_engine(db, clock, tmp_path):
    def build(**overrides) -> ReminderEngine:
        settings = Settings(kefu_db_path=tmp_path / "kefu.db", **overrides)
        return ReminderEngine.from_settings(db, clock, settings)

    return build


@pytest.fixture
def engine(make_engine):
    return make_engine()


async def states(db) -> dict[tuple[str, str, str], str]:
    rows = await db.fetchall(
        "SELECT o.order_no, r.rule, r.stage, r.state FROM reminders r JOIN orders o ON o.id = r.order_id"
    )
    return {(r[0], r[1], r[2]): r[3] for r in rows}


async def test_unpaid_fires_at_12_hours_not_before(db, clock, engine):
    o = unpaid(clock.now(), order_no="A1")
    await save(db, clock, o)
    clock.advance(hours=12, seconds=-1)
    assert (await engine.scan()).created == 0
    clock.advance(seconds=1)
    result = await engine.scan()
    assert result.created == 1
    [r] = await engine.pending()
    assert (r.rule, r.stage, r.due_at, r.state) == ("unpaid", "remind", to_ts(clock.now()), "pending")
    assert (await engine.scan()).created == 0  # the dedupe key: one row per (order, rule, stage)


async def test_unshipped_warns_at_36_and_breaches_at_48(db, clock, engine):
    await save(db, clock, paid(clock.now(), order_no="B1"))
    clock.advance(hours=36, seconds=-1)
    assert (await engine.scan()).created == 0
    clock.advance(seconds=1)
    await engine.scan()
    [warn] = await engine.pending()
    assert warn.stage == "warn" and warn.deadline_at == to_ts(clock.now() + 12 * H)
    clock.advance(hours=12, seconds=-1)
    assert (await engine.scan()).created == 0
    clock.advance(seconds=1)
    result = await engine.scan()
    assert result.created == 1 and result.superseded == [warn.id]
    assert await states(db) == {("B1", "unshipped", "warn"): "resolved", ("B1", "unshipped", "breach"): "pending"}


async def test_catch_up_after_downtime_records_only_the_latest_stage(db, clock, engine):
    start = clock.now()
    await save(db, clock, paid(start, order_no="C1"), unpaid(start, order_no="C2"), paid(start + 20 * H, order_no="C3"))
    clock.advance(hours=60)  # the bot was down for 2.5 days
    result = await engine.scan()
    assert result.created == 3
    assert await states(db) == {
        ("C1", "unshipped", "breach"): "pending",
        ("C2", "unpaid", "remind"): "pending",
        ("C3", "unshipped", "warn"): "pending",
    }


async def test_presale_and_refunding_orders_are_not_reminded(db, clock, engine):
    t = clock.now()
    await save(db, clock, paid(t, order_no="P1", presale=True), paid(t, order_no="R1", refunding=True),
               paid(t, order_no="N1", status="partially_shipped"))
    clock.advance(hours=50)
    await engine.scan()
    assert await states(db) == {("N1", "unshipped", "breach"): "pending"}


async def test_orders_that_move_on_resolve_their_reminders(db, clock, engine):
    t = clock.now()
    a, b, c, d = unpaid(t, order_no="D1"), paid(t, order_no="D2"), unpaid(t, order_no="D3"), paid(t, order_no="D4")
    await save(db, clock, a, b, c, d)
    clock.advance(hours=40)
    await engine.scan()
    await save(db, clock, changed(a, status="paid_unshipped", paid_at=clock.now()), changed(b, status="shipped"),
               changed(c, status="closed"), changed(d, refunding=True))
    result = await engine.scan()
    reasons = {r["order_no"]: r["resolved_reason"] for r in await db.fetchall(
        "SELECT o.order_no, r.resolved_reason FROM reminders r JOIN orders o ON o.id = r.order_id WHERE r.state = 'resolved'")}
    assert reasons == {"D1": "paid", "D2": "shipped", "D3": "closed", "D4": "refunding"}
    assert sorted(result.resolved) == sorted(result.changed)
    events = await db.fetchall("SELECT action, detail FROM reminder_events WHERE actor IS NULL")
    assert {tuple(e) for e in events} == {("resolved", "paid"), ("resolved", "shipped"), ("resolved", "closed"),
                                         ("resolved", "refunding")}


async def test_a_refund_that_ends_reopens_the_reminder(db, clock, engine):
    o = paid(clock.now(), order_no="E1")
    await save(db, clock, o)
    clock.advance(hours=37)
    await engine.scan()
    await save(db, clock, changed(o, refunding=True))
    await engine.scan()
    await save(db, clock, changed(o, refunding=False))
    result = await engine.scan()
    [r] = await engine.pending()
    assert result.reopened == [r.id] and r.round == 2


async def test_shop_overrides_change_the_thresholds_of_that_shop_only(db, clock, make_engine):
    engine = make_engine(kefu_shop_overrides="快店:unpaid=2,warn=10,unshipped=20")
    t = clock.now()
    await save(db, clock, unpaid(t, order_no="F1", shop="快店"), unpaid(t, order_no="F2"),
               paid(t, order_no="F3", shop="快店"), paid(t, order_no="F4"))
    clock.advance(hours=2)
    await engine.scan()
    assert await states(db) == {("F1", "unpaid", "remind"): "pending"}
    clock.advance(hours=8)
    await engine.scan()
    assert ("F3", "unshipped", "warn") in await states(db)
    clock.advance(hours=10)
    await engine.scan()
    s = await states(db)
    assert s[("F3", "unshipped", "breach")] == "pending" and ("F4", "unshipped", "warn") not in s


async def test_a_deadline_in_the_night_gap_is_warned_before_the_last_shift_ends(db, clock, make_engine):
    # warn at 46 h: paid Monday 05:00 → deadline Wednesday 05:00 (night gap 01:00–08:30), warning
    # normally Wednesday 03:00, also in the gap → brought forward to Wednesday 00:00
    engine = make_engine(kefu_unshipped_warn_hours=46)
    await save(db, clock, paid(local("2026-11-23 05:00"), order_no="G1"), paid(local("2026-11-23 12:00"), order_no="G2"))
    clock.set(local("2026-11-24 23:59"))
    assert (await engine.scan()).created == 0
    assert [i.order_no for i in await list_due(db, engine.book, clock.now())] == []
    clock.set(local("2026-11-25 00:00"))
    assert (await engine.scan()).created == 1
    [r] = await engine.pending()
    assert (r.order_no, r.stage, r.due_at) == ("G1", "warn", to_ts(local("2026-11-25 00:00")))
    assert r.deadline_at == to_ts(local("2026-11-25 05:00"))
    # G2's deadline (Wednesday 12:00) is in the day shift: its warning comes at the usual 46 h
    clock.set(local("2026-11-25 09:59"))
    await engine.scan()
    assert set(await states(db)) == {("G1", "unshipped", "warn"), ("G1", "unshipped", "breach")}
    clock.set(local("2026-11-25 10:00"))
    await engine.scan()
    assert (await states(db))[("G2", "unshipped", "warn")] == "pending"


async def test_list_due_and_due_count_agree_with_the_scan(db, clock, engine):
    t = clock.now()
    a = unpaid(t - 13 * H, order_no="H1")
    await save(db, clock, a, unpaid(t - 1 * H, order_no="H2"), paid(t - 40 * H, order_no="H3"),
               paid(t - 50 * H, order_no="H4"), paid(t - 50 * H, order_no="H5", presale=True))
    due = await list_due(db, engine.book, clock.now())
    assert [(i.order_no, i.rule, i.stage, i.reminder_state) for i in due] == [
        ("H3", "unshipped", "warn", None), ("H4", "unshipped", "breach", None), ("H1", "unpaid", "remind", None)]
    assert await due_count(db, clock.now(), engine_settings(engine)) == 3
    await engine.scan()
    assert [i.reminder_state for i in await list_due(db, engine.book, clock.now())] == ["pending"] * 3
    [h1] = [r for r in await engine.pending() if r.order_no == "H1"]
    await engine.done(h1.id, 7, "reminded")
    assert await count_due(db, engine.book, clock.now()) == 2
    # a moment in the future: H2 becomes due at creation + 12 h
    assert "H2" in [i.order_no for i in await list_due(db, engine.book, t + 11 * H)]
    as_json = due[1].to_json(engine.book.tz)
    assert as_json["due_at"].endswith("+08:00") and as_json["rule"] == "unshipped" and as_json["amount"] == "128.00"


def engine_settings(engine: ReminderEngine):
    class S:  # due_count takes settings; this engine's own values
        kefu_unpaid_remind_hours = engine.book.defaults.unpaid
        kefu_unshipped_warn_hours = engine.book.defaults.warn
        kefu_unshipped_remind_hours = engine.book.defaults.unshipped
        kefu_shop_overrides = ""
        shifts = engine.book.shifts
        tz = engine.book.tz

    return S


# --- delivery bookkeeping -------------------------------------------------------------------------


async def due_reminders(db, clock, engine, n=2):
    await save(db, clock, *[unpaid(clock.now() - 13 * H, order_no=f"K{i}") for i in range(n)])
    await engine.scan()
    return await engine.pending()


async def test_a_round_completes_only_when_every_chat_has_it(db, clock, engine):
    r1, r2 = await due_reminders(db, clock, engine)
    await engine.record_message(chat_id=1, message_id=10, kind="digest", purpose="notify", items=[(r1, 1), (r2, 2)])
    assert await engine.complete_round([1, 2]) == []  # chat 2 has nothing yet
    assert await engine.delivered([r1, r2], "notify") == {(r1.id, 1), (r2.id, 1)}
    await engine.record_message(chat_id=2, message_id=11, kind="card", purpose="notify", items=[(r1, 1)])
    assert await engine.complete_round([1, 2]) == [r1.id]
    [still] = await engine.pending()
    assert still.id == r2.id and still.first_sent_at is not None
    done = await engine.get(r1.id)
    assert done.state == "sent" and done.sent_at is not None


async def test_unconfirmed_sends_count_as_delivered_and_are_never_edited(db, clock, engine):
    """message_id None (outbox: sent, answer timed out): recorded with a unique negative sentinel,
    the round counts it, and no edit path ever gets it."""
    r1, r2 = await due_reminders(db, clock, engine)
    first = await engine.record_message(chat_id=1, message_id=None, kind="card", purpose="notify", items=[(r1, 1)])
    second = await engine.record_message(chat_id=1, message_id=None, kind="card", purpose="notify", items=[(r2, 1)])
    await engine.record_message(chat_id=2, message_id=11, kind="digest", purpose="notify", items=[(r1, 1), (r2, 2)])
    assert await engine.delivered([r1, r2], "notify") == {(r1.id, 1), (r2.id, 1), (r1.id, 2), (r2.id, 2)}
    assert sorted(await engine.complete_round([1, 2])) == [r1.id, r2.id]
    assert (await engine.get(r1.id)).first_sent_at is not None
    assert [(m.chat_id, m.message_id) for m in await engine.messages_showing([r1.id, r2.id])] == [(2, 11)]
    ids = [row[0] for row in await db.fetchall("SELECT message_id FROM reminder_messages WHERE id IN (?, ?)",
                                                (first, second))]
    assert sorted(ids) == sorted([-first, -second])


async def test_a_claim_during_delivery_ends_the_round_as_claimed(db, clock, engine):
    [r] = await due_reminders(db, clock, engine, n=1)
    await engine.record_message(chat_id=1, message_id=10, kind="card", purpose="notify", items=[(r, 1)])
    assert (await engine.claim(r.id, 1)).ok
    assert (await engine.get(r.id)).state == "claimed"
    assert await engine.complete_round([1]) == []


async def test_escalation_after_30_minutes_then_at_most_hourly_until_claimed(db, clock, engine):
    [r] = await due_reminders(db, clock, engine, n=1)
    await engine.record_message(chat_id=1, message_id=10, kind="card", purpose="notify", items=[(r, 1)])
    await engine.complete_round([1])
    clock.advance(minutes=29)
    assert await engine.due_escalations() == []
    clock.advance(minutes=1)
    [due] = await engine.due_escalations()
    await engine.record_message(chat_id=9, message_id=20, kind="escalation", purpose="escalate", items=[(due, 1)])
    assert await engine.complete_escalation([due], [9]) == [r.id]
    after = await engine.get(r.id)
    assert (after.state, after.escalations) == ("escalated", 1)
    clock.advance(minutes=59)
    assert await engine.due_escalations() == []
    clock.advance(minutes=1)
    [again] = await engine.due_escalations()
    assert await engine.delivered([again], "escalate") == set()  # round 2 of escalation: nobody has it yet
    assert (await engine.claim(r.id, 5)).ok
    assert await engine.due_escalations() == []


async def test_escalation_to_several_supervisors_counts_once_all_have_it(db, clock, engine):
    [r] = await due_reminders(db, clock, engine, n=1)
    await engine.record_message(chat_id=1, message_id=10, kind="card", purpose="notify", items=[(r, 1)])
    clock.advance(minutes=31)
    [due] = await engine.due_escalations()
    await engine.record_message(chat_id=8, message_id=21, kind="escalation", purpose="escalate", items=[(due, 1)])
    assert await engine.complete_escalation([due], [8, 9]) == []
    assert await engine.delivered([due], "escalate") == {(r.id, 8)}


# --- button actions -------------------------------------------------------------------------------


async def test_claim_is_first_come_and_recorded(db, clock, engine):
    [r] = await due_reminders(db, clock, engine, n=1)
    assert (await engine.claim(r.id, 1)).ok
    again = await engine.claim(r.id, 1)
    other = await engine.claim(r.id, 2)
    assert (again.ok, again.code) == (False, "already_yours")
    assert (other.ok, other.code, other.params) == (False, "claimed_by_other", {"who": 1})
    assert (await engine.claim(999, 1)).code == "not_found"
    actions = [(e["actor"], e["action"], e["detail"]) for e in await engine.events(r.id)]
    assert actions == [(1, "claim", ""), (1, "refused", "claim:already_yours"), (2, "refused", "claim:claimed_by_other")]


async def test_done_needs_a_fitting_outcome_and_respects_the_claim(db, clock, engine):
    [r] = await due_reminders(db, clock, engine, n=1)
    await engine.claim(r.id, 1)
    assert (await engine.done(r.id, 2, "reminded")).code == "claimed_by_other"
    assert (await engine.done(r.id, 1, "shipped")).code == "bad_outcome"  # not an outcome of 催付
    assert (await engine.done(r.id, 2, "reminded", supervisor=True)).ok
    closed = await engine.get(r.id)
    assert (closed.state, closed.outcome, closed.done_by, closed.claimed_by) == ("done", "reminded", 2, 1)
    assert (await engine.claim(r.id, 3)).code == "already_done"
    assert (await engine.snooze(r.id, 1, clock.now() + H)).code == "already_done"


async def test_snooze_holds_then_starts_a_new_round(db, clock, engine):
    [r] = await due_reminders(db, clock, engine, n=1)
    await engine.record_message(chat_id=1, message_id=10, kind="card", purpose="notify", items=[(r, 1)])
    await engine.complete_round([1])
    assert (await engine.snooze(r.id, 1, clock.now() - H)).code == "snooze_in_past"
    assert (await engine.snooze(r.id, 1, clock.now() + H)).ok
    clock.advance(minutes=59)
    assert (await engine.scan()).woken == [] and await engine.due_escalations() == []
    clock.advance(minutes=1)
    assert (await engine.scan()).woken == [r.id]
    [woken] = await engine.pending()
    assert (woken.round, woken.first_sent_at) == (2, None)
    assert await engine.delivered([woken], "notify") == set()  # chat 1 had round 1 only


async def test_a_breach_starts_claimed_by_whoever_claimed_the_warning(db, clock, engine):
    await save(db, clock, paid(clock.now(), order_no="M1"))
    clock.advance(hours=36)
    await engine.scan()
    [warn] = await engine.pending()
    await engine.claim(warn.id, 4)
    clock.advance(hours=12)
    assert (await engine.scan()).carried == 1
    [breach] = await engine.pending()
    assert (breach.stage, breach.claimed_by) == ("breach", 4)


async def test_open_overview_splits_mine_and_the_team(db, clock, engine):
    r1, r2, r3 = await due_reminders(db, clock, engine, n=3)
    await engine.claim(r2.id, 1)
    await engine.claim(r3.id, 2)
    mine, mine_count, team, team_count = await engine.open_overview(1)
    assert ([r.id for r in mine], mine_count) == ([r2.id], 1)
    assert ([r.id for r in team], team_count) == ([r1.id, r3.id], 2)


# --- digests --------------------------------------------------------------------------------------


def test_split_digest_fits_the_limit_and_caps_the_listing():
    items = list(range(130))

    def render(chunk, start, part, parts, extra):
        return f"{part}/{parts}\n" + "\n".join(f"{start + i}. order {n}" for i, n in enumerate(chunk)) + (f"\n+{extra}" if extra else "")

    parts = split_digest(items, render, per_message=20, max_listed=60)
    assert [len(p.items) for p in parts] == [20, 20, 20]
    assert [p.start for p in parts] == [1, 21, 41]
    assert parts[-1].unlisted == items[60:] and parts[0].unlisted == []
    assert parts[-1].text.endswith("+70")

    small = split_digest(items[:10], lambda c, s, p, n, e: "x" * 50 * len(c), per_message=20, limit=200)
    assert all(len(p.text) <= 200 for p in small) and sum(len(p.items) for p in small) == 10


async def test_any_update_of_an_order_is_noticed_by_the_next_scan(db, clock, engine):
    await save(db, clock, unpaid(clock.now() - 13 * H, order_no="N1"), unpaid(clock.now() - 13 * H, order_no="N2"))
    await engine.scan()
    await db.execute("UPDATE orders SET status = 'closed' WHERE order_no = 'N1'")  # not through the importer
    await db.execute("UPDATE orders SET buyer = 'someone else' WHERE order_no = 'N2'")  # not a status change
    assert [r[0] for r in await db.fetchall("SELECT order_id FROM reminder_order_changes")] == [
        (await db.fetchone("SELECT id FROM orders WHERE order_no = 'N1'"))[0]]
    result = await engine.scan()
    assert len(result.resolved) == 1 and await db.fetchall("SELECT * FROM reminder_order_changes") == []
    assert (await states(db))[("N1", "unpaid", "remind")] == "resolved"


async def test_the_first_scan_after_a_start_rechecks_every_open_reminder(db, clock, engine, make_engine):
    await save(db, clock, unpaid(clock.now() - 13 * H, order_no="O1"))
    await engine.scan()
    await db.execute("UPDATE orders SET status = 'closed' WHERE order_no = 'O1'")
    await db.execute("DELETE FROM reminder_order_changes")  # as if the change had been missed
    assert (await engine.scan()).resolved == []  # the running engine relies on the change list
    restarted = make_engine()
    assert len((await restarted.scan()).resolved) == 1
