"""The `hf` export: the stepwise rows (labeling.services.data.training_exports) as a Hugging Face dataset.

A zip of `dataset/` (what Dataset.save_to_disk writes) and `data.parquet`, byte for byte the same for
the same labels. Imported by the web process, so `datasets` is imported here without torch.
"""
import importlib
import os
import shutil
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from labeling.formats.training import StepwiseOptions
from labeling.services.data.prm800k_export import ExportFilters
from labeling.services.data.training_exports import (STEPWISE_STATS, HashingWriter, TrainingExportResult,
                                                     export_stats, file_sha256, labeled_rows)

HF_BATCH = 1000  # rows per Arrow record batch / parquet row group
_TENSOR_LIBRARY_SWITCHES = {"USE_TORCH": "0", "USE_TF": "0", "USE_JAX": "0"}  # read by datasets.config at import


def _datasets():
    """The `datasets` package, imported without torch (or TensorFlow, or JAX) where torch is not loaded yet.

    When torch is installed, datasets' formatting package imports it at import time unless USE_TORCH
    says no; the web process must never load torch for a writer that only needs Arrow. The switches
    are set for that one import and then restored: transformers reads USE_TORCH too, and a worker in
    the same process must still see its torch.
    """
    if "datasets" in sys.modules or "torch" in sys.modules:
        return importlib.import_module("datasets")
    saved = {name: os.environ.get(name) for name in _TENSOR_LIBRARY_SWITCHES}
    os.environ.update(_TENSOR_LIBRARY_SWITCHES)
    try:
        return importlib.import_module("datasets")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def hf_features():
    datasets = _datasets()
    Features, List, Value = datasets.Features, datasets.List, datasets.Value
    return Features({
        "prompt": Value("string"), "completions": List(Value("string")), "labels": List(Value("bool")),
        "ratings": List(Value("int8")), "annotation_id": Value("int64"), "problem_id": Value("int64"),
        "solution_id": Value("int64"), "round": Value("int64"),
        # Soft labels: the share of rollouts that reached the answer (human rows: 1.0 / 0.0; null where the
        # rollouts did not estimate every step). label_source: human, rollout or consensus.
        "soft_labels": List(Value("float64")), "label_source": Value("string")})


def hf_export(*, out, filters: ExportFilters, progress=None, options=StepwiseOptions()) -> TrainingExportResult:
    """A zip of `dataset/` (Dataset.save_to_disk) and `data.parquet`: the stepwise rows with ids and ratings.

    Rows go to Arrow and parquet in record batches, so memory holds one batch; the dataset is the
    Arrow file memory-mapped, then saved. Built in a temporary folder, zipped into `out`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    datasets = _datasets()
    from datasets.table import MemoryMappedTable

    stats, result = Counter(dict.fromkeys(STEPWISE_STATS, 0)), TrainingExportResult()
    schema = hf_features().arrow_schema
    with tempfile.TemporaryDirectory(prefix="stepwise-hf-") as tmp:
        tmp = Path(tmp)
        rows = labeled_rows(filters, options=options, stats=stats, progress=progress)
        with pq.ParquetWriter(tmp / "data.parquet", schema) as parquet, pa.OSFile(str(tmp / "rows.arrow"), "wb") as sink, \
                pa.ipc.new_stream(sink, schema) as arrow:
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == HF_BATCH:
                    _write_batch(batch, schema, parquet, arrow)
                    batch = []
            if batch:
                _write_batch(batch, schema, parquet, arrow)
        # The fingerprint (kept in state.json) is the rows' hash, not a random one: the same labels give
        # the same archive, byte for byte.
        table = MemoryMappedTable.from_file(str(tmp / "rows.arrow"))
        datasets.Dataset(table, fingerprint=file_sha256(tmp / "rows.arrow")[:16]).save_to_disk(str(tmp / "dataset"))
        del table
        writer = HashingWriter(out)
        with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((tmp / "dataset").rglob("*")) + [tmp / "data.parquet"]:
                if path.is_file():
                    _zip_file(archive, path, path.relative_to(tmp).as_posix())
    result.records, result.steps = stats["rows"], stats["steps"]
    result.sha256, result.bytes = writer.digest.hexdigest(), writer.bytes
    result.stats = export_stats(stats, files=["dataset/", "data.parquet"])
    return result


def _write_batch(rows, schema, parquet, arrow):
    import pyarrow as pa
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    parquet.write_batch(batch)
    arrow.write_batch(batch)


def _zip_file(archive, path, name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: same rows, same archive bytes
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.file_size = path.stat().st_size  # lets zipfile choose zip64 itself for a file over 2 GiB
    with open(path, "rb") as source, archive.open(info, "w") as target:
        shutil.copyfileobj(source, target, 1 << 20)
