import json

from django.core.management.base import BaseCommand, CommandError

from labeling.management.commands._benchmark import evaluation_job, run_benchmark
from labeling.models import ModelVersion
from labeling.services.training.evaluation import evaluation_start


class Command(BaseCommand):
    help = ("Evaluate a PRM version on the held-out set (problems in split 'test'): step AUROC, ProcessBench "
            "first-error F1, best-of-N. The metrics are stored in the version's metrics['evaluation'].")

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="the PRM version's name or id")
        parser.add_argument("--json", action="store_true", help="print the metrics as JSON (only that) on stdout")
        parser.add_argument("--sync", action="store_true",
                            help="run in this process, even where workers are configured")
        parser.add_argument("--promote-if-better", action="store_true",
                            help="make it the selector if it beats the active one on the held-out set")
        parser.add_argument("--set", action="append", default=[], dest="sets", metavar="NAME",
                            help="evaluate on this named evaluation set instead (import_evalset; repeatable): "
                                 "ProcessBench's accuracy on erroneous and correct samples and F1, per subset")
        parser.add_argument("--calibrate-on", metavar="DEV_SET",
                            help="first choose the version's first-error threshold on this dev set, and keep it")
        parser.add_argument("--orm", metavar="NAME",
                            help="compare best-of-N with this ORM version: PRM, ORM, majority, PRM-weighted majority")

    def handle(self, *args, **opts):
        version = _version(opts["model"])
        if opts["sets"] or opts["calibrate_on"] or opts["orm"]:
            return run_benchmark(self, version, opts)
        job = evaluation_job(self, version, opts, lambda: evaluation_start(
            version=version, promote_if_better=opts["promote_if_better"]))
        if job is None:
            return
        metrics = job.result["evaluation"]
        if opts["json"]:
            self.stdout.write(json.dumps(metrics, sort_keys=True))
            return
        self._report(version, metrics, job.result.get("promoted"))

    def _report(self, version, m, promoted):
        def fmt(value):
            return "n/a" if value is None else f"{value:.4f}"

        counts, best, bon = m["counts"], m["processbench"]["best"], m["best_of_n_max"]
        self.stdout.write(f"{version.name}: {counts['annotations']} labeled trajectories ({counts['steps']} steps), "
                          f"{counts['solutions']} candidates, {counts['problems']} test problems")
        self.stdout.write(f"step AUROC {fmt(m['step_auroc'])}; ProcessBench F1 {fmt(m['processbench_f1'])} at 0.5, "
                          f"{fmt(best['f1']) if best else 'n/a'} at the best threshold"
                          f"{' ' + format(best['threshold'], '.4g') if best else ''} (fitted on this set: an oracle)")
        calibrated = m["processbench"].get("calibrated")
        if calibrated:
            self.stdout.write(f"ProcessBench F1 {fmt(calibrated['f1'])} at the version's threshold "
                              f"{calibrated['threshold']:.4g} (from {calibrated['source']})")
        if bon:
            self.stdout.write(f"best-of-{bon['n']}: PRM {fmt(bon['prm'])}, last step {fmt(bon['last'])}, "
                              f"majority {fmt(bon['majority'])}, oracle {fmt(bon['oracle'])}")
        if promoted is not None:
            self.stdout.write("promoted to selector" if promoted
                              else "not promoted: it does not beat the active selector on the held-out set")


def _version(ref):
    qs = ModelVersion.objects.all()
    version = qs.filter(name=ref).first() or (qs.filter(pk=int(ref)).first() if ref.isdigit() else None)
    if version is None:
        raise CommandError(f"--model: no model version named or numbered {ref!r}")
    if version.kind != ModelVersion.Kind.PRM:
        raise CommandError(f"--model: {version.name} is a {version.kind}, not a PRM")
    return version
