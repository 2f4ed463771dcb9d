"""The labeling queue: leasing tasks to annotators, resuming a lease, drafts, and lease expiry.

A task has `overlap` slots; `taken` counts its live leases plus its submissions. A slot is claimed
under a row lock that concurrent servers skip (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so 50 clients
do not queue behind the top task) and with a compare-and-set on `taken` that must change exactly one
row, so the claim stays exact where FOR UPDATE is a no-op (SQLite). Gold tasks (QC, screening) are
counted the same way; `labeling.services.quality.gold` gives them an overlap no team can fill.

Order of service: a live lease is resumed; then screening tasks, until the annotator has submitted
them all or quality control has given its verdict (`screening_passed`); nothing more while screening
failed and no admin cleared them; then round tasks, highest priority first, each round-or-QC lease
being a QC task with probability qc_rate when one is available. The draw is seeded by the annotator's
labeler UUID and lease number (`Annotator.leases_taken` counts them): reproducible, yet neither
periodic nor shared between annotators, so no one can tell which lease is the check.

What an annotator sees of a lease is its random `public_id`, never the task, its kind or a number that
counts. Saving a draft renews the lease (a full lease length from then, up to STEPWISE_LEASE_MAX_HOURS
after it began), so work in progress does not lose its task while the page shows the time left.
"""
import datetime as dt
import hashlib
import itertools
import uuid
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from labeling.models import Annotation, Annotator, Assignment, Solution, Task, VerifierScore
from labeling.errors import AssignmentNotFound, InvalidInput, LeaseConflict, LeaseExpired
from labeling.services.annotation.checks import draft_validate

EXPIRE_BATCH = 100          # leases expired per queue_next call: bounded, the rest go on the next call
CLAIM_ATTEMPTS = 5          # lost compare-and-sets before giving up on a kind (only SQLite ever loses)


# --- serving ---------------------------------------------------------------------------------------

def queue_next(*, annotator: Annotator, now=None) -> Assignment | None:
    """The annotator's live lease, else a new one, else None when nothing is left for them."""
    now = now or timezone.now()
    try:
        assignment_id = _lease_next(annotator_id=annotator.pk, now=now)
    except IntegrityError:
        # never_the_same_task_twice. Either one of this annotator's own overdue leases is still
        # unexpired (a backlog beyond the bounded batch) and blocks re-offering that screening task,
        # or a concurrent call of the same annotator won the race (SQLite, where the annotator row
        # lock is a no-op). Expire theirs, then try once more: that resumes the winner's lease.
        leases_expire(now=now, annotator_id=annotator.pk)
        try:
            assignment_id = _lease_next(annotator_id=annotator.pk, now=now)
        except IntegrityError:
            return assignment_live(annotator_id=annotator.pk, now=now)
    return None if assignment_id is None else _with_task().get(pk=assignment_id)


class _Open(NamedTuple):
    """An open task as the queue reads it: its id, and its round with what that says about serving it."""
    id: int
    round_id: int | None
    qc_rate: float | None
    parameters: dict | None


@transaction.atomic
def _lease_next(*, annotator_id, now) -> int | None:
    # One round trip: lock the annotator's row (two tabs, a double click: they resume one lease, not
    # take two), read their live lease, and learn whether any lease in the queue is overdue.
    row = _compiled_first("annotator_lock", _annotator_lock, annotator_id=annotator_id, now=now)
    if row is None:
        raise Annotator.DoesNotExist(f"no annotator {annotator_id}")
    passed, cleared, labeler, leases_taken, live, overdue = row
    if live is not None:
        return live
    if overdue:  # rare: give their slots back before choosing (a bounded batch; the rest next time)
        leases_expire(now=now, limit=EXPIRE_BATCH)

    # Screening comes first, until quality control gives its verdict on all of it.
    task = _claim(annotator_id, Task.Kind.SCREENING) if passed is None else None
    if task is not None:
        return _assignment_open(task=task, rules=task, annotator_id=annotator_id, screening=True, now=now)
    if passed is False and not cleared:
        return None
    claimed = _claim_round_or_qc(annotator_id, labeler=labeler, lease_number=leases_taken + 1)
    if claimed is None:
        return None
    Annotator.objects.filter(pk=annotator_id).update(leases_taken=F("leases_taken") + 1)
    task, rules = claimed
    return _assignment_open(task=task, rules=rules, annotator_id=annotator_id, screening=False, now=now)


