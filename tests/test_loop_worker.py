"""The whole active-learning loop on tiny models through a real `celery worker` (PostgreSQL + Redis):

round 1 selected by selector 0 -> annotators label it through the queue -> snapshot -> retrain on the gpu
queue -> a new version with its loss curve and evaluation metrics -> promoted -> round 2 is selected by it.
"""
import uuid

import pytest

from labeling.models import Annotator, Job, ModelVersion, Problem, Round, RoundSelection, Solution, VerifierScore
from labeling.services.training.evaluation import evaluation_start
from labeling.services.training.promotion import version_promote
from labeling.services.annotation.queue import queue_next
from labeling.services.rounds.registry import selector_active
from labeling.services.training.retraining import RetrainParameters, retrain_start
from labeling.services.rounds.stages import RoundParameters, round_start
from labeling.services.annotation.submission import annotation_submit
from tests.celery_workers import Worker, queue_env, redis_url_or_skip, route_to_test_queues, wait_for
from tests.label_factories import annotation_make
from tests.round_factories import make_candidates, register_selector
from tests.tiny_models import build_token_classifier

pytest.importorskip("torch")


@pytest.fixture
def worker(postgres, tmp_path):
    from annotate.celery import app

    redis_url = redis_url_or_skip()
    default, gpu, restore = route_to_test_queues(app, redis_url)
    w = Worker(queues=[default, gpu], redis_url=redis_url, log=tmp_path / "worker.log",
               extra_env={"MEDIA_ROOT": str(tmp_path / "media"), "STEPWISE_MODEL_DIR": str(tmp_path / "models"),
                          "STEPWISE_AUTO_PROMOTE": "manual", **queue_env(default, gpu)})
    try:
        yield w
    finally:
        restore()
        w.stop()
        print(w.text()[-3000:])


def held_out_set():
    """Test-split problems the loop never trains on: labeled trajectories and graded candidates."""
    annotator = Annotator.objects.create()
    for p in range(2):
        problem = Problem.objects.create(text=f"held out {p}: what is {p} + 3?", answer=str(p + 3), split="test")
        for k, (good, ratings) in enumerate([(True, [1, 1]), (False, [1, -1]), (False, [-1]), (True, [1, 0])]):
            answer = str(p + 3 if good else p + 9)
            steps = [f"we add {p} and 3 step {k}", f"so the answer is {answer}\n\n# Answer\n\n{answer}"]
            solution = Solution.objects.create(problem=problem, steps=steps, final_answer=answer, is_correct=good)
            annotation_make(annotator=annotator, solution=solution, ratings=ratings)


def label_the_queue(user):
    """The annotator labels every round task it is served: a correct solution all +1, a wrong one -1 at its end."""
    annotator = user.annotator
    annotator.screening_passed = annotator.cleared_by_admin = True
    annotator.save()
    labeled = 0
    while (assignment := queue_next(annotator=annotator)) is not None:
        solution = assignment.task.solution
        n = len(solution.steps)
        if solution.is_correct:
            ratings, finish = [{"step": i, "rating": 1} for i in range(n)], "solution"
        else:
            ratings, finish = [{"step": i, "rating": 1 if i < n - 1 else -1} for i in range(n)], "found_error"
        annotation_submit(assignment=assignment, annotator=annotator, client_id=uuid.uuid4(), ratings=ratings,
                          finish_reason=finish, total_time_ms=1000)
        labeled += 1
    return labeled


def finished(model, pk, done, failed):
    return lambda: model.objects.filter(pk=pk, status__in=[done, failed]).first()


@pytest.mark.django_db(transaction=True)
def test_the_loop_turns_on_a_real_worker(worker, tmp_path, bob):
    base = build_token_classifier(tmp_path / "base")
    selector_0 = register_selector(base, name="selector-0")
    make_candidates(n_problems=4, per_problem=6)
    held_out_set()

    round_1 = round_start(params=RoundParameters(per_problem=3, wrong_fraction=0.8))
    round_1 = wait_for(finished(Round, round_1.pk, Round.Status.DONE, Round.Status.FAILED), 120, "round 1",
                       every=0.2, alive=[worker])
    assert round_1.status == Round.Status.DONE and round_1.selector == selector_0, round_1.error
    assert label_the_queue(bob) == 12

    job = retrain_start(params=RetrainParameters(base=base, learning_rate=1e-3, epochs=2, batch_size=4,
                                                 max_length=256))
    job = wait_for(finished(Job, job.pk, Job.Status.DONE, Job.Status.FAILED), 180, "the retrain", every=0.3,
                   alive=[worker])
    assert job.status == Job.Status.DONE, job.error
    new = job.model_version
    assert new.kind == ModelVersion.Kind.PRM and new != selector_0 and selector_active() == selector_0
    assert len(new.metrics["loss_curve"]) == job.total > 0
    assert new.metrics["snapshot"]["sha256"] and "12" in str(new.metrics["snapshot"])

    evaluation = evaluation_start(version=new)
    evaluation = wait_for(finished(Job, evaluation.pk, Job.Status.DONE, Job.Status.FAILED), 120, "the evaluation",
                          every=0.3, alive=[worker])
    assert evaluation.status == Job.Status.DONE, evaluation.error
    new.refresh_from_db()
    metrics = new.metrics["evaluation"]
    assert {"step_auroc", "processbench_f1", "best_of_n"} <= set(metrics)

    version_promote(version=new)
    assert selector_active() == new

    round_2 = round_start(params=RoundParameters(per_problem=2, wrong_fraction=0.5))
    round_2 = wait_for(finished(Round, round_2.pk, Round.Status.DONE, Round.Status.FAILED), 120, "round 2",
                       every=0.2, alive=[worker])
    assert round_2.status == Round.Status.DONE and round_2.selector == new, round_2.error
    candidates = Solution.objects.filter(problem_id__in=round_2.parameters["problem_ids"])
    assert VerifierScore.objects.filter(model_version=new, solution__in=candidates).count() == candidates.count()
    picked = RoundSelection.objects.filter(round=round_2)
    assert picked.count() == 8 and not picked.filter(
        solution_id__in=RoundSelection.objects.filter(round=round_1).values("solution_id")).exists()
    scores = dict(VerifierScore.objects.filter(model_version=new).values_list("solution_id", "score"))
    assert all(scores[s.solution_id] == s.score for s in picked)  # ranked by the new selector's scores
