"""The model registry: every generator and PRM version is a row; exactly one PRM is the active selector."""
from django.db import transaction
from django.utils import timezone

from labeling.models import ModelVersion
from labeling.errors import RegistryError

ARCHITECTURES = ("step_head", "implicit")


def model_version_register(*, name: str, kind: str, path: str, base_model: str = "", how_made: str = "",
                           metrics: dict | None = None, config: dict | None = None) -> ModelVersion:
    if kind not in ModelVersion.Kind.values:
        raise RegistryError(f"kind must be one of {', '.join(ModelVersion.Kind.values)}, got {kind!r}")
    config = dict(config or {})
    if kind == ModelVersion.Kind.PRM:
        config.setdefault("architecture", "step_head")
        if config["architecture"] not in ARCHITECTURES:
            raise RegistryError(f"config.architecture must be one of {', '.join(ARCHITECTURES)}, "
                                f"got {config['architecture']!r}")
        if config["architecture"] == "implicit" and not config.get("reference"):
            raise RegistryError("an implicit PRM needs config.reference (the reference model's path)")
    if ModelVersion.objects.filter(name=name).exists():
        raise RegistryError(f"a model version named {name!r} already exists")
    return ModelVersion.objects.create(name=name, kind=kind, path=path, base_model=base_model,
                                       how_made=how_made, metrics=metrics or {}, config=config)


def generator_version(*, spec: str) -> ModelVersion:
    """The registry row of a generator (a trained one is found by its path), created the first time a round
    samples from it."""
    trained = ModelVersion.objects.filter(kind=ModelVersion.Kind.GENERATOR, path=spec).order_by("id").first()
    if trained is not None:
        return trained
    version, _ = ModelVersion.objects.get_or_create(
        name=f"generator:{spec}", defaults={"kind": ModelVersion.Kind.GENERATOR, "path": spec,
                                             "base_model": spec, "how_made": "generator used as given"})
    return version


def selector_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active_selector=True).first()


@transaction.atomic
def selector_activate(*, version: ModelVersion, user=None, note: str | None = None,
                      force: bool = False) -> ModelVersion:
    """Make `version` the one active selector, atomically, recording who (`user`, None when automatic)
    and why (`note`; by default `activation_note` says what its validation showed).

    A person's switch (`user` given) is refused with RegistryError unless the version is ready (see
    selector_unready) or `force` is set; the note then says who forced it. Automatic switches (`user`
    None) come with their own rule: a validation that beats chance (bootstrap) or a better evaluation
    (promotion).

    Every PRM row is locked in id order first, so two concurrent switches run one after the other
    instead of both clearing the old selector and colliding on the one-active constraint. A round
    records its selector when it starts scoring, so a switch never changes a round under way.
    """
    list(ModelVersion.objects.select_for_update().filter(kind=ModelVersion.Kind.PRM).order_by("id")
         .values_list("id", flat=True))
    version = ModelVersion.objects.get(pk=version.pk)
    if version.kind != ModelVersion.Kind.PRM:
        raise RegistryError(f"{version.name} is a {version.kind}, not a PRM: only a PRM can be the selector")
    unready = selector_unready(version)
    if user is not None and unready and not force:
        raise RegistryError(f"{version.name} is not made the selector: {unready}; evaluate it first, "
                            "or make it the selector anyway (forced, recorded with your name)")
    ModelVersion.objects.filter(is_active_selector=True).exclude(pk=version.pk).update(is_active_selector=False)
    note = activation_note(version=version, user=user) if note is None else note
    ModelVersion.objects.filter(pk=version.pk).update(is_active_selector=True, activated=timezone.now(),
                                                      activated_by=user, activation_note=note[:300])
    version.refresh_from_db()
    return version


def validation_text(version: ModelVersion) -> str:
    """The version's validation in a few words: "AUROC 0.55 [0.41, 0.69]"."""
    figures = (version.metrics or {}).get("validation")
    if not figures:
        return "no validation figures"
    auroc = figures.get("outcome_auroc")
    if not auroc:
        return f"no validation AUROC (its {figures.get('n', 0)} validation solutions lack a correct or a wrong one)"
    return f"AUROC {auroc['auroc']:.2f} [{auroc['low']:.2f}, {auroc['high']:.2f}]"


def selector_validated(version: ModelVersion) -> bool:
    return bool(((version.metrics or {}).get("validation") or {}).get("beats_chance"))


def selector_unready(version: ModelVersion) -> str:
    """Why a person may not make `version` the selector without forcing it ("" when they may): it is
    ready with a validation that beats chance, or with a held-out evaluation and no failed validation."""
    if selector_validated(version):
        return ""
    if (version.metrics or {}).get("validation"):
        return f"its validation ({validation_text(version)}) does not beat chance"
    if not (version.metrics or {}).get("evaluation"):
        return "it was never evaluated"
    return ""


def activation_note(*, version: ModelVersion, user=None) -> str:
    """Why `version` becomes the selector: validated, forced by a named admin (over a failed validation
    or without an evaluation), or (a PRM trained on human labels, never validated this way) activated on
    its evaluation."""
    has_validation = bool((version.metrics or {}).get("validation"))
    evaluation = (version.metrics or {}).get("evaluation")
    f1 = (evaluation or {}).get("processbench_f1")
    evaluated = (f"held-out ProcessBench F1 {f1:.3f}" if f1 is not None
                 else "held-out evaluation without an F1" if evaluation else "not evaluated")
    if user is None:
        if selector_validated(version):
            return f"validated automatically: {validation_text(version)}"
        return f"activated automatically: {validation_text(version) if has_validation else evaluated}"
    who = user.get_username() if hasattr(user, "get_username") else str(user)
    if selector_validated(version):
        return f"validated: {validation_text(version)}; activated by {who}"
    if has_validation and version.metrics["validation"].get("outcome_auroc"):
        return f"forced by {who}: validation {validation_text(version)} did not beat chance"
    if has_validation:
        return f"forced by {who}: {validation_text(version)}"
    if not evaluation:
        return f"forced by {who}: {evaluated}"
    return f"activated by {who}: {evaluated}"
