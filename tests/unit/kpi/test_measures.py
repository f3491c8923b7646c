"""Every measure on event histories built through the real features (orders upsert, ReminderEngine,
HandoverService) or, for broadcasts, SQL into the real schema."""

from datetime import date, timedelta

from bot.clock import to_ts
from bot.kpi import Period, Viewer
from tests.conftest import local
from tests.reminder_orders import changed, paid, save, unpaid

AGENT, OTHER, SUPER = 501, 502, 900
TEAM_CHAT = -100


_message_ids = iter(range(1, 10**9))


async def push(engine, clock, chat=TEAM_CHAT, message_id=None):
    """The scan records what is due; the Telegram layer sends it and records the message."""
    await engine.scan()
    views = await engine.pending()
    for view in views:
        await engine.record_message(chat_id=chat, message_id=message_id or next(_message_ids), kind="card",
                                    purpose="notify",
                                    items=[(view, None)], now=clock.now())
    return views


async def test_payment_success_claim_credit_and_amount_in_fen(db, clock, engine, kpi):
    created = local("2026-11-16 09:00")
    clock.set(created)
    a = unpaid(created, order_no="P1", amount="0.10")
    b = unpaid(created, order_no="P2", amount="0.20")
    await save(db, clock, a, b)
    clock.set(created + timedelta(hours=12))  # 21:00, night shift
    r1, r2 = await push(engine, clock)
    clock.advance(minutes=4)
    assert (await engine.claim(r1.id, AGENT)).ok
    clock.advance(minutes=30)
    await engine.snooze(r2.id, OTHER, clock.now() + timedelta(hours=1), supervisor=True)  # only snoozed
    clock.advance(hours=2)
    await save(db, clock, changed(a, status="paid_unshipped", paid_at=clock.now()),
               changed(b, status="paid_unshipped", paid_at=clock.now()))
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 22)))
    pay = report["payment_reminders"]
    assert (pay["pushed"], pay["acted"], pay["paid_after"], pay["rate"]) == (2, 1, 2, 100.0)
    assert pay["recovered_amount"] == "0.30"  # 10 分 + 20 分, exact
    assert pay["recovered_amount_acted"] == "0.10"
    assert pay["unacted"] == 1 and pay["unacted_paid_rate"] == 100.0
    assert pay["median_minutes_to_pay"] == 154.0  # 2 h 34 min after the push
    std = {s["id"]: s for s in report["standards"]}
    claim = std["payment_claim_10m"]
    # r1 claimed in 4 min; r2 never claimed, resolved as paid 2 h 34 later: missed
    assert (claim["n"], claim["achieved"], claim["met"]) == (2, 50.0, False)
    assert claim["by_person"][str(AGENT)]["achieved"] == 100.0
    assert claim["by_shift"]["night"]["n"] == 2
    success = std["payment_success"]
    assert (success["achieved"], success["met"]) == (100.0, None)  # tracked, no target
    assert report["breakdowns"]["person"][str(AGENT)]["recovered_amount"] == "0.10"
    assert report["breakdowns"]["day"]["2026-11-16"]["payment_pushed"] == 2


async def test_reminder_refired_after_restart_counts_once_from_the_first_push(db, clock, engine, kpi, kpi_settings):
    from bot.reminders import ReminderEngine

    created = local("2026-11-16 08:00")
    clock.set(created)
    o = unpaid(created, order_no="R1")
    await save(db, clock, o)
    clock.set(created + timedelta(hours=12))
    [view] = await push(engine, clock, chat=1, message_id=10)
    clock.advance(minutes=3)
    restarted = ReminderEngine.from_settings(db, clock, kpi_settings)  # a restart: a new engine
    await restarted.scan()
    [again] = await restarted.pending()  # not every chat had it: re-sent
    await restarted.record_message(chat_id=2, message_id=11, kind="card", purpose="notify",
                                   items=[(again, None)], now=clock.now())
    clock.advance(minutes=5)  # 8 minutes after the FIRST push, 5 after the re-send
    await restarted.claim(view.id, AGENT)
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), trend=False)
    assert report["claims"]["reminders"] == 1
    assert report["claims"]["median_minutes"] == 8.0
    assert report["payment_reminders"]["pushed"] == 1


