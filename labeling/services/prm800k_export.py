"""Export annotations as PRM800K JSONL, streamed in id-ordered chunks with bounded memory."""
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from labeling.formats import prm800k
from labeling.models import Annotation, Completion, Problem, Solution, StepLabel

CHUNK = 2000


@dataclass
class ExportFilters:
    generation: int | None = None
    labeler: str | None = None
    exclude_qc: bool = False
    since: dt.datetime | None = None

    def queryset(self):
        qs = Annotation.objects.all()
        if self.generation is not None:
            qs = qs.filter(round__number=self.generation)
        if self.labeler:
            qs = qs.filter(annotator__labeler=self.labeler)
        if self.exclude_qc:
            qs = qs.filter(is_quality_control=False)
        if self.since is not None:
            qs = qs.filter(timestamp__gte=self.since)
        return qs


@dataclass
class ExportResult:
    records: int = 0
    steps: int = 0
    sha256: str = ""
    bytes: int = 0


def prm800k_lines(filters: ExportFilters, *, chunk=CHUNK):
    """Yield (line, step_count) in annotation id order."""
    qs = filters.queryset().order_by("id")
    last = 0
    fields = ("id", "annotator__labeler", "timestamp", "round__number", "is_quality_control", "is_screening",
              "phase", "problem_id", "solution_id", "finish_reason", "total_time_ms", "selector_score", "verbatim")
    while True:
        rows = list(qs.filter(id__gt=last).values_list(*fields)[:chunk])
        if not rows:
            return
        last = rows[-1][0]
        yield from _chunk_lines(rows)


def _chunk_lines(rows):
    ids = [r[0] for r in rows]
    problems = {pid: (text, answer, solution) for pid, text, answer, solution in
                Problem.objects.filter(id__in={r[7] for r in rows}).values_list("id", "text", "answer", "solution")}
    solutions = {sid: (steps, answer) for sid, steps, answer in
                 Solution.objects.filter(id__in={r[8] for r in rows if r[8]}).values_list("id", "steps", "final_answer")}
    steps = {}
    for aid, index, null, chosen, htext, hrating, hsource, hflag in (
            StepLabel.objects.filter(annotation_id__in=ids).order_by("annotation_id", "index").values_list(
                "annotation_id", "index", "completions_null", "chosen_completion", "human_text", "human_rating",
                "human_source", "human_flagged")):
        human = None if htext is None else (htext, hrating, hsource, hflag)
        steps.setdefault(aid, []).append([None if null else [], human, chosen])
    for aid, sindex, text, rating, flagged in (
            Completion.objects.filter(annotation_id__in=ids).order_by("annotation_id", "step_index", "index")
            .values_list("annotation_id", "step_index", "text", "rating", "flagged")):
        steps[aid][sindex][0].append((text, rating, flagged))
    for (aid, labeler, moment, generation, is_qc, is_screening, phase, pid, sid, finish, total, score,
         verbatim) in rows:
        verbatim = json.loads(verbatim) if verbatim else {}
        question = verbatim.get("question")
        if question is None:
            text, answer, gt_solution = problems[pid]
            sol_steps, sol_answer = solutions[sid] if sid else (None, None)
            question = prm800k.build_question(phase=phase, problem=text, gt_answer=answer, gt_solution=gt_solution,
                                              steps=sol_steps, answer=sol_answer, score=score)
        timestamp = verbatim.get("timestamp") or prm800k.format_timestamp(
            moment.astimezone(dt.timezone.utc).replace(tzinfo=None))
        label_steps = [prm800k.build_step(*s) for s in steps.get(aid, ())]
        yield prm800k.dumps(labeler=labeler, timestamp=timestamp, generation=generation, is_qc=is_qc,
                            is_screening=is_screening, question=question, steps=label_steps, total_time=total,
                            finish_reason=finish), len(label_steps)


def prm800k_export(*, out, filters: ExportFilters, progress=None) -> ExportResult:
    """Write the export to a binary file object; returns counts and the sha256 of what was written."""
    result = ExportResult()
    digest = hashlib.sha256()
    total = filters.queryset().count() if progress else 0
    for line, nsteps in prm800k_lines(filters):
        data = (line + "\n").encode("utf-8")
        out.write(data)
        digest.update(data)
        result.records += 1
        result.steps += nsteps
        result.bytes += len(data)
        if progress and result.records % CHUNK == 0:
            progress(result.records, total)
    result.sha256 = digest.hexdigest()
    return result
