"""The domain: projects, prompts, responses, tasks, assignments, judgments, models and runs.

Invariants live in the database wherever it can hold them (see ``Meta.constraints``): one current
judgment per (task, rater), one assignment per (task, rater), a task's taken slots never above its
overlap, one idempotency key per rater, one active training cycle per project. Business logic lives
in ``annotation/services``; these classes only describe the data.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Length

from training.contract.trainers import TRAINERS

DEFAULT_FLAGS = ["unsafe", "factually wrong", "refuses wrongly"]


def default_flags() -> list[str]:
    return list(DEFAULT_FLAGS)


def default_task_kinds() -> list[str]:
    return ["pairwise"]


def default_trainers() -> list[str]:
    return ["rm", "dpo"]


class TaskKind(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise"
    RANKING = "ranking", "Ranking"
    RATING = "rating", "Rating"
    DEMONSTRATION = "demonstration", "Demonstration"


class Role(models.TextChoices):
    LABELER = "labeler", "Labeler"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


class AITraining(models.TextChoices):
    HUMAN = "human", "Human judgments only"
    AI = "ai", "AI judgments only"
    BOTH = "both", "Human and AI judgments"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to raters.")
    task_kinds = models.JSONField(default=default_task_kinds, help_text="Enabled task kinds.")
    overlap = models.PositiveSmallIntegerField(default=1, help_text="Raters per task.")
    lease_seconds = models.PositiveIntegerField(default=600)
    gold_rate = models.FloatField(default=0.0, help_text="Share of claims that serve a gold task.")
    flag_choices = models.JSONField(default=default_flags)
    ranking_size = models.PositiveSmallIntegerField(default=4, help_text="k for ranking tasks.")
    eval_share = models.FloatField(default=0.1, help_text="Share of new prompts held out (eval).")
    # Generation settings (used by the loop).
    base_model = models.CharField(max_length=500, blank=True, help_text="Local path or hub id.")
    samples_per_prompt = models.PositiveSmallIntegerField(default=4)
    temperature = models.FloatField(default=1.0)
    top_p = models.FloatField(default=1.0)
    max_new_tokens = models.PositiveIntegerField(default=256)
    # Retrain policy (checked by Celery beat).
    auto_retrain = models.BooleanField(default=False)
    min_new_judgments = models.PositiveIntegerField(default=200)
    min_interval_minutes = models.PositiveIntegerField(default=60)
    trainers = models.JSONField(
        default=default_trainers,
        help_text="Subset of the trainers in training/contract/trainers.py.",
    )
    # Which labels train (docs/ai-feedback.md): human judgments only (the default: the records
    # of a human-only project), AI judgments only, or both with AI pairs weighted ``ai_weight``.
    ai_training = models.CharField(
        max_length=8, choices=AITraining.choices, default=AITraining.HUMAN
    )
    ai_weight = models.FloatField(default=0.5, help_text="Weight of an AI pair (0..1) in 'both'.")
    ai_min_confidence = models.FloatField(
        default=0.0, help_text="AI judgments below this confidence are left out (0 or 0.5..1)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
            models.CheckConstraint(condition=Q(ranking_size__gte=2), name="project_ranking_size"),
            models.CheckConstraint(
                condition=Q(ai_training__in=["human", "ai", "both"]), name="project_ai_training"
            ),
            models.CheckConstraint(
                condition=Q(ai_weight__gte=0) & Q(ai_weight__lte=1), name="project_ai_weight_0_1"
            ),
            models.CheckConstraint(
                condition=Q(ai_min_confidence=0)
                | (Q(ai_min_confidence__gte=0.5) & Q(ai_min_confidence__lte=1)),
                name="project_ai_min_confidence",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LABELER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    EVAL = "eval", "Eval"


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    messages = models.JSONField(help_text="Conversation: a list of {role, content}.")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the messages (dedup).")
    source = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.TRAIN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="prompt_unique"),
        ]

    def __str__(self) -> str:
        return f"prompt {self.pk}"


class ModelKind(models.TextChoices):
    REWARD = "reward", "Reward model"
    POLICY = "policy", "Policy"


# The registered trainers (training/contract/trainers.py, pure Python), and "base" for a model
# imported rather than trained here. A new trainer changes these choices: makemigrations.
Trainer = models.TextChoices(  # type: ignore[call-overload]
    "Trainer",
    [(t.name.upper(), (t.name, t.label)) for t in TRAINERS]
    + [("BASE", ("base", "Base model (not trained here)"))],
)


class VersionStatus(models.TextChoices):
    TRAINING = "training", "Training"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATUSES = [RunStatus.QUEUED, RunStatus.RUNNING]


class TrainingRun(models.Model):
    """One retrain cycle of a project (or one manual training job)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    trainers = models.JSONField(default=default_trainers)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    triggered_by = models.CharField(max_length=32, default="manual")
    current_step = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0, help_text="0..1 over the whole cycle.")
    step_progress = models.FloatField(default=0.0, help_text="0..1 within current_step.")
    step_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When current_step (this attempt of it) started."
    )
    metrics = models.JSONField(default=dict, blank=True)
    curve = models.JSONField(default=list, blank=True, help_text="[{step, loss, ...}, ...]")
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per step.")
    error = models.TextField(blank=True)
    snapshot_judgment_ids = models.JSONField(default=list, blank=True)
    snapshot_max_judgment_id = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="one_active_run_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.status})"


