from labeling.services.data.solution_grading import solutions_grade
from labeling.services.data.prm800k_import import prm800k_import

from ._base import ImportCommand


class Command(ImportCommand):
    help = "Import a PRM800K label file (phase 1 or phase 2). All-or-nothing; importing twice adds nothing."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--no-grade", action="store_true",
                            help="leave new solutions ungraded (grade later with grade_solutions)")

    def run_import(self, path, options):
        result = prm800k_import(path=path)
        self.stdout.write(f"{path}: {result.lines} lines, {result.created} annotations imported "
                          f"({result.steps} steps), {result.skipped} already present; "
                          f"{result.problems_created} new problems, {result.solutions_created} new solutions")
        if result.solution_ids and not options["no_grade"]:
            graded = solutions_grade(solution_ids=result.solution_ids)
            self.stdout.write(f"graded {graded.graded} solutions: {graded.correct} correct, "
                              f"{graded.graded - graded.correct} not")
