"""Every refusal the cases feature raises has its Chinese text, and every code has a label."""

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import bot.cases
from bot.cases.model import PROBLEMS, RESOLUTIONS, RESPONSIBLE, SHIPPING_PAYERS, STATES
from bot.render import Renderer

SOURCE = Path(bot.cases.__file__).parent
CODES = sorted({
    m for path in SOURCE.glob("*.py") for m in re.findall(r'UserError\(\s*"([a-z_]+)"', path.read_text(encoding="utf-8"))
})
SAMPLE = dict(no=12, state="open", target="approved", value="x", reasons=["marked", "refund_over_limit"],
              level="admin", name="小王", minutes=7, field="notes", limit=200, length=201)


@pytest.fixture(scope="module")
def renderer():
    return Renderer(ZoneInfo("Asia/Shanghai"))


def test_the_scan_finds_the_codes():
    assert {"case_bad_move", "case_self_approval", "case_needs_approval", "case_bad_amount"} <= set(CODES)


@pytest.mark.parametrize("code", CODES)
def test_every_error_code_renders_in_chinese(renderer, code):
    params = dict(SAMPLE, state="withdrawn") if code == "case_request_closed" else SAMPLE  # an approval's state
    text = renderer.label(f"errors.{code}", **params)
    assert text and re.search(r"[\u4e00-\u9fff]", text)


def test_every_code_has_a_label(renderer):
    labels = renderer.labels["cases"]
    for group, codes in (("states", STATES), ("problems", PROBLEMS), ("resolutions", RESOLUTIONS),
                         ("responsible", RESPONSIBLE), ("shipping_payers", SHIPPING_PAYERS)):
        assert set(labels[group]) == set(codes), group
    assert set(labels["approval_reasons"]) == {"marked", "quality_return", "compensation_over_cap", "refund_over_limit"}
    assert labels["reject_reasons"]
