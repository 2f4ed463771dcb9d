"""A rollouts job through real `celery worker` processes on PostgreSQL and Redis, one killed mid-chunk.

Worker A takes the job's chunks and is SIGKILLed while a chunk is part-way done: some of its batches of
estimates are committed, the rest not, and its message is unacknowledged. Worker B (a short Redis
visibility timeout and short heartbeats, so the dead worker's chunk is seen as lost within seconds) gets
the rest and the dead worker's chunk again, and the job completes: every (solution, step) estimated
exactly once.
"""
from collections import Counter

import pytest

from labeling.models import Job, JobChunk, RolloutEstimate, Solution
from labeling.services.rollouts.labeling_job import rollouts_start
from tests.celery_workers import Worker, queue_env, redis_url_or_skip, route_to_test_queues, wait_for
from tests.round_factories import make_candidates
from tests.tiny_models import build_causal_lm

pytest.importorskip("torch")

CHUNK, BATCH = 4, 2
REDIS_DB = 7  # this test's own Redis database: its queues never meet another test's


@pytest.fixture
def workers(postgres, tmp_path):
    from annotate.celery import app

    redis_url = redis_url_or_skip().rsplit("/", 1)[0] + f"/{REDIS_DB}"
    default, gpu, restore = route_to_test_queues(app, redis_url)
    started = []

    def start(name, visibility_timeout):
        worker = Worker(queues=[default, gpu], redis_url=redis_url, log=tmp_path / f"{name}.log",
                        extra_env={"CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout), "MEDIA_ROOT": str(tmp_path),
                                   "STEPWISE_ROLLOUT_CHUNK": str(CHUNK), "STEPWISE_ROLLOUT_BATCH": str(BATCH),
                                   "STEPWISE_HEARTBEAT_SECONDS": "1", "STEPWISE_JOB_STALE_SECONDS": "3",
                                   "STEPWISE_REAP_SECONDS": "1", "OMP_NUM_THREADS": "1",
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


def part_done(chunks, prefixes):
    """The running chunk, once some but far from all of its estimates are committed."""
    for chunk in JobChunk.objects.filter(pk__in=chunks, status=JobChunk.Status.RUNNING):
        made = RolloutEstimate.objects.filter(solution_id__in=chunk.ids).count()
        if 0 < made < sum(prefixes[i] for i in chunk.ids) - 2 * BATCH:
            return chunk
    return None


@pytest.mark.django_db(transaction=True)
def test_every_step_is_estimated_once_when_a_worker_is_killed_mid_chunk(workers, tmp_path, settings):
    settings.STEPWISE_ROLLOUT_CHUNK, settings.STEPWISE_ROLLOUT_BATCH = CHUNK, BATCH
    # Wide enough that a batch of continuations takes a fraction of a second, so a chunk spans seconds.
    prover = build_causal_lm(tmp_path / "prover", hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                             num_attention_heads=4, num_key_value_heads=4)
    make_candidates(n_problems=2, per_problem=4, wrong_every=2)
    prefixes = {s.id: len(s.steps) + 1 for s in Solution.objects.all()}

    a = workers("worker-a", visibility_timeout=3600)
    job = rollouts_start(solution_ids=sorted(prefixes), n=4, method="mc", prover=prover, seed=1,
                         max_new_tokens=24)
    chunks = list(job.chunks.values_list("id", flat=True))
    assert len(chunks) == 2
    interrupted = wait_for(lambda: part_done(chunks, prefixes), 120, "a chunk part-way done", every=0.02, alive=[a])
    a.kill()
    at_kill = RolloutEstimate.objects.count()
    assert 0 < at_kill < sum(prefixes.values())

    b = workers("worker-b", visibility_timeout=5)
    wait_for(lambda: Job.objects.get(pk=job.pk).status in (Job.Status.DONE, Job.Status.FAILED), 150,
             "the job to finish on worker B", every=0.3, alive=[b])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert job.done == job.total == len(prefixes)

    per_step = Counter(RolloutEstimate.objects.values_list("solution_id", "step_index"))
    assert set(per_step.values()) == {1}
    assert sorted(per_step) == sorted((s, k) for s, n in prefixes.items() for k in range(n))
    interrupted.refresh_from_db()
    assert interrupted.status == JobChunk.Status.DONE and interrupted.attempts >= 2
    assert "gpu_rollouts" in b.text()
    assert set(RolloutEstimate.objects.values_list("prover", "method", "n", "seed")) == {(prover, "mc", 4, 1)}
