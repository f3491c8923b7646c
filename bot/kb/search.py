"""Ranking scripts for a few keywords or a pasted buyer message.

BM25F over CJK unigrams + bigrams (+ ASCII words and short numbers) of each script's fields,
plus category-level evidence: the same scoring over one pseudo-document per category (its own
keywords and everything its scripts say), added to each script's score. Character n-grams need
no dictionary, survive typos and odd segmentation, and match two-character words such as 退货
or 破损 (which SQLite's trigram FTS cannot). Everything is precomputed into per-term postings, so
a query costs one pass over the postings of its own terms.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .model import Hit, Script

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNIT_RE = re.compile(rf"[{_CJK}]|[a-z]+|[0-9]+")
_JINJA_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)

#: Digit groups longer than this are order/tracking/phone numbers: noise for ranking.
MAX_NUMBER_LEN = 3
#: Query-side weight of a single CJK character relative to a bigram or a word.
UNIGRAM_WEIGHT = 0.5


def _units(text: str) -> list[tuple[str, int, int]]:
    """Normalised units (CJK char, ASCII word, short number) with their span in the text."""
    text = unicodedata.normalize("NFKC", text).lower()
    units = []
    for match in _UNIT_RE.finditer(text):
        unit = match.group()
        if unit.isdigit() and len(unit) > MAX_NUMBER_LEN:
            continue
        units.append((unit, match.start(), match.end()))
    return units


def tokenize(text: str) -> list[str]:
    """CJK unigrams and bigrams of adjacent units, ASCII words, short numbers (e.g. 7天 → 7, 天, 7天)."""
    units = _units(text)
    tokens = [unit for unit, _, _ in units]
    for (a, _, a_end), (b, b_start, _) in zip(units, units[1:]):
        if a_end == b_start:
            tokens.append(a + b)
    return tokens


def token_weight(token: str) -> float:
    if len(token) == 1 and not token.isascii():
        return UNIGRAM_WEIGHT
    return 1.0


def strip_template(body: str) -> str:
    """A body's literal text only: Jinja tags carry no buyer vocabulary."""
    return _JINJA_RE.sub(" ", body)


@dataclass(frozen=True)
class FieldSpec:
    weight: float
    b: float  # BM25 length normalisation for this field


#: Field weights: what an author wrote for matching (keywords, phrasings) counts most; the body
#: is the reply, whose words overlap only loosely with how buyers put things.
SCRIPT_FIELDS: dict[str, FieldSpec] = {
    "title": FieldSpec(2.0, 0.5),
    "keywords": FieldSpec(3.0, 0.3),
    "phrasings": FieldSpec(2.0, 0.5),
    "body": FieldSpec(0.4, 0.75),
}
CATEGORY_FIELDS: dict[str, FieldSpec] = {
    "label": FieldSpec(3.0, 0.3),
    "keywords": FieldSpec(3.0, 0.3),
    "scripts": FieldSpec(1.0, 0.5),
}
K1 = 1.2
#: Postings read exactly per query before switching to candidate-only scoring (see scores()).
POSTINGS_BUDGET = 6000
CANDIDATES = 100
#: How much the category evidence adds to a script's own score.
CATEGORY_WEIGHT = 0.5
#: Categories (best evidence first) whose scripts are candidates even without a matching word
#: of their own, and how many scripts of each at most.
CATEGORY_FILL = 2
CATEGORY_FILL_SCRIPTS = 50
#: Searches whose ranking a ScriptSearch keeps (text, top -> hits; issue 13, CPU per update): agents
#: search the same keywords and paste the same buyer questions again and again. A ScriptSearch
#: is built anew whenever the knowledge base changes, so what it keeps is never stale.
KEPT_SEARCHES = 512
#: Query weight of the knowledge-base word a buyer's misspelling / colloquial word stands for.
TYPO_WEIGHT = 1.0
SYNONYM_WEIGHT = 0.8


