"""PRM800K lines built straight from stored rows: the export's fast path (labeling.services.data.prm800k_export).

The export reads plain rows, not model instances; these functions turn them into the same bytes as
labeling.formats.prm800k.dumps of the full record would.
"""
import datetime as dt
import json
import re

from labeling.formats import prm800k

_BOOL = {None: None, False: False, True: True}  # SQLite gives booleans back as 0/1; 0 == False, 1 == True

# On PostgreSQL the label steps of each annotation come back as one JSON text, built by the query
# (string_agg of to_json()), and pre_generated_steps as the jsonb column's text; Python splices them
# into the line. PostgreSQL escapes strings as json.dumps does (\" \\ \b \f \n \r \t, \u00XX
# for other control characters, "/" as is) except that it leaves non-ASCII characters and DEL raw,
# where json.dumps writes \uXXXX (a surrogate pair above U+FFFF); `ascii_json` converts those, and only
# those, since outside strings JSON text is ASCII. Separators are ", " and ": " like json.dumps; a
# text holds no NUL (PostgreSQL refuses it), so the placeholders below cannot occur in data.

_NON_ASCII = re.compile(r"[^\x00-\x7e]")
_LABEL_MARK, _STEPS_MARK = "\x00label.steps", "\x00question.pre_generated_steps"
_LABEL_JSON, _STEPS_JSON = json.dumps(_LABEL_MARK), json.dumps(_STEPS_MARK)


def _escape(match):
    c = ord(match.group())
    if c < 0x10000:
        return "\\u%04x" % c
    c -= 0x10000
    return "\\u%04x\\u%04x" % (0xD800 | (c >> 10), 0xDC00 | (c & 0x3FF))


def ascii_json(text):
    """PostgreSQL's JSON text as json.dumps (ensure_ascii) writes it."""
    return text if text.isascii() and "\x7f" not in text else _NON_ASCII.sub(_escape, text)


def label_steps(step_rows, completion_rows):
    """annotation id -> (label steps, count), the step and completion objects built in PRM800K's key
    order (as labeling.formats.formats.prm800k.build_step builds them) straight from the rows."""
    step_rows.sort()  # by (annotation_id, index): unique, so the sort never compares further;
    completion_rows.sort()  # next to free on rows that come back in order, as they mostly do
    steps = {}
    for aid, index, null, chosen, htext, hrating, hsource, hflag in step_rows:
        human = None if htext is None else {"text": htext, "rating": hrating, "source": hsource,
                                            "flagged": _BOOL[hflag]}
        step = {"completions": None if null else [], "human_completion": human, "chosen_completion": chosen}
        if aid in steps:
            steps[aid].append(step)
        else:
            steps[aid] = [step]
    for aid, sindex, index, text, rating, flagged in completion_rows:
        if aid in steps:
            steps[aid][sindex]["completions"].append({"text": text, "rating": rating, "flagged": _BOOL[flagged]})
    return {aid: (s, len(s)) for aid, s in steps.items()}


def lines(rows, problems, solutions, labels, spliced):
    """Yield (line, step count) for annotation rows (columns in prm800k_export.HEADER's order).

    problems: id -> (text, answer, solution); solutions: id -> (steps, final answer); labels:
    annotation id -> (steps, count), as label_steps() gives them or, where `spliced`, as JSON text."""
    utc = dt.timezone.utc
    empty = ("[]" if spliced else [], 0)
    for (aid, labeler, moment, generation, is_qc, is_screening, phase, pid, sid, finish, total, score,
         verbatim) in rows:
        verbatim = json.loads(verbatim) if verbatim else {}
        question = verbatim.get("question")
        steps_json = None
        if question is None:
            text, answer, gt_solution = problems[pid]
            sol_steps, sol_answer = solutions[sid] if sid else (None, None)
            if spliced and sol_steps is not None:
                sol_steps, steps_json = _STEPS_MARK, sol_steps
            question = prm800k.build_question(phase=phase, problem=text, gt_answer=answer, gt_solution=gt_solution,
                                              steps=sol_steps, answer=sol_answer, score=score)
        timestamp = verbatim.get("timestamp") or prm800k.format_timestamp(
            moment.astimezone(utc).replace(tzinfo=None))
        label_steps, count = labels.get(aid, empty)
        line = prm800k.dumps(labeler=labeler, timestamp=timestamp, generation=generation, is_qc=is_qc,
                             is_screening=is_screening, question=question,
                             steps=_LABEL_MARK if spliced else label_steps, total_time=total, finish_reason=finish)
        if spliced:
            line = line.replace(_LABEL_JSON, label_steps, 1)
            if steps_json is not None:
                line = line.replace(_STEPS_JSON, steps_json, 1)
        yield line, count
