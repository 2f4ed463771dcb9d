"""The solution admin's "Rollout labels beside human labels" section: per step, each annotation's rating, the
rollouts' Q (share of continuations that reached the answer, with its 95% interval), the process advantage
A = Q_k - Q_(k-1), and the first error each source gives. Read-only HTML, no script or style of its own.

Shown to whoever may use the `solution_rollouts` surface (labeling.views.access).
"""
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from labeling.admin.display import short
from labeling.core.agreement import NO_ERROR
from labeling.queries.rollouts import solution_labels

RATING = {1: "+1", 0: "0", -1: "−1", None: "·"}


def first_error_text(outcome):
    if outcome is None:
        return "undecided"
    if outcome == NO_ERROR:
        return "no error"
    return f"step {outcome + 1}"


def _num(value, spec=".3f"):
    return "—" if value is None else format(value, spec)


def rollout_section(solution):
    labels = solution_labels(solution)
    r = labels.rollouts
    if r is None:
        summary = mark_safe('<p id="rollout-summary">No rollout estimates for this solution yet '
                            '(<code>manage.py rollout_labels --solutions FILE</code>).</p>')
    else:
        summary = format_html(
            '<p id="rollout-summary">Rollouts: prover <code>{}</code>, method {}, {} continuations per prefix, '
            '{} in all. Estimated first error: <strong id="rollout-first-error" data-index="{}">{}</strong>.</p>',
            r.prover, r.method, r.n, r.rollouts,
            "" if labels.rollout_first_error is None else labels.rollout_first_error,
            first_error_text(labels.rollout_first_error))
    humans = format_html_join(", ", '<span class="human-first-error" data-annotation="{}">{}: {}</span>',
                              ((aid, name, first_error_text(o)) for aid, name, o in labels.annotations))
    head = format_html_join("", "<th>{} (annotation {})</th>", ((name, aid) for aid, name, _ in labels.annotations))
    rows = []
    for row in labels.steps:
        v = row.value or {}
        marks = []
        if row.k and labels.rollout_first_error == row.k - 1:
            marks.append("first error (rollouts)")
        if row.k and any(o == row.k - 1 for _, _, o in labels.annotations):
            marks.append("first error (human)")
        interval = "—" if not v else f"{v['ci_low']:.2f}–{v['ci_high']:.2f}"
        correct = "" if not v else f" ({v['n_correct']}/{v['n']})"
        rows.append(format_html(
            '<tr data-step="{}" data-q="{}" data-a="{}"><td>{}</td><td>{}</td>{}<td>{}{}</td><td>{}</td>'
            '<td>{}</td><td>{}</td></tr>',
            row.k, _num(v.get("q")), _num(v.get("a")), row.k if row.k else "problem", short(row.text, 90),
            format_html_join("", "<td>{}</td>", ((RATING.get(x, x),) for x in row.human)),
            _num(v.get("q")), correct, interval, _num(v.get("a"), "+.3f"), "; ".join(marks)))
    return format_html(
        '<div id="rollout-labels">{}<p>Human first error: {}</p>'
        '<table id="rollout-steps"><thead><tr><th>step</th><th>text</th>{}<th>Q (correct/n)</th>'
        '<th>95% interval</th><th>A = Q<sub>k</sub> − Q<sub>k−1</sub></th><th></th></tr></thead>'
        '<tbody>{}</tbody></table></div>',
        summary, humans or "no annotations", head, format_html_join("", "{}", ((x,) for x in rows)))