class RunStep(models.Model):
    """A completed step of a run: re-running a step after a crash finds this and does nothing."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=64)
    result = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0.0)
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="run_step_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.name}"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ModelKind.choices)
    trainer = models.CharField(max_length=16, choices=Trainer.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    training_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    artifact_path = models.CharField(max_length=1000, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.TRAINING
    )
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind"],
                condition=Q(is_active=True),
                name="one_active_model_per_kind",
            ),
            models.UniqueConstraint(
                fields=["training_run", "trainer"],
                condition=Q(training_run__isnull=False),
                name="one_version_per_run_trainer",
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(status="ready"),
                name="active_model_is_ready",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Origin(models.TextChoices):
    IMPORTED = "imported", "Imported"
    HUMAN = "human", "Human-written"
    MODEL = "model", "Model-generated"
    # A Constitutional-AI revised answer: ``parent`` is the original, ``generation_params`` holds
    # {"critique": ..., "principle": ...}.
    REVISION = "revision", "AI revision"


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.IMPORTED)
    source = models.CharField(
        max_length=200, blank=True, help_text="Free label, e.g. a model name."
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="responses"
    )
    generation_params = models.JSONField(default=dict, blank=True)
    generation_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses"
    )
    sample_index = models.PositiveIntegerField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The text's length in characters (Unicode code points, Python's ``len``), computed and stored
    # by the database on every write, whatever the path (save, bulk_create, raw SQL): the
    # dashboard's length-bias monitor reads it instead of every text.
    text_chars = models.GeneratedField(
        expression=Length("text"), output_field=models.PositiveIntegerField(), db_persist=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["generation_run", "prompt", "sample_index"],
                condition=Q(generation_run__isnull=False),
                name="one_response_per_run_prompt_sample",
            ),
        ]
        indexes = [
            # The dashboard names a project's systems: the sources of its responses without a
            # model version (imports, demonstrations), read from this small index alone instead
            # of visiting every page of the table (where the texts are).
            models.Index(
                fields=["prompt", "source"],
                condition=Q(model_version__isnull=True),
                name="response_source_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"response {self.pk}"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    ARCHIVED = "archived", "Archived"


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tasks")
    responses = models.ManyToManyField(Response, through="TaskResponse", related_name="tasks")
    required_judgments = models.PositiveSmallIntegerField(default=1)
    # Live leases + submitted judgments. Bounded by required_judgments in the database.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    judgments_done = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    priority = models.FloatField(default=0.0, help_text="Higher first (active-learning score).")
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True)
    generation_run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The claim query walks this index in order: cost independent of the task count.
            models.Index(
                F("project"),
                F("priority").desc(),
                F("id"),
                name="task_claim_idx",
                condition=Q(status="open", is_gold=False),
            ),
            models.Index(fields=["project", "is_gold"], name="task_gold_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_gold=True) | Q(slots_taken__lte=F("required_judgments")),
                name="task_overlap_never_exceeded",
            ),
            models.CheckConstraint(condition=Q(required_judgments__gte=1), name="task_required"),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_answer__isnull=False),
                name="gold_task_has_answer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} task {self.pk}"


class TaskResponse(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_responses")
    response = models.ForeignKey(Response, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="task_response_position"),
            models.UniqueConstraint(fields=["task", "response"], name="task_response_unique"),
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} #{self.position}: response {self.response_id}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(
        max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    display_order = models.JSONField(help_text="Response ids in the order shown to this rater.")
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "rater"], name="assignment_unique"),
        ]
        indexes = [
            models.Index(
                fields=["rater", "project", "claimed_at"],
                name="assignment_live_idx",
                condition=Q(status="active"),
            ),
            models.Index(
                fields=["project", "expires_at"],
                name="assignment_expiry_idx",
                condition=Q(status="active"),
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.status})"


class JudgmentSource(models.TextChoices):
    HUMAN = "human", "Human rater"
    IMPORTED = "imported", "Imported label"


class PairwiseChoice(models.TextChoices):
    A = "A", "A is better"
    B = "B", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Judgment(models.Model):
    """A submitted judgment. Content is immutable: an edit is a new row with revision + 1.

    For pairwise tasks ``choice`` is as *displayed* (A = shown first/left) and
    ``preferred_response`` names the response that won, so both position bias and training data
    read straight off the row.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="judgments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="judgments",
    )
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgments"
    )
    source = models.CharField(
        max_length=16, choices=JudgmentSource.choices, default=JudgmentSource.HUMAN
    )
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    revision = models.PositiveSmallIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    choice = models.CharField(max_length=16, choices=PairwiseChoice.choices, blank=True)
    strength = models.PositiveSmallIntegerField(null=True, blank=True)
    preferred_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict, help_text="Kind-specific answer (ranking, ratings…).")
    flags = models.JSONField(default=list, blank=True)
    rationale = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    display_order = models.JSONField(default=list)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "rater"],
                condition=Q(is_current=True, rater__isnull=False),
                name="one_current_judgment_per_task_rater",
            ),
            models.UniqueConstraint(
                fields=["task", "rater", "revision"],
                condition=Q(rater__isnull=False),
                name="judgment_revision_unique",
            ),
            models.UniqueConstraint(
                fields=["rater", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="judgment_idempotency_unique",
            ),
            models.CheckConstraint(
                condition=Q(strength__isnull=True) | Q(strength__gte=1, strength__lte=4),
                name="judgment_strength_1_4",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "id"], name="judgment_project_idx"),
            models.Index(
                fields=["task"], name="judgment_task_current_idx", condition=Q(is_current=True)
            ),
        ]

    def __str__(self) -> str:
        return f"judgment {self.pk} r{self.revision}"


