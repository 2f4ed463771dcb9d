from django.core.management.base import BaseCommand

from labeling.services.data.solution_grading import solutions_grade


class Command(BaseCommand):
    help = "Grade the final answers of ungraded solutions (or all with --regrade)."

    def add_arguments(self, parser):
        parser.add_argument("--mode", default="prm800k", choices=["prm800k", "fixed"])
        parser.add_argument("--regrade", action="store_true")

    def handle(self, *args, **opts):
        r = solutions_grade(mode=opts["mode"], regrade=opts["regrade"])
        self.stdout.write(f"graded {r.graded} solutions: {r.correct} correct, {r.graded - r.correct} not")
