"""A round's admin page shows its stats, selector record and parameters as labeled fields, not JSON."""
import html as entities
import re

import pytest

from labeling.models import Round

STATS = {"problems": 12, "candidates": 96, "generated": 0, "scored": 90, "unscorable": 6, "already_worked_on": 3,
         "selected": {"convincing_wrong": 30, "convincing_any": 8, "control": 5, "qc": 2},
         "tasks_created": 41, "tasks_moved": 2, "wrong_among_candidates": 51,
         "seconds": {"score": 73.25, "select": 0.5, "total": 80.0},
         "selector": {"version": 4, "name": "round0-implicit", "purpose": "bootstrap", "activated": False,
                      "fallback": "random_wrong", "reason": "round-0 selector did not beat chance on validation",
                      "validated": {"outcome_auroc": {"auroc": 0.55, "low": 0.41, "high": 0.69, "se": 0.07,
                                                      "n_positive": 20, "n_negative": 28},
                                    "beats_chance": False, "first_error_f1": None, "first_error": None,
                                    "problems": [1, 2, 3], "n": 48, "unscorable": 1}},
         "fallback": {"reason": "did not beat chance", "selection": "random_wrong"},
         "something_new": 7}
PARAMETERS = {"problems": None, "per_problem": 4, "wrong_fraction": 0.75, "candidates": 8, "generator": "hf:tiny",
              "overlap": 1, "qc_rate": None, "temperature": 0.7, "max_new_tokens": 512, "seed": 3,
              "step_delimiter": "\n\n", "label_target": None, "grading": "fixed", "control_fraction": 0.1,
              "relabel": False, "problem_ids": list(range(100, 130)), "requested_by": "alice"}


def rows(html, css_class):
    table = re.search(rf'<table class="{css_class}">(.*?)</table>', html, flags=re.S).group(1)
    def plain(cell):
        return entities.unescape(" ".join(re.sub(r"<[^>]+>", " ", cell).split()))
    return {key: (plain(label), plain(value))
            for key, label, value in re.findall(r'<tr data-key="([^"]+)"><th scope="row">(.*?)</th><td>(.*?)</td>',
                                                table, flags=re.S)}


@pytest.mark.django_db
def test_it_shows_stats_selector_and_parameters_as_labeled_rows(client, alice):
    round_ = Round.objects.create(number=3, stats=STATS, parameters=PARAMETERS)
    client.force_login(alice)
    html = client.get(f"/admin/labeling/round/{round_.pk}/change/").content.decode()
    stats = rows(html, "round-stats")
    assert stats["candidates"] == ("candidate solutions", "96")
    assert stats["unscorable"] == ("unscorable (steps past the maximum length)", "6")
    assert stats["selected.convincing_wrong"] == ("selected: convincing wrong", "30")
    assert stats["selected.control"] == ("selected: control (random)", "5")
    assert stats["seconds.score"] == ("seconds: score", "73.2 s")
    assert stats["tasks_moved"][1] == "2" and stats["wrong_among_candidates"][1] == "51"
    assert stats["fallback"][1] == "random wrong (fallback): did not beat chance"
    assert stats["something_new"] == ("something new", "7")  # unknown keys still show
    selector = rows(html, "round-selector")
    assert selector["name"][1] == "round0-implicit (id 4)" and selector["activated"][1] == "no"
    assert selector["validation.auroc"][1] == "0.550 [0.410, 0.690] (20 correct, 28 wrong)"
    assert selector["validation.beats_chance"][1] == "no"
    params = rows(html, "round-parameters")
    assert params["problems"] == ("problems asked for", "all eligible")
    assert params["wrong_fraction"] == ("share convincing wrong", "75%")
    assert params["control_fraction"][1] == "10%"
    assert params["label_target"][1] == "never automatically"
    assert params["step_delimiter"][1] == repr("\n\n")
    assert params["problem_ids"][1].startswith("30: 100, 101,") and params["problem_ids"][1].endswith("…")
    assert '{"' not in html and "&quot;convincing_wrong&quot;" not in html  # no raw JSON anywhere


@pytest.mark.django_db
def test_a_round_under_way_says_so(client, alice):
    round_ = Round.objects.create(number=1, status=Round.Status.SCORING, parameters=PARAMETERS)
    client.force_login(alice)
    html = client.get(f"/admin/labeling/round/{round_.pk}/change/").content.decode()
    assert "none yet: the round is under way" in html and 'id="round-progress"' in html
