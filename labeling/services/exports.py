"""Export jobs: formats by name, atomic file writes, and the background `Export` row lifecycle."""
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from labeling.models import Export
from labeling.services.prm800k_export import ExportFilters, prm800k_export

FORMATS = {"prm800k": prm800k_export}
EXTENSIONS = {"prm800k": "jsonl"}


def export_to_path(fmt, path, filters, progress=None):
    """Write to a temporary file beside `path`, then rename: a failed export leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            result = FORMATS[fmt](out=out, filters=filters, progress=progress)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return result


@transaction.atomic
def export_create(*, fmt, filters: dict, user=None) -> Export:
    """Create the job row and enqueue it once the row is committed (a worker never sees it uncommitted)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    export = Export.objects.create(format=fmt, filters=filters, requested_by=user)
    export_enqueue(export)
    return export


def export_enqueue(export):
    from workers.tasks import export_run as task

    def send():
        result = task.delay(export.id)
        Export.objects.filter(id=export.id, celery_task_id="").update(celery_task_id=result.id or "")

    transaction.on_commit(send)


def export_run(*, export_id) -> bool:
    """Run a pending export. The conditional update claims it: a redelivered job does nothing."""
    claimed = Export.objects.filter(id=export_id, status=Export.Status.PENDING).update(
        status=Export.Status.RUNNING, started=timezone.now())
    if claimed != 1:
        return False
    export = Export.objects.get(id=export_id)
    filters = ExportFilters(**export.filters)
    if isinstance(filters.since, str):
        filters.since = parse_datetime(filters.since)
    target = Path(settings.EXPORT_DIR) / f"export-{export.id}.{EXTENSIONS[export.format]}"

    def progress(done, total):
        Export.objects.filter(id=export_id).update(progress=done / total if total else 1.0)

    try:
        result = export_to_path(export.format, target, filters, progress=progress)
    except Exception as exc:
        Export.objects.filter(id=export_id).update(status=Export.Status.FAILED, error=f"{type(exc).__name__}: {exc}",
                                                   finished=timezone.now())
        raise
    Export.objects.filter(id=export_id).update(
        status=Export.Status.DONE, progress=1.0, record_count=result.records, step_count=result.steps,
        sha256=result.sha256, file=target.name, finished=timezone.now())
    return True
