"""One iteration of iterative RPO: the generator's own pairs -> a trained generator version -> its evaluation.

`generator_train_start` records what to train on as an `Export` row (format `generator_pairs`: correct
against wrong solutions of one problem, both sampled by the generator being trained, on its own prompt,
test-split problems left out; labeling.services.data.generator_pairs) and a TRAIN_GENERATOR `Job`, and
enqueues `workers.tasks.gpu_train_generator` on commit. The worker writes the pairs file, trains on
exactly its rows (sha256 checked again) with DPO + NLL (workers.ml.rpo_training, TRL's DPOTrainer) and
registers a generator version with its loss curve, the pairs' provenance and its parent. With `evaluate`
it then starts an EVALUATE_GENERATOR job (greedy and majority-of-N accuracy on held-out problems,
labeling.services.training.generator_evaluation) whose `promote` says what happens next: nothing
(manual), promotion if it beats the current generator (if_better), or promotion (always). Rounds sample
from the promoted generator (labeling.services.training.generator_promotion), which starts the next
iteration.
"""
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from labeling.core.prompts import TEMPLATE_ID
from labeling.errors import InvalidInput
from labeling.models import Export, Job, ModelVersion, Round
from labeling.services.data.generator_pairs import GeneratorPairOptions, pair_candidates
from labeling.services.jobs.dispatch import enqueue
from labeling.services.jobs.rows import job_claim, job_fail, job_finish
from labeling.services.rounds.registry import generator_version, model_version_register
from labeling.services.training.generator_evaluation import PROMOTE, generator_evaluation_start
from labeling.services.training.generator_promotion import generator_default_spec
from labeling.services.training.model_folders import remove_unregistered
from labeling.services.training.parameters import check_number, check_whole_numbers, loss_curve
from workers import tasks

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class GeneratorTrainParameters:
    """base: the generator to train ("": the promoted one, else STEPWISE_GENERATOR); its own candidates are
    the pairs. pairs_from_round: only that round's problems. beta: DPO's temperature; alpha: the NLL
    term's weight (Pang et al. use 1). evaluate: start the held-out evaluation after training, with
    `majority_n` samples per problem on `eval_problems` problems (None: all); promote: manual, if_better
    or always (after the evaluation)."""
    base: str = ""
    pairs_generator: str = ""  # whose candidates pair up ("": base's own, iterative RPO; another: off-policy DPO)
    pairs_from_round: int | None = None
    steps: int = 20
    beta: float = 0.1
    alpha: float = 1.0
    learning_rate: float = 1e-6
    batch_size: int = 2
    grad_accum: int = 1
    max_length: int = 1024
    pairs_per_problem: int = 4
    seed: int = 0
    grading: str = field(default_factory=lambda: settings.STEPWISE_SELECTION_GRADING)
    evaluate: bool = True
    majority_n: int = 4
    eval_problems: int | None = None
    eval_max_new_tokens: int = 512
    promote: str = "manual"

    def check(self):
        try:
            GeneratorPairOptions(pairs_per_problem=self.pairs_per_problem, grading=self.grading)
        except ValueError as exc:
            raise InvalidInput(str(exc), field=str(exc).split(" ", 1)[0]) from None
        check_number("beta", self.beta)
        check_number("alpha", self.alpha, zero_ok=True)
        check_number("learning_rate", self.learning_rate)
        check_whole_numbers(self, (("steps", 1), ("batch_size", 1), ("grad_accum", 1), ("max_length", 16),
                                   ("seed", 0), ("majority_n", 1), ("eval_max_new_tokens", 1)))
        if self.eval_problems is not None and self.eval_problems < 1:
            raise InvalidInput(f"eval_problems must be at least 1, got {self.eval_problems}", field="eval_problems")
        if self.promote not in PROMOTE:
            raise InvalidInput(f"promote must be one of {', '.join(PROMOTE)}, got {self.promote!r}", field="promote")


@transaction.atomic
def generator_train_start(*, params: GeneratorTrainParameters, user=None) -> Job:
    """The pairs' Export row and the TRAIN_GENERATOR job; the worker is sent the job once both are committed."""
    params.check()
    base = params.base or generator_default_spec()
    rounds = None
    if params.pairs_from_round is not None:
        if not Round.objects.filter(number=params.pairs_from_round).exists():
            raise InvalidInput(f"no round {params.pairs_from_round}", field="pairs_from_round")
        rounds = [params.pairs_from_round]
    options = GeneratorPairOptions(generator=params.pairs_generator or base, rounds=rounds,
                                   pairs_per_problem=params.pairs_per_problem,
                                   grading=params.grading)
    if not pair_candidates(options).exists():
        where = f" in round {params.pairs_from_round}" if rounds else ""
        raise InvalidInput(f"no solutions sampled by {options.generator}{where} outside the test split: run a "
                           "round with it first (its candidates become the pairs)", field="pairs_from_round")
    export = Export.objects.create(format="generator_pairs", requested_by=user,
                                   filters={"exclude_test": True, "options": asdict(options)})
    parent = generator_version(spec=base)
    job = Job.objects.create(kind=Job.Kind.TRAIN_GENERATOR, total=params.steps, requested_by=user,
                             parameters={**asdict(params), "base": base, "pairs_export_id": export.pk,
                                         "parent": {"id": parent.pk, "name": parent.name}})
    enqueue(tasks.gpu_train_generator, job.pk)
    return job


# --- what the worker calls -------------------------------------------------------------------------

def generator_out_dir(*, job_id: int) -> Path:
    return Path(settings.STEPWISE_MODEL_DIR) / f"generator-rpo-job{job_id}"


