"""Math-Shepherd rows as OpenRLHF's process-reward trainer reads them (pure: plain values in, a dict out).

Math-Shepherd (`peiyi9979/Math-Shepherd`) writes `input` = the problem, then `Step i: <text> ки` per
step, the tag `ки` marking where each step ends, and `label` = the same text with every `ки` replaced by
the step's label (`+` or `-`). OpenRLHF (`openrlhf.cli.train_prm --input_key input --label_key value
--placeholder_token ки --reward_tokens + -`) tokenizes `input`, finds the placeholder's token positions
and puts the list under `value` there in order: reward-token strings, or floats for soft labels; it drops
the labels of placeholders that truncation cut off. So the row's `value` list has exactly one label per
placeholder, and no step or problem text may contain the placeholder itself (that row is refused).
"""
from dataclasses import dataclass

from labeling.formats.training import StepwiseOptions

PLACEHOLDER = "ки"
POSITIVE, NEGATIVE = "+", "-"
LABEL_KINDS = ("hard", "soft")


@dataclass(frozen=True)
class MathShepherdOptions(StepwiseOptions):
    """labels: hard (`+`/`-`: Q hard for rollouts, the rating for humans) or soft (floats: the share of
    rollouts that reached the answer; 1.0 / 0.0 for human labels)."""
    labels: str = "hard"

    def __post_init__(self):
        super().__post_init__()
        if self.labels not in LABEL_KINDS:
            raise ValueError(f"labels must be one of {', '.join(LABEL_KINDS)}, got {self.labels!r}")


class PlaceholderInText(ValueError):
    pass


def step_prefix(i):
    return f"Step {i}: "


def math_shepherd_input(problem: str, steps) -> str:
    if PLACEHOLDER in problem or any(PLACEHOLDER in s for s in steps):
        raise PlaceholderInText(f"the text contains the step tag {PLACEHOLDER!r}: its labels would misalign")
    return problem + " " + "\n".join(f"{step_prefix(i)}{s} {PLACEHOLDER}" for i, s in enumerate(steps, 1))


def label_token(value) -> str:
    if isinstance(value, bool):
        return POSITIVE if value else NEGATIVE
    return format(float(value), ".6g")


def math_shepherd_row(problem: str, steps, values) -> dict:
    """{"input", "label", "value"}: `values` are bools (hard: written `+`/`-`) or floats (soft), one per step."""
    values = list(values)
    if len(values) != len(steps):
        raise ValueError(f"{len(steps)} steps but {len(values)} labels")
    text = math_shepherd_input(problem, steps)
    pieces = text.split(PLACEHOLDER)
    label = "".join(piece + label_token(v) for piece, v in zip(pieces, values)) + pieces[-1]
    value = [label_token(v) if isinstance(v, bool) else float(v) for v in values]
    return {"input": text, "label": label, "value": value}