class RaterExclusion(models.Model):
    """A manager's decision to leave a rater's judgments out of training (reversible, recorded)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exclusions")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "rater"],
                condition=Q(lifted_at__isnull=True),
                name="one_live_exclusion_per_rater",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rater_id} excluded from {self.project_id}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A JSONL upload imported by the ``cpu`` worker (``annotation/services/import_jobs.py``).

    The file waits under ``settings.IMPORT_DIR`` (``file_name``) and is removed when the job ends.
    Progress: ``phase`` (checking, then writing), lines and bytes done of ``total_bytes``.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=100, help_text="Under settings.IMPORT_DIR.")
    original_name = models.CharField(max_length=255, blank=True)
    create_tasks = models.BooleanField(default=True)
    store_labels = models.BooleanField(default=True)
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    phase = models.CharField(max_length=16, blank=True)
    total_bytes = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    lines_done = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts, once succeeded.")
    errors = models.JSONField(default=list, blank=True, help_text="[{line, reason}], the first.")
    error_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-id"], name="importjob_project_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(bytes_done__gte=0, bytes_done__lte=F("total_bytes")),
                name="importjob_bytes_done_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"


# --- AI feedback (docs/ai-feedback.md) -------------------------------------------------------
# AI verdicts live in their own table, never in ``Judgment``: no human query (assignment, overlap,
# slots, human agreement, rater pages) can include them by accident.


class Constitution(models.Model):
    """A project's principles at one version. Immutable: an edit is a new row with version + 1.

    The current constitution is the project's highest version (none before the first edit).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="constitutions")
    version = models.PositiveIntegerField()
    principles = models.JSONField(help_text="Ordered list of 1..50 principles (1..500 chars).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="constitution_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="constitution_version_1"),
        ]

    def __str__(self) -> str:
        return f"constitution v{self.version} of project {self.project_id}"


