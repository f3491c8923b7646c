"""Per-query latency of kb search: the shipped knowledge base and a synthetic one of 5,000 scripts.

    .venv/bin/python benchmarks/kb_latency.py [--size 5000] [--rounds 3]

Queries are the development-set messages. The synthetic knowledge base is generated in memory
from the real scripts (ids, titles, keywords, phrasings and bodies varied, with made-up product
words mixed in so the vocabulary grows as a real catalogue's would). Goal: p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb_accuracy import load_devset

from bot.kb import KnowledgeBase, Script, load_kb

# Common CJK characters for made-up product words (a varied vocabulary, not a real catalogue).
CHAR_POOL = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
FILLERS = ["亲", "麻烦", "请问", "那个", "就是", "怎么", "我的", "这个", "呀", "啊", "了", "吗"]


def product_word(rng: random.Random) -> str:
    return "".join(rng.choice(CHAR_POOL) for _ in range(rng.randint(2, 4)))


def vary(text: str, rng: random.Random, product: str) -> str:
    """A plausible variant of a phrase: product word, filler and a little reordering."""
    parts = [text]
    if rng.random() < 0.5:
        parts.insert(0, rng.choice(FILLERS))
    if rng.random() < 0.6:
        parts.append(product)
    if rng.random() < 0.3 and len(text) > 4:
        cut = rng.randint(1, len(text) - 1)
        parts[-1 if len(parts) == 1 else 0] = text[cut:] + text[:cut]
    return "".join(parts)


def synthetic_kb(real: KnowledgeBase, size: int, seed: int = 7) -> KnowledgeBase:
    rng = random.Random(seed)
    base = real.scripts
    by_category: dict[str, list[Script]] = {}
    for script in base:
        by_category.setdefault(script.category, []).append(script)
    scripts = []
    for i in range(size):
        origin = base[i % len(base)]
        sibling = rng.choice(by_category[origin.category])
        product = product_word(rng)
        keywords = rng.sample(origin.keywords, k=max(1, len(origin.keywords) - rng.randint(0, 2)))
        keywords += rng.sample(sibling.keywords, k=min(2, len(sibling.keywords)))
        keywords.append(product)
        phrasings = [vary(p, rng, product) for p in origin.phrasings]
        phrasings.append(vary(rng.choice(sibling.phrasings), rng, product_word(rng)))
        scripts.append(
            dataclasses.replace(
                origin,
                id=f"{origin.id}_{i}"[:40],
                title=f"{origin.title}（{product}）",
                keywords=tuple(keywords),
                phrasings=tuple(phrasings),
                body=origin.body.replace("亲", f"亲，关于{product}", 1),
                template=None,
                related=(),
            )
        )
    return KnowledgeBase(
        path=None, categories=real.categories, scripts=scripts, policy=real.policy,
        flows=[], texts=real.texts, platforms=real.platforms, rewrites=real.rewrites,
    )


def measure(kb: KnowledgeBase, queries: list[str], rounds: int) -> list[float]:
    for query in queries[:20]:  # warm up
        kb.search(query, top=5)
    times = []
    for _ in range(rounds):
        for query in queries:
            start = time.perf_counter()
            kb.search(query, top=5)
            times.append((time.perf_counter() - start) * 1000.0)
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100.0 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(name: str, times: list[float]) -> None:
    print(
        f"{name:<28} n={len(times):<5} p50 {percentile(times, 50):6.2f} ms  "
        f"p95 {percentile(times, 95):6.2f} ms  p99 {percentile(times, 99):6.2f} ms  "
        f"max {max(times):6.2f} ms  mean {statistics.fmean(times):6.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000, help="scripts in the synthetic knowledge base")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the query set")
    args = parser.parse_args(argv)
    parts = load_devset()
    queries = [item["text"] for item in parts["dev"] + parts["heldout"]]
    queries += [q * 3 for q in queries[:50]]  # long pasted messages too
    real = load_kb()
    print(f"kb search latency, top 5, {len(queries)} queries x {args.rounds} rounds (goal p99 <= 20 ms)")
    report(f"real KB ({len(real)} scripts)", measure(real, queries, args.rounds))
    start = time.perf_counter()
    synthetic = synthetic_kb(real, args.size)
    built = time.perf_counter() - start
    report(f"synthetic KB ({len(synthetic)} scripts)", measure(synthetic, queries, args.rounds))
    print(f"(synthetic index built in {built:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
