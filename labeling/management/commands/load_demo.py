from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from labeling.services.data.demo import LOGINS, demo_load


class Command(BaseCommand):
    help = "Load the demo problems and solutions and create the demo logins (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="where the app will be served")
        parser.add_argument("--allow-demo-passwords", action="store_true",
                            help="create the demo logins, whose passwords are published, even with DEBUG off")

    def handle(self, *args, **opts):
        if not (settings.DEBUG or opts["allow_demo_passwords"]):
            names = ", ".join(username for username, _, _ in LOGINS)
            raise CommandError(f"refusing to create the demo logins ({names}) with DEBUG off: their passwords are "
                               "published in the README. Run the demo with DEBUG=1 (`make demo` does), or pass "
                               "--allow-demo-passwords on a machine no one else can reach.")
        result = demo_load()
        self.stdout.write(f"demo data: {result.problems} new problems, {result.solutions} new solutions, "
                          f"{result.queued} newly queued for labeling")
        self.stdout.write("")
        self.stdout.write("=" * 60)
        self.stdout.write(f"  Stepwise demo at {opts['url']}")
        for username, password, admin in result.logins:
            role = "admin    " if admin else "annotator"
            self.stdout.write(f"  {role}  login: {username:<10} password: {password}")
        self.stdout.write("  annotators label at /label/, admins use /admin/ and /dashboard/")
        self.stdout.write("=" * 60)
