from django.core.management.base import BaseCommand, CommandError

from labeling.models import EvaluationSet
from labeling.services.data.evaluation_sets import evaluation_set_export


class Command(BaseCommand):
    help = "Write a named evaluation set (or one subset of it) as a ProcessBench JSON list."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the evaluation set")
        parser.add_argument("--out", required=True, help="the file to write")
        parser.add_argument("--subset", help="only this subset (e.g. gsm8k)")

    def handle(self, *args, **opts):
        evaluation_set = EvaluationSet.objects.filter(name=opts["name"]).first()
        if evaluation_set is None:
            known = ", ".join(EvaluationSet.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"no evaluation set named {opts['name']!r} (known: {known})")
        if opts["subset"] and not evaluation_set.items.filter(subset=opts["subset"]).exists():
            raise CommandError(f"{evaluation_set.name} has no subset {opts['subset']!r}")
        count = evaluation_set_export(evaluation_set=evaluation_set, out=opts["out"], subset=opts["subset"])
        self.stdout.write(f"wrote {count} records of {evaluation_set.name} to {opts['out']}")
