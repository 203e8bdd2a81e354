"""The AI labeling pass on the queue: a judge from ``training.judges`` over a pass's tasks.

``ai.run_pass.cpu`` / ``ai.run_pass.gpu`` (one name per queue, routed in ``config/celery.py``) carry
the pass id only. :func:`pass_execute` claims the pass, loads the judge once
(``load_judge(method, model)``; the ``cpu`` queue runs it on the CPU, ``gpu`` picks the
accelerator) and, principle by principle, judges the pairs not stored yet in batches of
``AI_JUDGE_BATCH`` pairs (both orders, inside the judge), storing each batch and the pass's
progress and cost before the next (``annotation/services/ai_passes.py``). A retried pass resumes
where the stored verdicts end. A permanent error fails the pass with the traceback's end stored;
a lost database or broker connection is retried with backoff like a training cycle.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

from django.db import InterfaceError, OperationalError

from annotation.models import AIPass
from annotation.services import ai_passes
from config.celery import app
from training.contract.records import as_prompt
from training.judges import Judge, PairToJudge, Verdict

MAX_RETRIES = 5
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


def batch_size() -> int:
    """Pairs per judge call and per stored batch (``AI_JUDGE_BATCH``, default 16)."""
    return max(1, int(os.environ.get("AI_JUDGE_BATCH", "16")))


def load_judge(method: str, model: str, *, device: str) -> Judge:
    """The judge for a pass (a seam: tests replace it with a fake judge)."""
    from training.judges import load_judge as load

    return load(method, model, device=device, batch_size=min(batch_size(), 8))


def _judge_pairs(
    judge: Judge, pairs: list[ai_passes.TaskPair], principle: str, guidelines: str
) -> list[Verdict]:
    todo = [
        PairToJudge(
            p.task_id, as_prompt(p.messages, f"task {p.task_id}"), p.first_text, p.second_text
        )
        for p in pairs
    ]
    return judge.judge(todo, principle=principle, guidelines=guidelines)


def pass_execute(*, pass_id: int) -> str:
    """Run the pass to its end; returns its final status ("skipped" for a finished pass)."""
    if not ai_passes.ai_pass_claim(pass_id=pass_id):
        return "skipped"
    ai_pass = AIPass.objects.select_related("project", "constitution").get(id=pass_id)
    try:
        device = "cpu" if ai_pass.queue == "cpu" else "auto"
        judge = load_judge(ai_pass.method, ai_pass.model_path, device=device)
        guidelines = ai_pass.project.guidelines
        for index, principle in ai_passes.ai_pass_principles(ai_pass):
            pending = ai_passes.ai_pass_pending(ai_pass=ai_pass, principle_index=index)
            for start in range(0, len(pending), batch_size()):
                batch = pending[start : start + batch_size()]
                began = time.perf_counter()
                verdicts = _judge_pairs(judge, batch, principle, guidelines)
                ai_passes.ai_judgments_store(
                    ai_pass=ai_pass,
                    principle_index=index,
                    principle=principle,
                    model_name=str(judge.name),
                    template_hash=str(judge.template_hash),
                    pairs=batch,
                    verdicts=verdicts,
                    seconds=time.perf_counter() - began,
                )
    except TRANSIENT_ERRORS:
        raise
    except Exception:
        ai_passes.ai_pass_fail(pass_id=pass_id, error=traceback.format_exc())
        return "failed"
    ai_passes.ai_pass_succeed(pass_id=pass_id)
    return "succeeded"


def run_with_retries(task: Any, pass_id: int, execute: Any = None) -> str:
    """``execute(pass_id=...)`` (default :func:`pass_execute`); a lost database or broker
    connection retries with backoff, and after the last retry the pass fails with the reason.
    Shared by the AI labeling pass and the CAI batch (``workers/cai.py``)."""
    try:
        return (execute or pass_execute)(pass_id=pass_id)
    except TRANSIENT_ERRORS as exc:
        if task.request.retries >= task.max_retries:
            ai_passes.ai_pass_fail(pass_id=pass_id, error=f"gave up after retries: {exc!r}")
            return "failed"
        raise task.retry(exc=exc, countdown=min(600, 5 * 2**task.request.retries)) from exc


@app.task(name="ai.run_pass.cpu", bind=True, max_retries=MAX_RETRIES)
def run_pass_cpu(self, pass_id: int) -> str:  # type: ignore[no-untyped-def]
    return run_with_retries(self, pass_id)


@app.task(name="ai.run_pass.gpu", bind=True, max_retries=MAX_RETRIES)
def run_pass_gpu(self, pass_id: int) -> str:  # type: ignore[no-untyped-def]
    return run_with_retries(self, pass_id)
