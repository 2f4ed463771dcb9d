"""The PRM800K label format: validation of one decoded line and byte-exact serialization.

A line is `json.dumps(record)` with Python's defaults and PRM800K's key order. Phase 1 questions
hold only `problem` and `ground_truth_answer`; phase 2 adds the ground-truth solution and the
pre-generated solution with its verifier score.
"""
import datetime as dt
import json
import uuid

from labeling.errors import DataError
from .fields import get, reject_unknown

TOP_KEYS = ("labeler", "timestamp", "generation", "is_quality_control_question",
            "is_initial_screening_question", "question", "label")
PHASE1_QUESTION_KEYS = ("problem", "ground_truth_answer")
PHASE2_QUESTION_KEYS = ("problem", "ground_truth_solution", "ground_truth_answer", "pre_generated_steps",
                        "pre_generated_answer", "pre_generated_verifier_score")
LABEL_KEYS = ("steps", "total_time", "finish_reason")
STEP_KEYS = ("completions", "human_completion", "chosen_completion")
COMPLETION_KEYS = ("text", "rating", "flagged")
HUMAN_KEYS = ("text", "rating", "source", "flagged")
FINISH_REASONS = ("found_error", "solution", "bad_problem", "give_up")
RATINGS = (-1, 0, 1)


def parse(obj):
    """Validate one decoded PRM800K object and return it as a normalized dict (raises DataError)."""
    reject_unknown(obj, TOP_KEYS)
    labeler = get(obj, "labeler", str)
    try:
        labeler_uuid = uuid.UUID(labeler)
    except ValueError:
        raise DataError(f"not a UUID: {labeler!r}", field="labeler") from None
    timestamp = get(obj, "timestamp", str)
    try:
        moment = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        raise DataError(f"not an ISO 8601 timestamp: {timestamp!r}", field="timestamp") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    question = get(obj, "question", dict)
    label = get(obj, "label", dict)
    record = {
        "labeler": labeler_uuid,
        "timestamp": timestamp,
        "moment": moment,
        "generation": get(obj, "generation", int, nullable=True),
        "is_qc": get(obj, "is_quality_control_question", bool),
        "is_screening": get(obj, "is_initial_screening_question", bool),
        "question": question,
    }
    record.update(_parse_question(question))
    record.update(_parse_label(label))
    return record


def _parse_question(q):
    phase = 2 if "pre_generated_steps" in q else 1
    reject_unknown(q, PHASE2_QUESTION_KEYS, path="question")
    out = {
        "phase": phase,
        "problem": get(q, "problem", str, path="question"),
        "gt_answer": get(q, "ground_truth_answer", str, path="question", nullable=True),
        "gt_solution": get(q, "ground_truth_solution", str, path="question", nullable=True, required=False),
        "solution": None,
    }
    if phase == 2:
        steps = get(q, "pre_generated_steps", list, path="question")
        for i, step in enumerate(steps):
            get({i: step}, i, str, path="question.pre_generated_steps")
        out["solution"] = {
            "steps": steps,
            "answer": get(q, "pre_generated_answer", str, path="question", nullable=True),
            "score": _number(get(q, "pre_generated_verifier_score", (int, float), path="question",
                                 nullable=True)),
        }
    return out


def _number(value):
    return float(value) if isinstance(value, int) else value


def _parse_label(label):
    reject_unknown(label, LABEL_KEYS, path="label")
    steps = get(label, "steps", list, path="label")
    total_time = get(label, "total_time", int, path="label", nullable=True)
    if total_time is not None and total_time < 0:
        raise DataError(f"must be a non-negative number of milliseconds, got {total_time}", field="label.total_time")
    finish_reason = get(label, "finish_reason", str, path="label", nullable=True)
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        raise DataError(f"unknown finish_reason {finish_reason!r} (expected one of: {', '.join(FINISH_REASONS)})",
                        field="label.finish_reason")
    return {"steps": [_parse_step(s, f"label.steps[{i}]") for i, s in enumerate(steps)],
            "total_time": total_time, "finish_reason": finish_reason}