class Bm25fIndex:
    """Per-term postings of precomputed BM25F contributions over multi-field documents."""

    def __init__(self, docs: Sequence[dict[str, str]], fields: dict[str, FieldSpec], k1: float = K1):
        self.size = len(docs)
        field_tfs: list[dict[str, Counter]] = []
        totals = {name: 0 for name in fields}
        for doc in docs:
            per_field = {}
            for name in fields:
                tf = Counter(tokenize(doc.get(name, "")))
                per_field[name] = tf
                totals[name] += sum(tf.values())
            field_tfs.append(per_field)
        avg = {name: (totals[name] / self.size if self.size else 0.0) or 1.0 for name in fields}
        df: Counter = Counter()
        pseudo_tf: list[dict[str, float]] = []
        for per_field in field_tfs:
            combined: dict[str, float] = defaultdict(float)
            for name, spec in fields.items():
                tf = per_field[name]
                length = sum(tf.values())
                norm = 1.0 - spec.b + spec.b * length / avg[name]
                for term, count in tf.items():
                    combined[term] += spec.weight * count / norm
            pseudo_tf.append(combined)
            df.update(combined.keys())
        self.idf = {
            term: math.log(1.0 + (self.size - n + 0.5) / (n + 0.5)) for term, n in df.items()
        }
        postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for doc_index, combined in enumerate(pseudo_tf):
            for term, tf in combined.items():
                postings[term].append((doc_index, self.idf[term] * tf * (k1 + 1.0) / (k1 + tf)))
        self.postings = dict(postings)
        self._lookup: dict[str, dict[int, float]] = {}  # built lazily, for common terms only

    def scores(self, query_terms: dict[str, float]) -> dict[int, float]:
        """Term-at-a-time BM25F, rarest terms first.

        Once `POSTINGS_BUDGET` postings have been read (only on large knowledge bases), the
        remaining, more common terms only add to the best `CANDIDATES` documents found so far:
        common terms carry little weight, so this keeps long pasted messages fast on thousands
        of scripts at the cost of exactness far down the ranking.
        """
        ordered = sorted(
            ((t, w) for t, w in query_terms.items() if t in self.postings),
            key=lambda tw: -self.idf[tw[0]],
        )
        acc: dict[int, float] = {}
        get = acc.get
        read = 0
        rest_from = len(ordered)
        for position, (term, qweight) in enumerate(ordered):
            plist = self.postings[term]
            if acc and read + len(plist) > POSTINGS_BUDGET:
                rest_from = position
                break
            read += len(plist)
            for doc_index, contribution in plist:
                acc[doc_index] = get(doc_index, 0.0) + qweight * contribution
        if rest_from < len(ordered):
            candidates = heapq.nlargest(CANDIDATES, acc, key=acc.__getitem__)
            for term, qweight in ordered[rest_from:]:
                lookup = self._lookup.get(term)
                if lookup is None:
                    lookup = self._lookup[term] = dict(self.postings[term])
                for doc_index in candidates:
                    contribution = lookup.get(doc_index)
                    if contribution is not None:
                        acc[doc_index] += qweight * contribution
        return acc


@dataclass(frozen=True)
class QueryRewrites:
    """How buyers write → how the knowledge base is written (scripts_kb/synonyms.yaml).

    Applied to queries only, before tokenising:
    - `chars`: traditional (and variant) characters → simplified, character by character;
    - `filler`: greetings and chat filler (你好, 在吗, 请问, 谢谢…) removed, so a rare filler word
      in some phrasing cannot decide the ranking and a bare greeting matches nothing;
    - `expansions`: (buyer word, knowledge-base word, weight): when the buyer word occurs, the
      knowledge-base word's tokens are added to the query at that weight (typos at full weight,
      synonyms and colloquial variants a little lower). The buyer's own words stay in the query.
    """

    chars: dict[int, str] = field(default_factory=dict)
    filler: tuple[str, ...] = ()
    expansions: tuple[tuple[str, str, float], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.chars or self.filler or self.expansions)

    def normalise(self, text: str, *, drop_filler: bool = True) -> str:
        text = unicodedata.normalize("NFKC", text).lower()
        if self.chars:
            text = text.translate(self.chars)
        for word in self.filler if drop_filler else ():
            if word in text:
                text = text.replace(word, " ")
        return text

    def extra_terms(self, text: str) -> dict[str, float]:
        """Tokens of the knowledge-base words that the (normalised) text's buyer words stand for."""
        extra: dict[str, float] = {}
        for variant, canonical, weight in self.expansions:
            if variant in text:
                for token in tokenize(canonical):
                    value = weight * token_weight(token)
                    if value > extra.get(token, 0.0):
                        extra[token] = value
        return extra


NO_REWRITES = QueryRewrites()


def query_terms(text: str, rewrites: QueryRewrites = NO_REWRITES, *, drop_filler: bool = True) -> dict[str, float]:
    """Distinct query tokens with their weights (repeats in a long message add little), plus the
    knowledge base's words for the buyer's colloquial ones (see QueryRewrites)."""
    if rewrites:
        text = rewrites.normalise(text, drop_filler=drop_filler)
    counts = Counter(tokenize(text))
    terms = {term: token_weight(term) * (1.0 + 0.2 * min(count - 1, 2)) for term, count in counts.items()}
    if rewrites.expansions:
        for term, weight in rewrites.extra_terms(text).items():
            if weight > terms.get(term, 0.0):
                terms[term] = weight
    return terms


