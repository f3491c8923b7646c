"""Search: keywords and pasted buyer messages find the right category; the dev-set guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.kb import load_kb
from bot.kb.search import tokenize

ROOT = Path(__file__).resolve().parents[3]
DEVSET = ROOT / "tests" / "data" / "kb_devset.yaml"


@pytest.fixture(scope="module")
def kb():
    return load_kb(ROOT / "scripts_kb")


def test_tokenize_cjk_bigrams_words_and_short_numbers():
    tokens = tokenize("7天无理由 退货! iPhone 订单3561234567890")
    assert {"退货", "退", "货", "7天", "7", "iphone", "无理", "理由"} <= set(tokens)
    assert not any("3561234567890" in t for t in tokens)  # order numbers are noise
    assert "由退" not in tokens  # no bigram across a space


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("退货", "return_exchange"),
        ("破损", "damaged"),
        ("催付", "payment_reminder"),
        ("发票", "invoice"),
        ("亲 我买的裤子太长了 想换个短一点的码 吊牌没剪", "return_exchange"),
        ("快递都一个礼拜了还没到 到底在哪啊😡", "logistics"),
        ("显示已签收 可是我家里根本没收到东西", "not_received"),
        ("收到的碗碎了两个", "damaged"),
        ("拍了四天还没发货 订单号 3987123409871234", "ship_urge"),
        ("吃了你们的牛肉干肚子疼", "health_safety"),
        ("你们再不处理我就去投诉", "complaint"),
        ("地址填错了 还没发货吧 帮我改下", "address_change"),
        ("退款到账了吗", "refund_progress"),
        ("说好的赠品没有", "price_promo"),
        ("少发了一件", "missing_item"),
        ("发错颜色了", "wrong_item"),
    ],
)
def test_search_finds_the_category(kb, query, category):
    hits = kb.search(query, top=5)
    assert hits and hits[0].script.category == category, [(h.script.id, h.score) for h in hits]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert kb.is_good_match(hits[0])


@pytest.mark.parametrize(
    ("query", "category"),
    [("我想退或", "return_exchange"), ("快第怎么还没到", "logistics"), ("签手了没收到", "not_received"), ("改递址", "address_change")],
)
def test_typos_still_match(kb, query, category):
    """Unigrams keep a mistyped word (快第 for 快递) from losing the whole query."""
    assert kb.search(query, top=3)[0].script.category == category


def test_empty_and_noise_queries(kb):
    assert kb.search("") == []
    assert kb.search("   ") == []
    assert kb.search("1234567890123") == []
    assert not kb.is_good_match(next(iter(kb.search("asdfgh qwerty")), None))
    assert not kb.is_good_match(next(iter(kb.search("哈哈哈")), None))
    for greeting in ("你好", "在吗"):  # openers get the opener reply (greet_hello), nothing else
        assert [h.script.category for h in kb.search(greeting)] == ["usage"] * len(kb.search(greeting)), greeting
        assert kb.search(greeting)[0].script.id == "greet_hello"


def test_script_id_query_returns_that_script_first(kb):
    assert kb.search("ship_overdue_apology")[0].script.id == "ship_overdue_apology"


def test_top_limits_results(kb):
    assert len(kb.search("退货", top=2)) == 2
    assert kb.search("退货", top=0) == []


def test_category_menu_flows_and_lookups(kb):
    menu = kb.category_menu()
    assert [c.code for c, _ in menu][0] == "return_exchange"
    assert all(count >= 3 for _, count in menu)
    assert kb.category("health_safety").escalate
    script = kb.get("qa_within_window")
    assert script and kb.related(script) and kb.get("nope") is None
    received = next(f for f in kb.flows if f.stage == "已收到")
    node = received.node(received.start)
    assert not node.is_outcome and len(node.choices) >= 2
    # walk every path to an outcome: each outcome sends existing scripts and has a checklist
    stack, outcomes = [received.start], 0
    while stack:
        current = received.node(stack.pop())
        if current.is_outcome:
            outcomes += 1
            assert all(kb.get(s) for s in current.send) and current.checklist
        else:
            stack.extend(c.next for c in current.choices)
    assert outcomes >= 10
    days = received.node("nr_days")
    assert f"{kb.policy['return_days']}天内" in [c.label for c in days.choices]


def test_cli_search_json_single_and_stdin():
    env = {**os.environ, "KEFU_KB_DIR": str(ROOT / "scripts_kb")}
    one = subprocess.run(
        [sys.executable, "-m", "bot", "kb", "search", "发票怎么开", "--json", "--top", "2"],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", env=env, timeout=120,
    )
    assert one.returncode == 0, one.stderr
    hits = json.loads(one.stdout)
    assert len(hits) == 2 and {"id", "title", "category", "score"} <= set(hits[0])
    assert hits[0]["category"] == "invoice"
    many = subprocess.run(
        [sys.executable, "-m", "bot", "kb", "search", "-", "--json", "--top", "3"],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", env=env, timeout=120,
        input="退货\n\n漏发了一个\n",
    )
    lines = many.stdout.splitlines()
    assert many.returncode == 0 and len(lines) == 3
    assert json.loads(lines[1]) == []
    assert json.loads(lines[2])[0]["category"] == "missing_item"


def test_devset_top3_category_accuracy_at_least_90_percent():
    """The guard the issue asks for: fails if top-3 category accuracy drops below 90 %."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from kb_accuracy import load_devset, results_in_process, score
    finally:
        sys.path.pop(0)
    parts = load_devset(DEVSET)
    items = parts["dev"] + parts["heldout"]
    assert len(parts["dev"]) >= 200
    counts = {}
    for item in items:
        counts[item["category"]] = counts.get(item["category"], 0) + 1
    assert len(counts) == 16 and min(counts.values()) >= 10
    result = score(items, results_in_process([i["text"] for i in items], str(ROOT / "scripts_kb")))
    assert result["top3"] >= 0.90, f"top-3 {result['top3']:.1%}, top-1 {result['top1']:.1%}"


def test_a_repeated_search_is_ranked_once_and_answers_the_same(kb):
    """Searches are kept per knowledge base (issue 13, CPU per update): the same query answers the
    same hits, a caller changing its list changes nothing kept, and a rebuilt knowledge base
    (a reload) ranks afresh."""
    from bot.kb import search as search_module

    query = "亲 我买的裤子太长了 想换个短一点的码"
    first = kb.search(query, top=5)
    assert first and kb.search(query, top=5) == first
    assert kb.search(query, top=2) == first[:2]
    first.clear()
    assert kb.search(query, top=5) and kb.search(query, top=5)[0].script.category == "return_exchange"
    index = kb._search
    for i in range(search_module.KEPT_SEARCHES + 10):  # bounded: the oldest go first
        index.search(f"退货 {i}", top=1)
    assert len(index._kept) <= search_module.KEPT_SEARCHES
    assert index.search(query, top=5) == index._rank(query, 5)
    reloaded = load_kb(ROOT / "scripts_kb")
    assert reloaded._search is not index and reloaded.search(query, top=5) == kb.search(query, top=5)
