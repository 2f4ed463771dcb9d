"""Evaluation metrics of a PRM version, as pure functions over plain lists (no database, no torch).

Conventions (the evaluation pages and charts use these and only these):

- A step score is the PRM's P(step is not an error). A human step label is a PRM800K rating: -1 (an
  error), 0 (neutral), +1 (good), or None (unrated, skipped). 0 and +1 both count as "not an error",
  the same fold the PRM score makes (see metrics.py).
- step_auroc, positive="not_error" (the default): the positive class is the 0/+1 steps and a higher
  score should mean "not an error". positive="error" is for scores that are P(step is an error): the
  positive class is then the -1 steps. Ties between a positive and a negative count 1/2 (Mann-Whitney U).
- First error (ProcessBench, Zheng et al. 2024): a solution's gold is the index of its earliest
  erroneous step, -1 if every step is correct. The model predicts the first step whose score is
  strictly below the threshold, -1 if none is; a score equal to the threshold is "not an error".
- Best-of-N follows PRM800K's eval.py: per problem draw N candidates without replacement, pick one by a
  rule, count the problem solved if the pick is correct; average over problems, then over draws. A
  candidate whose answer is None (no final answer) fills a slot in the draw but is never picked. The
  denominator is every problem, so a problem with no pickable candidate counts as unsolved.
  Where PRM800K pads a problem that has fewer candidates than the largest N with empty slots, here a
  problem with fewer than N candidates uses all of them (the two agree when counts are equal).
  Ties are broken uniformly at random: "prm" and "last" pick uniformly among the candidates sharing
  the top score (PRM800K takes the first maximum of a shuffled list, which is the same thing);
  "majority" picks uniformly among the answers sharing the top count, then uniformly among the
  candidates giving that answer. "oracle" is pass@N: solved if any drawn candidate is correct.
- Two more rules, asked for by name (not in RULES, the default): "orm" picks the top `score_orm` (an
  outcome reward model's score) as "prm" picks the top `score_prm`; "weighted_majority" (the implicit-PRM
  paper's PRM-weighted vote) gives each answer the sum of its candidates' `score_prm` (a score that is
  not a finite positive number weighs 0) and picks the answer with the largest sum, ties as "majority".
- Per subset (ProcessBench's table): processbench_by_subset groups golds and predictions by subset and
  reports each subset's accuracies and F1, and their unweighted mean F1 ("average" in the paper).
"""
import bisect
import itertools
import math
import random

RATINGS = (-1, 0, 1)
RULES = ("prm", "last", "majority", "oracle")
ALL_RULES = RULES + ("orm", "weighted_majority")
SCORE_KEYS = {"prm": "score_prm", "last": "score_last", "orm": "score_orm"}


# --- step-level AUROC -------------------------------------------------------------------------------

def step_auroc(scores, labels, *, positive="not_error"):
    """AUROC of step scores against human ratings; None when only one class (or no step) is present.

    O(n log n): sort once, then for each run of tied scores count the negatives below it.
    """
    if positive not in ("not_error", "error"):
        raise ValueError(f"positive must be 'not_error' or 'error', not {positive!r}")
    if len(scores) != len(labels):
        raise ValueError("scores and labels must have the same length")
    pairs = []
    for score, label in zip(scores, labels):
        if label is None:
            continue
        if label not in RATINGS:
            raise ValueError(f"a step label is -1, 0, +1 or None, not {label!r}")
        if not math.isfinite(score):
            raise ValueError(f"a step score must be finite, not {score!r}")
        pairs.append((score, (label != -1) == (positive == "not_error")))
    n_pos = sum(is_pos for _, is_pos in pairs)
    n_neg = len(pairs) - n_pos
    if not n_pos or not n_neg:
        return None
    pairs.sort(key=lambda p: p[0])
    twice_u = neg_below = 0  # doubled so a tie's 1/2 stays an integer until the final division
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        run_pos = sum(is_pos for _, is_pos in pairs[i:j])
        run_neg = (j - i) - run_pos
        twice_u += run_pos * (2 * neg_below + run_neg)
        neg_below += run_neg
        i = j
    return twice_u / (2 * n_pos * n_neg)


