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

Each simulated rater prefers the response with the higher hidden score
but answers the other way with probability ``flip`` (default 0.16). Two raters then agree on a
pair ``(1 - flip)^2 + flip^2`` = 73 % of the time, the inter-rater agreement reported for real
preference data (InstructGPT ~73 %, HH-RLHF ~63-77 %). Equal hidden scores are a coin flip.

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
    rule: str = "lowercase"  # the raters' hidden rule: a key of RULES
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
                "gold_rule": self.rule,  # the hidden rule, logged as the gold score
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
            f"rater~hidden {fmt(self.rater_accuracy)}  RM acc {fmt(self.rm_accuracy)}  "
            f"hidden score {self.hidden_score:.4f}  win vs prev {fmt(self.win_rate_vs_prev)}  "
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
        if config.rule not in RULES:
            raise ValueError(f"unknown hidden rule {config.rule!r}; choose from {sorted(RULES)}")
        if config.policy not in POLICY_METHODS:
            raise ValueError(f"unknown policy {config.policy!r}; choose from {POLICY_METHODS}")
        self.score = RULES[config.rule]

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
        topics = ["the sea", "a city", "music", "a tree", "the moon", "bread", "a river", "time"]
        for i in range(self.cfg.train_prompts + self.cfg.eval_prompts):
            messages = [{"role": "user", "content": f"Say something about {topics[i % 8]} ({i})."}]
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
        for prompt, texts in zip(self.eval_messages, self._sample(base, 12, 999), strict=True):
            for i in range(0, len(texts) - 1, 2):
                a, b = texts[i], texts[i + 1]
                if self.score(a) != self.score(b):
                    better, worse = (a, b) if self.score(a) > self.score(b) else (b, a)
                    pairs.append((prompt, better, worse))
        return pairs

    # ------------------------------------------------------------ raters
    def _choose(self, texts: dict[int, str]) -> tuple[int, bool]:
        """The preferred of two responses (by id), and whether it agrees with the hidden rule.

        Decided on ids in sorted order, never on the (randomly shuffled) display order, so a
        seeded simulation gives the same judgments in every run."""
        a, b = sorted(texts)
        sa, sb = self.score(texts[a]), self.score(texts[b])
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
                texts = dict(Response.objects.filter(id__in=order).values_list("id", "text"))
                preferred, right = self._choose(texts)
                gap = abs(self.score(texts[order[0]]) - self.score(texts[order[1]]))
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
        self.setup()
        reports: list[RoundReport] = []
        prev = self.policy_samples(self.project.base_model)
        total = 0
        t0 = time.perf_counter()
        run = self.cycle()  # round 0: bootstrap candidates
        r0 = RoundReport(
            0,
            0,
            0,
            1.0,
            None,
            _mean_score(prev, self.score),
            None,
            False,
            time.perf_counter() - t0,
            run.timings,
        )
        reports.append(r0)
        report(r0)
        for rnd in range(1, self.cfg.rounds + 1):
            t0 = time.perf_counter()
            n, agreement = self.label_open_tasks()
            total += n
            run = self.cycle()
            samples = self.policy_samples(self.policy_path())
            rec = RoundReport(
                rnd,
                n,
                total,
                agreement,
                self.rm_accuracy(),
                _mean_score(samples, self.score),
                _win_rate(samples, prev, self.score),
                bool(run.metrics.get("register", {}).get("promoted")),
                time.perf_counter() - t0,
                run.timings,
                rl_summary(run, self.cfg.policy),
            )
            prev = samples
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


def _mean_score(samples: list[list[str]], score: Callable[[str], float]) -> float:
    flat = [score(t) for group in samples for t in group]
    return sum(flat) / len(flat) if flat else 0.0


def _win_rate(new: list[list[str]], old: list[list[str]], score: Callable[[str], float]) -> float:
    wins = [
        1.0 if score(a) > score(b) else 0.5 if score(a) == score(b) else 0.0
        for ga, gb in zip(new, old, strict=True)
        for a, b in zip(ga, gb, strict=True)
    ]
    return sum(wins) / len(wins) if wins else 0.5
