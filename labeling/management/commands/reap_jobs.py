from django.core.management.base import BaseCommand

from labeling.services.jobs.reaper import jobs_reap


class Command(BaseCommand):
    help = ("Send again, or fail with the reason, every running job, chunk and export whose heartbeat is older "
            "than STEPWISE_JOB_STALE_SECONDS (its worker was lost). Every worker already does this every "
            "STEPWISE_REAP_SECONDS; this runs it once (for a cron, or with no worker up).")

    def handle(self, *args, **opts):
        counts = jobs_reap()
        self.stdout.write(f"worker lost: {counts['sent']} sent again, {counts['failed']} failed")