# --- ProcessBench first-error F1 --------------------------------------------------------------------

def first_error_prediction(step_scores, threshold=0.5) -> int:
    """Index of the first step scored strictly below `threshold`, -1 if there is none."""
    for i, score in enumerate(step_scores):
        if score < threshold:
            return i
    return -1


def _harmonic_mean(a, b):
    if a is None or b is None:
        return None
    return 2 * a * b / (a + b) if a + b else 0.0


def processbench_f1(golds, predictions) -> dict:
    """Accuracy on erroneous solutions, on correct ones, and their harmonic mean (ProcessBench's F1).

    An accuracy over an empty group is None, and so is F1 then.
    """
    golds, predictions = list(golds), list(predictions)
    if len(golds) != len(predictions):
        raise ValueError("golds and predictions must have the same length")
    if any(not isinstance(g, int) or g < -1 for g in golds):
        raise ValueError("a gold first error is a step index or -1")
    erroneous = [g == p for g, p in zip(golds, predictions) if g != -1]
    correct = [p == -1 for g, p in zip(golds, predictions) if g == -1]
    error_acc = sum(erroneous) / len(erroneous) if erroneous else None
    correct_acc = sum(correct) / len(correct) if correct else None
    return {"error_acc": error_acc, "correct_acc": correct_acc, "f1": _harmonic_mean(error_acc, correct_acc),
            "n_error": len(erroneous), "n_correct": len(correct)}


def processbench_by_subset(subsets, golds, predictions) -> dict:
    """{"subsets": {name: processbench_f1 of its records}, "average_f1": mean of the subsets' F1}.

    Subsets are listed in order of first appearance; the average is over subsets whose F1 exists
    (None when none has one), each subset weighing the same whatever its size, as ProcessBench averages.
    """
    subsets, golds, predictions = list(subsets), list(golds), list(predictions)
    if not len(subsets) == len(golds) == len(predictions):
        raise ValueError("subsets, golds and predictions must have the same length")
    groups = {}
    for subset, gold, prediction in zip(subsets, golds, predictions):
        group = groups.setdefault(subset, ([], []))
        group[0].append(gold)
        group[1].append(prediction)
    out = {name: processbench_f1(g, p) for name, (g, p) in groups.items()}
    f1s = [m["f1"] for m in out.values() if m["f1"] is not None]
    return {"subsets": out, "average_f1": sum(f1s) / len(f1s) if f1s else None}


def weight_of(score) -> float:
    """A candidate's vote in "weighted_majority": its PRM score, 0 unless a finite positive number."""
    return float(score) if isinstance(score, (int, float)) and math.isfinite(score) and score > 0 else 0.0


def best_threshold(golds, step_scores, thresholds=None) -> dict:
    """The threshold with the highest ProcessBench F1, with that F1's dict ({"threshold": t, ...}).

    Without `thresholds`, tries every distinct step score plus one just above the largest, which
    covers every distinct set of predictions. Each solution is right on one interval of thresholds
    (a correct one while t <= its minimum score; one erring at g while prefix-min[g] < t <=
    prefix-min[g-1]), so each candidate is scored by bisection: O((steps + candidates) log steps).
    Ties go to the smallest threshold. Needs both erroneous and correct solutions.
    """
    golds, step_scores = list(golds), [list(s) for s in step_scores]
    if len(golds) != len(step_scores):
        raise ValueError("golds and step_scores must have the same length")
    if -1 not in golds or all(g == -1 for g in golds):
        raise ValueError("F1 needs both erroneous and correct solutions")
    lows, highs, minima = [], [], []  # erring solution right iff low < t <= high; correct iff t <= min
    for gold, scores in zip(golds, step_scores):
        prefix_min = list(itertools.accumulate(scores, min))
        if gold == -1:
            minima.append(prefix_min[-1] if prefix_min else math.inf)
        elif gold < len(scores):
            lows.append(prefix_min[gold])
            highs.append(prefix_min[gold - 1] if gold else math.inf)
    for sorted_in_place in (lows, highs, minima):
        sorted_in_place.sort()
    if thresholds is None:
        distinct = sorted({s for scores in step_scores for s in scores})
        thresholds = distinct + [math.nextafter(distinct[-1], math.inf)] if distinct else [0.5]
    n_error, n_correct = len(golds) - len(minima), len(minima)
    best = None
    for t in sorted(thresholds):
        error_acc = (bisect.bisect_left(lows, t) - bisect.bisect_left(highs, t)) / n_error
        correct_acc = (n_correct - bisect.bisect_left(minima, t)) / n_correct
        f1 = _harmonic_mean(error_acc, correct_acc)
        if best is None or f1 > best[0]:
            best = (f1, t)
    t = best[1]
    return {"threshold": t, **processbench_f1(golds, [first_error_prediction(s, t) for s in step_scores])}


