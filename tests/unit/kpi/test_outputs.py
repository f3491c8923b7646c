"""Charts (no missing glyph, < 200 KB), XLSX, suggestions, morning review, Monday pack, CLI JSON."""

import io
import json
import logging
import warnings
from datetime import date, timedelta

from openpyxl import load_workbook

from bot.kpi import Period, suggest
from bot.kpi.charts import MAX_BYTES, render_pack
from bot.kpi.standards import load_standards
from bot.kpi.worktime import WorkClock
from bot.kpi.xlsx import report_xlsx
from bot.render import Renderer
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI, local
from tests.reminder_orders import changed, paid, save, unpaid


async def _history(db, clock, engine):
    created = local("2026-11-16 09:00")
    clock.set(created)
    o = unpaid(created, order_no="C1", amount="1288.00")
    await save(db, clock, o)
    clock.set(created + timedelta(hours=12))
    await engine.scan()
    [view] = await engine.pending()
    await engine.record_message(chat_id=-100, message_id=1, kind="card", purpose="notify", items=[(view, None)],
                                now=clock.now())
    clock.advance(minutes=3)
    await engine.claim(view.id, 501)
    clock.advance(hours=1)
    await save(db, clock, changed(o, status="paid_unshipped", paid_at=clock.now()))


async def test_monday_pack_charts_render_chinese_without_missing_glyphs(db, clock, engine, kpi, caplog):
    await _history(db, clock, engine)
    clock.set(local("2026-11-23 08:00"))
    pack = await kpi.monday_pack(date(2026, 11, 23))
    assert pack["week"] == {"from": "2026-11-16", "to": "2026-11-22"}
    assert pack["payment_per_day"][0] == {"day": "2026-11-16", "pushed": 1, "paid": 1, "rate": 100.0,
                                          "recovered_amount": "1288.00"}
    assert pack["claim_minutes_by_shift"] == {"night": [3.0]}
    assert 501 in pack["people"]
    renderer = Renderer(SHANGHAI)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        charts = render_pack(pack, renderer)
    glyph = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    glyph += [r.getMessage() for r in caplog.records if "Glyph" in r.getMessage() or "missing" in r.getMessage()]
    assert glyph == []
    assert set(charts) == {"standards", "payment", "claims", "people"}
    for png in charts.values():
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < MAX_BYTES


def test_a_missing_glyph_would_be_caught():
    """The check above can fail: a font without CJK glyphs does warn."""
    from matplotlib.figure import Figure

    fig = Figure()
    fig.text(0.5, 0.5, "催付", fontfamily="DejaVu Sans")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    assert any("missing from" in str(w.message) for w in caught)


async def test_xlsx_keeps_amounts_exact(db, clock, engine, kpi):
    await _history(db, clock, engine)
    clock.set(local("2026-11-25 10:00"))
    report = await kpi.report(Period(date(2026, 11, 16), date(2026, 11, 22)))
    wb = load_workbook(io.BytesIO(report_xlsx(report, Renderer(SHANGHAI))))
    assert wb.sheetnames[0] == "服务标准"
    summary = {row[0]: row[1] for row in wb["汇总"].iter_rows(values_only=True)}
    assert str(summary["payment_reminders.recovered_amount"]) == "1288"


def _weeks(values, n=10):
    return [{"achieved": v, "n": n, "met": None} for v in values]


