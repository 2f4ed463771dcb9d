"""The Stepwise data model: everything a PRM800K record holds, plus what active learning needs.

A PRM800K line is one `Annotation` of one `Solution` of one `Problem`, with a `StepLabel` per
step and a `Completion` per rated candidate text at that step. Completions reference their
annotation and step index directly (not the StepLabel row) so bulk imports need no step ids.
"""
import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Split(models.TextChoices):
    NONE = "", "unassigned"
    TRAIN = "train", "train"
    TEST = "test", "test"


class Problem(models.Model):
    text = models.TextField()
    text_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Null ground truth exists in PRM800K (the initial screening question).
    answer = models.TextField(null=True, blank=True)
    solution = models.TextField(null=True, blank=True, help_text="ground-truth solution; null when unknown")
    subject = models.CharField(max_length=64, blank=True, default="", db_index=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True, db_index=True)
    source_id = models.CharField(max_length=255, null=True, blank=True, unique=True,
                                 help_text="MATH unique_id or other stable source id")
    split = models.CharField(max_length=8, choices=Split.choices, blank=True, default="", db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def save(self, *args, **kwargs):
        self.text_hash = text_sha256(self.text)
        super().save(*args, **kwargs)

    def __str__(self):
        return self.source_id or (self.text[:60] + ("…" if len(self.text) > 60 else ""))


class ModelVersion(models.Model):
    """A generator or PRM version: the registry issue 4 builds on. One active selector at most."""

    class Kind(models.TextChoices):
        GENERATOR = "generator"
        PRM = "prm"
        ORM = "orm"  # outcome reward model: one score per solution from its final-answer grade (a baseline)

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.CharField(max_length=500, blank=True, default="")
    base_model = models.CharField(max_length=500, blank=True, default="")
    how_made = models.TextField(blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    # How to load and read it: {"architecture": "step_head" | "implicit", "step_separator": "\n\n",
    # "score_how": "product" | "min" | "last", "reference": <spec> and "beta" for an implicit PRM, ...}
    config = models.JSONField(default=dict, blank=True)
    is_active_selector = models.BooleanField(default=False)
    activated = models.DateTimeField(null=True, blank=True, help_text="when it last became the active selector")
    # Who made it the selector and why: "automatic" when it passed validation, or an admin's click
    # (recorded with their name) that overrides a failed or missing validation.
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    activation_note = models.CharField(max_length=300, blank=True, default="")
    # The promoted generator (iterative RPO): rounds sample from it unless told otherwise. One at most.
    is_active_generator = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_active_selector"], condition=Q(is_active_selector=True),
                                    name="one_active_selector"),
            models.UniqueConstraint(fields=["is_active_generator"], condition=Q(is_active_generator=True),
                                    name="one_active_generator"),
        ]

    def __str__(self):
        return self.name


class Solution(models.Model):
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="solutions")
    steps = models.JSONField(help_text="ordered step texts")
    steps_hash = models.CharField(max_length=64, editable=False)
    # PRM800K's pre_generated_answer; null when the generator gave none.
    final_answer = models.TextField(null=True, blank=True)
    is_correct = models.BooleanField(null=True, blank=True, db_index=True,
                                     help_text="graded final answer; null until graded")
    graded_mode = models.CharField(max_length=16, blank=True, default="")
    generator = models.CharField(max_length=200, blank=True, default="", db_index=True)
    sampling = models.JSONField(default=dict, blank=True, help_text="temperature, top_p, seed, ...")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["problem", "steps_hash"], name="solution_unique_steps")]

    @staticmethod
    def hash_steps(steps) -> str:
        return text_sha256("\x1e".join(steps))

    def save(self, *args, **kwargs):
        self.steps_hash = self.hash_steps(self.steps)
        super().save(*args, **kwargs)

    def __str__(self):
        return f"solution {self.pk} of {self.problem}"


class VerifierScore(models.Model):
    solution = models.ForeignKey(Solution, on_delete=models.CASCADE, related_name="scores")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores")
    # None: unscorable (its steps do not all fit the model's maximum length); never selected on a partial product.
    score = models.FloatField(null=True, blank=True)
    step_scores = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["solution", "model_version"], name="one_score_per_model")]


