from labeling.services.data.solution_import import solutions_import

from ._base import ImportCommand


class Command(ImportCommand):
    help = "Import generated solutions (JSONL), grading each final answer. All-or-nothing; idempotent."

    def run_import(self, path, options):
        r = solutions_import(path=path)
        self.stdout.write(f"{path}: {r.lines} solutions read: {r.created} new ({r.correct} correct, "
                          f"{r.created - r.correct - r.ungraded} wrong, {r.ungraded} ungraded), "
                          f"{r.skipped} already present")
