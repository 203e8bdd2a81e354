"""The Constitutional AI step on the queue: answer, critique, revise, for a batch of prompts.

``ai.run_cai.cpu`` / ``ai.run_cai.gpu`` (routed in ``config/celery.py``) carry an AIPass id (method
``cai``, started by :func:`annotation.services.ai_passes.start_cai_pass`; its ``task_ids`` are
prompt ids). :func:`cai_execute` claims the pass, loads the model once and runs
:func:`training.cai.critique_and_revise` over the prompts not done yet, ``AI_CAI_BATCH`` at a
time; after each batch, in one transaction holding the pass row, it stores per prompt

- the original answer: a ``Response`` (origin ``model``; ``generation_params`` has the pass id,
  the principle index, the tokens and, for an unusable revision, why it was dropped);
- when the revision is usable: the revised answer, a ``Response`` (origin ``revision``,
  ``parent`` = the original, ``generation_params`` = {"critique", "principle", ...}), and one
  ``AIJudgment`` (method ``cai``, chosen = revised, rejected = original, consistent, confidence 1:
  the method prefers its revision by construction; the critique kept for the reviewer); with
  ``stats.verify_tasks`` also a pairwise ``Task`` of the two (their order seeded per prompt, so
  the revision is not always shown first) that the judgment points to, for humans to verify;

and recounts the pass's done, progress and stats from the stored rows. Idempotent: a prompt is
done once its original is stored, and the check is repeated under the pass's row lock, so a
retried or duplicated message skips what is stored. An original answer the database cannot show
(empty, invalid text: :func:`annotation.textcheck.unreadable_reason`) stores no row: the prompt
is recorded as done-but-unusable in ``stats.unusable`` ({prompt id: reason}; counted in
``stats.dropped`` as ``original_<reason>``), so a retry does not generate it again and the pass
finishes. Nothing here touches human tasks' slots or judgments.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from annotation.models import (
    AIJudgment,
    AIMethod,
    AIPass,
    Origin,
    Prompt,
    Response,
    TaskKind,
)
from annotation.services import ai_passes
from annotation.services.tasks import TaskSpec, tasks_create
from annotation.textcheck import text_problem, unreadable_reason
from config.celery import app
from training.cai import CAIConfig, CAIPrompt, CAIResult, critique_and_revise, template_hash
from training.contract.records import as_prompt
from workers.ai_feedback import TRANSIENT_ERRORS, run_with_retries

MAX_RETRIES = 5


def batch_size() -> int:
    """Prompts per generation call and per stored batch (``AI_CAI_BATCH``, default 8)."""
    return max(1, int(os.environ.get("AI_CAI_BATCH", "8")))


def load_model(path: str, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) for the pass (a seam: tests count calls or swap it)."""
    from training.modeling import load_causal_lm, load_tokenizer, pick_device

    return load_causal_lm(path, pick_device(device)), load_tokenizer(path)


def _originals(ai_pass: AIPass) -> Any:
    return Response.objects.filter(
        prompt__project_id=ai_pass.project_id,
        origin=Origin.MODEL,
        generation_params__ai_pass=ai_pass.id,
    )


def _unusable(ai_pass: AIPass) -> dict[str, str]:
    """{prompt id (as a JSON key): why its original answer could not be stored}."""
    return dict(ai_pass.stats.get("unusable") or {})


def cai_pending(ai_pass: AIPass) -> list[Prompt]:
    """The pass's prompts without a stored (or an unusable) original answer, in order."""
    done = set(_originals(ai_pass).values_list("prompt_id", flat=True))
    done |= {int(key) for key in _unusable(ai_pass)}
    wanted = [i for i in ai_pass.task_ids if i not in done]
    rows = {p.id: p for p in Prompt.objects.filter(id__in=wanted, project_id=ai_pass.project_id)}
    return [rows[i] for i in wanted if i in rows]


def _usable(result: CAIResult) -> str | None:
    """Why the revision cannot be stored or trained on, or None."""
    if result.dropped:
        return result.dropped
    if unreadable_reason(result.revised) or text_problem(result.critique):
        return "invalid_text"
    return None


