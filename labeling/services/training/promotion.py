"""Promoting a PRM version to be the selector, by an admin's decision or because its evaluation is better.

"Better" (promote_if_better): on the same held-out set (equal digests, see
labeling.services.training.evaluation), a higher ProcessBench F1 at the fixed threshold 0.5, and a
best-of-N PRM accuracy at the largest N that is not lower. The F1 at the best threshold is fitted on
the held-out set itself, so it is reported but decides nothing. An admin's "Make selector"
(version_promote) compares nothing. STEPWISE_AUTO_PROMOTE=if_better makes each retrain start an
evaluation with promote_if_better (labeling.services.training.retraining).
"""
from django.db import transaction

from labeling.models import ModelVersion
from labeling.services.rounds.registry import selector_activate, selector_active


def version_promote(*, version: ModelVersion, user=None) -> ModelVersion:
    """Make `version` the active selector (an admin's decision: no comparison), recording `user` as who
    activated it. Rounds started later use it."""
    return selector_activate(version=version, user=user)


def evaluation_better(new: dict, old: dict) -> bool:
    """The rule of the module docstring, on two evaluations of one held-out set."""
    f1_new, f1_old = new.get("processbench_f1"), old.get("processbench_f1")
    if f1_new is None or (f1_old is not None and not f1_new > f1_old):
        return False
    bon_new, bon_old = (((e.get("best_of_n_max") or {}).get("prm")) for e in (new, old))
    if bon_old is not None and (bon_new is None or bon_new < bon_old):
        return False
    return True


def promotion_baseline(*, version: ModelVersion) -> ModelVersion | None:
    """The active selector, when it must be evaluated before `version` can be compared with it: it has no
    evaluation, or one of another held-out set (labels were added since). None when nothing is needed."""
    active = selector_active()
    new = (ModelVersion.objects.get(pk=version.pk).metrics or {}).get("evaluation")
    if active is None or active.pk == version.pk or not new:
        return None
    old = (active.metrics or {}).get("evaluation")
    return active if not old or old["held_out"]["digest"] != new["held_out"]["digest"] else None


def promote_if_better(*, version: ModelVersion) -> bool:
    """Make `version` the selector if it beats the active one on the same held-out set; True if it did.

    With no active selector there is nothing to beat: an evaluated version is promoted. An active
    selector without a comparable evaluation is never replaced blindly (the worker evaluates it first,
    see promotion_baseline).
    """
    with transaction.atomic():
        # Lock the PRM rows as selector_activate does, so the comparison and the switch see one selector.
        list(ModelVersion.objects.select_for_update().filter(kind=ModelVersion.Kind.PRM).order_by("id")
             .values_list("id", flat=True))
        version = ModelVersion.objects.get(pk=version.pk)
        new = (version.metrics or {}).get("evaluation")
        active = selector_active()
        if not new or version.kind != ModelVersion.Kind.PRM or (active is not None and active.pk == version.pk):
            return False
        if active is not None:
            old = (active.metrics or {}).get("evaluation")
            if not old or old["held_out"]["digest"] != new["held_out"]["digest"] or not evaluation_better(new, old):
                return False
        selector_activate(version=version)
        return True
