"""`evaluate --set / --calibrate-on / --orm`: a PRM on named evaluation sets (labeling.services.training.benchmarks),
and the job running both it and the held-out evaluation share."""
import json

from django.conf import settings
from django.core.management.base import CommandError

from labeling.errors import EvaluationError
from labeling.formats.processbench import SUBSETS
from labeling.models import Job
from labeling.services.jobs.dispatch import run_here
from labeling.services.training.benchmarks import benchmark_start


def evaluation_job(command, version, opts, start):
    """Run `start()` (an evaluation service that makes a job) here when --sync or embedded, else send it; the
    finished job, or None (said on stderr) while a GPU worker still has it. A failed job is a CommandError."""
    try:
        if opts["sync"] or settings.EMBEDDED_TASKS:
            with run_here():
                job = start()
        else:
            job = start()
    except EvaluationError as exc:
        raise CommandError(str(exc)) from None
    job.refresh_from_db()
    if job.status == Job.Status.FAILED:
        raise CommandError(f"evaluation of {version.name} failed (job {job.pk}): {job.error}")
    if job.status != Job.Status.DONE:
        command.stderr.write(f"evaluation job {job.pk} of {version.name} is {job.status}; a GPU worker runs it")
        return None
    return job


def run_benchmark(command, version, opts):
    if opts["promote_if_better"]:
        raise CommandError("--promote-if-better compares held-out evaluations; it does not apply to --set, "
                           "--calibrate-on or --orm")
    job = evaluation_job(command, version, opts, lambda: benchmark_start(
        version=version, sets=opts["sets"], calibrate_on=opts["calibrate_on"], orm=opts["orm"]))
    if job is None:
        return
    if opts["json"]:
        command.stdout.write(json.dumps(job.result, sort_keys=True))
        return
    for line in report_lines(version.name, job.result):
        command.stdout.write(line)


def _subset_order(name):
    """ProcessBench's column order, then any other subset by name (a JSON column may have reordered the keys)."""
    return (SUBSETS.index(name), "") if name in SUBSETS else (len(SUBSETS), name)


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"


def report_lines(name, result):
    """The job's result as ProcessBench's table reads: one line per subset, then the mean F1."""
    lines = []
    calibration = result.get("calibration")
    if calibration:
        lines.append(f"{name}: threshold {calibration['threshold']:.4g} chosen on dev set {calibration['dev_set']} "
                     f"({calibration['items']} items): dev F1 {_fmt(calibration['dev_f1'])}, "
                     f"{_fmt(calibration['dev_f1_at_0_5'])} at 0.5")
    sets = result.get("sets")
    if sets:
        threshold = sets["threshold"]
        lines.append(f"{name}: first-error threshold {threshold['value']:.4g} ({threshold['source']})")
        for set_name, m in sets["sets"].items():
            lines.append(f"{set_name} ({m['role']} set, {m['scored']} of {m['items']} items scored"
                         f"{', ' + str(m['truncated']) + ' too long' if m['truncated'] else ''})"
                         f"{': ' + m['note'] if m['note'] else ''}")
            lines.append(f"  {'subset':<16}{'n err':>7}{'n ok':>7}{'err acc':>9}{'ok acc':>9}{'F1':>9}"
                         f"{'F1@0.5':>9}")
            at, half = m["at_threshold"], m["at_0_5"]
            for subset, s in sorted(at["subsets"].items(), key=lambda kv: _subset_order(kv[0])):
                lines.append(f"  {subset:<16}{s['n_error']:>7}{s['n_correct']:>7}{_fmt(s['error_acc']):>9}"
                             f"{_fmt(s['correct_acc']):>9}{_fmt(s['f1']):>9}{_fmt(half['subsets'][subset]['f1']):>9}")
            lines.append(f"  {'average F1':<16}{'':>7}{'':>7}{'':>9}{'':>9}{_fmt(at['average_f1']):>9}"
                         f"{_fmt(half['average_f1']):>9}")
    comparison = result.get("orm_comparison")
    if comparison:
        top = comparison["best_of_n_max"]
        lines.append(f"best-of-{top['n']} on {comparison['problems']} held-out problems: PRM {_fmt(top['prm'])}, "
                     f"ORM {comparison['orm']['name']} {_fmt(top['orm'])}, majority {_fmt(top['majority'])}, "
                     f"PRM-weighted majority {_fmt(top['weighted_majority'])}, oracle {_fmt(top['oracle'])}")
    return lines