def _parse_step(step, path):
    if not isinstance(step, dict):
        raise DataError(f"must be an object, got {type(step).__name__}", field=path)
    reject_unknown(step, STEP_KEYS, path=path)
    completions = get(step, "completions", list, path=path, nullable=True)
    parsed = None
    if completions is not None:
        parsed = []
        for j, c in enumerate(completions):
            cpath = f"{path}.completions[{j}]"
            if not isinstance(c, dict):
                raise DataError(f"must be an object, got {type(c).__name__}", field=cpath)
            reject_unknown(c, COMPLETION_KEYS, path=cpath)
            parsed.append((get(c, "text", str, path=cpath), _rating(c, cpath),
                           get(c, "flagged", bool, path=cpath, nullable=True)))
    chosen = get(step, "chosen_completion", int, path=path, nullable=True)
    if chosen is not None and not (0 <= chosen < len(parsed or ())):
        raise DataError(f"{chosen} is not the index of one of the {len(parsed or ())} completions",
                        field=f"{path}.chosen_completion")
    human = get(step, "human_completion", dict, path=path, nullable=True)
    if human is not None:
        hpath = f"{path}.human_completion"
        reject_unknown(human, HUMAN_KEYS, path=hpath)
        human = (get(human, "text", str, path=hpath), _rating(human, hpath),
                 get(human, "source", str, path=hpath, nullable=True),
                 get(human, "flagged", bool, path=hpath, nullable=True))
    return {"completions": parsed, "chosen": chosen, "human": human}


def _rating(obj, path):
    rating = get(obj, "rating", int, path=path, nullable=True)
    if rating is not None and rating not in RATINGS:
        raise DataError(f"rating must be -1, 0 or 1 (or null), got {rating}", field=f"{path}.rating")
    return rating


# --- writing ------------------------------------------------------------------------------------

def build_question(*, phase, problem, gt_answer, gt_solution, steps=None, answer=None, score=None):
    if phase == 1:
        return {"problem": problem, "ground_truth_answer": gt_answer}
    return {"problem": problem, "ground_truth_solution": gt_solution, "ground_truth_answer": gt_answer,
            "pre_generated_steps": steps, "pre_generated_answer": answer,
            "pre_generated_verifier_score": score}


def build_step(completions, human, chosen):
    return {
        "completions": None if completions is None else [
            {"text": t, "rating": r, "flagged": f} for t, r, f in completions],
        "human_completion": None if human is None else {
            "text": human[0], "rating": human[1], "source": human[2], "flagged": human[3]},
        "chosen_completion": chosen,
    }


def format_timestamp(moment):
    """PRM800K writes naive UTC `isoformat()` (microseconds unless they are zero)."""
    return moment.isoformat()


def dumps(*, labeler, timestamp, generation, is_qc, is_screening, question, steps, total_time, finish_reason):
    record = {
        "labeler": str(labeler),
        "timestamp": timestamp,
        "generation": generation,
        "is_quality_control_question": is_qc,
        "is_initial_screening_question": is_screening,
        "question": question,
        "label": {"steps": steps, "total_time": total_time, "finish_reason": finish_reason},
    }
    return json.dumps(record)


# --- what an import keeps verbatim -----------------------------------------------------------------

def verbatim(record, problem, solution):
    """What the normalized rows would not give back byte for byte, kept as written (JSON text).

    `record` is a parsed line (parse()); `problem` and `solution` hold what the database keeps of them:
    {"answer", "solution"} and {"answer"} (or None)."""
    out = {}
    if format_timestamp(record["moment"]) != record["timestamp"]:
        out["timestamp"] = record["timestamp"]
    sol = record["solution"]
    rebuilt = build_question(
        phase=record["phase"], problem=record["problem"], gt_answer=problem["answer"],
        gt_solution=problem["solution"], steps=sol and sol["steps"], answer=solution and solution["answer"],
        score=sol and sol["score"])
    if not _same_json(rebuilt, record["question"]):
        out["question"] = record["question"]
    return json.dumps(out) if out else None


def _same_json(a, b):
    """json.dumps(a) == json.dumps(b) for flat objects whose values are strings, numbers, null or lists of
    strings, without encoding either: same keys in the same order, and values equal and of one type (1
    and 1.0 are equal but serialize apart; for a float its repr decides, so -0.0 is not 0.0)."""
    if len(a) != len(b) or list(a) != list(b):
        return False
    for key, x in a.items():
        y = b[key]
        if type(x) is not type(y) or x != y or (type(x) is float and repr(x) != repr(y)):
            return False
    return True
