"""Intervals for the figures a team decides on: a share (Wilson) and an outcome AUROC (DeLong).

Both are pure: the rounds page uses the share for error yields, the round-0 bootstrap uses the AUROC
to decide whether a selector beats chance before it may select.
"""
import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a binomial share; None for n == 0 (no data, no interval)."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def auroc_interval(scores, labels, z: float = Z95) -> dict | None:
    """AUROC of `scores` for telling True labels (e.g. correct outcome) from False ones, with DeLong's
    variance and a normal interval clipped to [0, 1]; None when either class is missing.

    Ties count one half. `n_positive`/`n_negative` are returned so a reader sees how thin the data is.
    """
    pairs = [(float(s), bool(y)) for s, y in zip(scores, labels, strict=True)]
    pos = [s for s, y in pairs if y]
    neg = [s for s, y in pairs if not y]
    if not pos or not neg:
        return None
    m, n = len(pos), len(neg)
    neg_sorted = sorted(neg)
    pos_sorted = sorted(pos)
    # V10[i]: share of negatives a positive beats; V01[j]: share of positives beating a negative.
    v10 = [(_below(neg_sorted, s) + 0.5 * _equal(neg_sorted, s)) / n for s in pos]
    v01 = [(m - _below(pos_sorted, s) - _equal(pos_sorted, s) + 0.5 * _equal(pos_sorted, s)) / m for s in neg]
    auc = sum(v10) / m
    var = _variance(v10, auc) / m + _variance(v01, auc) / n
    se = math.sqrt(max(var, 0.0))
    return {"auroc": auc, "low": max(0.0, auc - z * se), "high": min(1.0, auc + z * se), "se": se,
            "n_positive": m, "n_negative": n}


def beats_chance(interval: dict | None) -> bool:
    """True when the whole 95% interval of the AUROC lies above one half."""
    return interval is not None and interval["low"] > 0.5


def _variance(values, mean):
    if len(values) < 2:
        return 0.0
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _below(sorted_values, x):
    import bisect
    return bisect.bisect_left(sorted_values, x)


def _equal(sorted_values, x):
    import bisect
    return bisect.bisect_right(sorted_values, x) - bisect.bisect_left(sorted_values, x)
