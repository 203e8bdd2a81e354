"""A manager edits the constitution on the AI feedback page, starts an AI pass and reads the
AI-vs-human agreement panel. The pass runs its Celery task in-process (``apply``) when the
request commits, with the deterministic fake judge in place of a model (the model field carries
the fake judge's spec), so the test takes seconds; the real worker path is tested in
tests/workers/test_ai_pass.py. Screenshot: test-artifacts/screenshots/ai-feedback.png.
"""

from __future__ import annotations

import numpy as np
import pytest

from annotation import models
from annotation.services import ai_passes
from tests.factories import make_rater
from tests.insight import ai_rows
from tests.insight.sim import make_pairwise_tasks, make_raters
from training.judges import load_judge
from workers import ai_feedback

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Prefers the response that says "good" more often; its position bias makes the pairs where
# both say it equally often inconsistent; the noise spreads its confidence.
FAKE_SPEC = "marker=good,bias=0.3,scale=1.5,noise=0.2"


def _judged_project(project: models.Project, n: int = 24) -> None:
    """n pairwise tasks whose "good" response sits at a random position; three raters prefer it
    80% of the time; every eighth task has "good" in both responses (the judge flips there)."""
    rng = np.random.default_rng(3)
    raters = make_raters(project, 3)
    for i, (task, responses) in enumerate(make_pairwise_tasks(project, n)):
        good = int(rng.integers(2))
        for k, response in enumerate(responses):
            says = k == good or i % 8 == 0
            response.text = f"Answer {k}: " + ("good, " if says else "") + "the details."
            response.save(update_fields=["text"])
        for rater in raters:
            ai_rows.human(task, rater, good if rng.random() < 0.8 else 1 - good)


def test_constitution_then_pass_then_agreement(open_session, project, monkeypatch) -> None:
    _judged_project(project)
    manager = make_rater(project, role="manager")
    monkeypatch.setattr(
        ai_feedback, "load_judge", lambda method, model, device: load_judge("fake", model)
    )
    monkeypatch.setattr(
        ai_passes, "enqueue_pass", lambda p: ai_feedback.run_pass_cpu.apply(args=[p.id])
    )
    session = open_session(manager)
    page = session.page
    session.goto(f"/manage/projects/{project.id}/ai-feedback/")

    page.fill("#constitution-principles", "Prefer the correct answer.\nPrefer the clearer answer.")
    page.click("#constitution-save")
    page.wait_for_selector("ul.messages")
    assert "Constitution saved as version 1" in page.inner_text("ul.messages")

    page.fill("#ai-model", FAKE_SPEC)
    page.click("#ai-pass-start")
    page.wait_for_selector("ul.messages >> text=AI pass")
    ai = models.AIPass.objects.get(project=project)
    assert ai.status == "succeeded", ai.error
    assert models.AIJudgment.objects.filter(ai_pass=ai).count() == 48  # 24 tasks x 2 principles

    panel = page.locator(f"#ai-agreement-{ai.id}")
    assert panel.is_visible()
    rows = panel.locator(".ai-agreement-table tbody tr")
    assert rows.count() == 3  # two principles and overall
    kappa = panel.locator("tr[data-principle=overall] td[data-ai=kappa]").inner_text()
    ceiling = panel.locator("tr[data-principle=overall] td[data-ai=ceiling]").inner_text()
    assert kappa[0].isdigit() or kappa.startswith("-"), kappa
    assert "[" in kappa  # figures with their intervals
    assert "[" in ceiling
    assert "Prefer the correct answer." in panel.inner_text()
    assert "Calibration" in panel.inner_text()
    assert ai.stats["inconsistent"] == 6  # tasks 0, 8 and 16 under both principles
    assert page.get_attribute("#ai-pass-list", "data-polling") == "0"
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    session.screenshot("ai-feedback")
    assert session.errors == []

    session.goto(f"/manage/projects/{project.id}/")
    assert f"pass {ai.id} (llm_judge)" in page.inner_text("[data-ai-card]")
