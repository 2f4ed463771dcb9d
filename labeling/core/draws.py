"""Seeded random draws of problems, stratified by subject and level where those are known.

A round draws its problems here (not by id, which would always take the oldest imports), and the
round-0 bootstrap splits problems into those it trains on and those it validates on.
"""
import random
from collections import defaultdict
from typing import Any, Iterable, NamedTuple


class Drawable(NamedTuple):
    id: Any
    subject: str = ""
    level: Any = None


def _strata(items):
    by = defaultdict(list)
    for item in items:
        by[(item.subject or "", item.level if item.level is not None else -1)].append(item)
    return [by[k] for k in sorted(by, key=lambda k: (k[0], str(k[1])))]


def stratified_sample(items: Iterable, n: int, *, seed: int = 0) -> list:
    """`n` ids drawn without replacement, each stratum (subject, level) getting its proportional share
    (largest remainders, ties broken by the seeded generator), shuffled within strata. Returns ids in
    a seeded random order; all of them when n >= len(items)."""
    items = [i if isinstance(i, Drawable) else Drawable(*i) for i in items]
    rng = random.Random(seed)
    if n >= len(items):
        ids = [i.id for i in items]
        rng.shuffle(ids)
        return ids
    if n <= 0:
        return []
    strata = _strata(items)
    quotas = [len(s) * n / len(items) for s in strata]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(strata)), key=lambda k: (-(quotas[k] - counts[k]), rng.random()))
    for k in order[:n - sum(counts)]:
        counts[k] += 1
    picked = []
    for stratum, count in zip(strata, counts):
        members = list(stratum)
        rng.shuffle(members)
        picked += [m.id for m in members[:count]]
    rng.shuffle(picked)
    return picked


def split_for_validation(items: Iterable, *, fraction: float, seed: int = 0) -> tuple[list, list]:
    """(train ids, validation ids): about `fraction` of the items, stratified, in validation; at least
    one item on each side when there are two or more."""
    items = [i if isinstance(i, Drawable) else Drawable(*i) for i in items]
    if len(items) < 2:
        return [i.id for i in items], []
    k = min(len(items) - 1, max(1, round(len(items) * fraction)))
    validation = stratified_sample(items, k, seed=seed)
    chosen = set(validation)
    return [i.id for i in items if i.id not in chosen], validation
