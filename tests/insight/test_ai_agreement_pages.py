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
