"""Exports from the admin run as background jobs: a row with status, counts, sha256 and a download link."""
import hashlib
import os
import stat

import pytest

from labeling.models import Export
from labeling.services.data import exports
from labeling.services.data.prm800k_import import prm800k_import


@pytest.fixture
def labels(db, shared_data, settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    prm800k_import(path=shared_data / "prm800k_sample.jsonl")
    return shared_data / "prm800k_sample.jsonl"


@pytest.mark.django_db(transaction=True)
def test_it_exports_from_the_admin_and_serves_the_file(client, alice, labels):
    client.force_login(alice)
    response = client.post("/admin/labeling/export/add/", {"format": "prm800k", "generation": "6"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.status == Export.Status.DONE, export.error
    expected = b"".join(l for l in labels.read_bytes().splitlines(keepends=True) if b'"generation": 6' in l)
    assert export.record_count == expected.count(b"\n") == 5
    assert export.sha256 == hashlib.sha256(expected).hexdigest() and export.progress == 1.0
    listing = client.get("/admin/labeling/export/").content.decode()
    assert f"/exports/{export.id}/download/" in listing and export.sha256[:12] in listing
    download = client.get(f"/exports/{export.id}/download/")
    assert b"".join(download.streaming_content) == expected


@pytest.mark.django_db(transaction=True)
def test_a_failed_export_is_marked_and_leaves_no_file(labels, alice, monkeypatch, settings):
    def explode(**kwargs):
        kwargs["out"].write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setitem(exports.FORMATS, "prm800k", explode)
    export = exports.export_create(fmt="prm800k", filters={}, user=alice)
    export.refresh_from_db()
    assert export.status == Export.Status.FAILED and "disk full" in export.error
    assert not any(settings.EXPORT_DIR.iterdir())


@pytest.mark.django_db
def test_a_redelivered_job_does_nothing(labels):
    export = Export.objects.create(format="prm800k")
    assert exports.export_run(export_id=export.id) is True
    assert exports.export_run(export_id=export.id) is False
    assert Export.objects.get().status == Export.Status.DONE


@pytest.mark.parametrize("mode", [None, 0o640])
def test_an_export_file_is_readable_by_the_web_process_not_only_the_worker(labels, settings, tmp_path, mode):
    # mkstemp makes 0600 files; a web process running as another user could not serve them
    if mode is not None:
        settings.STEPWISE_EXPORT_FILE_MODE = mode
    old = os.umask(0o077)  # the mode is set explicitly, whatever umask the worker runs under
    try:
        path = tmp_path / "out.jsonl"
        exports.export_to_path("prm800k", path, exports.ExportFilters())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == (0o644 if mode is None else mode)
    assert not list(tmp_path.glob(".out.jsonl.*"))  # the temporary file was renamed, not left behind
