from labeling.services.data.qc_import import qc_tasks_import

from ._base import ImportCommand


class Command(ImportCommand):
    help = ("Create QC and screening tasks from JSONL: {\"unique_id\" or \"problem\", \"steps\", \"gold\", "
            "\"kind\": \"qc\"|\"screening\", \"alternatives\"?}. All-or-nothing; idempotent.")

    def run_import(self, path, options):
        r = qc_tasks_import(path=path)
        self.stdout.write(f"{path}: {r.lines} gold tasks read: {r.created} new, {r.skipped} already present "
                          f"({r.solutions_created} solutions created)")
