from django.core.management.base import BaseCommand, CommandError

from labeling.errors import DataError


class ImportCommand(BaseCommand):
    """An import: one FILE argument, a DataError becomes a located CommandError, nothing half-written."""

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the JSONL file to import")

    def handle(self, *args, **options):
        try:
            return self.run_import(options["file"], options)
        except DataError as exc:
            raise CommandError(f"import failed, nothing was written: {exc}") from None
        except FileNotFoundError:
            raise CommandError(f"{options['file']}: no such file") from None
        except IsADirectoryError:
            raise CommandError(f"{options['file']}: is a directory, not a file") from None

    def run_import(self, path, options):
        raise NotImplementedError
