"""The loaded knowledge base: lookups, category menu, flows, search and rendering in one object.

A KnowledgeBase never changes after it is built; a reload builds a new one (see load_kb) and the
caller swaps the reference only when it loaded cleanly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import Category, Flow, Hit, Script
from .render import render_script
from .search import NO_REWRITES, QueryRewrites, ScriptSearch

#: Below this the best hit is too weak to present as "the" answer: the bot then says so, shows
#: the category menu and records the query as a miss (it may still offer the weak hits as
#: buttons). Scores are BM25 sums: one distinctive two-character word matched in a keyword is
#: worth about 5-10, and 99 % of the development set's best hits score above 6, while greetings
#: and chit-chat (你好, 在吗, 哈哈哈) score 1-3. Purely lexical: an off-topic sentence that shares
#: ordinary words with a script (今天, 怎么) can still pass.
GOOD_MATCH_SCORE = 6.0


class KnowledgeBase:
    def __init__(
        self,
        *,
        path: Path | None,
        categories: Sequence[Category],
        scripts: Sequence[Script],
        policy: Mapping[str, Any],
        flows: Sequence[Flow] = (),
        texts: Mapping[str, str] | None = None,
        platforms: Mapping[str, str] | None = None,
        forbidden: Sequence[str] = (),
        rewrites: QueryRewrites | None = None,
    ) -> None:
        self.path = path
        self._categories = sorted(categories, key=lambda c: (c.order, c.code))
        self._category_by_code = {c.code: c for c in self._categories}
        self._scripts = list(scripts)
        self._by_id = {s.id: s for s in self._scripts}
        self.policy: dict[str, Any] = dict(policy)
        self._flows = sorted(flows, key=lambda f: (f.order, f.id))
        self._flow_by_id = {f.id: f for f in self._flows}
        self.texts: dict[str, str] = dict(texts or {})
        self.platforms: dict[str, str] = dict(platforms or {})
        self.forbidden: tuple[str, ...] = tuple(forbidden)
        category_texts = {
            c.code: {"label": f"{c.label}\n{c.description}", "keywords": "\n".join(c.keywords)}
            for c in self._categories
        }
        #: Buyer wording → knowledge-base wording for search (scripts_kb/synonyms.yaml).
        self.rewrites: QueryRewrites = rewrites or NO_REWRITES
        self._search = ScriptSearch(self._scripts, category_texts, self.rewrites)

    # -- lookups -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._scripts)

    @property
    def scripts(self) -> list[Script]:
        return list(self._scripts)

    def get(self, script_id: str) -> Script | None:
        return self._by_id.get(script_id)

    def related(self, script: Script) -> list[Script]:
        return [self._by_id[r] for r in script.related if r in self._by_id]

    @property
    def categories(self) -> list[Category]:
        return list(self._categories)

    def category(self, code: str) -> Category | None:
        return self._category_by_code.get(code)

    def category_menu(self) -> list[tuple[Category, int]]:
        """(category, number of scripts) in menu order, for the category keyboard."""
        return [(c, len(self.scripts_in(c.code))) for c in self._categories]

    def scripts_in(self, code: str) -> list[Script]:
        return [s for s in self._scripts if s.category == code]

    @property
    def flows(self) -> list[Flow]:
        """The guided after-sales flows, one per stage, in menu order."""
        return list(self._flows)

    def flow(self, flow_id: str) -> Flow | None:
        return self._flow_by_id.get(flow_id)

    def text(self, key: str, **values: Any) -> str:
        """A UI text from texts.yaml with {placeholders} filled; the key itself when missing."""
        template = self.texts.get(key, key)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template

    # -- search and rendering ------------------------------------------------------------
    def search(self, text: str, top: int = 5, min_score: float = 0.0) -> list[Hit]:
        """Best scripts first for keywords or a pasted buyer message."""
        hits = self._search.search(text or "", top=max(int(top), 0))
        return [h for h in hits if h.score >= min_score]

    def is_good_match(self, hit: Hit | None) -> bool:
        return hit is not None and hit.score >= GOOD_MATCH_SCORE

    def category_scores(self, text: str) -> dict[str, float]:
        return self._search.category_scores(text or "")

    def render(self, script: Script | str, values: Mapping[str, Any] | None = None) -> str:
        """The script's buyer-facing text with `values` and this shop's policy filled in."""
        if isinstance(script, str):
            found = self.get(script)
            if found is None:
                raise KeyError(script)
            script = found
        return render_script(script, values or {}, self.policy)