async def test_order_paid_before_the_push_is_not_a_success(db, clock, engine, kpi):
    created = local("2026-11-16 08:00")
    clock.set(created)
    o = unpaid(created, order_no="B1")
    await save(db, clock, o)
    clock.set(created + timedelta(hours=12))
    await engine.scan()
    [view] = await engine.pending()
    # paid (imported) just before the Telegram layer sent the card
    await save(db, clock, changed(o, status="paid_unshipped", paid_at=clock.now() - timedelta(minutes=1)))
    await engine.record_message(chat_id=TEAM_CHAT, message_id=next(_message_ids), kind="card", purpose="notify",
                                items=[(view, None)], now=clock.now())
    clock.set(local("2026-11-25 10:00"))
    pay = (await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), trend=False))["payment_reminders"]
    assert (pay["pushed"], pay["paid_before_push"], pay["paid_after"]) == (0, 1, 0)


async def test_unpaid_after_72_hours_is_a_failure_and_recent_ones_stay_open(db, clock, engine, kpi):
    created = local("2026-11-16 08:00")
    clock.set(created)
    await save(db, clock, unpaid(created, order_no="F1"))
    clock.set(created + timedelta(hours=12))
    await push(engine, clock)
    clock.set(created + timedelta(hours=12 + 71))
    period = Period(date(2026, 11, 16), date(2026, 11, 16))
    pay = (await kpi.report(period, trend=False))["payment_reminders"]
    assert (pay["pushed"], pay["open"], pay["rate"]) == (1, 1, None)
    clock.advance(hours=2)
    pay = (await kpi.report(period, trend=False))["payment_reminders"]
    assert (pay["open"], pay["rate"], pay["unacted_paid_rate"]) == (0, 0.0, 0.0)


async def test_claim_across_the_night_gap_counts_shift_minutes_only(db, clock, engine, kpi):
    created = local("2026-11-16 12:50")
    clock.set(created)
    await save(db, clock, unpaid(created, order_no="N1"))
    clock.set(local("2026-11-17 00:55"))  # 12 h later: 5 minutes before the night shift ends
    await push(engine, clock)
    clock.set(local("2026-11-17 08:35"))  # 5 minutes into the day shift
    [view] = await engine.pending() or [await engine.get(1)]
    await engine.claim(view.id, AGENT)
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 17), date(2026, 11, 17)), trend=False)
    assert report["claims"]["median_minutes"] == 10.0
    claim = next(s for s in report["standards"] if s["id"] == "payment_claim_10m")
    assert (claim["n"], claim["achieved"], claim["met"]) == (1, 100.0, True)
    assert claim["by_shift"]["night"]["n"] == 1  # pushed during the night shift of the 16th


async def test_shipping_late_rate_and_warning_save(db, clock, engine, kpi):
    paid_at = local("2026-11-14 10:00")  # deadline 48 h later: 11-16 10:00
    clock.set(paid_at)
    on_time = paid(paid_at, order_no="S1")
    late = paid(paid_at, order_no="S2")
    never = paid(paid_at, order_no="S3")
    refund = paid(paid_at, order_no="S4", refunding=True)  # open refund: no shipping obligation
    await save(db, clock, on_time, late, never, refund)
    clock.set(paid_at + timedelta(hours=36))
    warned = await push(engine, clock)
    assert len(warned) == 3
    clock.advance(hours=2)
    await save(db, clock, changed(on_time, status="shipped", shipped_at=clock.now()))
    clock.set(paid_at + timedelta(hours=50))
    await save(db, clock, changed(late, status="shipped", shipped_at=clock.now()))
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), trend=False)
    ship = report["shipping"]
    assert (ship["due"], ship["late"]) == (3, 2)
    assert ship["late_rate"] == 66.7
    report = await kpi.report(Period(date(2026, 11, 15), date(2026, 11, 15)), trend=False)  # warnings pushed 11-15
    ship = report["shipping"]
    assert (ship["warned"], ship["saved_before_breach"]) == (3, 1)
    std = {s["id"]: s for s in report["standards"]}
    assert std["warning_saved"]["achieved"] == 33.3 and std["warning_saved"]["met"] is False