class ScriptSearch:
    """Search over a fixed set of scripts; build a new one when the knowledge base changes."""

    def __init__(self, scripts: Sequence[Script], category_texts: dict[str, dict[str, str]],
                 rewrites: QueryRewrites = NO_REWRITES):
        self.scripts = list(scripts)
        self.rewrites = rewrites
        self.by_id = {s.id: i for i, s in enumerate(self.scripts)}
        self.script_index = Bm25fIndex([self._script_doc(s) for s in self.scripts], SCRIPT_FIELDS)
        gathered: dict[str, list[str]] = defaultdict(list)
        for script in self.scripts:
            gathered[script.category].extend([script.title, *script.keywords, *script.phrasings])
        self.category_codes = sorted(set(category_texts) | set(gathered))
        category_docs = []
        for code in self.category_codes:
            doc = dict(category_texts.get(code, {}))
            doc["scripts"] = "\n".join(gathered.get(code, ()))
            category_docs.append(doc)
        self.category_index = Bm25fIndex(category_docs, CATEGORY_FIELDS)
        self._category_of = [self.category_codes.index(s.category) for s in self.scripts]
        self._members: list[list[int]] = [[] for _ in self.category_codes]
        for i, code_index in enumerate(self._category_of):
            self._members[code_index].append(i)
        self._kept: dict[tuple[str, int], tuple[Hit, ...]] = {}  # see KEPT_SEARCHES
        # Scripts that answer a bare greeting: a keyword of theirs is chat filler (在吗, 有人吗).
        filler = set(rewrites.filler)
        self._greetings = {
            i for i, s in enumerate(self.scripts) if any(rewrites.normalise(k, drop_filler=False).strip() in filler for k in s.keywords)
        }

    @staticmethod
    def _script_doc(script: Script) -> dict[str, str]:
        return {
            "title": script.title,
            "keywords": "\n".join(script.keywords),
            "phrasings": "\n".join(script.phrasings),
            "body": strip_template(script.body),
        }

    def category_scores(self, text: str) -> dict[str, float]:
        raw = self.category_index.scores(query_terms(text, self.rewrites))
        return {self.category_codes[i]: s for i, s in raw.items()}

    def search(self, text: str, top: int = 5) -> list[Hit]:
        key = (text, top)
        kept = self._kept.get(key)
        if kept is None:
            kept = self._kept[key] = tuple(self._rank(text, top))
            if len(self._kept) > KEPT_SEARCHES:
                del self._kept[next(iter(self._kept))]  # the oldest first
        return list(kept)

    def _rank(self, text: str, top: int) -> list[Hit]:
        terms = query_terms(text, self.rewrites)
        exact = self.by_id.get(text.strip())
        if not terms and exact is None:
            return self._greeting(text, top)
        script_scores = self.script_index.scores(terms)
        category_scores = self.category_index.scores(terms)
        category_of = self._category_of
        combined = {
            i: s + CATEGORY_WEIGHT * category_scores.get(category_of[i], 0.0)
            for i, s in script_scores.items()
        }
        # A word only the category knows (its keywords: 磕碰, 划痕) still leads to that category's
        # scripts: those of the best-evidenced categories get the category share even without
        # a word of their own. Bounded, so it costs little on a large knowledge base.
        for code_index, score in heapq.nlargest(CATEGORY_FILL, category_scores.items(), key=lambda item: item[1]):
            share = CATEGORY_WEIGHT * score
            for i in self._members[code_index][:CATEGORY_FILL_SCRIPTS]:
                if i not in combined:
                    combined[i] = share
        if exact is not None:  # an agent typing a script id gets that script first
            combined[exact] = max(combined.values(), default=0.0) + 1.0
        best = heapq.nlargest(top, combined.items(), key=lambda item: (item[1], -item[0]))
        return [Hit(self.scripts[i], round(score, 4)) for i, score in best if score > 0]


    def _greeting(self, text: str, top: int) -> list[Hit]:
        """A message of nothing but greetings and filler (在吗？有人吗) ranks only the scripts that
        answer such openers, on its own words; other scripts never match filler."""
        if not self._greetings:
            return []
        scores = self.script_index.scores(query_terms(text, self.rewrites, drop_filler=False))
        best = heapq.nlargest(top, ((i, s) for i, s in scores.items() if i in self._greetings),
                              key=lambda item: (item[1], -item[0]))
        return [Hit(self.scripts[i], round(score, 4)) for i, score in best if score > 0]


def categories_ranked(hits: Iterable[Hit]) -> list[str]:
    """Distinct categories in the order the hits name them."""
    seen: list[str] = []
    for hit in hits:
        if hit.script.category not in seen:
            seen.append(hit.script.category)
    return seen