def _claim_round_or_qc(annotator_id, *, labeler, lease_number) -> tuple[_Open, _Open] | None:
    """(task, rules): the task leased, and the task whose round's rules the lease follows."""
    round_task = _candidate(annotator_id, Task.Kind.ROUND)
    if round_task is None:
        return None  # QC tasks are mixed into round work, never served alone
    rate = settings.STEPWISE_QC_RATE if round_task.qc_rate is None else round_task.qc_rate
    if qc_turn(labeler, lease_number, rate):
        qc_task = _claim(annotator_id, Task.Kind.QC)
        if qc_task is not None:
            # Served as the round task it stands in for (whose row lock ends untouched with the
            # transaction): same hint, same human completions, same lease length.
            return qc_task, round_task
    if _take_slot(round_task.id):
        return round_task, round_task
    task = _claim(annotator_id, Task.Kind.ROUND)
    return None if task is None else (task, task)


def qc_turn(labeler, lease_number, rate) -> bool:
    """Whether an annotator's `lease_number`-th round-or-QC lease is a QC turn: a draw at `rate`,
    seeded by (labeler UUID, lease number) so it is stable across retries and servers, but its
    positions are not periodic and differ between annotators (a fixed period let them spot QC)."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{labeler}:{lease_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < rate


def tasks_open_for(annotator_id, kind):
    """Open tasks of `kind` this annotator may take, best first, row-locked as read (PostgreSQL skips
    rows another transaction holds). It reads the partial index `task_open_queue`."""
    mine = Assignment.objects.filter(task_id=OuterRef("pk"), annotator_id=annotator_id)
    if kind == Task.Kind.SCREENING:
        # Screening is done once *submitted*: an expired screening lease is offered again (revived).
        mine = mine.filter(status=Assignment.Status.SUBMITTED)
    tasks = Task.objects.filter(kind=kind, taken__lt=F("overlap")).filter(~Exists(mine))
    if kind != Task.Kind.SCREENING:
        # Never the same solution twice to one person, whichever task it comes through: not one they
        # labeled (imported labels included) nor one they hold or submitted under another task.
        held = (Assignment.objects.filter(annotator_id=annotator_id, task__solution_id=OuterRef("solution_id"))
                .exclude(status=Assignment.Status.EXPIRED))
        labeled = Annotation.objects.filter(annotator_id=annotator_id, solution_id=OuterRef("solution_id"))
        tasks = tasks.filter(~Exists(held), ~Exists(labeled))
    return tasks.select_for_update(skip_locked=True, of=("self",)).order_by("-priority", "id")


def _candidate(annotator_id, kind) -> _Open | None:
    row = _compiled_first(("candidate", kind), lambda annotator, now: tasks_open_for(annotator, kind).values_list(
        "id", "round_id", "round__qc_rate", "round__parameters")[:1], annotator_id=annotator_id)
    return None if row is None else _Open(*row)


def _annotator_lock(annotator_id, now):
    return (Annotator.objects.select_for_update(of=("self",))
            .annotate(live=Subquery(_live(annotator_id, now).values("id")[:1]),
                      overdue=Exists(Assignment.objects.filter(status=Assignment.Status.LEASED, expires_at__lte=now)))
            .values_list("screening_passed", "cleared_by_admin", "labeler", "leases_taken", "live", "overdue")
            .filter(pk=annotator_id)[:1])


# The two queries of every next that are costliest to build (the candidate's three NOT EXISTS, the annotator lock's
# subqueries: 1-2 ms of CPU each, every call) are built and compiled once per database and process, with markers
# where the annotator's id and the time go (the only values that change between calls), and then sent as they
# are: the same SQL text every time, which PostgreSQL also keeps prepared.
_ANY_ANNOTATOR = -(2 ** 62) - 7
_ANY_TIME = dt.datetime(1901, 2, 3, 4, 5, 6, 789, tzinfo=dt.timezone.utc)
_compiled = {}


def _compiled_first(name, build, *, annotator_id, now=None):
    """The first row of `build(annotator_id, now)` (a values_list queryset), converted as the ORM would."""
    key = (connection.alias, connection.vendor, name)
    if key not in _compiled:
        rows = build(_ANY_ANNOTATOR, _ANY_TIME)
        compiler = rows.query.get_compiler(using=rows.db)
        sql, params = compiler.as_sql()
        converters = compiler.get_converters([col for col, _, _ in compiler.select[:compiler.col_count]])
        _compiled[key] = (sql, tuple(params), compiler, converters)
    sql, params, compiler, converters = _compiled[key]
    adapt = connection.ops.adapt_datetimefield_value
    time_marker, when = adapt(_ANY_TIME), (None if now is None else adapt(now))
    args = [annotator_id if p == _ANY_ANNOTATOR else when if p == time_marker else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        row = cursor.fetchone()
    if row is not None and converters:
        row = next(compiler.apply_converters([row], converters))
    return None if row is None else tuple(row)


def _take_slot(task_id) -> bool:
    """Compare-and-set on `taken`: exactly one row changes, or the slot went to someone else."""
    return Task.objects.filter(id=task_id, taken__lt=F("overlap")).update(taken=F("taken") + 1) == 1


def _claim(annotator_id, kind) -> _Open | None:
    for _ in range(CLAIM_ATTEMPTS):
        task = _candidate(annotator_id, kind)
        if task is None:
            return None
        if _take_slot(task.id):
            return task
    return None


def lease_minutes(parameters) -> int:
    """A lease's length: its round's `lease_minutes`, else STEPWISE_LEASE_MINUTES."""
    return int((parameters or {}).get("lease_minutes") or settings.STEPWISE_LEASE_MINUTES)


def _assignment_open(*, task: _Open, rules: _Open, annotator_id, screening, now) -> int:
    expires = now + dt.timedelta(minutes=lease_minutes(rules.parameters))
    if screening:
        # Only a screening task is served again to the same annotator (their lease on it expired):
        # that row comes back to life, its draft included, under a new public id (a lease's id is its own).
        mine = Assignment.objects.filter(task_id=task.id, annotator_id=annotator_id)
        if mine.filter(status=Assignment.Status.EXPIRED).update(status=Assignment.Status.LEASED, leased_at=now,
                                                                expires_at=expires, public_id=uuid.uuid4()):
            return mine.values_list("id", flat=True).get()
    return Assignment.objects.create(task_id=task.id, annotator_id=annotator_id, round_id=rules.round_id,
                                     status=Assignment.Status.LEASED, leased_at=now, expires_at=expires).pk


def _live(annotator_id, now):
    return Assignment.objects.filter(annotator_id=annotator_id, status=Assignment.Status.LEASED,
                                     expires_at__gt=now).order_by("id")


def _with_task():
    return Assignment.objects.select_related("round", "task__round", "task__solution__problem")


def assignment_live(*, annotator_id, now=None) -> Assignment | None:
    live = _live(annotator_id, now or timezone.now())
    return live.select_related("round", "task__round", "task__solution__problem").first()


def assignment_q(assignment_id) -> Q:
    """An assignment as its holder names it: by its public id (a UUID: what the API and pages pass), or
    by its pk (services and admin code). Never an int from an annotator: their URLs take only UUIDs."""
    if isinstance(assignment_id, str) and len(assignment_id) >= 32:
        try:
            assignment_id = uuid.UUID(assignment_id)
        except ValueError:
            pass
    if isinstance(assignment_id, uuid.UUID):
        return Q(public_id=assignment_id)
    return Q(pk=assignment_id)


def assignment_get(*, assignment_id, annotator, now=None, queryset=None) -> Assignment:
    """One of the annotator's assignments (by public id or pk), leased or submitted; refused once its lease
    ran out."""
    now = now or timezone.now()
    rows = _with_task() if queryset is None else queryset
    assignment = rows.filter(assignment_q(assignment_id), annotator_id=annotator.pk).first()
    if assignment is None:
        raise AssignmentNotFound(f"no assignment {assignment_id} of yours")
    if assignment.status == Assignment.Status.EXPIRED or (
            assignment.status == Assignment.Status.LEASED and assignment.expires_at <= now):
        raise LeaseExpired(f"the lease on assignment {assignment_id} expired at {assignment.expires_at.isoformat()}")
    return assignment


# --- drafts ----------------------------------------------------------------------------------------

def assignment_draft_save(*, assignment_id, annotator, draft, now=None) -> Assignment:
    """Store the lease holder's draft while the lease lasts, and renew the lease: a saved draft says someone
    is at work, so `expires_at` moves to a full lease length from now, capped at STEPWISE_LEASE_MAX_HOURS
    after `leased_at` (and never earlier than it was). A lease that ran out is not renewed (LeaseExpired).
    Two queries: read the lease and its round, then a conditional UPDATE."""
    now = now or timezone.now()
    draft_validate(draft)
    assignment = assignment_get(assignment_id=assignment_id, annotator=annotator, now=now,
                                queryset=Assignment.objects.select_related("round", "task__round"))
    if assignment.status == Assignment.Status.LEASED:
        rules = assignment.round if assignment.round_id else assignment.task.round
        expires = lease_renewed_until(leased_at=assignment.leased_at, expires_at=assignment.expires_at, now=now,
                                      minutes=lease_minutes(rules.parameters if rules else None))
        if Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.LEASED, expires_at__gt=now).update(
                draft=draft, draft_saved_at=now, expires_at=expires) == 1:
            assignment.draft, assignment.draft_saved_at, assignment.expires_at = draft, now, expires
            return assignment
        assignment = assignment_get(assignment_id=assignment_id, annotator=annotator, now=now)  # changed meanwhile
    raise LeaseConflict(f"assignment {assignment_id} is {assignment.status}: its draft is closed")


def lease_renewed_until(*, leased_at, expires_at, now, minutes):
    """A lease's expiry once renewed at `now`: a full lease length from now, at most STEPWISE_LEASE_MAX_HOURS
    after it began (a lease held all day would keep its task from everyone else), never shortened."""
    cap = leased_at + dt.timedelta(hours=settings.STEPWISE_LEASE_MAX_HOURS)
    return max(expires_at, min(now + dt.timedelta(minutes=minutes), cap))


# --- expiry --------------------------------------------------------------------------------------

def leases_expire(*, now=None, limit=None, annotator_id=None) -> int:
    """Return expired leases' slots to the queue; exactly once per lease, however many run at once.

    Each lease is claimed by a compare-and-set on its status, and its task's `taken` is decremented
    in the same transaction only by the caller whose compare-and-set changed the row.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        batch = EXPIRE_BATCH if limit is None else min(EXPIRE_BATCH, limit - expired)
        if batch <= 0:
            break
        overdue = Assignment.objects.filter(status=Assignment.Status.LEASED, expires_at__lte=now)
        if annotator_id is not None:
            overdue = overdue.filter(annotator_id=annotator_id)
        rows = list(overdue.order_by("expires_at", "id").values_list("id", "task_id")[:batch])
        for assignment_id, task_id in rows:
            with transaction.atomic():
                if Assignment.objects.filter(id=assignment_id, status=Assignment.Status.LEASED,
                                             expires_at__lte=now).update(status=Assignment.Status.EXPIRED) == 1:
                    Task.objects.filter(id=task_id).update(taken=F("taken") - 1)
                    expired += 1
        if len(rows) < batch:
            break
    return expired


