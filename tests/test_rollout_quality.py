"""The dashboard's first errors against rollouts: per annotator, the share of their first errors the rollouts
estimate too (rows made directly: annotations and rollout estimates)."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labeling.models import Annotator, Problem, Solution
from labeling.queries.quality import rollout_agreement
from tests.label_factories import annotation_make
from tests.rollout_factories import estimates_make


@pytest.fixture
def labeled(db, bob):
    problem = Problem.objects.create(text="What is 2+2?", answer="4")
    s = [Solution.objects.create(problem=problem, steps=[f"s{i} a", f"s{i} b", f"s{i} c"]) for i in range(4)]
    estimates_make(s[0], {0: (4, 4), 1: (4, 4), 2: (0, 4), 3: (0, 4)})  # first error: step index 1
    estimates_make(s[1], {0: (4, 4), 3: (3, 4)}, method="binary")       # no error
    estimates_make(s[2], {0: (0, 4), 1: (0, 4), 2: (0, 4), 3: (0, 4)})  # prover cannot solve: undecided
    carol = Annotator.objects.create()
    annotation_make(annotator=bob.annotator, solution=s[0], ratings=[1, -1])      # agrees
    annotation_make(annotator=bob.annotator, solution=s[1], ratings=[1, 1, -1])   # disagrees
    annotation_make(annotator=bob.annotator, solution=s[2], ratings=[1, -1])      # undecided (rollouts)
    annotation_make(annotator=bob.annotator, solution=s[3], ratings=[1, -1])      # no rollouts: not counted
    annotation_make(annotator=carol, solution=s[1], ratings=[1, 0, 1])            # agrees: no error
    annotation_make(annotator=carol, solution=s[0], ratings=[1], finish_reason="give_up")  # undecided (human)
    return carol


def test_each_annotators_first_errors_against_the_rollouts(labeled):
    since = timezone.now() - dt.timedelta(days=1)
    with CaptureQueriesContext(connection) as queries:
        rows = {r.annotator: r for r in rollout_agreement(since=since)}
    assert len(queries) <= 8
    bob, carol = rows["bob"], rows[str(labeled)]
    assert (bob.compared, bob.agreed, bob.undecided, bob.share) == (2, 1, 1, 0.5)
    assert (carol.compared, carol.agreed, carol.undecided, carol.share) == (1, 1, 1, 1.0)
    assert bob.interval[0] < 0.5 < bob.interval[1]
    assert rollout_agreement(since=timezone.now() + dt.timedelta(days=1)) == []
    assert rollout_agreement(since=since, round_number=7) == []


def test_the_dashboard_shows_them(client, alice, labeled):
    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()
    table = html.split('id="rollout-agreement"')[1].split("</table>")[0]
    assert "bob" in table and "0.500" in table and "1.000" in table
