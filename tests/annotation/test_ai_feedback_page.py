"""The manager's AI feedback page (views/ai_feedback.py): the constitution editor, "start an AI
pass", the pass list; access, CSP, escaping and bad input."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation import models
from annotation.services import ai_passes
from annotation.services.constitutions import constitution_save
from tests.csp import inline_code
from tests.factories import ProjectFactory, make_rater, make_task

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_url(project) -> str:
    return f"/manage/projects/{project.id}/ai-feedback/"


@pytest.fixture
def sent(monkeypatch):
    from config import celery

    names: list[str] = []
    monkeypatch.setattr(celery, "send", lambda name, *args: names.append(name))
    return names


def test_the_page_is_linked_from_the_manager_nav_and_has_its_parts(project, manager):
    client = client_for(manager)
    runs = client.get(f"/manage/projects/{project.id}/runs/").content.decode()
    assert f'href="{page_url(project)}"' in runs
    page = client.get(page_url(project))
    assert page.status_code == 200
    html = page.content.decode()
    assert inline_code(html) == []
    for element in (
        'id="constitution-form"',
        'id="constitution-principles"',
        'id="ai-pass-form"',
        'id="ai-pass-list"',
        'id="ai-agreement"',
        "one principle per line",
        "No constitution yet",
        "Agreement appears after an AI pass",
    ):
        assert element in html
    assert 'aria-current="page">AI feedback' in html


def test_outsiders_get_404_and_raters_403(project, rater):
    outsider = make_rater(ProjectFactory(), role="manager")
    assert client_for(outsider).get(page_url(project)).status_code == 404
    assert client_for(rater).get(page_url(project)).status_code == 403
    denied = client_for(rater).post(page_url(project) + "constitution/", {"principles": "x"})
    assert denied.status_code == 403
    assert not models.Constitution.objects.exists()


def test_a_manager_edits_the_constitution_one_line_per_principle(project, manager):
    client = client_for(manager)
    saved = client.post(
        page_url(project) + "constitution/",
        {"principles": "Be helpful.\r\n\r\n  Be <b>honest</b>.  \r\n"},
        follow=True,
    )
    assert saved.status_code == 200
    current = models.Constitution.objects.get(project=project)
    assert (current.version, current.principles) == (1, ["Be helpful.", "Be <b>honest</b>."])
    html = saved.content.decode()
    assert "Constitution saved as version 1" in html
    assert "Be &lt;b&gt;honest&lt;/b&gt;." in html  # escaped, in the editor and the history
    assert "<b>honest</b>" not in html
    assert 'data-version="1"' in html
    again = client.post(
        page_url(project) + "constitution/",
        {"principles": "Be helpful.\nBe <b>honest</b>."},
        follow=True,
    )
    assert "No change: version 1 is still current" in again.content.decode()
    client.post(page_url(project) + "constitution/", {"principles": "Be honest."})
    history = client.get(page_url(project)).content.decode()
    assert "History (2 versions)" in history


def test_a_bad_constitution_is_a_400_that_keeps_the_text(project, manager):
    long_line = "y" * 501
    answer = client_for(manager).post(
        page_url(project) + "constitution/", {"principles": f"fine\n{long_line}"}
    )
    assert answer.status_code == 400
    html = answer.content.decode()
    assert 'id="constitution-error"' in html
    assert "Principle 2 has 501 characters" in html
    assert long_line in html
    empty = client_for(manager).post(page_url(project) + "constitution/", {"principles": "\n \n"})
    assert empty.status_code == 400
    assert "got 0" in empty.content.decode()
    assert not models.Constitution.objects.exists()


def test_a_manager_starts_a_pass_and_sees_it_listed(
    project, manager, settings, tmp_path, sent, django_capture_on_commit_callbacks
):
    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    constitution_save(project=project, principles=["Helpful.", "Honest."], user=manager)
    for _ in range(3):
        make_task(project)
    client = client_for(manager)
    form = client.get(page_url(project)).content.decode()
    assert 'name="principles" value="1" checked' in form
    assert f'placeholder="{tmp_path / ai_passes.DEFAULT_JUDGE_MODEL}"' in form
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            page_url(project) + "passes/",
            {"method": "llm_judge", "model": "", "queue": "gpu", "limit": "2", "principles": ["1"]},
            follow=True,
        )
    assert answer.status_code == 200
    ai_pass = models.AIPass.objects.get(project=project)
    assert (ai_pass.queue, ai_pass.total, ai_pass.principle_indexes) == ("gpu", 2, [1])
    assert sent == ["ai.run_pass.gpu"]
    html = answer.content.decode()
    assert f"AI pass {ai_pass.id} queued on gpu" in html
    assert f'id="ai-pass-{ai_pass.id}"' in html
    assert 'data-polling="1"' in html
    models.AIPass.objects.filter(id=ai_pass.id).update(
        status="failed",
        done=1,
        progress=0.5,
        error="<script>alert(1)</script>",
        stats={"pairs": 1, "inconsistent": 1, "flip_rate": 1.0, "tokens": 77, "seconds": 1.25},
    )
    html = client.get(page_url(project)).content.decode()
    assert inline_code(html) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "100.0 %" in html  # flip rate
    assert 'data-field="tokens">77<' in html
    assert 'data-polling="0"' in html


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"method": "llm_judge", "model": "/m", "limit": "ten"}, "limit must be a whole number"),
        ({"method": "llm_judge", "model": "/m", "limit": "0"}, "limit must be an integer from 1"),
        ({"method": "reward_model"}, "no active reward model"),
        ({"method": "something"}, "method must be one of"),
        ({"method": "llm_judge", "model": "/m", "queue": "tpu"}, "queue must be one of"),
    ],
)
def test_a_bad_pass_form_is_a_400_naming_the_problem(project, manager, sent, body, message):
    constitution_save(project=project, principles=["Helpful."], user=manager)
    make_task(project)
    answer = client_for(manager).post(page_url(project) + "passes/", body)
    assert answer.status_code == 400
    html = answer.content.decode()
    assert 'id="ai-pass-error"' in html
    assert message in html
    assert not models.AIPass.objects.exists()
    assert sent == []


def test_a_manager_starts_a_cai_batch_and_reads_its_revisions_escaped(
    project, manager, rater, settings, tmp_path, sent, django_capture_on_commit_callbacks
):
    from tests.factories import PromptFactory

    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    constitution_save(project=project, principles=["Helpful.", "Honest."], user=manager)
    prompts = [
        PromptFactory(project=project, messages=[{"role": "user", "content": f"<i>q{i}</i>"}])
        for i in range(3)
    ]
    client = client_for(manager)
    assert (
        "Constitutional AI (answer, critique, revise)"
        in client.get(page_url(project)).content.decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            page_url(project) + "passes/",
            {"method": "cai", "queue": "gpu", "limit": "2", "principles": ["1"], "verify": "1"},
            follow=True,
        )
    assert answer.status_code == 200
    ai_pass = models.AIPass.objects.get(project=project)
    assert (ai_pass.method, ai_pass.queue, ai_pass.total) == ("cai", "gpu", 2)
    assert (ai_pass.principle_indexes, ai_pass.stats) == ([1], {"verify_tasks": True})
    assert ai_pass.task_ids == [p.id for p in prompts[:2]]
    assert sent == ["ai.run_cai.gpu"]
    html = answer.content.decode()
    assert f"Constitutional AI batch {ai_pass.id} queued on gpu" in html
    detail = f"{page_url(project)}passes/{ai_pass.id}/revisions/"
    assert f'href="{detail}"' in html
    # what the worker stores (workers/cai.py), with hostile model output
    original = models.Response.objects.create(
        prompt=prompts[0],
        text="<script>alert('o')</script>",
        origin=models.Origin.MODEL,
        generation_params={"ai_pass": ai_pass.id, "cai": "original", "dropped": None},
    )
    revised = models.Response.objects.create(
        prompt=prompts[0],
        text="<b>revised</b>",
        origin=models.Origin.REVISION,
        parent=original,
        generation_params={"ai_pass": ai_pass.id, "critique": "c", "principle": "Honest."},
    )
    models.Response.objects.create(
        prompt=prompts[1],
        text="<u>same</u>",
        origin=models.Origin.MODEL,
        generation_params={"ai_pass": ai_pass.id, "cai": "original", "dropped": "identical"},
    )
    models.AIJudgment.objects.create(
        ai_pass=ai_pass,
        project=project,
        method="cai",
        model_name="m",
        constitution=ai_pass.constitution,
        principle_index=1,
        principle="Honest.",
        chosen_response=revised,
        rejected_response=original,
        consistent=True,
        confidence=1.0,
        critique="<img src=x onerror=alert(1)>",
    )
    models.AIPass.objects.filter(id=ai_pass.id).update(
        status="succeeded",
        done=2,
        progress=1.0,
        stats={"verify_tasks": True, "kept": 1, "tokens": 50, "seconds": 1.0},
    )
    listed = client.get(page_url(project)).content.decode()
    assert 'data-field="pairs">1<' in listed
    assert 'data-field="tokens">50<' in listed
    page = client.get(detail)
    assert page.status_code == 200
    html = page.content.decode()
    assert inline_code(html) == []
    for raw, escaped in (
        ("<script>alert('o')</script>", "&lt;script&gt;alert(&#x27;o&#x27;)&lt;/script&gt;"),
        ("<b>revised</b>", "&lt;b&gt;revised&lt;/b&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("<i>q0</i>", "&lt;i&gt;q0&lt;/i&gt;"),
        ("<u>same</u>", "&lt;u&gt;same&lt;/u&gt;"),
    ):
        assert raw not in html
        assert escaped in html
    assert "identical" in html
    assert client_for(rater).get(detail).status_code == 403
    other = make_rater(ProjectFactory(), role="manager")
    assert client_for(other).get(detail).status_code == 404
    labeling = models.AIPass.objects.create(project=project, method="llm_judge")
    assert client.get(f"{page_url(project)}passes/{labeling.id}/revisions/").status_code == 404


def test_a_bad_cai_form_is_a_400_naming_the_problem(project, manager, settings, tmp_path, sent):
    (tmp_path / ai_passes.DEFAULT_JUDGE_MODEL).mkdir()
    settings.MODELS_DIR = tmp_path
    answer = client_for(manager).post(page_url(project) + "passes/", {"method": "cai"})
    assert answer.status_code == 400
    assert "needs a constitution" in answer.content.decode()
    constitution_save(project=project, principles=["Helpful."], user=manager)
    answer = client_for(manager).post(
        page_url(project) + "passes/", {"method": "cai", "limit": "x"}
    )
    assert answer.status_code == 400
    assert "limit must be a whole number of prompts" in answer.content.decode()
    assert 'value="cai" id="ai-method-cai" checked' in answer.content.decode()
    assert not models.AIPass.objects.exists()
    assert sent == []


def test_a_failed_pass_has_a_retry_button_that_queues_it_again_once(
    project, manager, rater, sent, django_capture_on_commit_callbacks
):
    constitution_save(project=project, principles=["Helpful."], user=manager)
    make_task(project)
    ai_pass = ai_passes.ai_pass_start(
        project=project, user=manager, method="llm_judge", model="/m", enqueue=False
    )
    client = client_for(manager)
    retry = page_url(project) + f"passes/{ai_pass.id}/retry/"
    assert f'id="ai-pass-retry-{ai_pass.id}"' not in client.get(page_url(project)).content.decode()
    refused = client.post(retry)
    assert refused.status_code == 409
    assert "is queued: only a failed pass can be retried" in refused.content.decode()
    assert 'id="ai-retry-error"' in refused.content.decode()
    ai_passes.ai_pass_fail(pass_id=ai_pass.id, error="worker lost")
    html = client.get(page_url(project)).content.decode()
    assert f'action="{retry}"' in html
    assert inline_code(html) == []
    assert client_for(rater).post(retry).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(retry, follow=True)
    assert answer.status_code == 200
    assert f"AI pass {ai_pass.id} queued again on cpu: it resumes at 0 of 1." in (
        answer.content.decode()
    )
    ai_pass.refresh_from_db()
    assert (ai_pass.status, ai_pass.error, ai_pass.finished_at) == ("queued", "", None)
    assert sent == ["ai.run_pass.cpu"]
    assert client.post(retry).status_code == 409  # queued again: a second click queues nothing
    assert sent == ["ai.run_pass.cpu"]
    assert client.post(page_url(project) + "passes/99999/retry/").status_code == 404
