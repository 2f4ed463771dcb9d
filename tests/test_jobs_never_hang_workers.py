"""Jobs that never hang, through real `celery worker` processes on PostgreSQL and Redis.

Worker A takes a job and is held inside it: the test locks the annotation table, which the export (and
the retrain's snapshot) reads, so A sits in the job, running, its heartbeat beaten every second. Then:
- A is SIGKILLed holding an export, or a retrain: worker B (a visibility timeout of 2 s; a row silent
  for 5 s counts as lost and B's reaper looks every second: tests/celery_workers.py) picks the job up
  and it ends done, not running;
- A stays alive while B, with a visibility timeout shorter than the job, gets the message again: B
  drops the copy, and A's retrain finishes done (the live job is never failed, its folder never removed).
"""
import contextlib
import time

import psycopg
import pytest

from labeling.models import Annotator, Export, Job, ModelVersion, Problem, Solution
from labeling.services.data.exports import export_create
from labeling.services.training.retraining import RetrainParameters, retrain_start
from tests.celery_workers import Worker, queue_env, redis_url_or_skip, route_to_test_queues, wait_for
from tests.label_factories import annotation_make
from tests.tiny_models import build_token_classifier

pytest.importorskip("torch")

OVER = [Job.Status.DONE, Job.Status.FAILED]


@pytest.fixture
def workers(postgres, tmp_path):
    from annotate.celery import app

    redis_url = redis_url_or_skip()
    default, gpu, restore = route_to_test_queues(app, redis_url)
    started = []

    def start(name, visibility_timeout=3600):
        worker = Worker(queues=[default, gpu], redis_url=redis_url, log=tmp_path / f"{name}.log", extra_env={
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout), "MEDIA_ROOT": str(tmp_path / "media"),
            "STEPWISE_MODEL_DIR": str(tmp_path / "models"), "STEPWISE_AUTO_PROMOTE": "manual",
            "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **queue_env(default, gpu)})
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        restore()
        for worker in started:
            if worker.alive():
                worker.kill()  # no warm shutdown to wait for: the test's queues die with it
            print(f"--- {worker.log.name} ---\n{worker.text()[-2500:]}")


@contextlib.contextmanager
def annotations_locked(connection):
    """Whoever reads the annotation table waits until the block ends (another connection holds the lock)."""
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                         dbname=db["NAME"]) as lock:
        lock.execute("LOCK TABLE labeling_annotation IN ACCESS EXCLUSIVE MODE")
        yield
        lock.rollback()


def labels():
    annotator = Annotator.objects.create()
    problem = Problem.objects.create(text="What is 1+1?", answer="2", split="train")
    for steps, ratings in [(["One plus one.", "It is 2.", "# Answer\n\n2"], [1, 1, 1]),
                           (["One plus one is 3.", "# Answer\n\n3"], [-1]),
                           (["Add them.", "Get 11.", "# Answer\n\n11"], [1, -1])]:
        annotation_make(annotator=annotator, solution=Solution.objects.create(problem=problem, steps=steps),
                        ratings=ratings)


def a_retrain(tmp_path):
    base = build_token_classifier(tmp_path / "base", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, num_key_value_heads=2)
    labels()
    return retrain_start(params=RetrainParameters(base=str(base), learning_rate=1e-3, epochs=1, batch_size=2,
                                                  max_length=64, promote="manual"))


def running(model, pk):
    return lambda: model.objects.filter(pk=pk, status=Job.Status.RUNNING).first()


@pytest.mark.django_db(transaction=True)
def test_an_export_whose_worker_is_killed_ends_done(workers, postgres, tmp_path):
    labels()
    export = export_create(fmt="prm800k", filters={})  # sent on commit, before any worker is up
    with annotations_locked(postgres):
        a = workers("worker-a")
        wait_for(running(Export, export.pk), 60, "worker A to hold the export", alive=[a])
        a.kill()
    b = workers("worker-b", visibility_timeout=2)
    export = wait_for(lambda: Export.objects.filter(pk=export.pk, status__in=OVER).first(), 60,
                      "the export to end on worker B", every=0.2, alive=[b])
    assert export.status == Export.Status.DONE and export.attempts == 2, export.error
    assert export.record_count == 3 and (tmp_path / "media" / "exports" / export.file).exists()


@pytest.mark.django_db(transaction=True)
def test_a_retrain_whose_worker_is_killed_ends_done_and_starts_clean(workers, postgres, tmp_path):
    job = a_retrain(tmp_path)
    with annotations_locked(postgres):
        a = workers("worker-a")
        wait_for(running(Export, job.parameters["snapshot_export_id"]), 60, "worker A to write the snapshot",
                 alive=[a])
        left = tmp_path / "models" / f".prm-job{job.pk}.dead.tmp"  # what a dying trainer leaves
        left.mkdir(parents=True)
        a.kill()
    b = workers("worker-b", visibility_timeout=2)
    job = wait_for(lambda: Job.objects.filter(pk=job.pk, status__in=OVER).first(), 120,
                   "the retrain to end on worker B", every=0.3, alive=[b])
    assert job.status == Job.Status.DONE and job.attempts == 2, job.error
    assert not left.exists() and ModelVersion.objects.get(jobs=job).name == f"prm-job{job.pk}"
    assert Export.objects.get(pk=job.parameters["snapshot_export_id"]).status == Export.Status.DONE


@pytest.mark.django_db(transaction=True)
def test_a_copy_delivered_while_the_worker_lives_is_dropped_and_the_retrain_finishes(workers, postgres, tmp_path):
    job = a_retrain(tmp_path)
    with annotations_locked(postgres):
        a = workers("worker-a")
        wait_for(running(Job, job.pk), 60, "worker A to hold the retrain", alive=[a])
        # A holds it longer than B's visibility timeout: B's broker hands B the message again. Kombu restores
        # unacknowledged messages when a worker starts, then only every ~100 s: B must start once the message
        # is already older than its 1 s timeout, or it would wait for the next restore.
        time.sleep(2.5)
        b = workers("worker-b", visibility_timeout=1)
        wait_for(lambda: "dropped: a live worker holds it" in b.text(), 60, "worker B to drop the copy",
                 every=0.2, alive=[a, b])
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
    job = wait_for(lambda: Job.objects.filter(pk=job.pk, status__in=OVER).first(), 120,
                   "the retrain to end on worker A", every=0.3, alive=[a, b])
    assert job.status == Job.Status.DONE and job.attempts == 1 and not job.error
    assert (tmp_path / "models" / f"prm-job{job.pk}").is_dir()
