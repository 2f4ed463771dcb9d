"""Reads for the rounds page's generator side (iterative RPO): which generator each round sampled from, and
every generator version's iteration, training loss and held-out accuracy (greedy, majority of N).

A round's generator is the version its generation job used, else the registry row of the spec its
parameters name (a round that generated nothing still says what it would have sampled from).
"""
from labeling.models import Job, ModelVersion


def evaluation_of(version):
    return (version.metrics or {}).get("generator_evaluation") if version is not None else None


def summary(version):
    """What a row shows of one generator version."""
    evaluation = evaluation_of(version) or {}
    return {"version": version, "iteration": (version.config or {}).get("iteration", 0),
            "greedy": evaluation.get("greedy_accuracy"), "majority": evaluation.get("majority_accuracy"),
            "n": evaluation.get("n"), "problems": evaluation.get("problems"),
            "final_loss": (version.metrics or {}).get("final_loss"), "promoted": version.is_active_generator}


def round_generators(rounds) -> dict:
    """round pk -> summary() of the generator it sampled from (None when it names none)."""
    generated = dict(Job.objects.filter(kind=Job.Kind.GENERATE, round_id__in=[r.pk for r in rounds],
                                        model_version__isnull=False).order_by("id")
                     .values_list("round_id", "model_version_id"))
    versions = {v.pk: v for v in ModelVersion.objects.filter(kind=ModelVersion.Kind.GENERATOR)}
    by_path = {}
    for v in sorted(versions.values(), key=lambda v: v.pk, reverse=True):
        by_path[v.path] = v  # the oldest row of a path wins, as registry.generator_version finds it
    out = {}
    for r in rounds:
        version = versions.get(generated.get(r.pk)) or by_path.get((r.parameters or {}).get("generator"))
        out[r.pk] = summary(version) if version is not None else None
    return out


def generator_rows() -> list[dict]:
    """Every generator version, newest first."""
    return [summary(v) for v in ModelVersion.objects.filter(kind=ModelVersion.Kind.GENERATOR)
            .order_by("-created", "-id")]
