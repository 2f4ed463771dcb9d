"""The download of a finished export; the exports are requested and listed in the admin (labeling.admin.exports)."""
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404

from labeling.models import Export
from labeling.views.access import requires


@requires("export_download")
def export_download(request, export_id):
    export = get_object_or_404(Export, id=export_id, status=Export.Status.DONE)
    path = Path(settings.EXPORT_DIR) / export.file
    if not export.file or not path.is_file():
        raise Http404("export file is gone")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=export.file,
                        content_type="application/jsonl")
