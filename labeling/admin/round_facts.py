"""A round's stats, selector record and parameters as labeled rows for its admin page, not raw JSON.

Each *_rows function turns one JSON field into (key, label, value text) rows: known keys get a label a
reader understands and a unit, keys this module does not know yet still show (under their own name),
so nothing a round recorded is hidden.
"""
from django.utils.html import format_html, format_html_join

from labeling.queries.yields import REASON_LABELS as YIELD_LABELS

REASON_LABELS = {**YIELD_LABELS, "qc": "quality control"}

STATS = (("problems", "problems drawn"), ("candidates", "candidate solutions"),
         ("generated", "candidates generated for the round"), ("scored", "scored by the selector"),
         ("unscorable", "unscorable (steps past the maximum length)"),
         ("already_worked_on", "left out: already labeled, leased or queued"),
         ("wrong_among_candidates", "wrong answers among the scored"),
         ("tasks_created", "tasks created"), ("tasks_moved", "tasks moved in from outside any round"))
PARAMETERS = (("problems", "problems asked for", "all eligible"),
              ("per_problem", "solutions selected per problem (K)", None),
              ("wrong_fraction", "share convincing wrong", None),
              ("control_fraction", "share drawn at random (control)", None),
              ("candidates", "candidates per problem (M)", "those that exist"),
              ("generator", "generator for missing candidates", None),
              ("grading", "grading of candidates", None),
              ("overlap", "annotators per task", None),
              ("qc_rate", "quality-control rate", "the default"),
              ("relabel", "may relabel solutions worked on", None),
              ("selection_rule", "selection rule", None),
              ("rollout_hints", "rollout first-error hints shown to annotators", None),
              ("label_target", "retrain after this many labels", "never automatically"),
              ("temperature", "sampling temperature", None), ("max_new_tokens", "new tokens at most", None),
              ("seed", "seed (problem draw, sampling, control)", None),
              ("step_delimiter", "step delimiter", None), ("requested_by", "started by", "command line"),
              ("problem_ids", "problems drawn (ids)", None))
SHARES = {"wrong_fraction", "control_fraction", "qc_rate"}


def text(value):
    """A JSON value in a few words."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(text(v) for v in value[:12])
        return f"{len(value)}: {shown}{', …' if len(value) > 12 else ''}" if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{k} {text(v)}" for k, v in value.items()) or "—"
    return str(value)


def stats_rows(stats):
    stats = dict(stats or {})
    stats.pop("selector", None)  # selector_rows
    rows = [(key, label, text(stats.pop(key))) for key, label in STATS if key in stats]
    for reason, n in sorted((stats.pop("selected", None) or {}).items()):
        rows.append((f"selected.{reason}", f"selected: {REASON_LABELS.get(reason, reason)}", text(n)))
    seconds = stats.pop("seconds", None) or {}
    for stage, value in seconds.items():
        rows.append((f"seconds.{stage}", f"seconds: {stage.replace('_', ' ')}",
                     "—" if value is None else f"{value:.1f} s"))
    fallback = stats.pop("fallback", None)
    if fallback:
        rows.append(("fallback", "selection fell back to", f"{REASON_LABELS.get(fallback.get('selection'), '')}: "
                                                            f"{fallback.get('reason', '')}"))
    rows += [(key, key.replace("_", " "), text(value)) for key, value in stats.items()]
    return rows


def selector_rows(record):
    """What became of a selector the round trained (round 0, or a refresh) and how it validated."""
    if not record:
        return []
    record = dict(record)
    validation = record.pop("validated", None) or {}
    rows = [("name", "trained selector", f"{text(record.pop('name', None))} (id {text(record.pop('version', None))})"),
            ("purpose", "why trained", text(record.pop("purpose", None))),
            ("activated", "activated", text(record.pop("activated", None)))]
    if "reason" in record:
        rows.append(("reason", "decision", text(record.pop("reason"))))
    if "fallback" in record:
        rows.append(("fallback", "fell back to", REASON_LABELS.get(record.pop("fallback"), "")))
    auroc = validation.get("outcome_auroc")
    if validation:
        rows.append(("validation.auroc", "validation outcome AUROC (95% interval)",
                     f"{auroc['auroc']:.3f} [{auroc['low']:.3f}, {auroc['high']:.3f}] "
                     f"({auroc['n_positive']} correct, {auroc['n_negative']} wrong)" if auroc else "none (one class missing)"))
        rows.append(("validation.beats_chance", "beats chance", text(validation.get("beats_chance"))))
        rows.append(("validation.first_error_f1", "validation first-error F1", text(validation.get("first_error_f1"))))
        rows.append(("validation.n", "validation solutions (unscorable)",
                     f"{text(validation.get('n'))} ({text(validation.get('unscorable'))})"))
        rows.append(("validation.problems", "validation problems", str(len(validation.get("problems") or []))))
    rows += [(key, key.replace("_", " "), text(value)) for key, value in record.items()]
    return rows


def parameter_rows(parameters):
    parameters = dict(parameters or {})
    rows = []
    for key, label, missing in PARAMETERS:
        if key not in parameters:
            continue
        value = parameters.pop(key)
        if value is None and missing:
            shown = missing
        elif key in SHARES and isinstance(value, (int, float)):
            shown = f"{value:.0%}" if value * 100 == int(value * 100) else f"{value:.2%}"
        elif key == "step_delimiter":
            shown = repr(value)
        else:
            shown = text(value)
        rows.append((key, label, shown))
    rows += [(key, key.replace("_", " "), text(value)) for key, value in parameters.items()]
    return rows


def facts_table(rows, css_class, *, empty):
    if not rows:
        return format_html('<span class="{}">{}</span>', css_class, empty)
    body = format_html_join("", '<tr data-key="{}"><th scope="row">{}</th><td>{}</td></tr>', rows)
    return format_html('<table class="{}">{}</table>', css_class, body)
