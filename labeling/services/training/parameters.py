"""What every training job's parameters must be (retrain, ORM, generator), checked the same way, and the loss
curve every training job keeps."""
import math

from labeling.errors import InvalidInput

CURVE_POINTS = 1000  # the most loss values kept: longer runs keep means of equal windows


def check_model_spec(value, field="base"):
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{field} must name a model (a folder, a Hugging Face id, a .gguf or package:...)",
                           field=field)


def check_number(name, value, *, zero_ok=False):
    """A finite number > 0 (>= 0 with zero_ok); booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero_ok):
        raise InvalidInput(f"{name} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}",
                           field=name)


def check_whole_numbers(params, minimums):
    """Each (attribute name, least value) of `params` a whole number at least that."""
    for name, least in minimums:
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidInput(f"{name} must be a whole number >= {least}, got {value!r}", field=name)


def loss_curve(values: list[float]) -> tuple[list[float], int]:
    """(the curve kept, how many steps each point averages): at most CURVE_POINTS means of equal windows."""
    every = max(1, math.ceil(len(values) / CURVE_POINTS))
    if every == 1:
        return list(values), 1
    return [sum(values[i:i + every]) / len(values[i:i + every]) for i in range(0, len(values), every)], every
