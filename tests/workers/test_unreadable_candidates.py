"""The generate step drops candidates a rater cannot read, counts them by reason, and the run
page says so; the readable ones (any script, emoji) become responses as before."""

from __future__ import annotations

from typing import Any

import pytest

from annotation import models
from annotation.run_detail import run_detail
from tests.workers.conftest import make_loop_project
from training.generate import Sample
from workers import candidates, steps
from workers.pipelines import run_config

# Per prompt, in order: the sampler's hand-made outputs.
OUTPUTS = [
    ["A fine answer.", "   \n", "caf\ufffd au lait"],
    ["Ünïcödé 東京 🙂 works.", "\x01\x02\x1b[31m\x07", ""],
]


@pytest.mark.django_db
def test_generate_drops_unreadable_candidates_and_counts_them(
    tiny_base, tmp_path, settings, monkeypatch
):
    settings.LOOP_ARTIFACTS_DIR = str(tmp_path)
    project = make_loop_project(tiny_base, prompts=2, samples_per_prompt=3)
    run = models.TrainingRun.objects.create(
        project=project, status=models.RunStatus.RUNNING, config={"device": "cpu"}
    )
    ctx = steps.Context(run=run, project=project, root=tmp_path, cfg=run_config(run))
    ctx.cfg = {**ctx.cfg, "prompts_per_cycle": 2}

    def sampler(models_: Any, project_: Any, path: str, prompts: list[Any], *a: Any, **k: Any):
        assert len(prompts) == len(OUTPUTS)
        return [[Sample(t, (1,), (-0.5,)) for t in texts] for texts in OUTPUTS]

    monkeypatch.setattr(candidates, "_sample", sampler)
    result = steps.run_step(ctx, "generate", candidates.step_generate)

    assert result["responses"] == 2
    assert result["unreadable"] == 4
    assert result["dropped"] == {"control_characters": 1, "empty": 2, "invalid_utf8": 1}
    stored = models.Response.objects.filter(generation_run=run).order_by("prompt_id")
    assert [(r.text, r.sample_index) for r in stored] == [
        ("A fine answer.", 0),
        ("Ünïcödé 東京 🙂 works.", 0),
    ]
    lineage = run_detail(run)["lineage"]
    assert lineage["candidates"] == 2
    assert lineage["dropped_candidates"] == (
        "4 unreadable candidates dropped (2 empty, 1 control characters, 1 invalid UTF-8)"
    )