# --- filling the queue ------------------------------------------------------------------------

@transaction.atomic
def tasks_enqueue(*, overlap=1, chunk=5000) -> int:
    """Queue every solution that has no task yet, outside any round, by its latest verifier score."""
    if not 1 <= overlap <= 32767:
        raise InvalidInput(f"overlap must be between 1 and 32767, got {overlap}", field="overlap")
    latest = (VerifierScore.objects.filter(solution=OuterRef("pk")).order_by("-created", "-id").values("score")[:1])
    rows = (Solution.objects.filter(~Exists(Task.objects.filter(solution=OuterRef("pk"))))
            .annotate(latest_score=Subquery(latest)).order_by("id").values_list("id", "latest_score"))
    created = 0
    iterator = rows.iterator(chunk_size=chunk)
    while batch := list(itertools.islice(iterator, chunk)):
        Task.objects.bulk_create([Task(solution_id=sid, round=None, kind=Task.Kind.ROUND, overlap=overlap,
                                       priority=score if score is not None else 0.0) for sid, score in batch])
        created += len(batch)
    return created


def queue_summary(*, now=None) -> dict:
    """Counts for admins: tasks by kind (open = a slot is free), and leases."""
    now = now or timezone.now()
    kinds = {}
    for row in Task.objects.values("kind").annotate(
            tasks=Count("id"), open=Count("id", filter=Q(taken__lt=F("overlap"))),
            slots_taken=Sum("taken"), submitted=Sum("submitted")).order_by("kind"):
        kinds[row.pop("kind")] = row
    leases = Assignment.objects.aggregate(
        live=Count("id", filter=Q(status=Assignment.Status.LEASED, expires_at__gt=now)),
        overdue=Count("id", filter=Q(status=Assignment.Status.LEASED, expires_at__lte=now)),
        submitted=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
        expired=Count("id", filter=Q(status=Assignment.Status.EXPIRED)))
    return {"tasks": kinds, "assignments": leases}
