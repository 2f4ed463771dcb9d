import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from labeling.services.exports import FORMATS, export_to_path
from labeling.services.prm800k_export import ExportFilters


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
    help = "Export labels (streamed). PRM800K lines are byte-identical to PRM800K's own serialization."

    def add_arguments(self, parser):
        parser.add_argument("--format", default="prm800k", choices=sorted(FORMATS))
        parser.add_argument("--out", required=True, help="output file, or - for standard output")
        parser.add_argument("--generation", type=int, help="only this round (PRM800K generation)")
        parser.add_argument("--labeler", help="only this labeler UUID")
        parser.add_argument("--exclude-qc", action="store_true", help="leave out quality-control questions")
        parser.add_argument("--since", help="only labels at or after this date/datetime (UTC)")

    def handle(self, *args, **opts):
        filters = ExportFilters(generation=opts["generation"], labeler=opts["labeler"],
                                exclude_qc=opts["exclude_qc"],
                                since=parse_since(opts["since"]) if opts["since"] else None)
        if filters.labeler:
            import uuid
            try:
                filters.labeler = str(uuid.UUID(filters.labeler))
            except ValueError:
                raise CommandError(f"--labeler: {filters.labeler!r} is not a UUID") from None
        if opts["out"] == "-":
            result = FORMATS[opts["format"]](out=sys.stdout.buffer, filters=filters)
        else:
            result = export_to_path(opts["format"], opts["out"], filters)
        self.stderr.write(f"exported {result.records} records ({result.steps} steps), sha256 {result.sha256}")
