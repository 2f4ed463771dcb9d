from django.core.management.base import BaseCommand, CommandError

from labeling.errors import EvaluationError, InvalidInput, RegistryError
from labeling.models import Job, ModelVersion
from labeling.services.jobs.dispatch import run_here
from labeling.services.training.generator_evaluation import PROMOTE, generator_evaluation_start
from labeling.services.training.generator_promotion import generator_promote
from labeling.services.training.generator_training import GeneratorTrainParameters, generator_train_start

OPTIONS = ("base", "pairs_generator", "pairs_from_round", "steps", "beta", "alpha", "learning_rate", "batch_size",
           "grad_accum",
           "max_length", "pairs_per_problem", "seed", "majority_n", "eval_problems", "eval_max_new_tokens", "promote")


class Command(BaseCommand):
    help = ("One iteration of iterative RPO: pairs of the generator's own correct and wrong candidates (test split "
            "left out) train a new generator version with DPO + NLL (TRL), which is then evaluated on held-out "
            "problems (accuracy greedy and by majority of N) and promoted as --promote says. With --model, "
            "evaluate (and promote) an existing generator version instead of training one.")

    def add_arguments(self, parser):
        parser.add_argument("--base",
                            help="generator spec to train (default: the promoted one, else STEPWISE_GENERATOR)")
        parser.add_argument("--pairs-from-round", type=int, help="only the problems of this round")
        parser.add_argument("--pairs-generator", help="pair another generator's candidates (off-policy DPO + NLL; "
                                                      "default: the base's own, which is iterative RPO)")
        parser.add_argument("--steps", type=int, help="optimizer steps (default 20)")
        parser.add_argument("--beta", type=float, help="DPO temperature (default 0.1)")
        parser.add_argument("--alpha", type=float, help="weight of the NLL term on the chosen solution (default 1)")
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--grad-accum", type=int)
        parser.add_argument("--max-length", type=int, help="tokens per prompt + solution")
        parser.add_argument("--pairs-per-problem", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--no-evaluate", action="store_true", help="train only")
        parser.add_argument("--majority-n", type=int, help="samples per held-out problem for the majority vote")
        parser.add_argument("--eval-problems", type=int, help="evaluate on the first N held-out problems only")
        parser.add_argument("--eval-max-new-tokens", type=int)
        parser.add_argument("--promote", choices=PROMOTE, help="after the evaluation (default manual)")
        parser.add_argument("--model", help="evaluate this generator version (name or id) instead of training")
        parser.add_argument("--sync", action="store_true", help="run in this process, even where workers exist")

    def handle(self, *args, **opts):
        values = {name: opts[name] for name in OPTIONS if opts[name] is not None}
        try:
            if opts["model"]:
                return self._evaluate_only(opts, values)
            params = GeneratorTrainParameters(**values, evaluate=not opts["no_evaluate"])
            if opts["sync"]:
                with run_here():
                    job = generator_train_start(params=params)
            else:
                job = generator_train_start(params=params)
        except InvalidInput as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc}" if exc.field else str(exc)) from None
        except (EvaluationError, RegistryError) as exc:
            raise CommandError(str(exc)) from None
        job.refresh_from_db()
        if job.status == Job.Status.FAILED:
            raise CommandError(f"train_generator job {job.pk} failed: {job.error}")
        if job.status != Job.Status.DONE:
            self.stdout.write(f"train_generator job {job.pk} queued (pairs export "
                              f"{job.parameters['pairs_export_id']}); "
                              "a GPU worker runs it, then its evaluation")
            return
        self._report_training(job)
        evaluation = job.result.get("evaluation_job")
        if isinstance(evaluation, int):
            self._report_evaluation(Job.objects.get(pk=evaluation))
        elif evaluation:
            self.stdout.write(f"no evaluation: {evaluation}")

    def _evaluate_only(self, opts, values):
        version = _generator(opts["model"])
        if values.get("promote") == "always" and opts["no_evaluate"]:
            version = generator_promote(version=version)
            self.stdout.write(f"{version.name} is now the promoted generator")
            return
        kwargs = {"n": values.get("majority_n", 4), "problems": values.get("eval_problems"),
                  "max_new_tokens": values.get("eval_max_new_tokens", 512), "seed": values.get("seed", 0),
                  "promote": values.get("promote", "manual")}
        if opts["sync"]:
            with run_here():
                job = generator_evaluation_start(version=version, **kwargs)
        else:
            job = generator_evaluation_start(version=version, **kwargs)
        self._report_evaluation(job)

    def _report_training(self, job):
        result, train = job.result, job.result["train"]
        pairs = result["pairs"]
        self.stdout.write(
            f"train_generator job {job.pk} done: {job.model_version.name} at {job.model_version.path}, "
            f"{train['steps']} steps on {pairs['pairs']} pairs of "
            f"{(pairs.get('generator') or {}).get('spec')}'s candidates "
            f"(export {pairs['export_id']}, template "
            f"{pairs['prompt_template']['id']}), {train['seconds']:.1f} s, {train['tokens_per_second']:.0f} tokens/s "
            f"on {train['device']}")
        self.stdout.write("loss curve (DPO + alpha x NLL), one value per step:")
        curve = result["loss_curve"]
        low, high = min(curve), max(curve)
        for step, loss in enumerate(curve, 1):
            bar = "#" * (1 + round(39 * (loss - low) / (high - low))) if high > low else "#"
            self.stdout.write(f"  {step * result['loss_curve_every']:>5}  {loss:9.4f}  {bar}")

    def _report_evaluation(self, job):
        job.refresh_from_db()
        if job.status == Job.Status.FAILED:
            raise CommandError(f"evaluation job {job.pk} failed: {job.error}")
        if job.status != Job.Status.DONE:
            self.stdout.write(f"evaluation job {job.pk} is {job.status}; a GPU worker runs it")
            return
        e = job.result["evaluation"]
        self.stdout.write(f"{job.model_version.name} on {e['problems']} held-out problems: accuracy "
                          f"{e['greedy_accuracy']:.3f} greedy, {e['majority_accuracy']:.3f} by majority of {e['n']} "
                          f"(graded in {e['grading']} mode)")
        if "promoted" in job.result:
            self.stdout.write("promoted: rounds now sample from it" if job.result["promoted"]
                              else "not promoted: it does not beat the current generator")


def _generator(ref):
    qs = ModelVersion.objects.filter(kind=ModelVersion.Kind.GENERATOR)
    version = qs.filter(name=ref).first() or (qs.filter(pk=int(ref)).first() if ref.isdigit() else None)
    if version is None:
        raise CommandError(f"--model: no generator version named or numbered {ref!r}")
    return version
