"""Training rows made from stored labels: stepwise supervision (TRL's PRM rows) and preference pairs.

Pure functions over plain values; the database side is labeling.services.data.training_exports.

Which text stands for a step. Each StepLabel is one position of the trajectory the annotator
followed. Where a completion was chosen (`chosen_completion`), that completion is the step. Where
none was chosen but a human completion was written and labeling went on after it (PRM800K phase 1),
the human text is the step, rated +1 unless the human rating says otherwise: the annotator wrote it
as the right way on. Otherwise the annotation ended at this step (found an error, gave up, or the
last step), and the step is its first rated completion: in phase 2 that is completion 0, the
solution's own step, so the -1 there is kept rather than replaced by the human's correction.
The trajectory ends at the first -1 (kept) or at the first step with no rated completion (left out).
"""
from dataclasses import dataclass

NEUTRAL = ("positive", "negative", "drop")
PROBLEM_SCOPES = ("all", "labeled")
# Where step labels come from: annotators, rollouts (labeling.queries.rollouts), annotations whose first
# error the rollouts confirm (consensus filtering), or both human and rollout rows (each row says which).
LABEL_SOURCES = ("human", "rollout", "consensus", "both")


@dataclass(frozen=True)
class StepwiseOptions:
    """neutral: how a 0 rating becomes a bool label. positive (PRM800K's choice for its PRM), negative, or
    drop (leave out every annotation whose kept steps include a 0). source: which labels (LABEL_SOURCES).
    prover: the rollouts of this prover only (blank: per solution, the first prover by name)."""
    neutral: str = "positive"
    source: str = "human"
    prover: str = ""

    def __post_init__(self):
        if self.neutral not in NEUTRAL:
            raise ValueError(f"neutral must be one of {', '.join(NEUTRAL)}, got {self.neutral!r}")
        if self.source not in LABEL_SOURCES:
            raise ValueError(f"source must be one of {', '.join(LABEL_SOURCES)}, got {self.source!r}")


@dataclass(frozen=True)
class PreferenceOptions:
    """pairs_per_problem: the most pairs made for one problem. problems: all (every problem with a correct
    and an incorrect solution; the filters only choose which labels count as human checks) or labeled
    (only problems that an annotation matching the filters labeled)."""
    pairs_per_problem: int = 4
    problems: str = "all"

    def __post_init__(self):
        if isinstance(self.pairs_per_problem, bool) or not isinstance(self.pairs_per_problem, int) \
                or self.pairs_per_problem < 1:
            raise ValueError(f"pairs_per_problem must be a whole number of 1 or more, got {self.pairs_per_problem!r}")
        if self.problems not in PROBLEM_SCOPES:
            raise ValueError(f"problems must be one of {', '.join(PROBLEM_SCOPES)}, got {self.problems!r}")


def annotation_steps(steps, completions):
    """[(text, rating)] of one annotation's trajectory (see the module docstring).

    `steps` are (index, chosen_completion, human_text, human_rating) in index order; `completions` maps
    a step index to its (index, text, rating) in index order.
    """
    path = []
    last = len(steps) - 1
    for position, (index, chosen, human_text, human_rating) in enumerate(steps):
        options = completions.get(index, ())
        if chosen is not None:
            step = next(((text, rating) for j, text, rating in options if j == chosen), None)
        elif human_text is not None and position < last:
            step = (human_text, 1 if human_rating is None else human_rating)
        else:
            step = next(((text, rating) for _, text, rating in options if rating is not None), None)
        if step is None or step[1] is None:
            break
        path.append(step)
        if step[1] == -1:
            break
    return path


def step_labels(ratings, neutral):
    """Bool labels for ratings (+1 True, -1 False, 0 as `neutral` says); None where `neutral` drops them."""
    if neutral == "drop" and 0 in ratings:
        return None
    zero = neutral == "positive"
    return [rating == 1 or (rating == 0 and zero) for rating in ratings]


# --- preference pairs ------------------------------------------------------------------------------

def solution_side(is_correct, human):
    """("correct" | "incorrect" | None, human-checked) for one solution.

    `human` sums up its labels among the exported annotations: "error" (some annotation rated one of
    its steps -1), "ok" (some annotation labeled it to the end, and none found an error), or None.
    A human -1 makes a solution incorrect whatever its graded answer (a right answer reached by a
    wrong step is what a process reward model must learn to reject). A graded-wrong solution that a
    human approved to the end is left out: one of the two is mistaken, and neither side can use it.
    """
    if human == "error":
        return "incorrect", True
    if is_correct is True:
        return "correct", human == "ok"
    if is_correct is False and human != "ok":
        return "incorrect", False
    return None, False


def preference_pairs(correct, incorrect, *, cap):
    """Pairs (chosen, rejected) of (solution id, human-checked) for one problem, deterministically.

    Each side is sorted human-checked first, then by solution id; pair k joins correct[k mod C] with
    incorrect[k mod I] for k < min(cap, max(C, I)). So checked solutions pair first, every solution
    is used once before any is used twice, and no pair repeats.
    """
    if not correct or not incorrect:
        return []
    correct = sorted(correct, key=lambda c: (not c[1], c[0]))
    incorrect = sorted(incorrect, key=lambda c: (not c[1], c[0]))
    return [(correct[k % len(correct)], incorrect[k % len(incorrect)])
            for k in range(min(cap, max(len(correct), len(incorrect))))]


def solution_text(steps):
    return "\n\n".join(steps)
