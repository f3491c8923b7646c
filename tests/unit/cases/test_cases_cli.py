"""`kefu cases list [--open] [--json]` and `kefu cases export PATH`: the stable CLI, run through bot.cli.main."""

import asyncio
import json

import pytest
from openpyxl import load_workbook

from bot.cases import CaseService
from bot.cases.export import mask_address, mask_text, neutralise
from bot.cli import main
from bot.clock import FakeClock
from bot.db import Database
from bot.people import PeopleService, Role
from tests.conftest import SHANGHAI, local
from tests.unit.cases.conftest import ADMIN, AGENT, POLICY, SHIFTS, SUP_DAY, register

REQUIRED = {"id", "order_no", "platform", "problem", "resolution", "amount", "state", "approval",
            "opened_by", "owner", "opened_at"}


@pytest.fixture
def cases_db(tmp_path, monkeypatch):
    """Three cases: #1 approved compensation 25.50 with personal data, #2 open, #3 closed on 11-25."""
    path = tmp_path / "kefu.db"
    for name in ("KEFU_TIMEZONE", "KEFU_SHIFTS", "KEFU_ADMIN_IDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEFU_DB_PATH", str(path))
    monkeypatch.chdir(tmp_path)

    async def build():
        db = await Database.open(path)
        clock = FakeClock(local("2026-11-23 10:00"))
        people = PeopleService(db, clock, [ADMIN], SHIFTS, SHANGHAI)
        admin = await people.bootstrap_admin(ADMIN, "boss", "老板")
        await people.set_shift(admin, admin, "day")
        sup = await register(people, admin, SUP_DAY, Role.SUPERVISOR, "day", "主管甲")
        agent = await register(people, admin, AGENT, Role.AGENT, "day", "小王")
        service = CaseService(db, clock, people, SHIFTS, SHANGHAI, POLICY)
        first = await service.open_case(
            agent, order_no="3905000011112222", platform="taobao", problem="damaged", resolution="compensation",
            amount_cents="25.5", buyer="13812345678", buyer_phone="138 1234 5678",
            buyer_address="浙江省杭州市西湖区文三路100号3单元", description="=HYPERLINK(\"http://x\") 买家电话13987654321",
        )
        sent = await service.submit(agent, first.id)
        clock.advance(minutes=20)
        await service.approve(sup, sent.approval.id)
        await service.open_case(agent, problem="logistics", description="+1 催件")
        clock.set(local("2026-11-25 09:00"))
        third = await service.open_case(agent, problem="other", notes="@all 看一下")
        await service.move(agent, third.id, "closed")
        await db.close()

    asyncio.run(build())
    return path


def json_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_list_json_has_the_stable_shape(cases_db, capsys):
    assert main(["cases", "list", "--json"]) == 0
    rows = json_lines(capsys)
    assert [r["id"] for r in rows] == [3, 2, 1]
    for row in rows:
        assert REQUIRED <= row.keys()
    first = rows[-1]
    assert first["amount"] == "25.50" and isinstance(first["amount"], str)
    assert (first["problem"], first["resolution"], first["state"], first["platform"]) == (
        "damaged", "compensation", "approved", "taobao")
    assert first["approval"] == {"state": "approved", "approver": SUP_DAY, "decided_at": "2026-11-23T10:20:00+08:00"}
    assert first["opened_by"] == first["owner"] == AGENT
    assert first["opened_at"] == "2026-11-23T10:00:00+08:00"
    assert first["buyer"] == "138****5678"  # never a whole phone number
    assert rows[0]["approval"] is None and rows[0]["amount"] is None and rows[0]["resolution"] is None


def test_list_open_leaves_finished_cases_out(cases_db, capsys):
    assert main(["cases", "list", "--open", "--json"]) == 0
    assert [r["id"] for r in json_lines(capsys)] == [2, 1]


def test_list_without_json_is_one_chinese_line_per_case(cases_db, capsys):
    assert main(["cases", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[-1].startswith("#1 2026-11-23 10:00 [已批准] 破损/污渍 · 小额补偿 ¥25.50")


def test_list_without_a_database_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEFU_DB_PATH", str(tmp_path / "none.db"))
    monkeypatch.chdir(tmp_path)
    assert main(["cases", "list", "--json"]) == 1
    assert "数据库文件不存在" in capsys.readouterr().err


def read_sheets(path):
    book = load_workbook(path)
    cases_sheet, history_sheet = book.worksheets
    head = [c.value for c in cases_sheet[1]]
    rows = [dict(zip(head, (c.value for c in row))) for row in cases_sheet.iter_rows(min_row=2)]
    history = [[c.value for c in row] for row in history_sheet.iter_rows(min_row=2)]
    return book, rows, history


def test_export_masks_personal_data_and_neutralises_formulas(cases_db, tmp_path, capsys):
    out = tmp_path / "out" / "cases.xlsx"
    assert main(["cases", "export", str(out)]) == 0
    assert "3" in capsys.readouterr().out
    book, rows, history = read_sheets(out)
    assert book.sheetnames == ["售后登记", "变更记录"]
    first = rows[0]
    assert first["编号"] == 1 and first["金额（元）"] == "25.50"
    assert first["买家电话"] == "138****5678"
    assert first["买家地址"] == "浙江省杭州市****"
    assert first["买家"] == "138****5678"
    assert first["问题描述"] == "'=HYPERLINK(\"http://x\") 买家电话139****4321"
    assert first["审批人"] == "主管甲" and first["登记人"] == first["负责人"] == "小王"
    assert rows[1]["问题描述"] == "'+1 催件" and rows[2]["备注"] == "'@all 看一下"
    assert {h[0] for h in history} == {1, 2, 3}
    actions = [h[3] for h in history if h[0] == 1]
    assert actions == ["opened", "submit", "approve"]
    assert not any("13812345678" in str(v) or "13987654321" in str(v) for h in history for v in h)


def test_full_export_keeps_personal_data(cases_db, tmp_path):
    out = tmp_path / "full.xlsx"
    assert main(["cases", "export", str(out), "--full"]) == 0
    _, rows, _ = read_sheets(out)
    assert rows[0]["买家电话"] == "138 1234 5678"
    assert rows[0]["买家地址"] == "浙江省杭州市西湖区文三路100号3单元"
    assert rows[0]["问题描述"].startswith("'=HYPERLINK")  # still neutralised


def test_export_period_is_local_dates_inclusive(cases_db, tmp_path, capsys):
    out = tmp_path / "p.xlsx"
    assert main(["cases", "export", str(out), "--from", "2026-11-25", "--to", "2026-11-25"]) == 0
    _, rows, history = read_sheets(out)
    assert [r["编号"] for r in rows] == [3]
    assert {h[0] for h in history} == {3}
    assert main(["cases", "export", str(out), "--to", "2026-11-24"]) == 0
    assert [r["编号"] for r in read_sheets(out)[1]] == [1, 2]
    capsys.readouterr()
    assert main(["cases", "export", str(out), "--from", "25/11/2026"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["=1+1", "+86", "-3", "@SUM(A1)", "\tx", "\rx"])
def test_every_formula_start_is_neutralised(value):
    assert neutralise(value) == "'" + value
    assert neutralise("正常文字") == "正常文字" and neutralise(12) == 12


def test_masking_helpers():
    assert mask_text("电话 138-1234-5678 或 13912345678，订单 3905123412341234") == "电话 138****5678 或 139****5678，订单 3905123412341234"
    assert mask_address("") == "" and mask_address("北京") == "北京****"