class Round(models.Model):
    """A labeling round: PRM800K's `generation`."""

    number = models.IntegerField(unique=True)
    name = models.CharField(max_length=200, blank=True, default="")
    selector = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="rounds")
    show_answer_hint = models.BooleanField(default=True, help_text="show the reference answer as a hint")
    allow_human_completion = models.BooleanField(default=False, help_text="annotators may write a completion")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="annotators per task (e.g. 3 for agreement)")
    qc_rate = models.FloatField(default=0.1, help_text="share of quality-control tasks mixed into the queue")
    rollout_hints = models.BooleanField(default=False, help_text="show annotators the rollout estimate of the "
                                        "first error (off by default: it anchors)")
    parameters = models.JSONField(default=dict, blank=True)

    class Status(models.TextChoices):
        # Rounds imported from PRM800K, or made by hand, are "done" from the start.
        PENDING = "pending"
        GENERATING = "generating"
        TRAINING = "training"
        SCORING = "scoring"
        SELECTING = "selecting"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DONE, db_index=True)
    error = models.TextField(blank=True, default="")
    # Counts (problems, candidates, generated, scored, selected by reason, tasks) and timings in seconds.
    stats = models.JSONField(default=dict, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]

    def __str__(self):
        return f"round {self.number}"


class Annotator(models.Model):
    """Who labeled: a login of this app, or an external labeler known only by its UUID."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="annotator")
    labeler = models.UUIDField(default=uuid.uuid4, unique=True)
    screening_passed = models.BooleanField(null=True, blank=True)
    cleared_by_admin = models.BooleanField(default=False)
    qc_score = models.FloatField(null=True, blank=True)
    # Aggregates over this annotator's scored QC annotations, kept by labeling.services.quality.gold.
    qc_count = models.PositiveIntegerField(default=0, help_text="QC tasks scored against gold")
    qc_step_agreement = models.FloatField(null=True, blank=True,
                                          help_text="mean share of gold steps rated exactly as gold")
    qc_first_error_agreement = models.FloatField(null=True, blank=True,
                                                 help_text="share of QC tasks with the gold first error")
    screening_score = models.FloatField(null=True, blank=True, help_text="mean gold score on screening tasks")
    created = models.DateTimeField(auto_now_add=True)
    # Kept by the queue (labeling.services.annotation.queue): QC mixing serves every n-th of these as QC.
    leases_taken = models.PositiveIntegerField(default=0, help_text="round and QC leases taken so far")

    def __str__(self):
        return self.user.get_username() if self.user_id else str(self.labeler)


class FinishReason(models.TextChoices):
    FOUND_ERROR = "found_error"
    SOLUTION = "solution"
    BAD_PROBLEM = "bad_problem"
    GIVE_UP = "give_up"


class Annotation(models.Model):
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="annotations")
    solution = models.ForeignKey(Solution, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="annotations", help_text="phase 2: the pre-generated solution")
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="annotations")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations")
    phase = models.PositiveSmallIntegerField(default=2, help_text="1: step-by-step generation with human "
                                             "completions; 2: rating pre-generated solutions")
    timestamp = models.DateTimeField(db_index=True)
    is_quality_control = models.BooleanField(default=False, db_index=True)
    is_screening = models.BooleanField(default=False, db_index=True)
    finish_reason = models.CharField(max_length=16, choices=FinishReason.choices, null=True)
    total_time_ms = models.BigIntegerField(null=True, blank=True)
    selector_score = models.FloatField(null=True, blank=True,
                                       help_text="the verifier score that selected the solution for this task")
    # Verbatim values that a normalized field cannot reproduce byte for byte (say, a question whose
    # answer differs from the problem's, or a timestamp with a zone). Usually null. JSON kept as text,
    # not jsonb: PostgreSQL's jsonb reorders object keys, and key order is part of the bytes.
    verbatim = models.TextField(null=True, blank=True)
    source_hash = models.CharField(max_length=64, null=True, blank=True, unique=True,
                                   help_text="sha256 of the imported line: importing twice adds nothing")
    client_id = models.UUIDField(null=True, blank=True, unique=True)
    # Set when the annotation answered a task with gold ratings (QC or screening); null otherwise.
    gold_step_agreement = models.FloatField(null=True, blank=True)
    gold_first_error_match = models.BooleanField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    @property
    def generation(self):
        return self.round.number if self.round_id else None

    def __str__(self):
        return f"annotation {self.pk}"


class Rating(models.IntegerChoices):
    NEGATIVE = -1
    NEUTRAL = 0
    POSITIVE = 1


class StepLabel(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="step_labels")
    index = models.PositiveIntegerField()
    completions_null = models.BooleanField(default=False, help_text="PRM800K `completions: null`")
    chosen_completion = models.IntegerField(null=True, blank=True)
    # Phase-1 human completion: an object (text, rating, source, flagged) or null.
    human_text = models.TextField(null=True, blank=True)
    human_rating = models.SmallIntegerField(null=True, blank=True, choices=Rating.choices)
    human_source = models.CharField(max_length=32, null=True, blank=True)
    human_flagged = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["annotation_id", "index"]
        constraints = [models.UniqueConstraint(fields=["annotation", "index"], name="one_label_per_step")]


class Completion(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="completions")
    step_index = models.PositiveIntegerField()
    index = models.PositiveIntegerField()
    text = models.TextField()
    rating = models.SmallIntegerField(null=True, blank=True, choices=Rating.choices)
    flagged = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["annotation_id", "step_index", "index"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "step_index", "index"], name="one_completion_per_slot"),
            models.CheckConstraint(condition=Q(rating__in=[-1, 0, 1]) | Q(rating__isnull=True),
                                   name="completion_rating_range"),
        ]


class JobRow(models.Model):
    """What every long-running row has (a Job, an Export): one status machine, progress, heartbeat, error, and
    the id of the Celery message that runs it. labeling.services.jobs.rows claims, progresses, finishes
    and fails either kind with the same conditional updates; the UI polls these rows, never the broker."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    total = models.BigIntegerField(default=0, help_text="items to process (solutions, problems, steps, records)")
    done = models.BigIntegerField(default=0)
    message = models.CharField(max_length=300, blank=True, default="", help_text="what it is doing now")
    error = models.TextField(blank=True, default="")
    celery_task_id = models.CharField(max_length=255, blank=True, default="")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    # 1 once claimed, +1 each time a worker takes over from a lost one (bounded: STEPWISE_JOB_MAX_ATTEMPTS).
    attempts = models.PositiveIntegerField(default=0)
    celery_task_name = models.CharField(max_length=200, blank=True, default="", help_text="what to send again")

    class Meta:
        abstract = True

    @property
    def progress(self) -> float:
        if self.status == self.Status.DONE:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0


