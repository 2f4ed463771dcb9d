"""A selector is validated before it selects (issue 10, item 5).

Round 0 trains the implicit PRM on the graded candidates of some problems and validates it on the
others' (outcome AUROC with a 95% interval, stored on the version). One that does not beat chance is
not activated: the round says why and picks wrong answers at random, until an admin activates it by
a recorded click. One that does is activated automatically. While the active selector is such an
implicit PRM, each round trains a fresh one first.
"""
import pytest

from labeling.core.selection import select_random_wrong, wrong_slots
from labeling.errors import RegistryError
from labeling.models import Job, ModelVersion, Problem, Round, RoundSelection, Solution, VerifierScore
from labeling.services.rounds.registry import selector_activate, selector_active
from labeling.services.rounds.stages import RoundParameters, round_start
from labeling.services.rounds.validation import validation_figures, validation_save


# --- the fallback selection, pure -----------------------------------------------------------------

def _pool(n_problems=3, per_problem=8, wrong_every=2):
    return [{"solution_id": p * 100 + k, "problem_id": p, "score": k / per_problem, "is_correct": k % wrong_every != 0}
            for p in range(n_problems) for k in range(per_problem)]


def test_it_fills_the_wrong_slots_with_wrong_answers_at_random_and_the_rest_as_control():
    pool = _pool()
    picked = select_random_wrong(pool, per_problem=4, wrong_fraction=0.75, seed=1)
    grade = {c["solution_id"]: c["is_correct"] for c in pool}
    for p in range(3):
        mine = [s for s in picked if s.problem_id == p]
        assert len(mine) == 4
        assert [grade[s.solution_id] for s in mine if s.reason == "random_wrong"] == [False] * wrong_slots(4, 0.75)
        assert sum(s.reason == "control" for s in mine) == 1
    # not by score: over seeds, the wrong answers picked are not always the highest-scored ones
    top = {p: sorted((c for c in pool if c["problem_id"] == p and not c["is_correct"]),
                     key=lambda c: -c["score"])[:3] for p in range(3)}
    top_ids = {c["solution_id"] for cs in top.values() for c in cs}
    draws = [{s.solution_id for s in select_random_wrong(pool, per_problem=4, wrong_fraction=0.75, seed=seed)
              if s.reason == "random_wrong"} for seed in range(10)]
    assert any(d != top_ids for d in draws) and len({frozenset(d) for d in draws}) > 1


def test_it_is_seeded_and_ignores_the_input_order():
    pool = _pool()
    once = select_random_wrong(pool, per_problem=3, wrong_fraction=0.5, seed=7)
    again = select_random_wrong(list(reversed(pool)), per_problem=3, wrong_fraction=0.5, seed=7)
    assert once == again


def test_it_fills_missing_wrong_slots_with_control_picks_and_reports_qc():
    pool = [{"solution_id": i, "problem_id": 1, "score": 0.5, "is_correct": i != 0} for i in range(5)]
    picked = select_random_wrong(pool, per_problem=3, wrong_fraction=1.0, seed=0, qc_ids={4})
    assert [(s.solution_id, s.reason) for s in picked if s.reason != "control"] == [(0, "random_wrong"), (4, "qc")]
    assert sum(s.reason == "control" for s in picked) == 2 and 4 not in {s.solution_id for s in picked
                                                                         if s.reason == "control"}


def test_validation_figures_beat_chance_only_when_the_interval_is_above_one_half():
    separated = validation_figures(scores=[0.9] * 10 + [0.1] * 10, outcomes=[True] * 10 + [False] * 10,
                                   problem_ids=[1, 2])
    assert separated["outcome_auroc"]["auroc"] == 1.0 and separated["beats_chance"]
    tied = validation_figures(scores=[0.5] * 20, outcomes=[True, False] * 10, problem_ids=[1])
    assert tied["outcome_auroc"]["auroc"] == 0.5 and not tied["beats_chance"]
    one_class = validation_figures(scores=[0.9, 0.8], outcomes=[True, True], problem_ids=[1])
    assert one_class["outcome_auroc"] is None and not one_class["beats_chance"]


# --- rounds on the tiny model -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.tiny_models import build_causal_lm
    return build_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture
def start(committed, settings, tmp_path, tiny_lm):
    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_BOOTSTRAP_BASE = tiny_lm
    settings.STEPWISE_BOOTSTRAP_MAX_ITEMS = 40
    settings.STEPWISE_BOOTSTRAP_VALIDATION_FRACTION = 0.3
    return lambda **params: committed(round_start, params=RoundParameters(**params))


@pytest.fixture
def learnable(settings):
    """Hyper-parameters under which the tiny model learns the outcome below in a few epochs."""
    settings.STEPWISE_BOOTSTRAP_LR = 3e-2
    settings.STEPWISE_BOOTSTRAP_BETA = 1.0
    settings.STEPWISE_BOOTSTRAP_EPOCHS = 6
    settings.STEPWISE_BOOTSTRAP_TRAINABLE_LAYERS = 0  # every layer