# --- best-of-N --------------------------------------------------------------------------------------

def default_ns(max_n):
    """1, 2, 4, ... below `max_n`, then `max_n` itself: the x axis of a best-of-N chart."""
    ns, n = [], 1
    while n < max_n:
        ns.append(n)
        n *= 2
    return ns + [max_n] if max_n >= 1 else []


def _prepare(problems, ns, rules):
    problems = [list(candidates) for candidates in problems]
    unknown = set(rules) - set(ALL_RULES)
    if unknown:
        raise ValueError(f"unknown best-of-N rules {sorted(unknown)}; choose from {ALL_RULES}")
    needed = {"answer", "is_correct"} | {SCORE_KEYS[r] for r in rules if r in SCORE_KEYS}
    if "weighted_majority" in rules:
        needed.add("score_prm")
    for candidates in problems:
        for candidate in candidates:
            missing = needed - set(candidate)
            if missing:
                raise ValueError(f"a candidate lacks {sorted(missing)}")
    if ns is None:
        ns = default_ns(max((len(c) for c in problems), default=0))
    ns = sorted(set(ns))
    if any(not isinstance(n, int) or n < 1 for n in ns):
        raise ValueError("every N must be a positive integer")
    return problems, ns


def _accuracies(totals, ns, denominator):
    return {rule: [(n, hits / denominator if denominator else None) for n, hits in zip(ns, per_n)]
            for rule, per_n in totals.items()}


def best_of_n(problems, ns=None, *, rules=RULES, samples=200, seed=0) -> dict:
    """Best-of-N accuracy by random draws: {rule: [(N, accuracy), ...]} with N ascending.

    `problems` is a list of candidate lists; a candidate is a mapping with score_prm, score_last,
    answer (normalised final answer, None if it has none) and is_correct. `ns` defaults to
    default_ns(largest candidate count). Each of `samples` rounds draws one random ordering per
    problem and reads every N off its prefixes: each prefix is a uniform draw of N, so each point is
    unbiased, and sharing draws across N makes the curve smoother than independent draws would.
    """
    problems, ns = _prepare(problems, ns, rules)
    rng = random.Random(seed)
    totals = {rule: [0] * len(ns) for rule in rules}
    for _ in range(samples):
        for candidates in problems:
            order = rng.sample(candidates, min(len(candidates), ns[-1])) if ns else []
            for rule in rules:
                for k, hit in enumerate(_walk(rule, order, ns, rng)):
                    totals[rule][k] += hit
    return _accuracies(totals, ns, samples * len(problems))


def _prefix_chunks(order, ns):
    """The candidates each N adds to the previous N's prefix of `order`."""
    start = 0
    for n in ns:
        end = max(start, min(n, len(order)))
        yield order[start:end]
        start = end


