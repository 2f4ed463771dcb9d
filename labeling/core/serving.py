"""The order in which a round's picks are served: the mix kept in every prefix, spread over problems.

A round selects K solutions per problem, some for being convincing and wrong, some for being
convincing whatever their answer, and perhaps a random control slice. Serving them by raw selector
score would hand annotators one kind first and the other later, so a team that stops early (or a
`--label-target` retrain that fires early) gets a different mix from the one it asked for. Here
every prefix of the served order holds each reason within one task of its share of the whole, and
each step goes to the problem served least so far (its highest-scored remaining pick first), so a
prefix also spreads over problems round-robin.

The share of a reason is the share it has among the picks (what the selection could fill), which is
the requested wrong fraction whenever every problem had enough wrong answers.
"""
from collections import defaultdict, deque
from typing import Any, Iterable, NamedTuple

# When two reasons are equally behind their share, the earlier one in this list goes first.
REASON_ORDER = ("convincing_wrong", "control", "convincing_any")


class Pick(NamedTuple):
    solution_id: Any
    problem_id: Any
    reason: str
    score: float


def _reason_key(reason):
    return (REASON_ORDER.index(reason) if reason in REASON_ORDER else len(REASON_ORDER), str(reason))


def serving_order(picks: Iterable) -> list[Pick]:
    """The picks (objects or dicts with solution_id, problem_id, reason, score) in serving order.

    Deterministic: ties go to the higher score, then the smaller solution id.
    """
    items = [p if isinstance(p, Pick) else Pick(*(_get(p, k) for k in Pick._fields)) for p in picks]
    total = len(items)
    if total == 0:
        return []
    queues: dict[str, dict[Any, deque]] = defaultdict(lambda: defaultdict(deque))
    for p in sorted(items, key=lambda p: (-p.score, _sortable(p.solution_id))):
        queues[p.reason][p.problem_id].append(p)
    share = {r: sum(len(q) for q in by_problem.values()) / total for r, by_problem in queues.items()}
    served_reason = dict.fromkeys(queues, 0)
    served_problem: dict[Any, int] = defaultdict(int)
    order = []
    for n in range(1, total + 1):
        open_reasons = [r for r, by_problem in queues.items() if by_problem]
        # The reason furthest behind its share of an n-long prefix.
        reason = max(open_reasons, key=lambda r: (share[r] * n - served_reason[r], _neg(_reason_key(r))))
        by_problem = queues[reason]
        problem = min(by_problem, key=lambda pid: (served_problem[pid], -by_problem[pid][0].score,
                                                   _sortable(by_problem[pid][0].solution_id)))
        pick = by_problem[problem].popleft()
        if not by_problem[problem]:
            del by_problem[problem]
        served_reason[reason] += 1
        served_problem[problem] += 1
        order.append(pick)
    return order


def _get(p, key):
    return p[key] if isinstance(p, dict) else getattr(p, key)


def _sortable(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _neg(key):
    index, name = key
    return (-index, tuple(-ord(c) for c in name))
