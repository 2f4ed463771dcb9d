from django.core.management.base import BaseCommand

from labeling.services.jobs.reaper import jobs_reap
from labeling.services.jobs.resume import jobs_resume


class Command(BaseCommand):
    help = ("Fail or send again the jobs whose worker was lost (as the workers' reaper does), then send every "
            "unfinished job chunk, job (retrains too), export and round step again (after the broker lost "
            "messages). Idempotent: a copy of a message a live worker holds is dropped.")

    def handle(self, *args, **opts):
        reaped = jobs_reap()
        sent = jobs_resume()
        self.stdout.write(f"worker lost: {reaped['sent']} sent again, {reaped['failed']} failed; "
                          f"sent again: {sent['chunks']} chunks, {sent['jobs']} jobs (exports too), "
                          f"{sent['rounds']} rounds")
