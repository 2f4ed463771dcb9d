from labeling.services.data.problem_import import problems_import

from ._base import ImportCommand


class Command(ImportCommand):
    help = "Import MATH-style problems (JSONL). All-or-nothing; importing twice adds nothing."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--split", default="", choices=["", "train", "test"], help="train/test split to record")
        parser.add_argument("--change-split", action="store_true",
                            help="move problems already recorded in another split to --split (refused otherwise)")

    def run_import(self, path, options):
        r = problems_import(path=path, split=options["split"], change_split=options["change_split"])
        self.stdout.write(f"{path}: {r.lines} problems read: {r.created} new, {r.updated} completed, "
                          f"{r.unchanged} already present" + (f", {r.split_changed} moved to split {options['split']}"
                                                     if r.split_changed else ""))
