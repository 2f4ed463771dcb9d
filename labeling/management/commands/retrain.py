from django.core.management.base import BaseCommand, CommandError

from labeling.formats.training import LABEL_SOURCES
from labeling.models import Job
from labeling.services.jobs.dispatch import run_here
from labeling.errors import InvalidInput
from labeling.services.training.retraining import NEUTRAL, PROMOTE, RetrainParameters, retrain_start

OPTIONS = ("base", "learning_rate", "epochs", "batch_size", "grad_accum", "max_length", "seed", "neutral", "promote",
           "source")


class Command(BaseCommand):
    help = ("Retrain the step-head PRM on the collected labels (QC, screening and test-split labels left out): "
            "a snapshot export, then a training job that registers a new PRM version. The active selector "
            "is not changed (--promote if_better hands the new version to an evaluation that may promote it).")

    def add_arguments(self, parser):
        parser.add_argument("--base", help="model spec to start from (default: STEPWISE_RETRAIN_BASE)")
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
        parser.add_argument("--max-length", type=int, help="tokens per labeled solution (later steps are cut)")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--neutral", choices=NEUTRAL, help="what a 0 rating trains as (default: its own class)")
        parser.add_argument("--rounds", help="only these rounds' labels, e.g. 1,2 (default: all labels)")
        parser.add_argument("--promote", choices=PROMOTE, help="default: STEPWISE_AUTO_PROMOTE")
        parser.add_argument("--source", choices=LABEL_SOURCES,
                            help="human labels (default), rollout labels (can bootstrap a PRM before any human "
                                 "label), consensus (human labels the rollouts confirm), or both")
        parser.add_argument("--soft", action="store_true", help="rollout rows train on soft targets (share correct)")
        parser.add_argument("--sync", action="store_true", help="train in this process, even where workers exist")

    def handle(self, *args, **opts):
        values = {name: opts[name] for name in OPTIONS if opts[name] is not None}
        if opts["rounds"]:
            try:
                values["rounds"] = tuple(int(n) for n in opts["rounds"].split(",") if n.strip())
            except ValueError:
                raise CommandError(f"--rounds: round numbers separated by commas, got {opts['rounds']!r}") from None
        params = RetrainParameters(**values, soft=opts["soft"])
        try:
            if opts["sync"]:
                with run_here():
                    job = retrain_start(params=params)
            else:
                job = retrain_start(params=params)
        except InvalidInput as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc}" if exc.field else str(exc)) from None
        if getattr(job, "already_running", False):
            self.stdout.write(f"retrain job {job.pk} is already {job.status}: one retrain at a time, none started")
            return
        job.refresh_from_db()
        if job.status == Job.Status.FAILED:
            raise CommandError(f"retrain job {job.pk} failed: {job.error}")
        if job.status != Job.Status.DONE:
            self.stdout.write(f"retrain job {job.pk} queued (snapshot export {job.parameters['snapshot_export_id']}); "
                              "follow it in the admin's job list")
            return
        result = job.result
        snapshot, train = result["snapshot"], result["train"]
        self.stdout.write(
            f"retrain job {job.pk} done: {job.model_version.name} at {job.model_version.path}, final loss "
            f"{result['final_loss']:.4f} after {train['steps']} steps ({train['seconds']:.1f} s, "
            f"{train['tokens_per_second']:.0f} tokens/s on {train['device']}); snapshot export {snapshot['export_id']} "
            f"({snapshot['records']} labeled solutions, sha256 {snapshot['sha256'][:12]}); "
            f"promotion: {result['promotion']}")
