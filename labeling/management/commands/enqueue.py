from django.core.management.base import BaseCommand, CommandError

from labeling.services.annotation.queue import tasks_enqueue
from labeling.errors import InvalidInput


class Command(BaseCommand):
    help = ("Queue every imported solution that has no task yet, outside any round, highest latest "
            "verifier score first (0 without one).")

    def add_arguments(self, parser):
        parser.add_argument("--overlap", type=int, default=1, help="annotators per task (default 1)")

    def handle(self, *args, **opts):
        try:
            created = tasks_enqueue(overlap=opts["overlap"])
        except InvalidInput as exc:
            raise CommandError(f"--{exc.field}: {exc.message}") from None
        self.stdout.write(f"queued {created} solutions (overlap {opts['overlap']})")
