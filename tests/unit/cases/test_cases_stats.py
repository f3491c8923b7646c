"""Figures for /kpi over the real store."""


from bot.cases import case_stats
from bot.cases.stats import nearest_rank
from tests.conftest import SHANGHAI, local
from tests.unit.cases.conftest import AGENT, AGENT2, SUP_DAY


def test_nearest_rank():
    assert nearest_rank([], 50) is None
    assert nearest_rank([5, 1, 3], 50) == 3
    assert nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank([1, 2, 3, 4], 50) == 2  # the lower middle value


async def test_period_figures(cases, who, clock):
    agent, sup = await who(AGENT), await who(SUP_DAY)
    waits = [10, 20, 30, 40]
    ids = []
    for minutes in waits:  # four compensation requests; three approved and paid, one rejected
        case = await cases.open_case(agent, resolution="compensation", amount_cents="30")
        sent = await cases.submit(agent, case.id)
        clock.advance(minutes=minutes)
        if minutes == 40:
            await cases.reject(sup, sent.approval.id, "金额过高")
        else:
            await cases.approve(sup, sent.approval.id)
            await cases.move(agent, case.id, "done")
        ids.append(case.id)
    clock.advance(days=7)  # the next ISO week
    late = await cases.open_case(agent, resolution="compensation", amount_cents="12.34")
    await cases.move(agent, late.id, "done")
    complaint = await cases.open_case(agent, problem="service_complaint", responsible="agent", responsible_person=AGENT2)
    await cases.open_case(agent, problem="service_complaint", responsible="courier")  # not an agent's fault

    stats = await case_stats(cases.store, local("2026-11-23 00:00"), local("2026-12-01 00:00"), SHANGHAI)
    assert stats.opened == 7 and stats.closed == 4
    assert stats.decided == 4 and stats.approved == 3 and stats.approval_rate == 0.75
    assert stats.approval_median_s == 20 * 60 and stats.approval_p90_s == 40 * 60
    assert stats.compensation_per_week == {local("2026-11-23 00:00").date(): 9000, local("2026-11-30 00:00").date(): 1234}
    assert stats.complaints_by_person == {AGENT2: 1} and stats.month == "2026-11"
    assert complaint.id not in ids

    december = await case_stats(cases.store, local("2026-12-01 00:00"), local("2027-01-01 00:00"), SHANGHAI)
    assert (december.opened, december.decided, december.approval_rate, december.complaints_by_person) == (0, 0, None, {})
    assert december.month == "2026-12"
