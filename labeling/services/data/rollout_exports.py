"""Stepwise rows from rollout labels, and consensus filtering of human rows by them (for the trl, hf and
math_shepherd exports; labeling.services.data.training_exports.labeled_rows picks the source).

Rows have the keys of the human stepwise rows (prompt, completions, labels, ratings, ids, round) plus
`soft_labels` and `label_source`. Rollout rows: one per solution with estimates (one estimate set each, as
labeling.queries.rollouts picks it), hard labels Q_k hard per step (binary search: up to the estimated first
error), soft labels Q_k soft where every step was rolled out. Which solutions: every one with estimates,
narrowed by the export's round filters (solutions with a task in those rounds) and exclude_test; the
labeler, since and QC filters are about annotations and do not apply.

Consensus ("The Lessons of Developing Process Reward Models"): a human row is kept when its first error
(agreement.outcome: the first -1, or no error when every step was rated) equals the rollouts' estimated
first error for the same solution. Its labels stay the human ones; the stats say how much was kept.
"""
from labeling.core.agreement import outcome
from labeling.models import Problem, Solution
from labeling.queries.rollouts import rollout_summaries

CHUNK = 500
ROLLOUT_STATS = ("solutions", "rows", "steps", "skipped_undecided")
CONSENSUS_STATS = ("consensus_candidates", "consensus_without_rollouts", "consensus_undecided",
                   "consensus_disagreed", "consensus_kept")


def rollout_solutions(filters, *, prover=""):
    """Solutions that have rollout estimates, within the export's round and split filters."""
    qs = Solution.objects.filter(rollout_estimates__isnull=False)
    if prover:
        qs = qs.filter(rollout_estimates__prover=prover)
    if filters.generation is not None:
        qs = qs.filter(tasks__round__number=filters.generation)
    if filters.generations is not None:
        qs = qs.filter(tasks__round__number__in=filters.generations)
    if filters.exclude_test:
        qs = qs.exclude(problem__split="test")
    return Solution.objects.filter(id__in=qs.values("id"))


def rollout_rows(filters, *, options, stats, progress=None, chunk=CHUNK):
    """Yield one row per solution with rollout labels, in solution id order."""
    source = rollout_solutions(filters, prover=options.prover)
    total = source.count() if progress else 0
    last, seen = 0, 0
    while True:
        page = list(source.filter(id__gt=last).order_by("id").values_list("id", "problem_id", "steps")[:chunk])
        if not page:
            break
        last = page[-1][0]
        summaries = rollout_summaries([sid for sid, _, _ in page], prover=options.prover)
        prompts = dict(Problem.objects.filter(id__in={pid for _, pid, _ in page}).values_list("id", "text"))
        for sid, pid, steps in page:
            stats["solutions"] += 1
            summary = summaries.get(sid)
            labels = summary and summary.hard_labels(len(steps))
            if not labels:
                stats["skipped_undecided"] += 1
                continue
            soft = summary.soft_labels(len(steps))
            stats["rows"] += 1
            stats["steps"] += len(labels)
            stats["labels_true"] += sum(labels)
            stats["labels_false"] += len(labels) - sum(labels)
            stats[f"method_{summary.method}"] += 1
            yield {"prompt": prompts[pid], "completions": list(steps[:len(labels)]), "labels": labels,
                   "soft_labels": soft[:len(labels)] if soft else None, "ratings": [1 if x else -1 for x in labels],
                   "annotation_id": None, "problem_id": pid, "solution_id": sid, "round": None,
                   "label_source": "rollout", "prover": summary.prover, "method": summary.method}
        seen += len(page)
        if progress:
            progress(seen, total)


def consensus_rows(human_rows, *, options, stats, chunk=CHUNK):
    """Keep the human rows whose first error the rollouts confirm (see the module docstring)."""
    batch = []
    for row in human_rows:
        batch.append(row)
        if len(batch) == chunk:
            yield from _consensus_batch(batch, options, stats)
            batch = []
    if batch:
        yield from _consensus_batch(batch, options, stats)
    stats["consensus_kept_share"] = (round(stats["consensus_kept"] / stats["consensus_candidates"], 4)
                                     if stats["consensus_candidates"] else None)


def _consensus_batch(rows, options, stats):
    ids = {row["solution_id"] for row in rows if row["solution_id"] is not None}
    summaries = rollout_summaries(ids, prover=options.prover)
    lengths = {sid: len(steps) for sid, steps in Solution.objects.filter(id__in=ids).values_list("id", "steps")}
    for row in rows:
        stats["consensus_candidates"] += 1
        summary = summaries.get(row["solution_id"])
        if summary is None:
            stats["consensus_without_rollouts"] += 1
            continue
        n_steps = lengths[row["solution_id"]]
        human, rollout = outcome(row["ratings"], n_steps), summary.first_error(n_steps)
        if human is None or rollout is None:
            stats["consensus_undecided"] += 1
            continue
        if human != rollout:
            stats["consensus_disagreed"] += 1
            continue
        stats["consensus_kept"] += 1
        soft = summary.soft_labels(n_steps)
        yield {**row, "label_source": "consensus", "prover": summary.prover, "method": summary.method,
               "soft_labels": soft[:len(row["labels"])] if soft else [float(x) for x in row["labels"]]}