def cai_store(
    *,
    ai_pass: AIPass,
    results: Sequence[CAIResult],
    indexes: Sequence[int],
    model_name: str,
    seconds: float,
) -> int:
    """Store one batch (see the module docstring); returns the prompts newly stored.
    ``indexes[i]`` is the constitution index of the i-th principle the results were drawn from.

    Locks: the pass row (``SELECT ... FOR UPDATE``), for the done-check, the inserts and the
    recount, in one transaction."""
    source = f"cai:{model_name}"[-200:]
    verify = bool(ai_pass.stats.get("verify_tasks"))
    with transaction.atomic():
        locked = AIPass.objects.select_for_update().get(id=ai_pass.id)
        done = set(
            _originals(ai_pass)
            .filter(prompt_id__in=[r.key for r in results])
            .values_list("prompt_id", flat=True)
        )
        unusable = _unusable(locked)
        done |= {int(key) for key in unusable}
        fresh = [r for r in results if r.key not in done]
        lost_tokens = 0  # what the unusable answers cost: they have no row to count it on
        for r in fresh:
            why = unreadable_reason(r.original)
            if why is not None:
                unusable[str(r.key)] = why
                lost_tokens += r.tokens
        todo = [r for r in fresh if str(r.key) not in unusable]
        reasons = [_usable(r) for r in todo]
        originals = Response.objects.bulk_create(
            [
                Response(
                    prompt_id=r.key,
                    text=r.original,
                    origin=Origin.MODEL,
                    source=source,
                    generation_params={
                        "ai_pass": ai_pass.id,
                        "cai": "original",
                        "principle_index": indexes[r.principle_index],
                        "tokens": r.tokens,
                        "dropped": reason,
                    },
                )
                for r, reason in zip(todo, reasons, strict=True)
            ]
        )
        kept = [(r, o) for r, o, why in zip(todo, originals, reasons, strict=True) if why is None]
        revised = Response.objects.bulk_create(
            [
                Response(
                    prompt_id=r.key,
                    text=r.revised,
                    origin=Origin.REVISION,
                    source=source,
                    parent=original,
                    generation_params={
                        "critique": r.critique,
                        "principle": r.principle,
                        "ai_pass": ai_pass.id,
                        "principle_index": indexes[r.principle_index],
                    },
                )
                for r, original in kept
            ]
        )
        tasks: list[Any] = [None] * len(kept)
        if verify and kept:
            specs = []
            for (r, original), new in zip(kept, revised, strict=True):
                pair = (original.id, new.id)
                if random.Random(f"{ai_pass.id}:{r.key}").random() < 0.5:
                    pair = pair[::-1]
                specs.append(TaskSpec(TaskKind.PAIRWISE, r.key, pair))
            tasks = tasks_create(project=ai_pass.project, specs=specs)
        AIJudgment.objects.bulk_create(
            [
                AIJudgment(
                    ai_pass=ai_pass,
                    project_id=ai_pass.project_id,
                    task=task,
                    method=AIMethod.CAI,
                    model_name=model_name[:500],
                    constitution_id=ai_pass.constitution_id,
                    principle_index=indexes[r.principle_index],
                    principle=r.principle,
                    template_hash=template_hash(),
                    chosen_response=new,
                    rejected_response=original,
                    consistent=True,
                    confidence=1.0,
                    critique=r.critique,
                    tokens=r.tokens,
                )
                for (r, original), new, task in zip(kept, revised, tasks, strict=True)
            ]
        )
        _recount(locked, seconds, unusable, lost_tokens)
    return len(fresh)


def _recount(locked: AIPass, seconds: float, unusable: dict[str, str], lost_tokens: int) -> None:
    params = list(_originals(locked).values_list("generation_params", flat=True))
    dropped = Counter(p.get("dropped") for p in params if p.get("dropped"))
    dropped.update(f"original_{why}" for why in unusable.values())
    locked.done = min(len(params) + len(unusable), locked.total)
    locked.progress = locked.done / locked.total if locked.total else 1.0
    unusable_tokens = int(locked.stats.get("unusable_tokens", 0)) + lost_tokens
    locked.stats = {
        "verify_tasks": bool(locked.stats.get("verify_tasks")),
        "prompts": len(params) + len(unusable),
        "kept": len(params) + len(unusable) - sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),
        "unusable": dict(sorted(unusable.items())),
        "unusable_tokens": unusable_tokens,
        "tokens": sum(int(p.get("tokens") or 0) for p in params) + unusable_tokens,
        "seconds": round(float(locked.stats.get("seconds", 0.0)) + seconds, 3),
    }
    locked.save(update_fields=["done", "progress", "stats"])


def cai_execute(*, pass_id: int) -> str:
    """Run the CAI pass to its end; returns its final status ("skipped" for a finished pass)."""
    if not ai_passes.cai_pass_claim(pass_id=pass_id):
        return "skipped"
    ai_pass = AIPass.objects.select_related("project", "constitution").get(id=pass_id)
    try:
        if ai_pass.constitution is None:
            raise ValueError(f"CAI pass {pass_id} has no constitution")
        principles = ai_pass.constitution.principles
        indexes = list(ai_pass.principle_indexes or range(len(principles)))
        project = ai_pass.project
        config = CAIConfig(
            max_new_tokens=max(1, min(project.max_new_tokens, 512)),
            temperature=project.temperature,
            top_p=project.top_p if 0 < project.top_p <= 1 else 1.0,
            batch_size=batch_size(),
            seed=ai_pass.id,
        )
        pending = cai_pending(ai_pass)
        if pending:
            device = "cpu" if ai_pass.queue == "cpu" else "auto"
            model, tokenizer = load_model(ai_pass.model_path, device)
            for start in range(0, len(pending), batch_size()):
                batch = pending[start : start + batch_size()]
                began = time.perf_counter()
                results = critique_and_revise(
                    model,
                    tokenizer,
                    [CAIPrompt(p.id, as_prompt(p.messages, f"prompt {p.id}")) for p in batch],
                    [principles[i] for i in indexes],
                    config=config,
                )
                cai_store(
                    ai_pass=ai_pass,
                    results=results,
                    indexes=indexes,
                    model_name=ai_pass.model_path,
                    seconds=time.perf_counter() - began,
                )
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        ai_passes.ai_pass_fail(pass_id=pass_id, error=traceback.format_exc())
        return "failed"
    ai_passes.ai_pass_succeed(pass_id=pass_id)
    return "succeeded"


@app.task(name="ai.run_cai.cpu", bind=True, max_retries=MAX_RETRIES)
def run_cai_cpu(self, pass_id: int) -> str:  # type: ignore[no-untyped-def]
    return run_with_retries(self, pass_id, cai_execute)


@app.task(name="ai.run_cai.gpu", bind=True, max_retries=MAX_RETRIES)
def run_cai_gpu(self, pass_id: int) -> str:  # type: ignore[no-untyped-def]
    return run_with_retries(self, pass_id, cai_execute)
