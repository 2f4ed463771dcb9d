"""The `math_shepherd` export: stepwise rows of any label source as Math-Shepherd / OpenRLHF process-reward
lines (labeling.formats.math_shepherd), one JSON object per line:

    {"input", "label", "value", "label_source", "problem_id", "solution_id", "annotation_id"}

Train with `openrlhf.cli.train_prm --input_key input --label_key value --placeholder_token ки
--reward_tokens + -` (soft labels: floats under `value`).
"""
from collections import Counter

from labeling.formats.math_shepherd import MathShepherdOptions, PlaceholderInText, math_shepherd_row
from labeling.services.data.prm800k_export import ExportFilters
from labeling.services.data.training_exports import (STEPWISE_STATS, TrainingExportResult, _jsonl, export_stats,
                                                     labeled_rows)


def math_shepherd_rows(filters: ExportFilters, *, options: MathShepherdOptions, stats: Counter, progress=None):
    for row in labeled_rows(filters, options=options, stats=stats, progress=progress):
        values = row["labels"] if options.labels == "hard" else row["soft_labels"]
        if values is None:
            stats["skipped_no_soft_labels"] += 1
            continue
        try:
            line = math_shepherd_row(row["prompt"], row["completions"], values)
        except PlaceholderInText:
            stats["skipped_placeholder_in_text"] += 1
            continue
        stats["lines"] += 1
        stats["line_steps"] += len(values)
        yield {**line, "label_source": row["label_source"], "problem_id": row["problem_id"],
               "solution_id": row["solution_id"], "annotation_id": row["annotation_id"]}


def math_shepherd_export(*, out, filters: ExportFilters, progress=None,
                         options=MathShepherdOptions()) -> TrainingExportResult:
    stats, result = Counter(dict.fromkeys(STEPWISE_STATS, 0)), TrainingExportResult()
    _jsonl(out, math_shepherd_rows(filters, options=options, stats=stats, progress=progress), result)
    result.steps = stats["line_steps"]
    result.stats = export_stats(stats)
    return result
