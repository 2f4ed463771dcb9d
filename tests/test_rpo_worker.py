"""One iterative-RPO iteration on tiny models through a real `celery worker` (PostgreSQL + Redis):

the generator's own pairs -> a trained generator version (gpu queue) -> evaluated on held-out problems ->
promoted -> the next round samples its candidates from it.
"""
import pytest

from labeling.models import Job, ModelVersion, Problem, Round, Solution
from labeling.services.rounds.stages import RoundParameters, round_start
from labeling.services.training.generator_promotion import generator_active, generator_promote
from labeling.services.training.generator_training import GeneratorTrainParameters, generator_train_start
from tests.celery_workers import Worker, queue_env, redis_url_or_skip, route_to_test_queues, wait_for
from tests.round_factories import register_selector
from tests.tiny_models import build_causal_lm, build_token_classifier

pytest.importorskip("trl")


@pytest.fixture
def worker(postgres, tmp_path):
    from annotate.celery import app

    redis_url = redis_url_or_skip().rsplit("/", 1)[0] + "/13"  # a Redis db of its own
    default, gpu, restore = route_to_test_queues(app, redis_url)
    w = Worker(queues=[default, gpu], redis_url=redis_url, log=tmp_path / "worker.log",
               extra_env={"MEDIA_ROOT": str(tmp_path / "media"), "STEPWISE_MODEL_DIR": str(tmp_path / "models"),
                          "STEPWISE_GENERATION_BATCH": "8", "OMP_NUM_THREADS": "1", **queue_env(default, gpu)})
    try:
        yield w
    finally:
        restore()
        w.stop()
        print(w.text()[-3000:])


def finished(model, pk, done, failed):
    return lambda: model.objects.filter(pk=pk, status__in=[done, failed]).first()


def own_candidates(spec):
    """Train-split problems with the generator's own graded candidates; test-split problems to evaluate on."""
    for p in range(3):
        problem = Problem.objects.create(text=f"What is {p} + 3?", answer=str(p + 3), split="train")
        for k, answer in enumerate([p + 3, p + 9, p + 7]):
            Solution.objects.create(problem=problem, steps=[f"we add {p} and 3, try {k}", f"# Answer\n\n{answer}"],
                                    final_answer=str(answer), is_correct=answer == p + 3, graded_mode="fixed",
                                    generator=spec)
    for p in range(2):
        Problem.objects.create(text=f"What is {p} + {p}?", answer=str(2 * p), split="test")


@pytest.mark.django_db(transaction=True)
def test_one_rpo_iteration_on_a_real_worker(worker, tmp_path):
    base = build_causal_lm(tmp_path / "generator")
    register_selector(build_token_classifier(tmp_path / "prm"), name="selector-0")
    own_candidates(base)

    job = generator_train_start(params=GeneratorTrainParameters(
        base=base, steps=2, learning_rate=1e-3, majority_n=2, eval_max_new_tokens=8))
    job = wait_for(finished(Job, job.pk, Job.Status.DONE, Job.Status.FAILED), 180, "the RPO training", every=0.3,
                   alive=[worker])
    assert job.status == Job.Status.DONE, job.error
    new = job.model_version
    assert new.kind == ModelVersion.Kind.GENERATOR and len(new.metrics["loss_curve"]) == 2
    assert new.metrics["pairs"]["pairs"] == 6 and new.metrics["pairs"]["test_split"] == "excluded"

    evaluation = Job.objects.get(pk=job.result["evaluation_job"])
    evaluation = wait_for(finished(Job, evaluation.pk, Job.Status.DONE, Job.Status.FAILED), 120, "the evaluation",
                          every=0.3, alive=[worker])
    assert evaluation.status == Job.Status.DONE, evaluation.error
    new.refresh_from_db()
    assert {"greedy_accuracy", "majority_accuracy"} <= set(new.metrics["generator_evaluation"])

    generator_promote(version=new)
    assert generator_active() == new

    round_2 = round_start(params=RoundParameters(per_problem=1, candidates=4, max_new_tokens=8, wrong_fraction=0.5))
    assert round_2.parameters["generator"] == new.path
    round_2 = wait_for(finished(Round, round_2.pk, Round.Status.DONE, Round.Status.FAILED), 120, "round 2",
                       every=0.2, alive=[worker])
    assert round_2.status == Round.Status.DONE, round_2.error
    generate = Job.objects.get(round=round_2, kind=Job.Kind.GENERATE)
    assert generate.model_version == new and generate.parameters["spec"] == new.path
    assert Solution.objects.filter(generator=new.path, problem_id__in=round_2.parameters["problem_ids"]).exists()
