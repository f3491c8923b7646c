"""The report's "cases" section: the real CaseService writes the cases, the real KpiService reads
them through bot.cases' public `case_stats` (also `kefu report kpi --json` under "cases")."""

import asyncio
import json
from datetime import date

from bot.kpi import KpiService, Period, Viewer, load_standards
from bot.reminders import RuleBook
from bot.settings import Settings
from tests.unit.cases.conftest import AGENT, AGENT2, SUP_DAY, cases, people, who  # noqa: F401  (fixtures)


async def _history(cases, who, clock):  # noqa: F811
    agent, sup = await who(AGENT), await who(SUP_DAY)
    for minutes in (10, 20, 30, 40):  # four 小额补偿 requests: three approved and paid, one rejected
        case = await cases.open_case(agent, resolution="compensation", amount_cents="30")
        sent = await cases.submit(agent, case.id)
        clock.advance(minutes=minutes)
        if minutes == 40:
            await cases.reject(sup, sent.approval.id, "金额过高")
        else:
            await cases.approve(sup, sent.approval.id)
            await cases.move(agent, case.id, "done")
    await cases.open_case(agent, problem="service_complaint", responsible="agent", responsible_person=AGENT2)


async def test_cases_section_and_complaints_for_supervisors_only(db, clock, cases, who, tmp_path):  # noqa: F811
    await _history(cases, who, clock)
    settings = Settings(kefu_db_path=tmp_path / "kefu.db")
    kpi = KpiService(db, clock, RuleBook.from_settings(settings), load_standards())
    week = Period(date(2026, 11, 23), date(2026, 11, 29))
    section = (await kpi.report(week, trend=False))["cases"]
    assert (section["opened"], section["closed"], section["decided"], section["approved"]) == (5, 3, 4, 3)
    assert section["approval_rate"] == 75.0
    assert (section["median_minutes_to_approval"], section["p90_minutes_to_approval"]) == (20.0, 40.0)
    assert section["compensation_per_week"] == {"2026-11-23": "90.00"} and section["compensation_paid"] == "90.00"
    assert section["complaints_month"] == "2026-11"
    assert section["complaints_by_person"] == {str(AGENT2): {"name": "小李", "count": 1}}
    sup = (await kpi.report(week, viewer=Viewer(SUP_DAY, "supervisor"), trend=False))["cases"]
    assert sup["complaints_by_person"] == section["complaints_by_person"]
    agent = (await kpi.report(week, viewer=Viewer(AGENT2, "agent"), trend=False))["cases"]
    assert "complaints_by_person" not in agent and agent["opened"] == 5  # not even their own count


async def test_cli_json_has_the_cases_section(db, clock, cases, who, tmp_path, monkeypatch, capsys):  # noqa: F811
    from bot.cli import main

    await _history(cases, who, clock)
    for name in ("KEFU_SHIFTS", "KEFU_TIMEZONE", "KEFU_STANDARDS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEFU_DB_PATH", str(tmp_path / "kefu.db"))
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["report", "kpi", "--from", "2026-11-23", "--to", "2026-11-29", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cases"]["opened"] == 5 and data["cases"]["compensation_paid"] == "90.00"
    assert data["cases"]["complaints_by_person"][str(AGENT2)]["count"] == 1
