from django.core.management.base import BaseCommand, CommandError

from labeling.services.annotation.accounts import annotator_create


class Command(BaseCommand):
    help = "Create an annotator login (or an admin with --admin); the password must pass AUTH_PASSWORD_VALIDATORS."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--admin", action="store_true")

    def handle(self, *args, **opts):
        try:
            annotator = annotator_create(username=opts["username"], password=opts["password"], admin=opts["admin"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        role = "admin" if opts["admin"] else "annotator"
        self.stdout.write(f"created {role} {opts['username']} (labeler {annotator.labeler})")
