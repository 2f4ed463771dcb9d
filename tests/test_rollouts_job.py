"""The rollouts job with a scripted prover: the command, chunks, exactly-once estimates, redelivery, stop."""
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from labeling.core.rollout_values import first_error_from_estimates
from labeling.errors import JobCancelled
from labeling.models import Job, Problem, RolloutEstimate, Round, RoundSelection, Solution
from labeling.services.jobs.rows import chunk_claim, job_fail
from labeling.services.rollouts.labeling_job import rollouts_chunk, rollouts_start
from tests.rollout_scripts import ScriptedSampler, first_error_curve
from tests.round_factories import make_candidates

pytestmark = pytest.mark.django_db


def truth(solution):
    """The scripted prover's first error: step 2 of a wrong solution (its last if shorter), none otherwise."""
    return None if solution.is_correct else min(2, len(solution.steps))


@pytest.fixture
def scripted(monkeypatch, settings):
    settings.STEPWISE_ROLLOUT_CHUNK = 4
    settings.STEPWISE_ROLLOUT_BATCH = 3
    curves = {}

    def probability(key, k):
        if key not in curves:
            s = Solution.objects.get(pk=key)
            curves[key] = first_error_curve(truth(s), p0=0.9, floor=0.85, last=len(s.steps))
        return curves[key](k)

    sampler = ScriptedSampler(probability)
    from workers.ml import rollouts
    monkeypatch.setattr(rollouts.RolloutSampler, "load", classmethod(lambda cls, spec: sampler))
    return sampler


def ids_file(tmp_path, ids):
    path = tmp_path / "ids.txt"
    path.write_text("# solutions to roll out\n" + "\n".join(map(str, ids)) + "\n")
    return str(path)


@pytest.mark.django_db(transaction=True)
def test_it_estimates_every_prefix_once_by_monte_carlo(scripted, tmp_path, capsys):
    make_candidates(n_problems=3, per_problem=3)
    ids = list(Solution.objects.values_list("id", flat=True))
    if True:  # --sync: the chunks run here once the job's transaction commits
        call_command("rollout_labels", "--solutions", ids_file(tmp_path, ids), "--n", "8", "--sync",
                     "--prover", "scripted", "--seed", "3")
    job = Job.objects.get(kind=Job.Kind.ROLLOUTS)
    assert job.status == Job.Status.DONE and job.done == job.total == len(ids) and job.chunks.count() == 3
    assert "prefix estimates" in capsys.readouterr().out
    per_step = Counter(RolloutEstimate.objects.values_list("solution_id", "step_index"))
    assert set(per_step.values()) == {1}
    assert len(per_step) == sum(len(s.steps) + 1 for s in Solution.objects.all())
    for s in Solution.objects.all():
        rows = list(s.rollout_estimates.all())
        assert {(r.prover, r.method, r.n, r.seed, r.job_id) for r in rows} == {("scripted", "mc", 8, 3, job.pk)}
        assert all(r.ci_low <= r.q_soft <= r.ci_high and r.q_hard == (r.n_correct > 0) for r in rows)
        assert first_error_from_estimates(rows) == truth(s)


def test_binary_search_rolls_out_fewer_prefixes_and_agrees(scripted, committed):
    make_candidates(n_problems=2, per_problem=4)
    ids = list(Solution.objects.values_list("id", flat=True))
    committed(rollouts_start, solution_ids=ids, method="mc", prover="scripted")
    committed(rollouts_start, solution_ids=ids, method="binary", prover="scripted")
    for s in Solution.objects.all():
        mc = s.rollout_estimates.filter(method="mc")
        binary = s.rollout_estimates.filter(method="binary")
        assert first_error_from_estimates(mc) == first_error_from_estimates(binary) == truth(s)
        assert binary.count() <= mc.count()
    assert RolloutEstimate.objects.filter(method="binary").count() < RolloutEstimate.objects.filter(method="mc").count()


