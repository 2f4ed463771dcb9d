"""The promoted generator: the one generator version rounds sample from unless a round names another.

As with the selector (labeling.services.training.promotion), an admin's decision compares nothing, and
"if better" compares evaluations of one held-out set (equal digests,
labeling.services.training.generator_evaluation): the new version must be at least as accurate greedily
and by majority of N, and more accurate by one of them. With none promoted, the baseline is the default
generator (settings.STEPWISE_GENERATOR), evaluated first where it has no comparable evaluation.
"""
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.errors import RegistryError
from labeling.models import ModelVersion
from labeling.services.rounds.registry import generator_version


def generator_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active_generator=True).first()


def generator_default_spec() -> str:
    """What a round samples from when it names no generator: the promoted one, else the setting."""
    active = generator_active()
    return active.path if active is not None else settings.STEPWISE_GENERATOR


@transaction.atomic
def generator_promote(*, version: ModelVersion, user=None, note: str = "") -> ModelVersion:
    """Make `version` the promoted generator, atomically (generator rows locked in id order, as
    registry.selector_activate does for PRMs); rounds started later sample from it."""
    list(ModelVersion.objects.select_for_update().filter(kind=ModelVersion.Kind.GENERATOR).order_by("id")
         .values_list("id", flat=True))
    version = ModelVersion.objects.get(pk=version.pk)
    if version.kind != ModelVersion.Kind.GENERATOR:
        raise RegistryError(f"{version.name} is a {version.kind}, not a generator")
    ModelVersion.objects.filter(is_active_generator=True).exclude(pk=version.pk).update(is_active_generator=False)
    who = user.get_username() if user is not None and hasattr(user, "get_username") else None
    evaluation = (version.metrics or {}).get("generator_evaluation") or {}
    note = note or (f"promoted generator by {who}" if who else "promoted generator automatically") + (
        f": held-out accuracy {evaluation['greedy_accuracy']:.3f} greedy, {evaluation['majority_accuracy']:.3f} "
        f"by majority of {evaluation['n']}" if evaluation else ": not evaluated")
    ModelVersion.objects.filter(pk=version.pk).update(is_active_generator=True, activated=timezone.now(),
                                                      activated_by=user, activation_note=note[:300])
    version.refresh_from_db()
    return version


def generator_better(new: dict, old: dict) -> bool:
    """The rule of the module docstring, on two evaluations of one held-out set."""
    pairs = [(new.get(k), old.get(k)) for k in ("greedy_accuracy", "majority_accuracy")]
    if any(n is None for n, _ in pairs):
        return False
    return all(o is None or n >= o for n, o in pairs) and any(o is None or n > o for n, o in pairs)


def generator_baseline(*, version: ModelVersion) -> ModelVersion | None:
    """What `version` must beat, when it still needs an evaluation of the same held-out set (else None):
    the promoted generator, or with none the default one."""
    new = (ModelVersion.objects.get(pk=version.pk).metrics or {}).get("generator_evaluation")
    base = generator_active() or generator_version(spec=settings.STEPWISE_GENERATOR)
    if base.pk == version.pk or not new:
        return None
    old = (base.metrics or {}).get("generator_evaluation")
    return base if not old or old["held_out"]["digest"] != new["held_out"]["digest"] else None


def generator_promote_if_better(*, version: ModelVersion) -> bool:
    """Promote `version` if it beats the baseline on the same held-out set; True if it did."""
    with transaction.atomic():
        list(ModelVersion.objects.select_for_update().filter(kind=ModelVersion.Kind.GENERATOR).order_by("id")
             .values_list("id", flat=True))
        version = ModelVersion.objects.get(pk=version.pk)
        new = (version.metrics or {}).get("generator_evaluation")
        base = generator_active() or generator_version(spec=settings.STEPWISE_GENERATOR)
        if not new or version.kind != ModelVersion.Kind.GENERATOR or base.pk == version.pk:
            return False
        old = (base.metrics or {}).get("generator_evaluation")
        if not old or old["held_out"]["digest"] != new["held_out"]["digest"] or not generator_better(new, old):
            return False
        generator_promote(version=version)
        return True
