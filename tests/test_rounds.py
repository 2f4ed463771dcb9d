"""Rounds end to end in the embedded mode (tasks in-process) with a tiny step-head selector."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Job, JobChunk, Round, RoundSelection, Task, VerifierScore
from labeling.services.rounds.stages import RoundParameters, round_start
from tests.round_factories import make_candidates, register_selector
from tests.tiny_models import build_token_classifier

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_prm_dir(tmp_path_factory):
    return build_token_classifier(tmp_path_factory.mktemp("tiny_step_prm"))


@pytest.fixture
def start(committed):
    """round_start, then what it sends on commit (the test's transaction never commits), as a commit would."""
    return lambda **params: committed(round_start, params=RoundParameters(**params))


@pytest.fixture
def small_chunks(settings):
    settings.STEPWISE_SCORING_CHUNK = 5
    settings.STEPWISE_SCORING_BATCH = 2


@pytest.mark.django_db
def test_it_scores_every_candidate_once_and_queues_k_per_problem(tiny_prm_dir, small_chunks, start):
    make_candidates(n_problems=3, per_problem=6)
    selector = register_selector(tiny_prm_dir)
    round_ = start(per_problem=5, wrong_fraction=0.8)
    round_.refresh_from_db()
    assert round_.status == Round.Status.DONE, round_.error
    assert round_.selector == selector
    assert VerifierScore.objects.filter(model_version=selector).count() == 18
    job = Job.objects.get(round=round_, kind=Job.Kind.SCORE)
    assert job.status == Job.Status.DONE and job.done == job.total == 18
    assert set(JobChunk.objects.filter(job=job).values_list("status", flat=True)) == {"done"}
    # 5 per problem: 4 convincing wrong (only 3 wrong exist each: 3 wrong + 2 any), score order within reasons
    picked = list(RoundSelection.objects.filter(round=round_).order_by("rank"))
    assert len(picked) == 15
    for problem_id in {s.problem_id for s in picked}:
        mine = [s for s in picked if s.problem_id == problem_id]
        wrong = [s for s in mine if s.reason == "convincing_wrong"]
        assert len(wrong) == 3 and all(s.is_correct is False for s in wrong)
        assert len([s for s in mine if s.reason == "convincing_any"]) == 2
    # Served in rank order: within a problem and reason the highest score first, the mix kept in every prefix.
    for key in {(s.problem_id, s.reason) for s in picked}:
        scores = [s.score for s in picked if (s.problem_id, s.reason) == key]
        assert scores == sorted(scores, reverse=True)
    for n in range(1, len(picked) + 1):
        assert abs(sum(s.reason == "convincing_wrong" for s in picked[:n]) - n * 9 / 15) <= 1
    tasks = Task.objects.filter(round=round_).order_by("-priority", "id")
    assert tasks.count() == 15
    assert [t.solution_id for t in tasks] == [s.solution_id for s in picked]
    assert round_.stats["selected"] == {"convincing_wrong": 9, "convincing_any": 6}


@pytest.mark.django_db
def test_a_second_round_reuses_scores_and_skips_selected_solutions(tiny_prm_dir, start):
    make_candidates(n_problems=2, per_problem=6)
    selector = register_selector(tiny_prm_dir)
    first = start(per_problem=2)
    second = start(per_problem=2)
    second.refresh_from_db()
    assert second.status == Round.Status.DONE
    assert VerifierScore.objects.filter(model_version=selector).count() == 12  # nothing scored twice
    assert not Job.objects.filter(round=second, kind=Job.Kind.SCORE).exists()
    a = set(RoundSelection.objects.filter(round=first).values_list("solution_id", flat=True))
    b = set(RoundSelection.objects.filter(round=second).values_list("solution_id", flat=True))
    assert len(a) == len(b) == 4 and not a & b


@pytest.mark.django_db
def test_an_untouched_queued_task_joins_the_round_instead_of_doubling(tiny_prm_dir, start):
    from labeling.services.annotation.queue import tasks_enqueue

    make_candidates(n_problems=1, per_problem=4)
    register_selector(tiny_prm_dir)
    assert tasks_enqueue() == 4
    round_ = start(per_problem=2)
    round_.refresh_from_db()
    assert round_.stats["tasks_moved"] == 2 and round_.stats["tasks_created"] == 0
    assert Task.objects.count() == 4
    assert Task.objects.filter(round=round_).count() == 2


@pytest.mark.django_db
def test_quality_control_solutions_are_reserved(tiny_prm_dir, start):
    problems = make_candidates(n_problems=1, per_problem=4)
    gold = problems[0].solutions.order_by("id").first()
    Task.objects.create(solution=gold, kind=Task.Kind.QC, gold_ratings=[1])
    register_selector(tiny_prm_dir)
    round_ = start(per_problem=4)
    reasons = dict(RoundSelection.objects.filter(round=round_).values_list("solution_id", "reason"))
    assert reasons[gold.id] == "qc"
    assert len(reasons) == 4
    assert not Task.objects.filter(round=round_, solution=gold).exists()


@pytest.mark.django_db
def test_a_selector_that_cannot_load_fails_the_round_and_queues_nothing(tmp_path, start):
    make_candidates(n_problems=2, per_problem=3)
    register_selector(tmp_path / "no-such-model")
    round_ = start(per_problem=2)
    round_.refresh_from_db()
    assert round_.status == Round.Status.FAILED
    assert "job" in round_.error
    job = Job.objects.get(round=round_)
    assert job.status == Job.Status.FAILED and job.error
    assert not Task.objects.exists() and not RoundSelection.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_runs_a_round_and_rejects_bad_parameters(tiny_prm_dir, capsys):
    make_candidates(n_problems=2, per_problem=3)
    register_selector(tiny_prm_dir)
    with pytest.raises(CommandError, match="--wrong-fraction"):
        call_command("start_round", "--per-problem", "2", "--wrong-fraction", "1.5")
    with pytest.raises(CommandError, match="--candidates"):
        call_command("start_round", "--per-problem", "4", "--candidates", "2")
    assert not Round.objects.exists()
    call_command("start_round", "--problems", "1", "--per-problem", "2", "--sync")
    out = capsys.readouterr().out
    assert "round 1 done" in out
    round_ = Round.objects.get()
    assert len(round_.parameters["problem_ids"]) == 1
    assert RoundSelection.objects.filter(round=round_).count() == 2


@pytest.mark.django_db
def test_resume_finishes_a_round_whose_messages_were_lost(tiny_prm_dir, settings, django_capture_on_commit_callbacks):
    from labeling.services.jobs.resume import jobs_resume

    make_candidates(n_problems=2, per_problem=3)
    register_selector(tiny_prm_dir)
    round_ = round_start(params=RoundParameters(per_problem=2))  # its messages are never sent: "lost"
    assert Round.objects.get(pk=round_.pk).status == Round.Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_resume() == {"chunks": 0, "jobs": 0, "rounds": 1}
    round_.refresh_from_db()
    assert round_.status == Round.Status.DONE
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs_resume() == {"chunks": 0, "jobs": 0, "rounds": 0}


@pytest.mark.django_db
def test_the_selection_api_lists_the_selection_for_admins_only(tiny_prm_dir, start, client, alice, bob):
    make_candidates(n_problems=2, per_problem=3)
    register_selector(tiny_prm_dir)
    round_ = start(per_problem=2)
    url = f"/api/rounds/{round_.number}/selection/"
    assert client.get(url).status_code in (401, 403)
    client.force_login(bob)
    assert client.get(url).status_code == 403
    client.force_login(alice)
    body = client.get(url).json()
    assert body["count"] == 4 and body["status"] == "done" and body["selector"] == "tiny-step-prm"
    rows = body["results"]
    assert set(rows[0]) == {"solution_id", "problem_id", "score", "is_correct", "reason"}
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    picked = {(s.solution_id, s.reason) for s in RoundSelection.objects.filter(round=round_)}
    assert {(r["solution_id"], r["reason"]) for r in rows} == picked
    progress = client.get(f"/api/rounds/{round_.number}/").json()
    assert progress["status"] == "done" and progress["job"]["kind"] == "score" and progress["job"]["progress"] == 1.0
    assert client.get("/api/rounds/99/selection/").status_code == 404


@pytest.mark.django_db
def test_switching_the_selector_is_atomic_and_only_for_prms(tiny_prm_dir):
    from labeling.models import ModelVersion
    from labeling.services.rounds.registry import generator_version, selector_activate, selector_active
    from labeling.errors import RegistryError

    a = register_selector(tiny_prm_dir, name="a")
    b = register_selector(tiny_prm_dir, name="b", activate=False)
    assert selector_active() == a
    selector_activate(version=b)
    assert selector_active() == b and ModelVersion.objects.filter(is_active_selector=True).count() == 1
    with pytest.raises(RegistryError, match="not a PRM"):
        selector_activate(version=generator_version(spec="some/generator"))
    assert selector_active() == b


@pytest.mark.django_db(transaction=True)
def test_concurrent_selector_switches_never_leave_two_or_none_active(postgres, tmp_path):
    import threading

    from django.db import connection

    from labeling.models import ModelVersion
    from labeling.services.rounds.registry import selector_activate

    versions = [register_selector(tmp_path, name=f"v{i}", activate=(i == 0)) for i in range(8)]
    errors, barrier = [], threading.Barrier(len(versions))

    def switch(version):
        try:
            barrier.wait()
            for _ in range(5):
                selector_activate(version=version)
        except Exception as exc:  # any IntegrityError or deadlock would land here
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=switch, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert ModelVersion.objects.filter(is_active_selector=True).count() == 1