async def test_handover_takeover_from_shift_start_and_carry_over(db, clock, handover, kpi):
    clock.set(local("2026-11-16 16:00"))
    item = await handover.log_item(AGENT, "day", "买家要求补发赠品，订单 请跟进")
    night = handover.occurrence_for("night", local("2026-11-16 18:00"))
    clock.set(local("2026-11-16 17:25"))  # delivered just before the shift starts
    await handover.hand_over_to(night)
    clock.set(local("2026-11-16 17:50"))  # 20 minutes into the shift
    await handover.take_over(item.id, OTHER, "night")
    clock.set(local("2026-11-16 18:30"))
    await handover.resolve(item.id, OTHER, "night", "已补发")
    # a second item carried over three shifts
    clock.set(local("2026-11-16 16:10"))
    stale = await handover.log_item(AGENT, "day", "等仓库回复缺货情况")
    for moment in ("2026-11-16 17:35", "2026-11-17 08:40", "2026-11-17 17:40"):
        clock.set(local(moment))
        shift = "night" if moment.endswith(("17:35", "17:40")) else "day"
        await handover.hand_over_to(handover.occurrence_for(shift, local(moment)))
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 17)), trend=False)
    h = report["handover"]
    assert h["median_minutes_to_take"] == 20.0
    assert (h["items"], h["carried_over_too_long"], h["carried_over_max"]) == (2, 1, 3)
    std = {s["id"]: s for s in report["standards"]}
    # item 1 taken in 20 min (met); the stale item was never taken in any of its 3 deliveries (missed)
    assert std["handover_takeover_30m"]["n"] == 4 and std["handover_takeover_30m"]["achieved"] == 25.0
    assert std["handover_carry_over"]["achieved"] == 50.0 and std["handover_carry_over"]["met"] is False
    assert stale.id != item.id


async def test_acknowledgement_by_people_on_duty(db, clock, kpi):
    sent = local("2026-11-16 10:00")
    now = to_ts(sent)
    for tg, shift in ((AGENT, "day"), (OTHER, "day"), (503, "night")):
        await db.execute("INSERT INTO users (tg_id, full_name, role, shift, created_at, updated_at)"
                         " VALUES (?, ?, 'agent', ?, ?, ?)", (tg, f"客服{tg}", shift, now, now))
    await db.execute("INSERT INTO broadcasts (id, author_id, status, kind, body_html, ack_required, urgent,"
                     " created_at, sent_at) VALUES (1, ?, 'done', 'text', '通知', 1, 0, ?, ?)", (SUPER, now, now))
    await db.execute("INSERT INTO broadcasts (id, author_id, status, kind, body_html, ack_required, urgent,"
                     " created_at, sent_at) VALUES (2, ?, 'done', 'text', '紧急', 1, 1, ?, ?)", (SUPER, now, now))
    rows = [(1, AGENT, now + 5 * 60), (1, OTHER, now + 40 * 60), (1, 503, None), (2, AGENT, now + 3 * 60)]
    for b, tg, acked in rows:
        await db.execute("INSERT INTO broadcast_recipients (broadcast_id, tg_id, status, sent_at, acked_at)"
                         " VALUES (?, ?, 'sent', ?, ?)", (b, tg, now, acked))
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), trend=False)
    b = report["broadcasts"]
    assert (b["recipients_on_duty"], b["acknowledged"], b["urgent_recipients"]) == (3, 3, 1)  # 503 was off duty
    std = {s["id"]: s for s in report["standards"]}
    assert (std["ack_15m"]["n"], std["ack_15m"]["achieved"]) == (2, 50.0)
    assert (std["ack_urgent_5m"]["n"], std["ack_urgent_5m"]["met"]) == (1, True)
    # an agent sees the team and themselves, never another agent
    mine = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), "team", Viewer(AGENT, "agent"), trend=False)
    assert set(next(s for s in mine["standards"] if s["id"] == "ack_15m")["by_person"]) == {str(AGENT)}