class Export(JobRow):
    """A background export job and its snapshot file."""

    format = models.CharField(max_length=32, default="prm800k")
    filters = models.JSONField(default=dict, blank=True)
    record_count = models.BigIntegerField(null=True, blank=True)
    step_count = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    file = models.CharField(max_length=500, blank=True, default="")
    # Where the snapshot's labels came from: rounds, selector model versions, label counts.
    provenance = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"export {self.pk} ({self.format}, {self.status})"


class Task(models.Model):
    """A solution queued for labeling: leased to up to `overlap` annotators, highest priority first."""

    class Kind(models.TextChoices):
        ROUND = "round"
        QC = "qc"
        SCREENING = "screening"

    solution = models.ForeignKey(Solution, on_delete=models.PROTECT, related_name="tasks")
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ROUND)
    priority = models.FloatField(default=0.0, help_text="higher is served first (a round sets it from its serving order)")
    overlap = models.PositiveSmallIntegerField(default=1)
    # Slots taken: live leases plus submissions. Kept on the row so the queue reads one table.
    taken = models.PositiveIntegerField(default=0)
    submitted = models.PositiveIntegerField(default=0)
    # QC and screening tasks: gold rating per step up to and including the first -1.
    gold_ratings = models.JSONField(null=True, blank=True)
    # Alternative completions offered for a step once it is rated -1: {"step index": [texts]}.
    alternatives = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-priority", "id"]
        indexes = [
            models.Index(fields=["kind", "-priority", "id"], name="task_queue_order"),
            # The queue reads only open tasks: full ones leave this index, so serving stays fast when the
            # top of a 100,000-task queue is taken.
            models.Index(fields=["kind", "-priority", "id"], condition=Q(taken__lt=models.F("overlap")),
                         name="task_open_queue"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(taken__lte=models.F("overlap")), name="task_not_over_leased"),
            models.UniqueConstraint(fields=["solution", "round", "kind"], name="one_task_per_solution_round"),
            # NULLs are distinct in the constraint above: this one covers tasks outside any round.
            models.UniqueConstraint(fields=["solution", "kind"], condition=Q(round__isnull=True),
                                    name="one_task_per_solution_outside_rounds"),
        ]

    def __str__(self):
        return f"{self.kind} task {self.pk}"


