"""Preference pairs from the generator's own graded candidates, for iterative RPO (the `generator_pairs`
export; labeling.services.training.generator_training trains on it).

Unlike the `preference` export (pairs for a PRM or any policy, by human-verified verdicts, on the bare
problem text), these pairs are on-policy: both sides were sampled by one generator (`Solution.generator`
is its spec) for one problem, the correct one (final answer graded in `grading` mode, `fixed` by
default) chosen and a wrong one rejected. The prompt is the generator's own message
(labeling.core.prompts), the text it was sampled from before the chat template; each side names its
generator spec and registry version. Test-split problems are always left out: they are what a trained
generator is evaluated on. Provenance (the export's `stats`) records the template's id and text, the
generator and its version, the rounds and what was left out.
"""
import json
from collections import Counter
from dataclasses import dataclass

from labeling.core.prompts import INSTRUCTION, TEMPLATE_ID, generator_message
from labeling.formats.training import preference_pairs, solution_text
from labeling.models import ModelVersion, Problem, Round, Solution, Split
from labeling.services.data.training_exports import CHUNK, HashingWriter, TrainingExportResult

GRADING = ("fixed", "prm800k")


@dataclass(frozen=True)
class GeneratorPairOptions:
    """generator: the spec whose candidates are paired ("": the promoted generator, else the default one).
    rounds: only the problems of these round numbers (None: every problem outside the test split).
    pairs_per_problem: the most pairs made for one problem. grading: the mode answers are graded in."""
    generator: str = ""
    rounds: tuple | list | None = None
    pairs_per_problem: int = 4
    grading: str = "fixed"

    def __post_init__(self):
        if isinstance(self.pairs_per_problem, bool) or not isinstance(self.pairs_per_problem, int) \
                or self.pairs_per_problem < 1:
            raise ValueError(f"pairs_per_problem must be a whole number of 1 or more, got {self.pairs_per_problem!r}")
        if self.grading not in GRADING:
            raise ValueError(f"grading must be one of {', '.join(GRADING)}, got {self.grading!r}")
        if self.rounds is not None and (isinstance(self.rounds, (str, bytes)) or any(
                isinstance(n, bool) or not isinstance(n, int) for n in self.rounds)):
            raise ValueError(f"rounds must be a list of round numbers, got {self.rounds!r}")


def generator_spec(options: GeneratorPairOptions) -> str:
    from labeling.services.training.generator_promotion import generator_default_spec

    return options.generator or generator_default_spec()


def version_name(spec: str) -> str:
    """The registry name of the generator behind a spec ("" when none is registered)."""
    return (ModelVersion.objects.filter(kind=ModelVersion.Kind.GENERATOR, path=spec).order_by("id")
            .values_list("name", flat=True).first() or "")


def pair_candidates(options: GeneratorPairOptions):
    """The generator's own solutions that pairs may use: its spec, problems outside the test split (and in
    the rounds asked for)."""
    qs = Solution.objects.filter(generator=generator_spec(options)).exclude(problem__split=Split.TEST)
    if options.rounds is not None:
        problem_ids = set()
        for params in Round.objects.filter(number__in=list(options.rounds)).values_list("parameters", flat=True):
            problem_ids.update((params or {}).get("problem_ids") or [])
        qs = qs.filter(problem_id__in=problem_ids)
    return qs


def generator_pair_rows(options: GeneratorPairOptions, *, stats: Counter, progress=None, chunk=CHUNK):
    """Yield one pair per line (see the module docstring), problems in id order."""
    from labeling.services.data.solution_grading import solutions_grade_in_mode

    spec = generator_spec(options)
    version = version_name(spec)
    candidates = pair_candidates(options)
    solutions_grade_in_mode(solutions=candidates, mode=options.grading)
    stats["test_split_solutions_left_out"] += Solution.objects.filter(generator=spec,
                                                                      problem__split=Split.TEST).count()
    problem_ids = sorted(set(candidates.values_list("problem_id", flat=True)))
    for start in range(0, len(problem_ids), chunk):
        page = problem_ids[start:start + chunk]
        sides = {}
        for sid, pid, is_correct in candidates.filter(problem_id__in=page).order_by("problem_id", "id") \
                .values_list("id", "problem_id", "is_correct"):
            side = {True: "correct", False: "incorrect"}.get(is_correct, "ungraded")
            stats[f"solutions_{side}"] += 1
            if side != "ungraded":
                sides.setdefault(pid, ([], []))[side == "incorrect"].append((sid, False))
        pairs = {pid: preference_pairs(correct, incorrect, cap=options.pairs_per_problem)
                 for pid, (correct, incorrect) in sides.items()}
        pairs = {pid: p for pid, p in pairs.items() if p}
        steps = dict(Solution.objects.filter(id__in={s[0] for p in pairs.values() for pair in p for s in pair})
                     .values_list("id", "steps"))
        texts = dict(Problem.objects.filter(id__in=pairs.keys()).values_list("id", "text"))
        stats["problems"] += len(page)
        stats["problems_with_pairs"] += len(pairs)
        for pid in sorted(pairs):
            for (chosen, _), (rejected, _) in pairs[pid]:
                stats["pairs"] += 1
                stats["steps"] += len(steps[chosen]) + len(steps[rejected])
                yield {"prompt": generator_message(texts[pid]), "chosen": solution_text(steps[chosen]),
                       "rejected": solution_text(steps[rejected]), "problem_id": pid,
                       "chosen_solution_id": chosen, "rejected_solution_id": rejected,
                       "chosen_generator": spec, "rejected_generator": spec,
                       "chosen_generator_version": version, "rejected_generator_version": version,
                       "prompt_template": TEMPLATE_ID}
        if progress:
            progress(min(start + chunk, len(problem_ids)), len(problem_ids))


def generator_pairs_export(*, out, filters=None, progress=None,
                           options=GeneratorPairOptions()) -> TrainingExportResult:
    """The pairs, one JSON object per line; `filters` (annotation filters) play no part: pairs read grades."""
    stats, result = Counter(dict.fromkeys(("problems", "problems_with_pairs", "pairs", "steps"), 0)), \
        TrainingExportResult()
    writer = HashingWriter(out)
    for row in generator_pair_rows(options, stats=stats, progress=progress):
        writer.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        result.records += 1
    result.sha256, result.bytes, result.steps = writer.digest.hexdigest(), writer.bytes, stats["steps"]
    spec = generator_spec(options)
    result.stats = {**{k: stats[k] for k in sorted(stats)},
                    "prompt_template": {"id": TEMPLATE_ID, "text": INSTRUCTION},
                    "generator": {"spec": spec, "version": version_name(spec)},
                    "grading": options.grading, "rounds": None if options.rounds is None else sorted(options.rounds),
                    "test_split": "excluded"}
    return result
