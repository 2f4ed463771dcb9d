from django.core.management.base import BaseCommand, CommandError

from labeling.errors import InvalidInput
from labeling.models import Job
from labeling.services.jobs.dispatch import run_here
from labeling.services.training.orm import OrmParameters, orm_train_start

OPTIONS = ("base", "learning_rate", "epochs", "batch_size", "max_length", "seed")


class Command(BaseCommand):
    help = ("Train the outcome reward model (ORM) baseline on the final-answer grades of the candidate solutions of "
            "non-test problems, and register it (kind orm). Compare it with a PRM: evaluate --model PRM --orm NAME.")

    def add_arguments(self, parser):
        parser.add_argument("--base", help="model spec to start from (default: STEPWISE_RETRAIN_BASE)")
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--max-length", type=int, help="tokens per solution (a longer one is left out)")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--sync", action="store_true", help="train in this process, even where workers exist")

    def handle(self, *args, **opts):
        params = OrmParameters(**{name: opts[name] for name in OPTIONS if opts[name] is not None})
        try:
            if opts["sync"]:
                with run_here():
                    job = orm_train_start(params=params)
            else:
                job = orm_train_start(params=params)
        except InvalidInput as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc}" if exc.field else str(exc)) from None
        job.refresh_from_db()
        if job.status == Job.Status.FAILED:
            raise CommandError(f"ORM job {job.pk} failed: {job.error}")
        if job.status != Job.Status.DONE:
            self.stdout.write(f"ORM job {job.pk} queued; a GPU worker runs it (see the admin's job list)")
            return
        train = job.result["train"]
        self.stdout.write(f"ORM job {job.pk} done: {job.model_version.name} at {job.model_version.path}, final loss "
                          f"{job.result['final_loss']:.4f} after {train['steps']} steps on {train['items']} solutions "
                          f"({train['correct']} correct; {train['tokens_per_second']:.0f} tokens/s on {train['device']})")