class Assignment(models.Model):
    """One annotator's lease on one task, its server-side draft, and (once submitted) its annotation."""

    class Status(models.TextChoices):
        LEASED = "leased"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="assignments")
    annotator = models.ForeignKey(Annotator, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LEASED, db_index=True)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    draft = models.JSONField(null=True, blank=True)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    annotation = models.OneToOneField(Annotation, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="assignment")
    # Why the annotator stopped (required for bad_problem and give_up); PRM800K has no place for it.
    reason = models.TextField(null=True, blank=True)
    # Whose rules the lease follows (answer hint, human completions, lease length, the annotation's
    # generation): its task's round, except that a QC task takes the round it was mixed into, so
    # that nothing tells it apart from the round tasks around it.
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.PROTECT, related_name="assignments")
    # The only id an annotator sees (API, URLs, the label page): random and made anew at every lease, so
    # it tells neither the task, its kind, nor the order of leases. Admin surfaces keep the numeric pk.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "annotator"], name="never_the_same_task_twice")]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="assignment_expiry"),
            # An annotator's live lease, read on every queue call. (A bitmap scan of assignment_expiry
            # would read every lease ever submitted until VACUUM: it never skips dead index entries.)
            models.Index(fields=["annotator"], condition=Q(status="leased"), name="assignment_live_lease"),
        ]

    def __str__(self):
        return f"assignment {self.pk} ({self.status})"


class RoundSelection(models.Model):
    """One solution a round selected (or reserved for QC), with the selector score it was chosen by."""

    class Reason(models.TextChoices):
        CONVINCING_WRONG = "convincing_wrong"
        CONVINCING_ANY = "convincing_any"
        CONTROL = "control"            # the random control slice: how a team measures what selection buys
        RANDOM_WRONG = "random_wrong"  # fallback when the selector does not beat chance: wrong answers at random
        DISAGREEMENT = "disagreement"  # selection_rule "disagreement": rollouts contradict a convincing score
        QC = "qc"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="selections")
    solution = models.ForeignKey(Solution, on_delete=models.PROTECT, related_name="selections")
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="+")
    score = models.FloatField()
    is_correct = models.BooleanField(null=True, blank=True)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    rank = models.PositiveIntegerField(help_text="serving order within the round: 0 is served first")

    class Meta:
        ordering = ["round", "rank"]
        constraints = [models.UniqueConstraint(fields=["round", "solution"], name="one_selection_per_solution")]


class Job(JobRow):
    """A background job (generation, selector training, scoring, retraining, evaluation).

    Work that can be split is split into `JobChunk`s, one Celery message each, so a killed worker
    loses one chunk's work at most and GPU workers on several machines share a job.
    """

    class Kind(models.TextChoices):
        GENERATE = "generate"
        TRAIN_SELECTOR = "train_selector"
        SCORE = "score"
        RETRAIN = "retrain"
        EVALUATE = "evaluate"
        ROLLOUTS = "rollouts"                      # Monte Carlo step labels from a prover's continuations
        TRAIN_ORM = "train_orm"                    # outcome reward model baseline
        TRAIN_GENERATOR = "train_generator"        # iterative RPO: DPO + NLL on the generator's own pairs
        EVALUATE_GENERATOR = "evaluate_generator"  # generator accuracy on held-out problems
        BENCHMARK = "benchmark"                    # a PRM on named evaluation sets; dev-set threshold; vs the ORM

    kind = models.CharField(max_length=32, choices=Kind.choices)
    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="jobs", help_text="the model it uses (or made)")
    parameters = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self):
        return f"{self.kind} job {self.pk} ({self.status})"


