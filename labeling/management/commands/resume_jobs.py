from django.core.management.base import BaseCommand

from labeling.services.jobs.resume import jobs_resume


class Command(BaseCommand):
    help = ("Send every unfinished job chunk, job, pending export and round step again (after the broker lost "
            "messages). Idempotent.")

    def handle(self, *args, **opts):
        sent = jobs_resume()
        self.stdout.write(f"sent again: {sent['chunks']} chunks, {sent['jobs']} jobs (exports too), "
                          f"{sent['rounds']} rounds")
