from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.demo import (
    DEMO_BOOTSTRAP,
    DEMO_GENERATION,
    DEMO_SLUG,
    demo_bootstrap,
    demo_setup,
)
from annotation.models import Membership, ModelKind, ModelVersion, Project, Task, TrainingRun

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_demo_is_idempotent_and_sets_a_missing_base_model(capsys):
    call_command("demo")
    project = Project.objects.get(slug=DEMO_SLUG)
    tasks = Task.objects.filter(project=project).count()
    assert tasks > 0
    assert project.base_model == ""
    assert not TrainingRun.objects.exists()  # nothing to sample from: no first cycle
    assert set(project.task_kinds) == {"pairwise", "ranking", "rating", "demonstration"}
    call_command("demo", "--base-model", "/models/base", "--no-bootstrap")
    call_command("demo", "--base-model", "/models/other")  # an existing base model is kept
    project.refresh_from_db()
    assert project.base_model == "/models/base"
    assert Task.objects.filter(project=project).count() == tasks
    assert Membership.objects.filter(project=project).count() == 5  # admin (owner) + 4 users
    assert "manager" in capsys.readouterr().out


def test_make_run_gives_a_fresh_demo_the_installed_model_and_queues_its_first_cycle(
    settings, tmp_path, capsys
):
    # What scripts/run.sh does, on a fresh database: install (a no-op here: the folder exists),
    # then `manage.py demo --base-model $MODELS_DIR/smollm2-135m-instruct`.
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert "manage.py base_model install smollm2-135m-instruct" in script
    assert re.search(r'manage\.py demo --base-model "\$MODELS_DIR/smollm2-135m-instruct"', script)
    installed = tmp_path / "smollm2-135m-instruct"
    installed.mkdir()
    (installed / "manifest.json").write_text("{}")
    call_command("demo", "--base-model", str(installed))
    project = Project.objects.get(slug=DEMO_SLUG)
    assert project.base_model == str(installed)
    assert {name: getattr(project, name) for name in DEMO_GENERATION} == DEMO_GENERATION
    run = TrainingRun.objects.get(project=project)
    assert (run.status, run.triggered_by) == ("queued", "demo")
    assert run.config == DEMO_BOOTSTRAP
    assert f"/manage/projects/{project.id}/runs/{run.id}/" in capsys.readouterr().out
    call_command("demo", "--base-model", str(installed))  # one first cycle, not one per start
    assert TrainingRun.objects.filter(project=project).count() == 1


def test_first_cycle_is_not_queued_again_once_candidates_were_generated():
    project, _ = demo_setup(base_model="/models/real")
    run = demo_bootstrap(project)
    assert run is not None
    TrainingRun.objects.filter(id=run.id).update(status="succeeded")
    prompt = project.prompts.first()
    prompt.responses.create(text="Boil it.", origin="model")
    assert demo_bootstrap(project) is None


def test_a_demo_on_the_old_tiny_model_moves_to_the_real_one():
    project, _ = demo_setup(base_model="/srv/app/var/models/demo-base")
    tiny_policy = ModelVersion.objects.create(
        project=project, name="tiny-dpo", kind=ModelKind.POLICY, trainer="dpo",
        status="ready", is_active=True, artifact_path="/a/dpo",
    )  # fmt: skip
    tiny_rm = ModelVersion.objects.create(
        project=project, name="tiny-rm", kind=ModelKind.REWARD, trainer="rm",
        status="ready", is_active=True, artifact_path="/a/rm",
    )  # fmt: skip
    project.prompts.first().responses.create(text="\x01tiny\x02", origin="model")
    demo_setup(base_model="/srv/app/var/models/smollm2-135m-instruct")
    project.refresh_from_db()
    assert demo_bootstrap(project) is not None  # the tiny model's candidates do not count
    assert project.base_model == "/srv/app/var/models/smollm2-135m-instruct"
    assert project.max_new_tokens == DEMO_GENERATION["max_new_tokens"]
    active = ModelVersion.objects.filter(project=project, is_active=True)
    assert [(v.trainer, v.artifact_path) for v in active] == [("base", project.base_model)]
    tiny_policy.refresh_from_db()
    tiny_rm.refresh_from_db()
    assert not tiny_policy.is_active
    assert not tiny_rm.is_active
    demo_setup(base_model="/elsewhere/model")  # a real base model is never replaced
    project.refresh_from_db()
    assert project.base_model == "/srv/app/var/models/smollm2-135m-instruct"


def test_site_run_defaults_are_written_into_each_run(settings):
    from annotation.services.loop import retrain_claim

    settings.LOOP_RUN_DEFAULTS = {"lora_r": 16, "prompts_per_cycle": 12}
    project, _ = demo_setup(base_model="/models/real")
    run = retrain_claim(project=project, triggered_by="manual", config={"prompts_per_cycle": 3})
    assert run is not None
    assert run.config == {"lora_r": 16, "prompts_per_cycle": 3}


def test_bad_site_run_defaults_stop_the_process():
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import _run_defaults

    assert _run_defaults("") == {}
    assert _run_defaults('{"lora_r": 8}') == {"lora_r": 8}
    for raw, needle in [("{", "not JSON"), ('{"lora_r": -1}', "lora_r"), ('{"x": 1}', "x")]:
        with pytest.raises(ImproperlyConfigured, match=needle):
            _run_defaults(raw)
