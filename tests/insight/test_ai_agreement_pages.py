"""The overview's AI-vs-human card: shown once an AI pass exists, escaped, apart from the human
agreement."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.insight import ai_rows
from tests.insight.sim import judge_pairwise, make_pairwise_tasks, make_raters

pytestmark = pytest.mark.django_db


def test_overview_card(project, manager) -> None:
    client = Client()
    client.force_login(manager)
    url = f"/manage/projects/{project.id}/"
    assert b"data-ai-card" not in client.get(url).content
    tasks = make_pairwise_tasks(project, 10)
    judge_pairwise(project, tasks, make_raters(project, 2), seed=1)
    ai = ai_rows.ai_pass(project)
    for task, _ in tasks:
        ai_rows.verdict(ai, task, 0)
    page = client.get(url).content.decode()
    assert "data-ai-card" in page
    assert f"pass {ai.id} (llm_judge)" in page
    assert "10 tasks, 20 AI·human pairs" in page


def test_ai_feedback_page_panel_and_mix_form(project, manager) -> None:
    client = Client()
    client.force_login(manager)
    url = f"/manage/projects/{project.id}/ai-feedback/"
    assert "Agreement appears after an AI pass" in client.get(url).content.decode()
    tasks = make_pairwise_tasks(project, 10)
    judge_pairwise(project, tasks, make_raters(project, 2), seed=1)
    ai = ai_rows.ai_pass(project, principles=["<b>Be kind</b>", "Be brief."])
    for i, (task, _) in enumerate(tasks):
        ai_rows.verdict(ai, task, 0, principle_index=0)
        ai_rows.verdict(ai, task, None if i < 2 else 1, principle_index=1)
    page = client.get(url).content.decode()
    assert f'id="ai-agreement-{ai.id}"' in page
    assert "0. &lt;b&gt;Be kind&lt;/b&gt;" in page  # model-facing text, escaped
    assert "Overall (principles pooled)" in page
    assert "20 % <span" in page  # principle 1's flip rate: 2 of 10
    assert "Calibration" in page

    mix = f"/manage/projects/{project.id}/ai-feedback/mixing/"
    saved = client.post(mix, {"ai_training": "both", "ai_weight": "0.3", "ai_min_confidence": "0"})
    assert saved.status_code == 302
    project.refresh_from_db()
    assert (project.ai_training, project.ai_weight) == ("both", 0.3)
    bad = client.post(mix, {"ai_training": "ai", "ai_weight": "0.3", "ai_min_confidence": "0.2"})
    assert bad.status_code == 400
    assert "ai_min_confidence must be 0" in bad.content.decode()
    project.refresh_from_db()
    assert project.ai_training == "both"
    assert client.post(mix, {"ai_training": "ai", "ai_weight": "x"}).status_code == 400
