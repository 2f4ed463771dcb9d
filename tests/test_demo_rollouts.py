"""`manage.py demo_rollouts`: a few demo solutions, labeled ones first, handed to `rollout_labels --sync` (the
command itself is replaced here: the real SmolLM2 run is `make demo-rollouts`)."""
import io

import pytest
from django.core.management import CommandError, call_command

from labeling.management.commands import demo_rollouts
from labeling.models import Annotator, Solution
from labeling.services.data.demo import demo_load, demo_rollout_solutions
from tests.label_factories import annotation_make


def test_it_rolls_out_a_few_demo_solutions_labeled_ones_first(db, monkeypatch, fast_passwords):
    with pytest.raises(CommandError, match="load_demo"):
        call_command("demo_rollouts")
    demo_load()
    labeled = Solution.objects.order_by("-id").first()
    annotation_make(annotator=Annotator.objects.create(), solution=labeled, ratings=[1])
    ids = demo_rollout_solutions(3)
    assert ids[0] == labeled.id and len(ids) == 3
    assert len({Solution.objects.get(pk=i).problem_id for i in ids}) == 3  # one per problem

    seen = {}

    def fake(name, *args, **kwargs):
        listing = args[args.index("--solutions") + 1]
        seen.update(name=name, args=args, ids=[int(x) for x in open(listing).read().split()])

    monkeypatch.setattr(demo_rollouts, "call_command", fake)
    out = io.StringIO()
    call_command("demo_rollouts", "--n", "2", stdout=out)
    assert seen["name"] == "rollout_labels" and "--sync" in seen["args"] and seen["ids"] == ids
    assert f"/admin/labeling/solution/{ids[0]}/change/" in out.getvalue()