def generator_train_claim(*, job_id: int) -> Job | None:
    """pending -> running (or taken over from a lost worker: what it left on disk goes first); None when
    the job is over or held by a live worker."""
    if not job_claim(job_id=job_id):
        return None
    generator_train_cleanup(job_id=job_id)
    return Job.objects.get(pk=job_id)


def generator_train_cleanup(*, job_id: int) -> None:
    """Remove the job's model folder and the trainer's temporary folders, unless a version was registered."""
    remove_unregistered(generator_out_dir(job_id=job_id))


def generator_pairs_snapshot(*, job: Job) -> list[dict]:
    """Write the job's pairs export (if not yet written), record it on the job, and read its rows back."""
    from labeling.services.data.exports import export_run
    from labeling.services.data.training_exports import file_sha256

    export_id = job.parameters["pairs_export_id"]
    export_run(export_id=export_id)
    export = Export.objects.get(pk=export_id)
    if export.status != Export.Status.DONE:
        raise RuntimeError(f"pairs export {export_id} is {export.status}: {export.error or 'not written'}")
    path = Path(settings.EXPORT_DIR) / export.file
    if file_sha256(path) != export.sha256:
        raise RuntimeError(f"pairs file {path} changed since it was written (sha256 differs)")
    stats = (export.provenance or {}).get("output", {})
    snapshot = {"export_id": export.pk, "sha256": export.sha256, "file": export.file, "pairs": export.record_count,
                "problems_with_pairs": stats.get("problems_with_pairs"),
                "prompt_template": stats.get("prompt_template"),
                "generator": stats.get("generator"), "rounds": stats.get("rounds"), "grading": stats.get("grading"),
                "test_split": stats.get("test_split")}
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(result={"pairs": snapshot})
    with open(path, encoding="utf-8") as lines:
        pairs = [json.loads(line) for line in lines]
    if not pairs:
        raise RuntimeError(f"no preference pairs: none of the {stats.get('problems', 0)} problems has both a correct "
                           f"and a wrong solution by {(stats.get('generator') or {}).get('spec')}")
    return pairs


@transaction.atomic
def generator_train_register(*, job_id: int, out_dir: str, result: dict) -> ModelVersion | None:
    """Register the trained generator, start its evaluation (when asked) and finish the job, in one
    transaction; None when the job stopped meanwhile."""
    job = Job.objects.select_for_update().get(pk=job_id)
    if job.status != Job.Status.RUNNING:
        return None
    params, pairs = job.parameters, (job.result or {}).get("pairs", {})
    parent = ModelVersion.objects.filter(pk=params["parent"]["id"]).first()
    iteration = int(((parent.config or {}).get("iteration") or 0) if parent else 0) + 1
    source = (pairs.get("generator") or {}).get("spec")
    on_policy = source == params["base"]
    whose = "its own graded candidates" if on_policy else f"graded candidates of {source} (off-policy: plain DPO + NLL)"
    values = result.get("loss_curve", [])
    curve, every = loss_curve(values)
    train = {k: v for k, v in result.items() if k not in ("loss_curve", "step_tokens")}
    metrics = {"loss_curve": curve, "loss_curve_every": every, "final_loss": curve[-1] if curve else None,
               "train": train, "pairs": pairs}
    version = model_version_register(
        name=f"generator-rpo-job{job.pk}", kind=ModelVersion.Kind.GENERATOR, path=str(out_dir),
        base_model=params["base"],
        how_made=(f"iterative RPO iteration {iteration} from {params['parent']['name']}: DPO (beta={params['beta']:g}) "
                  f"+ {params['alpha']:g} x NLL on the chosen solution (TRL {result.get('trl')} DPOTrainer), "
                  f"{train.get('steps')} steps of {params['batch_size']}x{params['grad_accum']} "
                  f"on {pairs.get('pairs')} "
                  f"pairs of {whose} (export {pairs.get('export_id')}, sha256 {pairs.get('sha256')}; "
                  f"prompt template {TEMPLATE_ID}; no test-split problems), lr={params['learning_rate']:g}, "
                  f"max_length={params['max_length']}, seed={params['seed']}; train_generator job {job.pk}"),
        metrics=metrics,
        config={"method": "iterative_rpo" if on_policy else "dpo_nll_off_policy", "iteration": iteration,
                "pairs_generator": source, "parent": params["parent"]["name"],
                "prompt_template": TEMPLATE_ID})
    Job.objects.filter(pk=job.pk).update(model_version=version)
    evaluation = None
    if params.get("evaluate"):
        try:
            with transaction.atomic():
                evaluation = generator_evaluation_start(
                    version=version, user=job.requested_by, n=params["majority_n"], problems=params["eval_problems"],
                    max_new_tokens=params["eval_max_new_tokens"], seed=params["seed"], promote=params["promote"]).pk
        except Exception as exc:  # a savepoint: the version stands without its evaluation
            log.warning("%s: no evaluation started: %s", version.name, exc)
            evaluation = f"{type(exc).__name__}: {exc}"
    if not job_finish(job_id=job.pk, result={**metrics, "model_version": {"id": version.pk, "name": version.name},
                                             "evaluation_job": evaluation}):
        raise RuntimeError(f"job {job.pk} stopped running while it was being registered")
    return version


def generator_train_fail_export(*, job_id: int, error: str) -> None:
    """A pairs export left unwritten by a failed job would show as under way for ever."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        job_fail(job_id=job.parameters.get("pairs_export_id"), model=Export, error=error)