@pytest.fixture
def chance(settings):
    """A learning rate far below the weights' float32 resolution: the trained model is its reference,
    every solution scores sigmoid(0), and the validation AUROC is exactly one half."""
    settings.STEPWISE_BOOTSTRAP_LR = 1e-12
    settings.STEPWISE_BOOTSTRAP_EPOCHS = 1


def make_outcome_problems(n_problems=10, per_problem=4):
    """Graded candidates whose outcome is written in them: a correct one says "good", a wrong one "bad"."""
    for p in range(n_problems):
        problem = Problem.objects.create(text=f"what is {p} + {p}?", answer=str(2 * p), source_id=f"v/{p}",
                                         split="train", subject=("Algebra", "Geometry")[p % 2], level=1 + p % 3)
        rows = []
        for k in range(per_problem):
            correct = k % 2 == 1
            answer = str(2 * p if correct else 2 * p + 1)
            steps = [f"try {k}: we check {p} and it is " + ("good good good" if correct else "bad bad bad"),
                     f"# Answer\n\n{answer}"]
            rows.append(Solution(problem=problem, steps=steps, steps_hash=Solution.hash_steps(steps),
                                 final_answer=answer, is_correct=correct, graded_mode="fixed", generator="test"))
        Solution.objects.bulk_create(rows)


def _trained(round_):
    return Job.objects.get(round=round_, kind=Job.Kind.TRAIN_SELECTOR).model_version


@pytest.mark.django_db
def test_it_validates_on_other_problems_and_does_not_activate_a_chance_level_selector(start, chance, client, alice):
    make_outcome_problems()
    round_ = start(per_problem=2, wrong_fraction=0.5)
    assert round_.status == Round.Status.DONE, round_.error
    version = _trained(round_)
    validation = version.metrics["validation"]
    job = Job.objects.get(round=round_, kind=Job.Kind.TRAIN_SELECTOR)
    trained_on = set(Solution.objects.filter(id__in=job.parameters["solution_ids"]).values_list("problem_id", flat=True))
    assert len(validation["problems"]) == 3 and not trained_on & set(validation["problems"])
    assert validation["n"] == 12 and validation["outcome_auroc"]["auroc"] == 0.5
    assert validation["first_error_f1"] is None  # no annotator labeled a step of these problems
    assert not validation["beats_chance"]
    # not the selector: the round records its trained version, says why, and picks wrong answers at random
    assert selector_active() is None and not version.is_active_selector
    assert round_.selector == version
    record = round_.stats["selector"]
    assert record["version"] == version.pk and record["activated"] is False and record["fallback"] == "random_wrong"
    assert record["reason"] == "round-0 selector did not beat chance on validation: AUROC 0.50 [0.50, 0.50]"
    reasons = set(RoundSelection.objects.filter(round=round_).values_list("reason", flat=True))
    assert reasons == {"random_wrong", "control"}
    assert not RoundSelection.objects.filter(round=round_, reason="random_wrong", is_correct=True).exists()
    assert VerifierScore.objects.filter(model_version=version).count() == Solution.objects.count()
    client.force_login(alice)
    page = client.get("/rounds/").content.decode()
    assert "does not beat chance" in page and "Make selector anyway" in page
    assert "not activated: wrong answers picked at random" in page

    # a plain "Make selector" is refused; the admin activates it anyway: the click is recorded with who and why
    response = client.post(f"/rounds/models/{version.pk}/make-selector/", follow=True)
    assert "does not beat chance; evaluate it first" in response.content.decode() and selector_active() is None
    response = client.post(f"/rounds/models/{version.pk}/make-selector/", {"force": "1"}, follow=True)
    assert response.redirect_chain == [("/rounds/", 302)]
    version.refresh_from_db()
    assert selector_active() == version and version.activated_by == alice
    assert version.activation_note == "forced by alice: validation AUROC 0.50 [0.50, 0.50] did not beat chance"
    assert "forced by alice" in response.content.decode()


@pytest.mark.django_db
def test_a_selector_that_beats_chance_is_activated_automatically(start, learnable):
    make_outcome_problems()
    round_ = start(per_problem=2, wrong_fraction=0.5)
    assert round_.status == Round.Status.DONE, round_.error
    version = _trained(round_)
    auroc = version.metrics["validation"]["outcome_auroc"]
    assert auroc["low"] > 0.5, auroc
    assert selector_active() == version and round_.selector == version
    assert version.activated_by is None and version.activation_note.startswith("validated automatically: AUROC ")
    assert round_.stats["selector"]["activated"] is True and "fallback" not in round_.stats["selector"]
    assert set(RoundSelection.objects.filter(round=round_).values_list("reason", flat=True)) <= {
        "convincing_wrong", "convincing_any"}


