"""The manager's run pages: "Retrain now", the runs list, one run and its JSON (views/runs.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotation import models
from annotation.run_options import RUN_OPTIONS
from annotation.run_steps import RUN_STEPS
from annotation.services.prompts import messages_hash
from tests.csp import inline_code
from tests.factories import ProjectFactory, UserFactory, make_rater

pytestmark = pytest.mark.django_db


@pytest.fixture
def trainable(project):
    project.base_model = "/models/tiny"
    project.trainers = ["rm", "dpo"]
    project.save(update_fields=["base_model", "trainers"])
    messages = [{"role": "user", "content": "Say hi."}]
    models.Prompt.objects.create(
        project=project, messages=messages, content_hash=messages_hash(messages)
    )
    return project


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def runs_url(project) -> str:
    return f"/manage/projects/{project.id}/runs/"


def test_manager_sees_retrain_now_in_the_nav_and_on_the_runs_page(trainable, manager):
    client = client_for(manager)
    exports = client.get(f"/manage/projects/{trainable.id}/exports/").content.decode()
    assert "Retrain now" in exports
    assert f'action="/manage/projects/{trainable.id}/runs/retrain/"' in exports
    assert f'href="{runs_url(trainable)}"' in exports

    page = client.get(runs_url(trainable))
    assert page.status_code == 200
    html = page.content.decode()
    assert inline_code(html) == []
    assert 'id="retrain"' in html
    for name, option in RUN_OPTIONS.items():  # every option of the one schema, default shown
        assert f'name="opt_{name}"' in html
        assert f'placeholder="{option.default}"' in html
    assert 'name="trainers" value="rm" checked' in html
    assert 'name="trainers" value="kto">' in html  # offered, not one of the project's


def test_labeler_gets_403_and_never_sees_the_button(trainable, rater):
    client = client_for(rater)
    for url in (
        runs_url(trainable),
        f"{runs_url(trainable)}1/",
        f"{runs_url(trainable)}1/data/",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(f"{runs_url(trainable)}retrain/").status_code == 403
    assert not models.TrainingRun.objects.exists()
    home = client.get("/").content.decode()
    assert "Retrain now" not in home
    label = client.get(f"/projects/{trainable.id}/label/").content.decode()
    assert "Retrain now" not in label


def test_outsider_gets_404(trainable):
    client = client_for(UserFactory())
    assert client.get(runs_url(trainable)).status_code == 404
    assert client.post(f"{runs_url(trainable)}retrain/").status_code == 404


def test_active_run_is_named_with_a_link_and_a_second_start_refused(trainable, manager):
    run = models.TrainingRun.objects.create(
        project=trainable, status="running", current_step="policy"
    )
    client = client_for(manager)
    html = client.get(runs_url(trainable)).content.decode()
    assert f'<a href="{runs_url(trainable)}{run.id}/">{run.id}</a> is running' in html
    assert "Start retrain" not in html
    nav = client.get(f"/manage/projects/{trainable.id}/exports/").content.decode()
    assert f'href="{runs_url(trainable)}{run.id}/">Run {run.id} running · policy' in nav

    answer = client.post(f"{runs_url(trainable)}retrain/", {"trainers": ["rm"]}, follow=True)
    assert f"already running (run {run.id})" in answer.content.decode()
    assert models.TrainingRun.objects.count() == 1


def test_project_without_base_model_says_what_to_set(project, manager):
    client = client_for(manager)
    html = client.get(runs_url(project)).content.decode()
    assert "This project cannot train yet." in html
    assert "Set base_model to a local model folder" in html
    assert f"PATCH /api/projects/{project.id}/" in html
    assert "no prompts" in html
    assert "Start retrain" not in html
    answer = client.post(f"{runs_url(project)}retrain/", {"trainers": ["rm"]}, follow=True)
    assert "Set base_model" in answer.content.decode()
    assert not models.TrainingRun.objects.exists()


def test_post_creates_a_run_and_redirects_to_it(
    trainable, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = client_for(manager).post(
            f"{runs_url(trainable)}retrain/",
            {
                "trainers": ["rm", "dpo", "kto"],
                "opt_pairs_per_cycle": "8",
                "opt_min_win_rate": "0.55",
                "opt_device": "",  # empty: the worker's LOOP_DEVICE still decides
                "opt_seed": " ",
            },
        )
    run = models.TrainingRun.objects.get(project=trainable)
    assert answer.status_code == 302
    assert answer["Location"] == f"{runs_url(trainable)}{run.id}/"
    assert run.status == "queued"
    assert run.config == {"pairs_per_cycle": 8, "min_win_rate": 0.55}
    assert run.trainers == ["rm", "dpo", "kto"]
    assert run.triggered_by == f"manual:{manager.pk}"
    assert len(callbacks) == 1  # enqueued after commit, as from the API
    # People read who started it, not a user id.
    listing = client_for(manager).get(runs_url(trainable)).content.decode()
    assert f"{manager.username} (Retrain now)" in listing
    data = client_for(manager).get(f"{runs_url(trainable)}{run.id}/data/").json()
    assert data["triggered_by"] == f"{manager.username} (Retrain now)"


@pytest.mark.parametrize(
    ("post", "message"),
    [
        ({"trainers": ["rm"], "opt_random_share": "2"}, "config.random_share must be"),
        ({"trainers": ["rm"], "opt_seed": "1.5"}, "seed must be an integer"),
        ({"trainers": ["rm"], "opt_device": "cuda; rm -rf /"}, "exactly &#x27;auto&#x27;"),
        ({"trainers": ["rm"], "opt_bogus": "1"}, "Unknown run option"),
        ({"opt_seed": "1"}, "Pick at least one trainer"),
        ({"trainers": ["no-such-trainer"]}, "Unknown trainer"),
    ],
)
def test_bad_form_is_a_400_naming_the_field_and_creates_nothing(trainable, manager, post, message):
    answer = client_for(manager).post(f"{runs_url(trainable)}retrain/", post)
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not models.TrainingRun.objects.exists()


def test_bad_value_is_kept_and_marked(trainable, manager):
    html = (
        client_for(manager)
        .post(f"{runs_url(trainable)}retrain/", {"trainers": ["rm"], "opt_random_share": "2"})
        .content.decode()
    )
    assert 'name="opt_random_share" type="number" value="2"' in html
    assert 'aria-invalid="true"' in html


def finished_run(project) -> models.TrainingRun:
    """A succeeded run as the worker leaves it: steps, curve, evaluation, versions, tasks."""
    base = models.ModelVersion.objects.create(
        project=project, name="p-base", kind="policy", trainer="base", status="ready"
    )
    now = timezone.now()
    run = models.TrainingRun.objects.create(
        project=project,
        status="succeeded",
        trainers=["rm", "dpo"],
        current_step="done",
        progress=1.0,
        step_progress=1.0,
        started_at=now - timedelta(seconds=30),
        finished_at=now,
        config={"min_win_rate": 0.5},
        curve=[
            {"phase": "reward", "model": "rm", "i": i, "of": 4, "loss": 0.7 - 0.1 * i}
            for i in range(1, 5)
        ]
        + [
            {
                "phase": "policy",
                "model": "dpo",
                "i": i,
                "of": 3,
                "loss": 0.69,
                "rewards/accuracies": 0.5,
                "kl": 0.01 * i,
            }
            for i in range(1, 4)
        ],
        snapshot_max_judgment_id=42,
    )
    rm = models.ModelVersion.objects.create(
        project=project,
        name="p-r1-rm",
        kind="reward",
        trainer="rm",
        status="ready",
        training_run=run,
        is_active=True,
    )
    dpo = models.ModelVersion.objects.create(
        project=project,
        name="p-r1-dpo",
        kind="policy",
        trainer="dpo",
        status="ready",
        training_run=run,
        parent=base,
        is_active=True,
    )
    results = {
        "snapshot": {"judgments": 12, "new_judgments": 12, "max_judgment_id": 42},
        "records": {"pairs": 12},
        "reward": {"version": rm.id, "pairs": 12},
        "policy": {"parent": base.id, "dpo/version": dpo.id},
        "evaluate": {
            "judge": rm.id,
            "prompts": 8,
            str(dpo.id): {
                "win_rate": 0.75,
                "win_rate_low": 0.41,
                "win_rate_high": 0.93,
                "kl": 1.5,
                "mean_length": 9.0,
                "parent_mean_length": 7.5,
                "mean_reward": 0.3,
                "parent_mean_reward": 0.1,
                "prompts": 8.0,
                "passed": True,
                "reason": "win rate 0.750, KL 1.50",
            },
        },
        "register": {"promoted_policy": dpo.id, "active_reward": rm.id, "promoted": True},
        "generate": {"version": dpo.id, "prompts": 1, "responses": 0},
        "select": {"selected": 0},
        "tasks": {"tasks": 0},
    }
    for name, result in results.items():
        models.RunStep.objects.create(run=run, name=name, result=result, seconds=1.25)
    models.TrainingRun.objects.filter(id=run.id).update(
        metrics={
            n: {k: v for k, v in r.items() if not isinstance(v, dict)} for n, r in results.items()
        },
        timings=dict.fromkeys(results, 1.25),
    )
    run.refresh_from_db()
    return run


def test_json_endpoint_has_steps_curves_evaluation_verdict_lineage(
    trainable, manager, django_assert_max_num_queries
):
    run = finished_run(trainable)
    client = client_for(manager)
    with django_assert_max_num_queries(14):
        answer = client.get(f"{runs_url(trainable)}{run.id}/data/")
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    d = answer.json()
    assert d["active"] is False
    assert [s["name"] for s in d["steps"]] == [s.name for s in RUN_STEPS]
    assert {s["state"] for s in d["steps"]} == {"done"}
    assert d["steps"][2]["seconds"] == 1.25
    titles = {c["spec"]["title"]: c["spec"] for c in d["charts"]}
    assert set(titles) == {
        "Reward model: training loss",
        "DPO policy: training loss",
        "DPO policy: preference accuracy",
        "DPO policy: KL to the reference",
    }
    loss = titles["Reward model: training loss"]
    assert loss["x"] == {"label": "optimizer step", "unit": "", "kind": "linear", "integer": True}
    assert loss["y"] == {"label": "training loss", "unit": "nats"}
    assert [p["x"] for p in loss["series"][0]["points"]] == [1, 2, 3, 4]
    (row,) = d["evaluation"]
    assert (row["win_rate"], row["win_rate_low"], row["win_rate_high"]) == (0.75, 0.41, 0.93)
    assert row["length_change"] == 1.5
    point = d["evaluation_chart"]["spec"]["series"][0]["points"][0]
    assert (point["lo"], point["hi"]) == (0.41, 0.93)
    assert d["verdict"]["state"] == "promoted"
    assert d["verdict"]["text"] == "Promoted p-r1-dpo: win rate 0.750, KL 1.50."
    lineage = d["lineage"]
    assert lineage["judgments"] == 12
    assert lineage["parent"]["name"] == "p-base"
    assert lineage["judge"] == "p-r1-rm"
    assert [v["name"] for v in lineage["versions"]] == ["p-r1-rm", "p-r1-dpo"]
    assert lineage["versions"][1]["parent"] == "p-base"
    assert d["error"] is None


def test_json_endpoint_of_a_running_run_names_the_step_with_progress_and_eta(trainable, manager):
    finished_run(trainable)  # its timings estimate the steps still to come
    now = timezone.now()
    run = models.TrainingRun.objects.create(
        project=trainable,
        status="running",
        current_step="generate",
        step_progress=0.5,
        progress=0.7,
        started_at=now - timedelta(seconds=60),
        step_started_at=now - timedelta(seconds=10),
    )
    for name in ("snapshot", "records", "reward", "policy", "evaluate", "register"):
        models.RunStep.objects.create(run=run, name=name, result={}, seconds=2.0)
    d = client_for(manager).get(f"{runs_url(trainable)}{run.id}/data/").json()
    states = {s["name"]: s["state"] for s in d["steps"]}
    assert states["register"] == "done"
    assert states["generate"] == "running"
    assert states["select"] == states["tasks"] == "pending"
    assert d["current_step"] == "generate"
    assert d["step_progress"] == 0.5
    assert 9 <= d["step_eta_seconds"] <= 11  # 10 s for the first half
    assert d["eta_seconds"] == pytest.approx(d["step_eta_seconds"] + 2 * 1.25, abs=0.2)
    assert d["verdict"] == {
        "state": "not_promoted",
        "text": "Nothing promoted: no policy was evaluated.",
        "rule": "win rate ≥ 0.5 and KL ≤ 50 nats",
    }


def test_failed_run_shows_error_summary_and_where(trainable, manager):
    run = models.TrainingRun.objects.create(
        project=trainable,
        status="failed",
        current_step="reward",
        error=(
            "PermanentError: artifact is incomplete\nTraceback (most recent call last):\n"
            '  File "/app/workers/pipelines.py", line 9, in step_reward\n'
            "    raise PermanentError(x)\n"
        ),
    )
    d = client_for(manager).get(f"{runs_url(trainable)}{run.id}/data/").json()
    assert d["error"]["summary"] == "PermanentError: artifact is incomplete"
    assert d["error"]["where"].startswith('File "/app/workers/pipelines.py", line 9')
    assert {s["name"]: s["state"] for s in d["steps"]}["reward"] == "failed"
    assert d["verdict"]["state"] == "failed"


def test_run_page_embeds_the_detail_and_loads_the_chart_scripts_in_order(trainable, manager):
    run = finished_run(trainable)
    html = client_for(manager).get(f"{runs_url(trainable)}{run.id}/").content.decode()
    assert inline_code(html) == []
    assert 'id="run-detail" type="application/json"' in html
    scripts = [
        "vendor/chart-4.6.1.umd.min.js",
        "vendor/chartjs-plugin-annotation-3.1.0.min.js",
        "vendor/chartjs-chart-error-bars-4.4.5.umd.min.js",
        "annotation/charts.js",
        "manage/run.js",
    ]
    positions = [html.index(s) for s in scripts]
    assert positions == sorted(positions)


def test_other_projects_run_is_404(trainable, manager):
    other = ProjectFactory()
    run = models.TrainingRun.objects.create(project=other, status="succeeded")
    client = client_for(manager)
    assert client.get(f"{runs_url(trainable)}{run.id}/").status_code == 404
    assert client.get(f"{runs_url(trainable)}{run.id}/data/").status_code == 404
    make_rater(other, role="labeler")


def test_runs_list_shows_each_run_with_its_verdict(trainable, manager):
    run = finished_run(trainable)
    html = client_for(manager).get(runs_url(trainable)).content.decode()
    assert f'<a href="{runs_url(trainable)}{run.id}/">Run {run.id}</a>' in html
    assert "promoted p-r1-dpo" in html


EVIL = '<img src=x onerror="alert(1)">'


def rl_run(project) -> models.TrainingRun:
    """A succeeded cycle with a PPO policy whose monitors raised both alarms."""
    base = models.ModelVersion.objects.create(
        project=project, name="p-base", kind="policy", trainer="base", status="ready"
    )
    now = timezone.now()
    curve = [
        {
            "phase": "policy",
            "model": "ppo",
            "i": i,
            "of": 5,
            "loss": 0.1,
            "objective/scores": 0.1 * i,
            "objective/gold": 0.3 - 0.05 * i,
            "objective/kl": 6.0 * i,
            "objective/sqrt_kl": (6.0 * i) ** 0.5,
            "objective/entropy": 2.0,
            "completions/mean_length": 4.0 * i,
            "completions/clipped_ratio": 0.2 * i,
            "policy/clipfrac": 0.1,
            "val/error": 0.5,
            "alarm/length": float(i >= 3),
            "alarm/kl": float(i >= 4),
        }
        for i in range(1, 6)
    ]
    run = models.TrainingRun.objects.create(
        project=project,
        status="succeeded",
        trainers=["rm", "ppo"],
        current_step="done",
        progress=1.0,
        started_at=now - timedelta(seconds=30),
        finished_at=now,
        curve=curve,
    )
    rm = models.ModelVersion.objects.create(
        project=project, name=f"rm {EVIL}", kind="reward", trainer="rm", status="ready",
        training_run=run,
    )  # fmt: skip
    ppo = models.ModelVersion.objects.create(
        project=project,
        name=f"ppo {EVIL}",
        kind="policy",
        trainer="ppo",
        status="ready",
        training_run=run,
        parent=base,
        config={
            "method": "ppo",
            "beta": 0.0421,
            "adaptive_kl": True,
            "reward_model_version": rm.id,
            "k": 1,
            "steps": 5,
            "train": {"kl_alarm": 20.0, "length_alarm": 1.5},
        },
    )
    alarms = [
        {"step": 3, "alarm": "length", "value": 12.0, "bound": 1.5},
        {"step": 4, "alarm": "kl", "value": 24.0, "bound": 20.0},
    ]
    policy = {"parent": base.id, "ppo/version": ppo.id, "ppo/alarms": alarms}
    models.RunStep.objects.create(run=run, name="policy", result=policy, seconds=3.0)
    return run


def test_run_page_shows_the_rl_monitors_alarms_and_lineage_escaped(trainable, manager):
    run = rl_run(trainable)
    client = client_for(manager)
    d = client.get(f"{runs_url(trainable)}{run.id}/data/").json()
    rl = d["rl"]
    assert rl["trainers"] == ["ppo"]
    charts = {c["id"]: c["spec"] for c in rl["charts"]}
    assert set(charts) == {
        "rl-ppo-reward",
        "rl-ppo-kl",
        "rl-ppo-length",
        "rl-ppo-shares",
        "rl-ppo-entropy",
        "rl-ppo-value",
        "rl-ppo-overoptimization",
    }
    reward = charts["rl-ppo-reward"]
    assert reward["title"] == "PPO policy: mean reward per step"
    assert [s["label"] for s in reward["series"]] == ["reward model", "gold score"]
    assert [p["x"] for p in reward["series"][0]["points"]] == [1, 2, 3, 4, 5]
    assert charts["rl-ppo-kl"]["refs"] == [{"value": 20.0, "label": "alarm bound", "axis": "y"}]
    over = charts["rl-ppo-overoptimization"]
    assert over["x"]["label"] == "√KL to the reference"
    assert over["series"][1]["points"][0] == {"x": 6.0**0.5, "y": 0.25}
    texts = [a["text"] for a in rl["alarms"]]
    assert texts[0].startswith("PPO policy, step 3: the reward rose while the mean response")
    assert "past 1.5 times its start (now 12.0 tokens)" in texts[0]
    assert "reached 24.00 nats, past the alarm bound of 20 nats" in texts[1]
    lineage = {v["trainer"]: v for v in d["lineage"]["versions"]}
    assert lineage["ppo"]["rl"] == {
        "method": "ppo",
        "beta": 0.0421,
        "adaptive_kl": True,
        "reward_model": f"rm {EVIL}",
        "k": 1,
        "steps": 5,
    }

    html = client.get(f"{runs_url(trainable)}{run.id}/").content.decode()
    assert inline_code(html) == []
    assert 'id="run-rl"' in html
    assert 'id="run-rl-alarms"' in html
    assert EVIL not in html  # json_script escapes it; run.js sets it with textContent
    assert "\\u003Cimg src=x onerror" in html


def test_rl_alarms_are_read_from_the_curve_while_the_step_runs(trainable, manager):
    run = rl_run(trainable)
    models.RunStep.objects.filter(run=run, name="policy").delete()
    models.TrainingRun.objects.filter(id=run.id).update(status="running", current_step="policy")
    d = client_for(manager).get(f"{runs_url(trainable)}{run.id}/data/").json()
    assert [(a["step"], a["alarm"]) for a in d["rl"]["alarms"]] == [(3, "length"), (4, "kl")]
    assert "past the alarm bound" not in d["rl"]["alarms"][1]["text"]  # bound known once done


def test_a_run_without_online_rl_has_no_rl_section_data(trainable, manager):
    run = finished_run(trainable)
    d = client_for(manager).get(f"{runs_url(trainable)}{run.id}/data/").json()
    assert d["rl"] == {"trainers": [], "charts": [], "alarms": []}
    assert all(v["rl"] is None for v in d["lineage"]["versions"])