async def test_trend_against_the_previous_period(db, clock, engine, kpi):
    for day, minutes_to_claim in (("2026-11-09", 30), ("2026-11-16", 2)):
        created = local(f"{day} 09:00")
        clock.set(created)
        await save(db, clock, unpaid(created, order_no=f"T{day}"))
        clock.set(created + timedelta(hours=12))
        [view] = await push(engine, clock)
        clock.advance(minutes=minutes_to_claim)
        await engine.claim(view.id, AGENT)
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 22)))
    claim = next(s for s in report["standards"] if s["id"] == "payment_claim_10m")
    assert (claim["achieved"], claim["previous_achieved"], claim["trend_pp"]) == (100.0, 0.0, 100.0)


async def test_one_nudge_at_80_percent_of_the_claim_target_in_shift_hours(db, clock, engine, kpi):
    created = local("2026-11-16 12:58")
    clock.set(created)
    await save(db, clock, unpaid(created, order_no="G1"))
    clock.set(local("2026-11-17 00:58"))  # pushed 2 minutes before the night shift ends
    [view] = await push(engine, clock)
    clock.set(local("2026-11-17 08:33"))  # 2 + 3 = 5 shift minutes: not yet
    assert await kpi.due_nudges() == []
    clock.set(local("2026-11-17 08:36"))  # 8 shift minutes of 10: the on-duty agents are told
    [nudge] = await kpi.due_nudges()
    assert (nudge["reminder_id"], nudge["standard"], nudge["minutes_left"]) == (view.id, "payment_claim_10m", 2.0)
    await kpi.record_nudges([nudge])
    clock.advance(minutes=1)
    assert await kpi.due_nudges() == []  # once only


async def test_shipping_deadline_follows_shop_overrides_and_the_orders_own_promise(db, clock, kpi_settings):
    from bot.kpi import KpiService, load_standards
    from bot.reminders.rules import RuleBook
    from bot.settings import Settings

    settings = Settings(kefu_db_path=kpi_settings.kefu_db_path, kefu_shop_overrides="快店:warn=12,unshipped=24")
    kpi = KpiService(db, clock, RuleBook.from_settings(settings), load_standards())
    paid_at = local("2026-11-15 10:00")
    clock.set(paid_at)
    fast = paid(paid_at, order_no="K1", shop="快店")  # deadline 11-16 10:00 (24 h)
    slow = paid(paid_at, order_no="K2")  # deadline 11-17 10:00 (48 h): not in the period
    await save(db, clock, fast, slow)
    clock.set(local("2026-11-16 12:00"))
    await save(db, clock, changed(fast, status="shipped", shipped_at=clock.now()))
    clock.set(local("2026-11-25 10:00"))
    ship = (await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), trend=False))["shipping"]
    assert (ship["due"], ship["late"]) == (1, 1)
    # the platform's own 承诺发货时间 (ship_by) wins over the hours
    await db.execute("UPDATE orders SET ship_by = ? WHERE order_no = 'K2'", (to_ts(local("2026-11-16 09:00")),))
    ship = (await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 16)), trend=False))["shipping"]
    assert (ship["due"], ship["late"]) == (2, 2)


async def test_morning_review_sections(db, clock, engine, handover, kpi):
    day = local("2026-11-23 10:00")
    clock.set(day - timedelta(hours=13))
    big = unpaid(clock.now(), order_no="BIG", amount="2999.00")
    await save(db, clock, big)
    clock.set(day)  # 13 h later: due and pushed, nobody claims it, then the order closes
    await push(engine, clock)
    clock.set(local("2026-11-23 15:00"))
    await save(db, clock, changed(big, status="closed"))
    await handover.log_item(AGENT, "day", "买家说明天再联系")
    clock.set(local("2026-11-24 08:30"))
    review = await kpi.morning_review(date(2026, 11, 23))
    sections = {s["key"]: s for s in review["sections"]}
    assert sections["large_unpaid_closed"]["items"][0]["amount"] == "2999.00"
    assert sections["unclaimed_reminders"]["items"][0]["order_no"] == "BIG"
    assert sections["handover_open"]["items"][0]["ref"].startswith("handover:")
    assert review["empty"] is False