def _walk(rule, order, ns, rng):
    hits, best, groups, weights, solved = [], None, {}, {}, False
    for chunk in _prefix_chunks(order, ns):
        for c in chunk:
            solved = solved or bool(c["is_correct"])
            if c["answer"] is None:
                continue
            if rule in SCORE_KEYS and (best is None or c[SCORE_KEYS[rule]] > best[SCORE_KEYS[rule]]):
                best = c  # strictly greater: the earliest of tied maxima in a random order, so uniform
            groups.setdefault(c["answer"], []).append(c)
            weights[c["answer"]] = weights.get(c["answer"], 0.0) + weight_of(c["score_prm"]) \
                if rule == "weighted_majority" else 0.0
        if rule == "oracle":
            hits.append(solved)
        elif rule == "majority":
            top = max((len(g) for g in groups.values()), default=0)
            winners = [g for g in groups.values() if len(g) == top]
            # the first drawn candidate with the winning answer is a uniform pick among them
            hits.append(bool(winners) and bool(rng.choice(winners)[0]["is_correct"]))
        elif rule == "weighted_majority":
            top = max(weights.values(), default=0.0)
            winners = [groups[a] for a, w in weights.items() if w == top]
            hits.append(bool(winners) and bool(rng.choice(winners)[0]["is_correct"]))
        else:
            hits.append(best is not None and bool(best["is_correct"]))
    return hits


def best_of_n_exact(problems, ns=None, *, rules=RULES, max_subsets=100_000) -> dict:
    """The expectation best_of_n estimates, computed exactly: {rule: [(N, accuracy), ...]}.

    "prm", "last", "orm" and "oracle" have closed forms, cheap for any N. "majority" and
    "weighted_majority" enumerate every N-subset, so they raise ValueError when a problem has more
    than `max_subsets` of them.
    """
    problems, ns = _prepare(problems, ns, rules)
    totals = {rule: [sum(_expected(rule, candidates, n, max_subsets) for candidates in problems) for n in ns]
              for rule in rules}
    return _accuracies(totals, ns, len(problems))


def _expected(rule, candidates, n, max_subsets):
    size = len(candidates)
    k = min(n, size)
    if not size:
        return 0.0
    if rule == "oracle":
        wrong = sum(not c["is_correct"] for c in candidates)
        return 1 - math.comb(wrong, k) / math.comb(size, k)
    if rule in SCORE_KEYS:
        return _expected_argmax(candidates, k, SCORE_KEYS[rule])
    if math.comb(size, k) > max_subsets:
        raise ValueError(f"{math.comb(size, k)} subsets of {k} out of {size} is more than max_subsets")
    vote = _expected_weighted_majority if rule == "weighted_majority" else _expected_majority
    return sum(map(vote, itertools.combinations(candidates, k))) / math.comb(size, k)


def _expected_argmax(candidates, k, key):
    """Sum over score levels s of P(the draw's top pickable score is s) x (share correct at s).

    P(top is s) = [C(size - above, k) - C(size - above - at, k)] / C(size, k), and given that, the
    pick is uniform over the candidates at s by symmetry. Unpickable candidates are never "above".
    """
    levels = {}
    for c in candidates:
        if c["answer"] is not None:
            level = levels.setdefault(c[key], [0, 0])
            level[0] += 1
            level[1] += bool(c["is_correct"])
    size, total, above, expected = len(candidates), math.comb(len(candidates), k), 0, 0.0
    for score in sorted(levels, reverse=True):
        at, correct = levels[score]
        expected += (math.comb(size - above, k) - math.comb(size - above - at, k)) / total * correct / at
        above += at
    return expected


def _expected_majority(subset):
    groups = {}
    for c in subset:
        if c["answer"] is not None:
            group = groups.setdefault(c["answer"], [0, 0])
            group[0] += 1
            group[1] += bool(c["is_correct"])
    top = max((count for count, _ in groups.values()), default=0)
    winners = [correct / count for count, correct in groups.values() if count == top]
    return sum(winners) / len(winners) if winners else 0.0


def _expected_weighted_majority(subset):
    groups = {}
    for c in subset:
        if c["answer"] is not None:
            group = groups.setdefault(c["answer"], [0.0, 0, 0])
            group[0] += weight_of(c["score_prm"])
            group[1] += 1
            group[2] += bool(c["is_correct"])
    top = max((weight for weight, _, _ in groups.values()), default=0.0)
    winners = [correct / count for weight, count, correct in groups.values() if weight == top]
    return sum(winners) / len(winners) if winners else 0.0