def test_a_redelivered_chunk_writes_only_what_is_missing(scripted):
    make_candidates(n_problems=1, per_problem=4)
    job = rollouts_start(solution_ids=list(Solution.objects.values_list("id", flat=True)), prover="scripted",
                         chunk_size=10)
    chunk = chunk_claim(chunk_id=job.chunks.get().pk)

    class Dies:  # the worker dies after its first committed batch
        def __init__(self):
            self.calls = 0

        def rollouts(self, requests, n, **kw):
            self.calls += 1
            if self.calls > 1:
                raise SystemExit("killed")
            return scripted.rollouts(requests, n, **kw)

    with pytest.raises(SystemExit):
        rollouts_chunk(chunk=chunk, sampler=Dies())
    first = RolloutEstimate.objects.count()
    assert first == 3  # one batch of STEPWISE_ROLLOUT_BATCH prefixes
    # the redelivery (its claim is the job rows' business: see test_job_rows.py) picks up where it died
    written = rollouts_chunk(chunk=chunk, sampler=scripted)
    total = sum(len(s.steps) + 1 for s in Solution.objects.all())
    assert written == total - first and RolloutEstimate.objects.count() == total
    assert rollouts_chunk(chunk=chunk, sampler=scripted) == 0  # a third delivery: nothing left
    job.refresh_from_db()
    assert job.done == 4


def test_a_stopped_job_ends_its_chunk(scripted):
    make_candidates(n_problems=1, per_problem=2)
    job = rollouts_start(solution_ids=list(Solution.objects.values_list("id", flat=True)), prover="scripted")
    chunk = chunk_claim(chunk_id=job.chunks.get().pk)
    job_fail(job_id=job.pk, error="stopped by an admin")
    with pytest.raises(JobCancelled):
        rollouts_chunk(chunk=chunk, sampler=scripted)
    assert RolloutEstimate.objects.count() == 0  # the batch and its progress are one transaction
    assert chunk_claim(chunk_id=chunk.pk) is None


def test_which_solutions(scripted, tmp_path, committed):
    make_candidates(n_problems=2, per_problem=2)
    no_answer = Problem.objects.create(text="unanswerable", answer=None)
    lost = Solution.objects.create(problem=no_answer, steps=["a", "b"])
    round_ = Round.objects.create(number=3, parameters={"generator": "round-prover"})
    chosen = Solution.objects.exclude(pk=lost.pk).first()
    RoundSelection.objects.create(round=round_, solution=chosen, problem=chosen.problem, reason="control", rank=0, score=0.5)
    with pytest.raises(CommandError, match="line 3.*no solution with id 999"):
        call_command("rollout_labels", "--solutions", ids_file(tmp_path, [chosen.pk, 999]))
    (tmp_path / "bad.txt").write_text("12\nx\n")
    with pytest.raises(CommandError, match="bad.txt, line 2"):
        call_command("rollout_labels", "--solutions", str(tmp_path / "bad.txt"))
    call_command("rollout_labels", "--round", "3", "--method", "binary")
    job = Job.objects.get()
    assert job.parameters["prover"] == "round-prover" and job.chunks.get().ids == [chosen.pk]
    job = committed(rollouts_start, solution_ids=[lost.pk, chosen.pk], prover="scripted")
    assert job.total == 1 and job.parameters["skipped_no_answer"] == 1 and job.status == Job.Status.DONE
    assert not RolloutEstimate.objects.filter(solution=lost).exists()


def test_a_rounds_rollouts_cover_the_qc_solutions_served_beside_it():
    """With hints on, a QC task without estimates would be the one task without a hint: QC solutions are included."""
    from labeling.models import Task
    from labeling.services.rollouts.labeling_job import solutions_of_round
    from tests.queue_factories import task_make

    make_candidates(n_problems=1, per_problem=3)
    round_ = Round.objects.create(number=5, rollout_hints=True)
    picked = Solution.objects.order_by("id").first()
    RoundSelection.objects.create(round=round_, solution=picked, problem=picked.problem, score=0.9,
                                  is_correct=False, reason="convincing_wrong", rank=0)
    qc = task_make(kind=Task.Kind.QC)
    assert solutions_of_round(round=round_) == sorted([picked.id, qc.solution_id])
