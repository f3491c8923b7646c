"""Query rewrites from scripts_kb/synonyms.yaml: traditional characters, typos, buyer synonyms,
chat filler; and the loader's checks of that file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.kb import KbError, load_kb
from bot.kb.search import QueryRewrites, query_terms

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def kb():
    return load_kb(ROOT / "scripts_kb")


def top_category(kb, text: str) -> str:
    hits = kb.search(text, top=3)
    return hits[0].script.category if hits else ""


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("請問什麼時候發貨", "ship_urge"),  # traditional characters
        ("收到的杯子破損了", "damaged"),
        ("我要開發票", "invoice"),
        ("怎么还不发活", "ship_urge"),  # typos
        ("块递到哪了", "logistics"),
        ("我的钱什么时候退回来 退钱要多久", "refund_progress"),  # colloquial words
        ("吹风机用着用着失灵了", "quality_issue"),
    ],
)
def test_rewritten_queries_find_the_category(kb, query, category):
    assert top_category(kb, query) == category


def test_traditional_characters_are_mapped_before_tokenising(kb):
    terms = query_terms("發貨", kb.rewrites)
    assert "发货" in terms and "發貨" not in terms


def test_buyer_words_stay_and_the_kb_word_is_added_a_little_lower(kb):
    terms = query_terms("退钱", kb.rewrites)
    assert terms["退钱"] == 1.0
    assert 0 < terms["退款"] < 1.0


def test_greetings_alone_find_only_the_opener_scripts(kb):
    """A bare 在吗 / 有人吗 gets the opener reply instead of "没找到"; no other script matches filler."""
    for text in ("你好", "在吗？", "您好 请问在不在", "有人吗", "在么 亲"):
        hits = kb.search(text)
        assert hits[0].script.id == "greet_hello" and kb.is_good_match(hits[0]), text
        assert {h.script.id for h in hits} <= {"greet_hello", "greet_thanks"}, text
    assert kb.search("谢谢亲")[0].script.id == "greet_thanks"
    # filler around a real question does not change which script wins
    assert kb.search("你好 在吗 发票怎么开")[0].script.id == kb.search("发票怎么开")[0].script.id


def test_characters_the_kb_itself_uses_are_never_rewritten(kb):
    own = set("".join(s.body for s in kb.scripts))
    assert not any(chr(code) in own for code in kb.rewrites.chars)


def test_no_rewrites_is_the_plain_tokenizer():
    assert not QueryRewrites()
    assert query_terms("退款", QueryRewrites()) == query_terms("退款")


def test_synonyms_file_is_optional(tmp_path):
    target = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", target)
    (target / "synonyms.yaml").unlink()
    kb = load_kb(target)
    assert not kb.rewrites and kb.search("退货")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("colours: []\n", "unknown section 'colours'"),
        ("filler: 你好\n", "'filler' must be a list"),
        ("typos:\n  - 发活\n", "'typos' must map"),
        ("synonyms:\n  退款: 退钱\n", "needs a list of buyer words"),
        ("synonyms:\n  退款: [退款]\n", "is the word itself"),
        ("traditional: |\n  發发貨\n", "pairs of characters"),
        ("typos: [\n", "YAML syntax error"),
    ],
)
def test_a_broken_synonyms_file_is_reported_with_its_line(tmp_path, content, message):
    target = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", target)
    (target / "synonyms.yaml").write_text("# 说明\n" + content, encoding="utf-8")
    with pytest.raises(KbError) as caught:
        load_kb(target)
    problems = [p for p in caught.value.problems if p.file.endswith("synonyms.yaml")]
    assert problems and any(message in p.message for p in problems), caught.value.problems
    assert all(p.line >= 2 for p in problems)


def test_a_word_only_the_category_knows_still_leads_to_it(kb):
    """磕碰 is a damaged-goods keyword of the category, used by no script: its scripts still come."""
    assert not any("磕碰" in f"{s.title}{s.keywords}{s.phrasings}{s.body}" for s in kb.scripts)
    assert top_category(kb, "磕碰") == "damaged"
