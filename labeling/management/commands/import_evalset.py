from django.core.management.base import CommandError

from labeling.models import EvaluationSet
from labeling.services.data.evaluation_sets import (evaluation_set_from_labels, evaluation_set_import_processbench,
                                                    evaluation_set_import_prm800k)

from ._base import ImportCommand


class Command(ImportCommand):
    help = ("Make a named evaluation set: import a ProcessBench file (JSON list or JSONL; one subset per file) or "
            "a PRM800K label file's test-split records, or (FILE '-' with --from-labels) the project's own labels. "
            "All-or-nothing; importing the same file twice adds nothing. `evaluate --set NAME` scores it.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the file to import ('-' with --from-labels)")
        parser.add_argument("--format", choices=("processbench", "prm800k"), default="processbench")
        parser.add_argument("--name", help="the set's name (default: processbench, prm800k-test)")
        parser.add_argument("--subset", help="subset name (default: the file's name, e.g. gsm8k.json -> gsm8k)")
        parser.add_argument("--role", choices=EvaluationSet.Role.values, default=EvaluationSet.Role.TEST,
                            help="test (held out, reported) or dev (thresholds are chosen on it)")
        parser.add_argument("--mark-test", action="store_true",
                            help="prm800k: put the file's problems with no split in split 'test' first")
        parser.add_argument("--from-labels", choices=("test", "train"),
                            help="the project's labeled trajectories: 'test' (the held-out set) or 'train' with "
                                 "--fraction (a dev set of that share of the labeled train problems)")
        parser.add_argument("--fraction", type=float, help="with --from-labels train: share of problems (0..1)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        if options["from_labels"] and options["file"] != "-":
            raise CommandError("--from-labels reads no file: pass '-' as FILE")
        return super().handle(*args, **options)

    def run_import(self, path, options):
        if options["from_labels"]:
            if not options["name"]:
                raise CommandError("--from-labels needs --name")
            result = evaluation_set_from_labels(name=options["name"], split=options["from_labels"],
                                                fraction=options["fraction"], seed=options["seed"],
                                                subset=options["subset"])
        elif options["format"] == "prm800k":
            if options["role"] != EvaluationSet.Role.TEST:
                raise CommandError("--format prm800k makes a test set of test-split problems: --role dev does not apply")
            result = evaluation_set_import_prm800k(path=path, name=options["name"] or "prm800k-test",
                                                   subset=options["subset"] or "prm800k",
                                                   mark_test=options["mark_test"])
        else:
            result = evaluation_set_import_processbench(path=path, name=options["name"] or "processbench",
                                                        subset=options["subset"], role=options["role"])
        s = result.evaluation_set
        left = "; ".join(f"{n} left out: {why}" for why, n in result.left_out.items() if n)
        self.stdout.write(f"{s.name} ({s.role} set, {s.source}), subset {result.subset}: {result.created} items added"
                          + (f", {result.skipped} already present" if result.skipped else "")
                          + (f"; {left}" if left else "") + f"; {s.items.count()} items in all")
        if result.overlap:
            self.stderr.write(f"warning: {result.overlap} items' problems are train-split problems of this project")