def test_suggestions_tighten_after_four_wide_margins_and_look_at_causes_after_four_misses():
    std = {s.id: s for s in load_standards()}["payment_claim_10m"]
    weeks = [{"achieved": v, "n": 10, "met": std.met(v)} for v in (99.0, 98.0, 100.0, 97.0)]
    wc = WorkClock(parse_shifts("day=08:30-17:30;night=17:30-01:00"), SHANGHAI, 0, 10)
    s = suggest(std, weeks, [], wc)
    assert s["action"] == "tighten" and s["suggested_target"] == 94.0  # half-way to the worst week (97)
    weeks = [{"achieved": v, "n": 10, "met": std.met(v)} for v in (80.0, 70.0, 85.0, 89.0)]
    from bot.clock import to_ts
    from bot.kpi.measures import Obs

    at = to_ts(local("2026-11-16 18:05"))
    wc = WorkClock(parse_shifts("day=08:30-17:30;night=17:30-01:00"), SHANGHAI, at - 86400, at + 86400)
    obs = [Obs("payment_claim", at, "店", "night", None, "open", 3600, 3600)] * 3
    s = suggest(std, weeks, obs, wc)
    assert s["action"] == "investigate" and s["worst_shift"] == "night" and s["worst_hours"] == [18]
    weeks = [{"achieved": v, "n": 10, "met": std.met(v)} for v in (95.0, 80.0, 99.0, 99.0)]
    assert suggest(std, weeks, [], wc) is None


async def test_morning_review_lists_yesterdays_anomalies_and_leaves_out_empty_sections(db, clock, engine, kpi):
    clock.set(local("2026-11-24 08:30"))
    assert (await kpi.morning_review(date(2026, 11, 23)))["empty"] is True
    paid_at = local("2026-11-21 09:00")
    clock.set(paid_at)
    late = paid(paid_at, order_no="L1")
    await save(db, clock, late)
    clock.set(local("2026-11-23 11:00"))
    refund = paid(local("2026-11-23 10:00"), order_no="RF1", refunding=True)
    await save(db, clock, refund)
    clock.set(local("2026-11-24 08:30"))
    review = await kpi.morning_review(date(2026, 11, 23))
    keys = [s["key"] for s in review["sections"]]
    assert "refunds_opened" in keys and "shipping_breaches" in keys
    assert all(s["items"] for s in review["sections"])
    breach = next(s for s in review["sections"] if s["key"] == "shipping_breaches")["items"][0]
    assert breach["ref"] == "order:taobao:L1" and breach["amount"] == "128.00"


async def test_cli_json_shape(db, clock, engine, tmp_path, monkeypatch, capsys):
    from bot.cli import main

    await _history(db, clock, engine)
    monkeypatch.setenv("KEFU_DB_PATH", str(tmp_path / "kefu.db"))
    monkeypatch.chdir(tmp_path)
    import asyncio

    assert await asyncio.to_thread(main, ["report", "kpi", "--from", "2026-11-16", "--to", "2026-11-22", "--json",
                                          "--xlsx", str(tmp_path / "r.xlsx")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"period", "standards", "payment_reminders", "shipping", "claims", "handover", "broadcasts"} <= set(data)
    assert {"id", "name", "target", "achieved", "n", "met"} <= set(data["standards"][0])
    pay = data["payment_reminders"]
    assert {"pushed", "acted", "paid_after", "rate", "recovered_amount", "median_minutes_to_pay",
            "unacted_paid_rate"} <= set(pay)
    assert pay["recovered_amount"] == "1288.00"
    assert {"due", "late", "late_rate", "warned", "saved_before_breach"} <= set(data["shipping"])
    assert {"median_minutes", "p90_minutes"} <= set(data["claims"])
    assert (tmp_path / "r.xlsx").stat().st_size > 0
    assert await asyncio.to_thread(main, ["report", "kpi", "--from", "2026-11-22", "--to", "2026-11-16"]) == 2


async def test_monday_pack_person_page_has_their_own_standards(db, clock, engine, kpi):
    await _history(db, clock, engine)
    clock.set(local("2026-11-23 08:00"))
    pack = await kpi.monday_pack(date(2026, 11, 23))
    page = pack["people"][501]
    claim = next(s for s in page["standards"] if s["id"] == "payment_claim_10m")
    assert (claim["achieved"], claim["n"], claim["met"]) == (100.0, 1, True)
    assert page["figures"]["recovered_amount"] == "1288.00"
