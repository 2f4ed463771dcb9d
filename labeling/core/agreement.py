"""Label-quality metrics as pure functions over plain lists, so each can be checked by hand.

Definitions (the dashboard and QC scoring use these and only these):

- A rating sequence is one annotation's ratings of the solution's steps, by step index: -1, 0, +1, or
  None for a step it left unrated. Phase 2 stops at the first -1, so anything after it is ignored.
- The three ratings are three distinct categories. PRM800K's instructions separate 0 ("neutral":
  reasonable but not clearly progressing) from +1, so rating a gold +1 step 0 is a disagreement,
  for QC agreement and for kappa alike. (Only the PRM *score* folds 0 into "not wrong".)
- An annotation's outcome is the index of its first -1; NO_ERROR when it rated every step and none
  -1; None ("incomplete": it gave up or flagged the problem before finding an error). An incomplete
  outcome agrees with nothing, not even another incomplete one.
- Kappa is None when it is undefined: no items, or chance agreement of 1 (every rating in one
  category), where (p_o - p_e) / (1 - p_e) is 0/0. Observed agreement is reported beside it.
"""
import itertools
import math
import statistics
from dataclasses import dataclass, field

RATINGS = (-1, 0, 1)
NO_ERROR = "none"


def labeled(ratings):
    """The ratings phase 2 collects: up to and including the first -1."""
    ratings = list(ratings)
    return ratings[:ratings.index(-1) + 1] if -1 in ratings else ratings


def first_error(ratings):
    ratings = list(ratings)
    return ratings.index(-1) if -1 in ratings else None


def outcome(ratings, n_steps):
    """First -1 index, NO_ERROR when every one of `n_steps` steps is rated and none is -1, else None."""
    ratings = labeled(ratings)
    if ratings and ratings[-1] == -1:
        return len(ratings) - 1
    if len(ratings) >= n_steps and all(r is not None for r in ratings[:n_steps]):
        return NO_ERROR
    return None


def outcomes_agree(outcomes):
    outcomes = list(outcomes)
    return None not in outcomes and len(set(outcomes)) == 1


# --- agreement with gold (QC and screening) -------------------------------------------------------

@dataclass(frozen=True)
class GoldScore:
    steps_compared: int
    steps_agreed: int
    first_error_match: bool

    @property
    def step_agreement(self):
        """Share of the steps both gold and the annotator rated where the ratings are equal; None if none."""
        return self.steps_agreed / self.steps_compared if self.steps_compared else None

    @property
    def score(self):
        return quality_score(self.step_agreement, 1.0 if self.first_error_match else 0.0)


def gold_score(gold, ratings, n_steps) -> GoldScore:
    """Compare one annotation with gold ratings (gold runs up to its first -1, or over every step)."""
    pairs = [(g, r) for g, r in zip(gold, labeled(ratings)) if r is not None]
    return GoldScore(steps_compared=len(pairs), steps_agreed=sum(g == r for g, r in pairs),
                     first_error_match=outcomes_agree([outcome(gold, n_steps), outcome(ratings, n_steps)]))


def quality_score(step_agreement, first_error_agreement):
    """The QC score: the mean of step agreement and first-error agreement (either alone if one is None).

    Equal weights because each catches what the other misses: step agreement rewards careful
    neutral/positive calls before the error, first-error agreement rewards finding the error itself,
    which is what phase-2 labels are for.
    """
    parts = [x for x in (step_agreement, first_error_agreement) if x is not None]
    return sum(parts) / len(parts) if parts else None


# --- agreement between annotators ------------------------------------------------------------------

@dataclass(frozen=True)
class Kappa:
    kappa: "float | None"
    observed: "float | None"
    expected: "float | None"
    items: int


def _kappa(observed, expected, items):
    if not items:
        return Kappa(None, None, None, 0)
    undefined = math.isclose(expected, 1.0)
    return Kappa(None if undefined else (observed - expected) / (1 - expected), observed, expected, items)


