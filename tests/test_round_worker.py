"""A round through real `celery worker` processes on PostgreSQL and Redis, one of them killed mid-scoring.

Worker A (default + gpu queues) runs the round until the scoring job is part-way through a chunk,
then is SIGKILLed: its chunk's message is unacknowledged and its committed batches stay. Worker B
starts with a short Redis visibility timeout, gets the remaining chunks at once and the dead
worker's chunk after the timeout, and the round completes: every candidate scored exactly once,
the queue filled with K per problem, 80 % convincing wrong answers, in the round's serving order.
"""
from collections import Counter

import pytest
from django.db.models import Count

from labeling.models import Job, JobChunk, Round, RoundSelection, Solution, Task, VerifierScore
from labeling.services.rounds.stages import RoundParameters, round_start
from tests.celery_workers import Worker, queue_env, redis_url_or_skip, route_to_test_queues, wait_for
from tests.round_factories import make_candidates, register_selector
from tests.tiny_models import build_token_classifier

pytest.importorskip("torch")

PROBLEMS, CANDIDATES, K = 6, 20, 5
CHUNK = 30


@pytest.fixture
def workers(postgres, tmp_path):
    from annotate.celery import app

    redis_url = redis_url_or_skip()
    default, gpu, restore = route_to_test_queues(app, redis_url)
    started = []

    def start(name, visibility_timeout):
        worker = Worker(queues=[default, gpu], redis_url=redis_url, log=tmp_path / f"{name}.log",
                        extra_env={"CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout), "MEDIA_ROOT": str(tmp_path),
                                   "STEPWISE_SCORING_CHUNK": str(CHUNK), "STEPWISE_SCORING_BATCH": "1",
                                   **queue_env(default, gpu)})
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        restore()
        for worker in started:
            worker.stop()
            print(f"--- {worker.log.name} ---\n{worker.text()[-2500:]}")


@pytest.mark.django_db(transaction=True)
def test_a_round_survives_a_worker_killed_mid_scoring(workers, tmp_path):
    # Wide enough that one solution's forward pass takes a few milliseconds, so a chunk spans a second or so.
    selector = register_selector(build_token_classifier(tmp_path / "prm", hidden_size=192, intermediate_size=384,
                                                        num_hidden_layers=4, num_attention_heads=4,
                                                        num_key_value_heads=4, head_std=0.5))
    make_candidates(n_problems=PROBLEMS, per_problem=CANDIDATES, wrong_every=2)
    total = PROBLEMS * CANDIDATES

    a = workers("worker-a", visibility_timeout=3600)
    round_ = round_start(params=RoundParameters(per_problem=K, wrong_fraction=0.8))
    job = wait_for(lambda: Job.objects.filter(round=round_, kind=Job.Kind.SCORE).first(), 90, "the scoring job",
                   alive=[a])
    # Kill in the middle of a chunk: some batches of it committed, the rest not (and not about to finish).
    wait_for(lambda: 0 < Job.objects.get(pk=job.pk).done % CHUNK < CHUNK - 5, 90, "a chunk part-way done",
             every=0.01, alive=[a])
    a.kill()
    job.refresh_from_db()
    scored_at_kill = VerifierScore.objects.filter(model_version=selector).count()
    assert job.status == Job.Status.RUNNING and 0 < scored_at_kill < total, (job.status, scored_at_kill)
    interrupted = JobChunk.objects.get(job=job, status=JobChunk.Status.RUNNING)

    b = workers("worker-b", visibility_timeout=5)
    wait_for(lambda: Round.objects.get(pk=round_.pk).status in (Round.Status.DONE, Round.Status.FAILED), 150,
             "the round to finish on worker B", every=0.3, alive=[b])
    round_.refresh_from_db()
    assert round_.status == Round.Status.DONE, round_.error

    # Every solution scored exactly once; the interrupted chunk ran twice, the others once.
    per_solution = Counter(VerifierScore.objects.filter(model_version=selector).values_list("solution_id", flat=True))
    assert len(per_solution) == total == Solution.objects.count() and set(per_solution.values()) == {1}
    interrupted.refresh_from_db()
    assert interrupted.status == JobChunk.Status.DONE and interrupted.attempts == 2
    assert set(JobChunk.objects.filter(job=job).exclude(pk=interrupted.pk).values_list("attempts", flat=True)) == {1}
    assert "gpu_score_chunk" in b.text()

    # The queue: K per problem, 4 convincing wrong + 1 convincing any, served in the round's serving order.
    per_problem = (RoundSelection.objects.filter(round=round_).values("problem_id", "reason")
                   .annotate(n=Count("id")).values_list("problem_id", "reason", "n"))
    assert sorted(Counter(r for _, r, n in per_problem for _ in range(n)).items()) == [
        ("convincing_any", PROBLEMS * 1), ("convincing_wrong", PROBLEMS * 4)]
    tasks = list(Task.objects.filter(round=round_).order_by("-priority", "id").values_list("solution_id", flat=True))
    selection = list(RoundSelection.objects.filter(round=round_).order_by("rank").values_list("solution_id", flat=True))
    assert tasks == selection and len(tasks) == PROBLEMS * K
    wrong = {s.solution_id for s in RoundSelection.objects.filter(round=round_, reason="convincing_wrong")}
    assert not Solution.objects.filter(id__in=wrong, is_correct=True).exists()
