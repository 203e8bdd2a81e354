"""A simulated closed loop: raters with a hidden preference, the real cycle, the real services.

The raters' *hidden scoring rule* is one of :data:`RULES` (``SimConfig.rule``):

- ``lowercase`` (the default, :func:`hidden_score`): the share of a response's characters that are
  lowercase ASCII letters or spaces. A tiny *random* byte-level model starts near 0.1, so there is
  room to climb; it is the rule for the tests' randomly initialised models. A *pretrained* base
  already writes mostly lowercase text (about 0.9) and a policy learns to drop capitals and
  punctuation in one or two rounds, so the rule saturates there.
- ``lipogram`` (:func:`lipogram_score`): the share of characters that are not the letter "e". It is
  the rule for a pretrained base (``SimConfig.base_model``, see :mod:`training.pretrain`): the base
  writes English-like text with about 9 % e's, avoiding the commonest letter takes word choice that
  a policy learns over several rounds, and a tiny reward model on that base learns a one-byte
  feature from a few hundred noisy labels (a rule over whole words, tried first, was not learnable:
  0.56-0.61 held-out accuracy from 96-500 labels).

- ``hh-minilm`` (:mod:`training.gold`): the rule for a *real chat model* (SmolLM2-135M-Instruct,
  ``prompts="hh"``): a MiniLM reward model trained once on 600 pairs of the shared HH-RLHF sample,
  scoring the whole (prompt, response). It was learned from real human preferences, and its
  backbone shares nothing with the reward model the loop trains, which can only recover it from
  the raters' labels (why this and not a rule: see :mod:`training.gold`). The prompts are then
  HH-RLHF dialogues the gold never trained on.

Each simulated rater prefers the response with the higher hidden score
but answers the other way with probability ``flip`` (default 0.16). Two raters then agree on a
pair ``(1 - flip)^2 + flip^2`` = 73 % of the time, the inter-rater agreement reported for real
preference data (InstructGPT ~73 %, HH-RLHF ~63-77 %). Equal hidden scores are a coin flip.

Every round prints its judgments, the reward model's accuracy against the gold, the policy's mean
gold score on held-out prompts, its win rate against the previous round, the KL of the new policy
to its parent (the cycle's evaluation) and the mean length of its answers. When it ends (or
fails) the simulation deletes its project, users and models (``keep`` leaves them).

A round = raters label every open task through the same services the web UI uses
(``assignment_claim_next`` + ``judgment_submit``), then one cycle runs (in this process, or on a
Celery worker with ``via_celery``), then we measure on held-out prompts:

- ``rm_accuracy``: how often the active reward model orders two base-model samples the way the
  hidden rule does (pairs with equal hidden score left out);
- ``hidden_score``: the active policy's mean hidden score over ``eval_samples`` samples/prompt;
- ``win_rate_vs_prev``: share of samples (paired by index) where the active policy beats the
  previous round's policy on the hidden score (ties 0.5).

Round 0 is the bootstrap: no judgments yet, so the cycle only generates candidates with the base
model and picks random pairs.

The policy method is ``SimConfig.policy``: ``dpo`` (the default) on the raters' pairs, or an online
RL trainer (``ppo``, ``rloo``, ``grpo``, ``best_of_n``) against the cycle's reward model. With RL
the hidden rule is also the run's **gold** scorer (``gold_rule``), so every RL step logs the gold
score beside the proxy reward and sqrt(KL): the over-optimisation curve (Gao et al. 2022) is on the
run's curve and on the policy step's result (``<method>/overoptimization``), and each round's
report carries its last point (``RoundReport.rl``).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.hidden_rules import RULES

GOLD_HH = "hh-minilm"  # the gold judge over real text (training.gold)

# The policy methods a simulation can use: DPO on the raters' pairs, or online RL against the
# cycle's reward model (KTO and SFT need thumbs and demonstrations, which simulated raters of
# pairwise tasks do not give).
POLICY_METHODS = ("dpo", "ppo", "rloo", "grpo", "best_of_n")


@dataclass(frozen=True)
class SimConfig:
    rounds: int = 3
    labels_per_round: int = 64  # pairwise tasks per cycle = judgments per round (overlap 1)
    train_prompts: int = 48
    eval_prompts: int = 16
    raters: int = 4
    flip: float = 0.16  # a rater's chance to answer against the hidden rule
    k: int = 4  # candidates per prompt
    max_new_tokens: int = 12
    base_model: str = ""  # a causal LM to start from (e.g. training.pretrain); "" = random tiny
    rule: str = "lowercase"  # the raters' hidden rule: a key of RULES, or GOLD_HH ("hh-minilm")
    prompts: str = "topics"  # "topics" (made-up one-liners) or "hh" (HH-RLHF dialogues)
    pairs_file: str = ""  # the HH-RLHF sample, for prompts "hh" and the "hh-minilm" gold
    gold_cache: str = "var/cache/gold"  # where the "hh-minilm" gold is built once
    keep: bool = False  # keep the simulated project, its users and models afterwards
    policy: str = "dpo"  # the policy trainer: a key of POLICY_METHODS
    rl_steps: int = 8  # online RL: rollouts per cycle, of rl_prompts_per_step prompts each
    rl_prompts_per_step: int = 8
    rl_beta: float = 0.05
    selection: str = "active"  # "active" (least certain + 25 % random) or "random"
    random_share: float = 0.25
    # None = the worker default (workers/steps.py)
    similarity_power: float | None = None
    uncertainty_power: float | None = None
    seed: int = 0
    rm_epochs: int = 2
    policy_epochs: int = 2
    lora_r: int = 0  # LoRA rank of the reward model and DPO (0: full fine-tune)
    rm_learning_rate: float = 1e-3
    policy_learning_rate: float = 3e-3
    beta: float = 0.1
    rm_pairs_prompts: int = 32  # reward-model-labeled on-policy pairs added to DPO each cycle
    # The product's promotion default is 0.5; a tiny reward model at ~60 % accuracy is too noisy a
    # judge to gate on, so the simulation promotes every new policy within the KL bound.
    min_win_rate: float = 0.0
    eval_samples: int = 8
    workdir: str = ""
    via_celery: bool = False
    celery_timeout: float = 600.0

    def run_config(self) -> dict[str, Any]:
        optional = {
            "similarity_power": self.similarity_power,
            "uncertainty_power": self.uncertainty_power,
        }
        online = (
            {
                "rl_steps": self.rl_steps,
                "rl_prompts_per_step": self.rl_prompts_per_step,
                "rl_max_new_tokens": self.max_new_tokens,
                "rl_beta": self.rl_beta,
                # the hidden rule, logged as the gold score (a rule only: the RL step scores text)
                **({"gold_rule": self.rule} if self.rule in RULES else {}),
            }
            if self.policy != "dpo"
            else {}
        )
        return {
            **{k: v for k, v in optional.items() if v is not None},
            **online,
            "pairs_per_cycle": self.labels_per_round,
            # The simulated label budget is the selected pairs alone (bench/loop.py compares
            # selection rules at equal budgets), so no extra leaderboard pairs.
            "compare_pairs_per_cycle": 0,
            "prompts_per_cycle": self.train_prompts,
            "random_share": 1.0 if self.selection == "random" else self.random_share,
            "rm_epochs": self.rm_epochs,
            "policy_epochs": self.policy_epochs,
            "learning_rate": self.rm_learning_rate,
            "policy_learning_rate": self.policy_learning_rate,
            "beta": self.beta,
            "rm_pairs_prompts": self.rm_pairs_prompts,
            **({"lora_r": self.lora_r} if self.lora_r else {}),
            "min_win_rate": self.min_win_rate,
            "eval_prompts": self.eval_prompts,
            "seed": self.seed,
            "device": "cpu",
        }


@dataclass
class RoundReport:
    round: int
    judgments: int
    total_judgments: int
    rater_accuracy: float
    rm_accuracy: float | None
    hidden_score: float
    win_rate_vs_prev: float | None
    promoted: bool
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    # online RL: the last step's proxy reward, gold score and sqrt(KL), the alarms raised, and
    # the whole over-optimisation series ("series")
    rl: dict[str, Any] = field(default_factory=dict)
    kl: float | None = None  # the new policy's KL to its parent (the cycle's evaluation), nats
    length: float = 0.0  # mean characters of the policy's held-out samples

    def line(self) -> str:
        def fmt(v: float | None) -> str:
            return "  -  " if v is None else f"{v:.3f}"

        rl = (
            f"  RL reward {fmt(self.rl.get('reward'))} gold {fmt(self.rl.get('gold'))} "
            f"sqrtKL {fmt(self.rl.get('sqrt_kl'))} alarms {self.rl.get('alarms', 0)}"
            if self.rl
            else ""
        )
        return (
            f"round {self.round}: judgments {self.judgments:4d} (total {self.total_judgments:5d}) "
            f"rater~gold {fmt(self.rater_accuracy)}  RM acc {fmt(self.rm_accuracy)}  "
            f"gold {self.hidden_score:.4f}  win vs prev {fmt(self.win_rate_vs_prev)}  "
            f"KL {fmt(self.kl)}  length {self.length:5.1f}  "
            f"promoted {'yes' if self.promoted else 'no '}  {self.seconds:5.1f}s{rl}"
        )

    def timing_line(self) -> str:
        from workers.steps import STEP_WEIGHTS

        steps = [n for n in STEP_WEIGHTS if n in self.timings]
        return "    cycle steps (s): " + " ".join(f"{n} {self.timings[n]:.1f}" for n in steps)


class Simulation:
    """Owns one simulated project; :meth:`run` yields a :class:`RoundReport` per round."""

    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.workdir = Path(config.workdir or f"var/simulate/seed-{config.seed}-{config.selection}")
        if config.rule not in (*RULES, GOLD_HH):
            raise ValueError(
                f"unknown hidden rule {config.rule!r}; choose from {[*sorted(RULES), GOLD_HH]}"
            )
        if config.policy not in POLICY_METHODS:
            raise ValueError(f"unknown policy {config.policy!r}; choose from {POLICY_METHODS}")
        if config.prompts not in ("topics", "hh"):
            raise ValueError(f"prompts must be 'topics' or 'hh', got {config.prompts!r}")
        needs_file = config.rule == GOLD_HH or config.prompts == "hh"
        if needs_file and not Path(config.pairs_file).is_file():
            raise ValueError(f"the HH-RLHF sample is needed: no file at {config.pairs_file!r}")
        self.judge = gold_judge(config)
        # a rater's strength: 1 + min(3, int(gold gap * scale)); rules score in [0, 1], the
        # gold reward model in reward units (its differences are mostly within +-2)
        self.gap_scale = 20.0 if config.rule in RULES else 2.0

    # ------------------------------------------------------------ setup
    def setup(self) -> None:
        from django.contrib.auth import get_user_model

        from annotation.models import Membership, Project, Prompt, Role
        from annotation.services.prompts import messages_hash
        from training.tiny import write_tiny_causal_lm

        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.cfg.base_model:
            base = Path(shutil.copytree(self.cfg.base_model, self.workdir / "base"))
        else:
            base = write_tiny_causal_lm(self.workdir / "base", seed=self.cfg.seed)
        tag = f"{self.cfg.selection}-{self.cfg.seed}-{time.time_ns() % 10**9}"
        self.project = Project.objects.create(
            name=f"Simulation {tag}",
            slug=f"sim-{tag}",
            task_kinds=["pairwise"],
            overlap=1,
            base_model=str(base),
            samples_per_prompt=self.cfg.k,
            temperature=1.0,
            top_p=1.0,
            max_new_tokens=self.cfg.max_new_tokens,
            trainers=["rm", self.cfg.policy],
            auto_retrain=False,
        )
        user_model = get_user_model()
        self.raters = []
        for i in range(self.cfg.raters):
            user = user_model.objects.create(username=f"sim-{tag}-rater{i}")
            Membership.objects.create(project=self.project, user=user, role=Role.LABELER)
            self.raters.append(user)
        self.manager = user_model.objects.create(username=f"sim-{tag}-manager")
        Membership.objects.create(project=self.project, user=self.manager, role=Role.MANAGER)
        for i, messages in enumerate(self._prompt_messages()):
            Prompt.objects.create(
                project=self.project,
                messages=messages,
                content_hash=messages_hash(messages),
                split="train" if i < self.cfg.train_prompts else "eval",
            )
        self.eval_messages = [
            p.messages
            for p in Prompt.objects.filter(project=self.project, split="eval").order_by("id")
        ]
        self.eval_pairs = self._rm_eval_pairs(str(base))

    def _prompt_messages(self) -> list[list[dict[str, str]]]:
        n = self.cfg.train_prompts + self.cfg.eval_prompts
        if self.cfg.prompts == "hh":
            from training.gold import hh_prompts

            found = hh_prompts(self.cfg.pairs_file, n)
            if len(found) < n:
                raise ValueError(f"the HH sample has {len(found)} different prompts, not {n}")
            return found
        topics = ["the sea", "a city", "music", "a tree", "the moon", "bread", "a river", "time"]
        return [
            [{"role": "user", "content": f"Say something about {topics[i % 8]} ({i})."}]
            for i in range(n)
        ]

    def cleanup(self) -> None:
        """Delete the simulated project (its tasks, judgments, runs and versions go with it),
        its users and its models (the work folder and the cycles' artifact folders), unless
        ``keep``: a simulation leaves nothing behind."""
        from django.contrib.auth import get_user_model
        from django.db import transaction

        from annotation.models import Response
        from workers.pipelines import project_dir

        if self.cfg.keep or not hasattr(self, "project"):
            return
        users = [u.id for u in (*self.raters, self.manager)]
        artifacts = project_dir(self.project.id)  # every cycle's models, records and caches
        with transaction.atomic():
            # responses first: they protect the model versions that generated them
            Response.objects.filter(prompt__project=self.project).delete()
            self.project.delete()
            get_user_model().objects.filter(id__in=users).delete()
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(artifacts, ignore_errors=True)

    def _scores(self, samples: list[list[str]]) -> list[list[float]]:
        """The gold score of every held-out sample, by prompt."""
        flat = self.judge(
            [(p, t) for p, group in zip(self.eval_messages, samples, strict=True) for t in group]
        )
        out, i = [], 0
        for group in samples:
            out.append(flat[i : i + len(group)])
            i += len(group)
        return out

    def _sample(self, path: str, k: int, seed: int) -> list[list[str]]:
        from training.generate import generate
        from training.modeling import load_causal_lm, load_tokenizer, pick_device

        model = load_causal_lm(path, pick_device("cpu"))
        samples = generate(
            model,
            load_tokenizer(path),
            self.eval_messages,
            k=k,
            max_new_tokens=self.cfg.max_new_tokens,
            seed=seed,
            batch_size=32,
        )
        return [[s.text for s in group] for group in samples]

    def _rm_eval_pairs(self, base: str) -> list[tuple[Any, str, str]]:
        """Held-out (prompt, better, worse) by the hidden rule, from base samples."""
        pairs = []
        samples = self._sample(base, 12, 999)
        for prompt, texts, scores in zip(
            self.eval_messages, samples, self._scores(samples), strict=True
        ):
            for i in range(0, len(texts) - 1, 2):
                (a, sa), (b, sb) = (texts[i], scores[i]), (texts[i + 1], scores[i + 1])
                if sa != sb:
                    better, worse = (a, b) if sa > sb else (b, a)
                    pairs.append((prompt, better, worse))
        return pairs

    # ------------------------------------------------------------ raters
    def _choose(self, scores: dict[int, float]) -> tuple[int, bool]:
        """The preferred of two responses (by id), from their gold scores, and whether it agrees
        with the gold.

        Decided on ids in sorted order, never on the (randomly shuffled) display order, so a
        seeded simulation gives the same judgments in every run."""
        a, b = sorted(scores)
        sa, sb = scores[a], scores[b]
        if sa == sb:
            return (a, b)[self.rng.randrange(2)], True
        right, wrong = (a, b) if sa > sb else (b, a)
        if self.rng.random() < self.cfg.flip:
            return wrong, False
        return right, True

    def label_open_tasks(self) -> tuple[int, float]:
        """Every simulated rater takes tasks until none is left; (judgments, agreement w/ rule)."""
        from annotation.errors import NoTaskAvailable
        from annotation.models import Response
        from annotation.services.assignment import assignment_claim_next
        from annotation.services.judgments import judgment_submit

        done, agree, idle = 0, 0, set[int]()
        while len(idle) < len(self.raters):
            for rater in self.raters:
                if rater.id in idle:
                    continue
                try:
                    claim = assignment_claim_next(project=self.project, rater=rater, gold_roll=1.0)
                except NoTaskAvailable:
                    idle.add(rater.id)
                    continue
                order = claim.assignment.display_order
                rows = Response.objects.filter(id__in=order).values_list(
                    "id", "text", "prompt__messages"
                )
                ids, items = zip(
                    *[(i, (messages, text)) for i, text, messages in rows], strict=True
                )
                scores = dict(zip(ids, self.judge(list(items)), strict=True))
                preferred, right = self._choose(scores)
                gap = abs(scores[order[0]] - scores[order[1]]) * self.gap_scale
                judgment_submit(
                    assignment_id=claim.assignment.id,
                    rater=rater,
                    body={
                        "choice": "AB"[order.index(preferred)],
                        "strength": 1 + min(3, int(gap * 20)),  # a clearer gap, a stronger choice
                    },
                    idempotency_key=f"sim-{claim.assignment.id}",
                )
                done += 1
                agree += right
        return done, agree / done if done else 1.0

    # ------------------------------------------------------------ cycle + measurements
    def cycle(self) -> Any:
        from annotation.models import ACTIVE_RUN_STATUSES, RunStatus, TrainingRun
        from annotation.services.loop import retrain_claim

        run = retrain_claim(
            project=self.project,
            triggered_by="simulate",
            config=self.cfg.run_config(),
            enqueue=self.cfg.via_celery,
        )
        if run is None:
            raise RuntimeError("a cycle of the simulated project is already active")
        if self.cfg.via_celery:
            deadline = time.monotonic() + self.cfg.celery_timeout
            while time.monotonic() < deadline:
                run.refresh_from_db()
                if run.status not in ACTIVE_RUN_STATUSES:
                    break
                time.sleep(0.5)
        else:
            from workers.pipelines import cycle_execute

            cycle_execute(run_id=run.id)
        run = TrainingRun.objects.get(id=run.id)
        if run.status != RunStatus.SUCCEEDED:
            raise RuntimeError(f"cycle {run.id} ended {run.status}: {run.error[:2000]}")
        return run

    def rm_accuracy(self) -> float | None:
        from annotation.models import ModelVersion
        from training.generate import score
        from training.modeling import load_reward_model, load_tokenizer, pick_device

        rm = ModelVersion.objects.filter(
            project=self.project, kind="reward", is_active=True
        ).first()
        if rm is None or not self.eval_pairs:
            return None
        tok = load_tokenizer(rm.artifact_path)
        model = load_reward_model(rm.artifact_path, pick_device("cpu"), tok.pad_token_id)
        better = score(model, tok, [(p, b) for p, b, _ in self.eval_pairs])
        worse = score(model, tok, [(p, w) for p, _, w in self.eval_pairs])
        return sum(b > w for b, w in zip(better, worse, strict=True)) / len(self.eval_pairs)

    def policy_path(self) -> str:
        from annotation.models import ModelVersion

        active = ModelVersion.objects.filter(
            project=self.project, kind="policy", is_active=True
        ).first()
        return active.artifact_path if active else self.project.base_model

    def policy_samples(self, path: str) -> list[list[str]]:
        return self._sample(path, self.cfg.eval_samples, 12345)

    def run(self, report: Callable[[RoundReport], None] = lambda r: None) -> list[RoundReport]:
        """Set up, round 0 (bootstrap candidates), ``rounds`` rounds; then :meth:`cleanup`."""
        try:
            return self._rounds(report)
        finally:
            self.cleanup()

    def _rounds(self, report: Callable[[RoundReport], None]) -> list[RoundReport]:
        self.setup()
        reports: list[RoundReport] = []
        prev = self.policy_samples(self.project.base_model)
        prev_scores = self._scores(prev)
        total = 0
        t0 = time.perf_counter()
        run = self.cycle()  # round 0: bootstrap candidates
        r0 = RoundReport(
            0,
            0,
            0,
            1.0,
            None,
            _mean(prev_scores),
            None,
            False,
            time.perf_counter() - t0,
            run.timings,
            length=_mean_length(prev),
        )
        reports.append(r0)
        report(r0)
        for rnd in range(1, self.cfg.rounds + 1):
            t0 = time.perf_counter()
            n, agreement = self.label_open_tasks()
            total += n
            run = self.cycle()
            samples = self.policy_samples(self.policy_path())
            scores = self._scores(samples)
            rec = RoundReport(
                rnd,
                n,
                total,
                agreement,
                self.rm_accuracy(),
                _mean(scores),
                _win_rate(scores, prev_scores),
                bool(run.metrics.get("register", {}).get("promoted")),
                time.perf_counter() - t0,
                run.timings,
                rl_summary(run, self.cfg.policy),
                kl=_evaluated_kl(run),
                length=_mean_length(samples),
            )
            prev_scores = scores
            reports.append(rec)
            report(rec)
        return reports


def rl_summary(run: Any, method: str) -> dict[str, Any]:
    """The last point of the cycle's over-optimisation series (proxy reward, gold score, sqrt(KL)),
    the alarms raised and the series; empty for DPO or a cycle that skipped the RL trainer."""
    step = run.steps.filter(name="policy").first()
    result = step.result if step is not None else {}
    series = result.get(f"{method}/overoptimization") or []
    if not series:
        return {}
    return {**series[-1], "alarms": len(result.get(f"{method}/alarms") or []), "series": series}


def gold_judge(config: SimConfig) -> Callable[[list[tuple[Any, str]]], list[float]]:
    """The raters' hidden preference as a batch scorer of (prompt, response): a text rule of
    ``RULES``, or the MiniLM reward model trained once on HH-RLHF (:mod:`training.gold`)."""
    if config.rule == GOLD_HH:
        from training.gold import RewardModelGold, ensure_hh_gold

        return RewardModelGold(ensure_hh_gold(config.pairs_file, config.gold_cache))
    rule = RULES[config.rule]
    return lambda items: [rule(text) for _, text in items]


def _mean(scores: list[list[float]]) -> float:
    flat = [x for group in scores for x in group]
    return sum(flat) / len(flat) if flat else 0.0


def _mean_length(samples: list[list[str]]) -> float:
    flat = [len(t) for group in samples for t in group]
    return sum(flat) / len(flat) if flat else 0.0


def _win_rate(new: list[list[float]], old: list[list[float]]) -> float:
    """Share of held-out samples (paired by prompt and index) whose gold score beats the
    previous round's (ties 0.5)."""
    wins = [
        1.0 if a > b else 0.5 if a == b else 0.0
        for ga, gb in zip(new, old, strict=True)
        for a, b in zip(ga, gb, strict=True)
    ]
    return sum(wins) / len(wins) if wins else 0.5


def _evaluated_kl(run: Any) -> float | None:
    """The KL to its parent of the cycle's (first) evaluated policy, from its evaluate step."""
    step = run.steps.filter(name="evaluate").first()
    evaluation = step.result if step is not None else {}
    kls = [v["kl"] for v in evaluation.values() if isinstance(v, dict) and "kl" in v]
    return kls[0] if kls else None
