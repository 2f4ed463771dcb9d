import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from labeling.formats.math_shepherd import LABEL_KINDS
from labeling.formats.training import LABEL_SOURCES, NEUTRAL, PROBLEM_SCOPES
from labeling.services.data.exports import FORMATS, TRAINING_FORMATS, export_options, export_to_path
from labeling.services.data.prm800k_export import ExportFilters


def parse_since(value):
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: {value!r} is not a date (YYYY-MM-DD) or ISO datetime")
        moment = dt.datetime.combine(day, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


class Command(BaseCommand):
    help = ("Export labels (streamed). prm800k: lines byte-identical to PRM800K's own serialization; trl: TRL "
            "stepwise supervision JSONL; preference: chosen/rejected pairs JSONL; hf: zip of a datasets folder "
            "and a parquet file; math_shepherd: Math-Shepherd / OpenRLHF process-reward JSONL.")

    def add_arguments(self, parser):
        parser.add_argument("--format", default="prm800k", choices=sorted(FORMATS))
        parser.add_argument("--out", required=True, help="output file, or - for standard output")
        parser.add_argument("--generation", type=int, help="only this round (PRM800K generation)")
        parser.add_argument("--labeler", help="only this labeler UUID")
        parser.add_argument("--exclude-qc", action="store_true", help="leave out quality-control questions")
        parser.add_argument("--since", help="only labels at or after this date/datetime (UTC)")
        parser.add_argument("--include-test", action="store_true",
                            help=f"{', '.join(sorted(TRAINING_FORMATS))}: keep test-split problems (left out by "
                                 "default: they are the held-out set)")
        parser.add_argument("--neutral", choices=NEUTRAL,
                            help="trl, hf: label of a 0 rating (default positive; drop leaves such annotations out)")
        parser.add_argument("--pairs-per-problem", type=int, help="preference: most pairs per problem (default 4)")
        parser.add_argument("--source", choices=LABEL_SOURCES,
                            help="trl, hf, math_shepherd: human labels (default), rollout labels, or consensus (human "
                                 "annotations whose first error the rollouts confirm)")
        parser.add_argument("--labels", choices=LABEL_KINDS,
                            help="math_shepherd: hard +/- labels (default) or soft (share of rollouts correct)")
        parser.add_argument("--prover", help="trl, hf, math_shepherd: only this prover's rollouts (default: any)")
        parser.add_argument("--problems", choices=PROBLEM_SCOPES,
                            help="preference: all problems (default) or only those the filtered labels cover")

    def handle(self, *args, **opts):
        filters = ExportFilters(generation=opts["generation"], labeler=opts["labeler"],
                                exclude_qc=opts["exclude_qc"],
                                since=parse_since(opts["since"]) if opts["since"] else None)
        fmt = opts["format"]
        filters.exclude_test = fmt in TRAINING_FORMATS and not opts["include_test"]
        if filters.labeler:
            import uuid
            try:
                filters.labeler = str(uuid.UUID(filters.labeler))
            except ValueError:
                raise CommandError(f"--labeler: {filters.labeler!r} is not a UUID") from None
        try:
            options = export_options(fmt, {"neutral": opts["neutral"], "pairs_per_problem": opts["pairs_per_problem"],
                                           "problems": opts["problems"], "source": opts["source"],
                                           "labels": opts["labels"], "prover": opts["prover"]})
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        extra = {} if options is None else {"options": options}
        if opts["out"] == "-":
            result = FORMATS[fmt](out=sys.stdout.buffer, filters=filters, **extra)
        else:
            result = export_to_path(fmt, opts["out"], filters, options=options)
        self.stderr.write(f"exported {result.records} records ({result.steps} steps), sha256 {result.sha256}"
                          + (", test-split problems left out (--include-test keeps them)" if filters.exclude_test
                             else ""))
        stats = getattr(result, "stats", None)
        if stats:
            self.stderr.write(", ".join(f"{k} {v}" for k, v in stats.items()))