def cohen_kappa(a, b, categories=RATINGS) -> Kappa:
    """Cohen's kappa of two raters over the same items (two equal-length lists of categories)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if not n:
        return _kappa(None, None, 0)
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(c) / n) * (b.count(c) / n) for c in categories)
    return _kappa(observed, expected, n)


def fleiss_kappa(counts) -> Kappa:
    """Fleiss' kappa from a table: one row per item, one column per category, cells = raters choosing it.

    Items with fewer than two ratings are skipped. Rows may have different totals (a task whose third
    rater has not submitted yet): each item's agreement uses its own rater count and the category
    shares pool all ratings, which is exactly Fleiss' formula when every row has the same total.
    """
    rows = [list(row) for row in counts if sum(row) >= 2]
    if not rows:
        return _kappa(None, None, 0)
    total = sum(sum(row) for row in rows)
    shares = [sum(row[j] for row in rows) / total for j in range(len(rows[0]))]
    per_item = [(sum(c * c for c in row) - sum(row)) / (sum(row) * (sum(row) - 1)) for row in rows]
    return _kappa(sum(per_item) / len(per_item), sum(p * p for p in shares), len(rows))


def category_counts(ratings, categories=RATINGS):
    return [sum(r == c for r in ratings) for c in categories]


def aligned_steps(by_rater):
    """The steps every rater rated, as rows of ratings (one per step, raters in the mapping's order).

    Rating stops at each rater's first -1, so the comparable steps run up to the earliest first error
    (that step included); a step any rater left unrated is skipped.
    """
    sequences = [labeled(r) for r in by_rater.values()]
    if not sequences:
        return []
    rows = zip(*sequences)  # stops at the shortest: the earliest first error
    return [list(row) for row in rows if None not in row]


@dataclass(frozen=True)
class Overlap:
    """One task rated by several annotators: {rater: rating sequence} and the solution's step count."""
    ratings: dict
    n_steps: int


@dataclass(frozen=True)
class PairAgreement:
    a: object
    b: object
    tasks: int
    kappa: Kappa
    first_error: "float | None"


@dataclass(frozen=True)
class AgreementReport:
    tasks: int
    fleiss: Kappa
    first_error: "float | None"
    pairs: list = field(default_factory=list)


def first_error_agreement(overlaps):
    """Share of tasks where all raters agree on the first -1 index, or all rated every step and found none."""
    overlaps = [o for o in overlaps if len(o.ratings) >= 2]
    if not overlaps:
        return None
    agreed = sum(outcomes_agree(outcome(r, o.n_steps) for r in o.ratings.values()) for o in overlaps)
    return agreed / len(overlaps)


def agreement(overlaps) -> AgreementReport:
    """Inter-annotator agreement over tasks rated by two or more annotators.

    Fleiss' kappa pools every task's aligned steps, all raters of the task at once; pairwise Cohen's
    kappa takes, for each pair of annotators, the tasks both rated, aligned for those two alone.
    """
    overlaps = [o for o in overlaps if len(o.ratings) >= 2]
    table = [category_counts(row) for o in overlaps for row in aligned_steps(o.ratings)]
    shared = {}
    for o in overlaps:
        for a, b in itertools.combinations(sorted(o.ratings), 2):
            shared.setdefault((a, b), []).append(o)
    pairs = []
    for (a, b), tasks in shared.items():
        rows = [row for o in tasks for row in aligned_steps({a: o.ratings[a], b: o.ratings[b]})]
        pair = [Overlap({a: o.ratings[a], b: o.ratings[b]}, o.n_steps) for o in tasks]
        pairs.append(PairAgreement(a, b, len(tasks), cohen_kappa([r[0] for r in rows], [r[1] for r in rows]),
                                   first_error_agreement(pair)))
    return AgreementReport(tasks=len(overlaps), fleiss=fleiss_kappa(table),
                           first_error=first_error_agreement(overlaps), pairs=pairs)


# --- speed -------------------------------------------------------------------------------------------

def throughput(annotations, active_ms):
    """Annotations per hour of active labeling time (the sum of their total_time_ms)."""
    return annotations / (active_ms / 3_600_000) if annotations and active_ms else None


def median_ms_per_step(timings):
    """Median over annotations of total_time_ms / steps rated; `timings` is (total_time_ms, steps) pairs."""
    per_step = [ms / steps for ms, steps in timings if ms is not None and steps]
    return statistics.median(per_step) if per_step else None