@pytest.mark.django_db
def test_each_round_retrains_the_active_implicit_prm_and_keeps_it_when_the_new_one_fails(start, chance, tiny_lm):
    make_outcome_problems()
    active = ModelVersion.objects.create(name="implicit-active", kind="prm", path=tiny_lm, config={
        "architecture": "implicit", "reference": tiny_lm})
    validation_save(version=active, figures=validation_figures(scores=[0.9, 0.1], outcomes=[True, False],
                                                               problem_ids=[]))
    selector_activate(version=active)
    round_ = start(per_problem=2)
    assert round_.status == Round.Status.DONE, round_.error
    fresh = _trained(round_)
    assert Job.objects.get(round=round_, kind=Job.Kind.TRAIN_SELECTOR).parameters["purpose"] == "refresh"
    assert not fresh.metrics["validation"]["beats_chance"]
    assert selector_active() == active and round_.selector == active
    assert round_.stats["selector"]["kept"] == active.pk and "fallback" not in round_.stats["selector"]
    assert "did not beat chance" in round_.stats["selector"]["reason"]


@pytest.mark.django_db
def test_no_retraining_when_turned_off_or_when_a_prm_trained_on_labels_beats_it(settings):
    from labeling.services.rounds.bootstrap import implicit_refresh_due

    def figures(auroc):  # n scores, a share `auroc` of the (correct, wrong) pairs ordered right
        right = round(auroc * 10)
        return validation_figures(scores=[1.0] * right + [0.0] * (10 - right) + [0.5] * 1,
                                  outcomes=[True] * 10 + [False], problem_ids=[])

    active = ModelVersion.objects.create(name="implicit-active", kind="prm", path="p", config={
        "architecture": "implicit", "reference": "r"}, metrics={"validation": figures(0.7)})
    selector_activate(version=active)
    assert implicit_refresh_due(active)
    worse = ModelVersion.objects.create(name="step-head-worse", kind="prm", path="p",
                                        config={"architecture": "step_head"}, metrics={"validation": figures(0.6)})
    assert implicit_refresh_due(active)  # trained on labels, but not better
    ModelVersion.objects.create(name="step-head", kind="prm", path="p", config={"architecture": "step_head"},
                                metrics={"validation": figures(0.9)})
    assert not implicit_refresh_due(active)
    ModelVersion.objects.filter(name="step-head").delete()
    settings.STEPWISE_RETRAIN_IMPLICIT_EACH_ROUND = False
    assert not implicit_refresh_due(active)
    settings.STEPWISE_RETRAIN_IMPLICIT_EACH_ROUND = True
    selector_activate(version=worse)
    assert not implicit_refresh_due(worse)  # a step-head selector is never replaced by an implicit PRM


@pytest.mark.django_db
def test_activation_notes_say_who_and_why(carol):
    version = ModelVersion.objects.create(name="v", kind="prm", path="p", config={"architecture": "implicit",
                                                                                  "reference": "r"})
    validation_save(version=version, figures=validation_figures(scores=[0.9] * 5 + [0.1] * 5,
                                                                outcomes=[True] * 5 + [False] * 5, problem_ids=[1]))
    assert selector_activate(version=version).activation_note == "validated automatically: AUROC 1.00 [1.00, 1.00]"
    noted = selector_activate(version=version, user=carol)
    assert noted.activated_by == carol and noted.activation_note == "validated: AUROC 1.00 [1.00, 1.00]; activated by carol"
    plain = ModelVersion.objects.create(name="w", kind="prm", path="p", config={"architecture": "step_head"})
    with pytest.raises(RegistryError, match="w is not made the selector: it was never evaluated"):
        selector_activate(version=plain, user=carol)
    assert selector_active() == version
    assert selector_activate(version=plain, user=carol, force=True).activation_note == "forced by carol: not evaluated"
    evaluated = ModelVersion.objects.create(name="e", kind="prm", path="p", config={"architecture": "step_head"},
                                            metrics={"evaluation": {"processbench_f1": 0.25}})
    assert selector_activate(version=evaluated, user=carol).activation_note == (
        "activated by carol: held-out ProcessBench F1 0.250")


@pytest.mark.django_db
def test_a_person_cannot_make_a_chance_level_version_the_selector_unless_forced(alice):
    failed = ModelVersion.objects.create(name="f", kind="prm", path="p", config={"architecture": "step_head"},
                                         metrics={"evaluation": {"processbench_f1": 0.9}})
    validation_save(version=failed, figures=validation_figures(scores=[0.5] * 4, outcomes=[True, False] * 2,
                                                               problem_ids=[1]))
    with pytest.raises(RegistryError, match=r"its validation \(AUROC 0.50 \[0.50, 0.50\]\) does not beat chance"):
        selector_activate(version=failed, user=alice)  # a good evaluation does not outweigh a failed validation
    assert selector_active() is None
    forced = selector_activate(version=failed, user=alice, force=True)
    assert forced.is_active_selector and forced.activated_by == alice
    assert forced.activation_note == "forced by alice: validation AUROC 0.50 [0.50, 0.50] did not beat chance"