class AIMethod(models.TextChoices):
    REWARD_MODEL = "reward_model", "Reward model"
    LLM_JUDGE = "llm_judge", "LLM judge"
    CAI = "cai", "Constitutional AI (critique and revise)"


class AIPassStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class AIPass(models.Model):
    """One AI labeling pass over a set of pairwise tasks (or one CAI batch over prompts)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ai_passes")
    method = models.CharField(max_length=16, choices=AIMethod.choices)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="ai_passes"
    )
    model_path = models.CharField(max_length=500, blank=True, help_text="Local model folder.")
    constitution = models.ForeignKey(
        Constitution, null=True, blank=True, on_delete=models.PROTECT, related_name="ai_passes"
    )
    principle_indexes = models.JSONField(
        default=list, blank=True, help_text="Principles judged (empty: all of the constitution)."
    )
    queue = models.CharField(max_length=8, default="cpu")
    task_ids = models.JSONField(
        default=list, blank=True, help_text="Pairwise tasks (cai: prompts)."
    )
    status = models.CharField(
        max_length=16, choices=AIPassStatus.choices, default=AIPassStatus.QUEUED
    )
    progress = models.FloatField(default=0.0)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    stats = models.JSONField(
        default=dict, blank=True, help_text="{pairs, inconsistent, flip_rate, tokens, seconds}"
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["project", "-id"], name="aipass_project_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="aipass_progress_0_1"
            ),
            models.CheckConstraint(condition=Q(queue__in=["cpu", "gpu"]), name="aipass_queue"),
            models.CheckConstraint(
                condition=Q(done__lte=F("total")), name="aipass_done_within_total"
            ),
        ]

    def __str__(self) -> str:
        return f"AI pass {self.pk} ({self.method}, {self.status})"


class AIJudgment(models.Model):
    """One AI verdict on one pairwise task under one principle, judged in both orders.

    ``chosen_response``/``rejected_response`` are NULL when the two orders disagree
    (``consistent`` false): an inconsistent pair is recorded as such, never as a choice.
    """

    ai_pass = models.ForeignKey(AIPass, on_delete=models.CASCADE, related_name="judgments")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ai_judgments")
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.CASCADE, related_name="ai_judgments"
    )
    method = models.CharField(max_length=16, choices=AIMethod.choices)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_name = models.CharField(max_length=500, help_text="Path or version name: what judged.")
    constitution = models.ForeignKey(
        Constitution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    principle_index = models.SmallIntegerField(null=True, blank=True)
    principle = models.TextField(blank=True, help_text="The text used (survives later edits).")
    template_hash = models.CharField(max_length=64, blank=True)
    chosen_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rejected_response = models.ForeignKey(
        Response, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    consistent = models.BooleanField()
    confidence = models.FloatField(null=True, blank=True)
    p_first_order = models.FloatField(null=True, blank=True)
    p_second_order = models.FloatField(null=True, blank=True)
    critique = models.TextField(blank=True)
    tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One verdict per (pass, task, principle): a retried pass skips what is stored. Two
            # partial indexes, so a reward-model verdict (no principle: NULL) is unique per task
            # too, on every database (NULLS NOT DISTINCT needs PostgreSQL 15).
            models.UniqueConstraint(
                fields=["ai_pass", "task", "principle_index"],
                condition=Q(task__isnull=False, principle_index__isnull=False),
                name="aijudgment_unique_per_pass_task_principle",
            ),
            models.UniqueConstraint(
                fields=["ai_pass", "task"],
                condition=Q(task__isnull=False, principle_index__isnull=True),
                name="aijudgment_unique_per_pass_task_no_principle",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True)
                | (Q(confidence__gte=0.5) & Q(confidence__lte=1)),
                name="aijudgment_confidence_range",
            ),
        ]
        indexes = [models.Index(fields=["project", "id"], name="aijudgment_project_idx")]

    def __str__(self) -> str:
        return f"AI judgment {self.pk} (task {self.task_id}, {self.method})"