class JobChunk(models.Model):
    """One Celery message's share of a job: a slice of ids. Done once, by whichever worker gets there."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    ids = models.JSONField(help_text="the ids (solutions or problems) this chunk covers")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    celery_task_id = models.CharField(max_length=255, blank=True, default="", help_text="its latest message")
    celery_task_name = models.CharField(max_length=200, blank=True, default="", help_text="what to send again")
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True, help_text="beaten while a worker holds it")

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="one_chunk_per_index")]


class RolloutEstimate(models.Model):
    """A Monte Carlo estimate for one step prefix of one solution: n continuations sampled by a prover from
    the problem and steps 1..k, each graded on its final answer. step_index is k, the prefix length (0: the
    bare problem, Q_0). Made once per (solution, step, prover, method)."""

    class Method(models.TextChoices):
        MC = "mc"          # every prefix rolled out
        BINARY = "binary"  # OmegaPRM-style binary search for the first error: about log2(K) prefixes

    solution = models.ForeignKey(Solution, on_delete=models.CASCADE, related_name="rollout_estimates")
    step_index = models.PositiveIntegerField(help_text="prefix length k: steps 1..k (0: the bare problem)")
    prover = models.CharField(max_length=500, help_text="the generator spec that continued the prefix")
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.MC)
    n = models.PositiveIntegerField(help_text="continuations sampled")
    n_correct = models.PositiveIntegerField(help_text="continuations whose final answer graded correct")
    seed = models.BigIntegerField()
    q_soft = models.FloatField(help_text="fraction of continuations correct (Math-Shepherd soft label)")
    q_hard = models.BooleanField(help_text="any continuation correct (Math-Shepherd hard label)")
    ci_low = models.FloatField(help_text="binomial 95% interval of q_soft")
    ci_high = models.FloatField()
    tokens = models.BigIntegerField(default=0, help_text="model tokens generated for this estimate")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["solution", "prover", "method", "step_index"]
        constraints = [
            models.UniqueConstraint(fields=["solution", "step_index", "prover", "method"],
                                    name="one_rollout_estimate_per_step"),
            models.CheckConstraint(condition=Q(n_correct__lte=models.F("n")), name="rollout_correct_within_n"),
        ]

    def __str__(self):
        return f"rollouts of solution {self.solution_id} step {self.step_index} ({self.method}, {self.prover})"


class EvaluationSet(models.Model):
    """A named benchmark scored by `evaluate`: a public one brought by the user (ProcessBench, PRM800K's test
    labels) or the project's own labels. role "test" is held out (reported, never tuned on); role "dev" is
    where a version's first-error threshold is chosen."""

    class Role(models.TextChoices):
        TEST = "test"
        DEV = "dev"

    class Source(models.TextChoices):
        PROCESSBENCH = "processbench"
        PRM800K = "prm800k"
        STEPWISE = "stepwise"  # the project's own step labels

    name = models.CharField(max_length=200, unique=True)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.TEST)
    source = models.CharField(max_length=16, choices=Source.choices)
    # Every file imported into it: [{"name", "sha256", "subset"}], so importing one twice adds nothing.
    files = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class EvaluationItem(models.Model):
    """One ProcessBench record: a problem, its steps and the index of the earliest erroneous step (-1: none).
    Self-contained (no Problem or Solution row), so a benchmark never enters rounds, training or exports."""

    evaluation_set = models.ForeignKey(EvaluationSet, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="order in the imported file")
    subset = models.CharField(max_length=64, db_index=True, help_text="gsm8k, math, olympiadbench, omnimath, ...")
    source_id = models.CharField(max_length=255, help_text="the record's id in its file")
    generator = models.CharField(max_length=200, blank=True, default="")
    problem = models.TextField()
    steps = models.JSONField()
    label = models.IntegerField(help_text="index of the earliest erroneous step, -1 if every step is correct")
    final_answer_correct = models.BooleanField(null=True, blank=True)
    annotation = models.ForeignKey(Annotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   help_text="the labeling it was made from (PRM800K or the project's labels)")

    class Meta:
        ordering = ["evaluation_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation_set", "position"], name="one_item_per_position"),
            models.UniqueConstraint(fields=["evaluation_set", "subset", "source_id"], name="one_item_per_id"),
            models.CheckConstraint(condition=Q(label__gte=-1), name="item_label_at_least_minus_one"),
        ]
