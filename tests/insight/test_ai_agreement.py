"""AI-vs-human agreement on plain rows: hand-computed numbers, and statsmodels / scipy computed
independently here (the ceiling included)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap
from statsmodels.stats import inter_rater

from annotation.insight.ai_agreement import AIVote, HumanVote, group_agreement, humans_by_task

# Hand-made: task -> (AI code, human codes). Code 0 = the task's first response wins.
HAND = {
    1: (0, [0, 0]),
    2: (1, [1, 0]),
    3: (0, [1, 1, 1]),
    4: (1, [1]),
}


def _votes(data: dict[int, tuple[int | None, list[int]]], confidence: float = 0.8):
    ai = [
        AIVote(1, t, 0, "p", a, confidence if a is not None else None) for t, (a, _) in data.items()
    ]
    humans = humans_by_task(
        HumanVote(t, r, c) for t, (_, codes) in data.items() for r, c in enumerate(codes)
    )
    return ai, humans


def test_hand_computed_figures() -> None:
    ai, humans = _votes(HAND)
    g = group_agreement(ai, humans, n_boot=200)
    # AI·human pairs: t1 2/2, t2 1/2, t3 0/3, t4 1/1 -> 4/8; table AI x human [[2,3],[1,2]]:
    # po = 1/2, pe = 5/8*3/8 + 3/8*5/8 = 30/64 -> kappa = (32-30)/(64-30) = 1/17.
    assert g["ai_human"]["percent"]["value"] == pytest.approx(0.5)
    assert g["ai_human"]["kappa"]["value"] == pytest.approx(1 / 17, abs=1e-4)
    assert g["ai_human"]["pairs"] == 8
    # Ceiling on t1..t3: human pairs 1 agree, 1 disagree, 3 agree -> 4/5; ordered table
    # [[2,1],[1,6]]: po = 0.8, pe = 0.3^2 + 0.7^2 = 0.58 -> kappa = 0.22/0.42.
    c = g["ceiling"]
    assert (c["tasks"], c["human_pairs"]) == (3, 5)
    assert c["human"]["percent"]["value"] == pytest.approx(0.8)
    assert c["human"]["kappa"]["value"] == pytest.approx(0.22 / 0.42, abs=1e-4)
    assert c["ai"]["percent"]["value"] == pytest.approx(3 / 7, abs=1e-4)
    # Majority: t1 -> 0 (agree), t2 tie (none), t3 -> 1 (disagree), t4 -> 1 (agree).
    assert g["ai_majority"]["percent"]["value"] == pytest.approx(2 / 3, abs=1e-4)
    assert g["ai_majority"]["tasks"] == 3
    # Calibration at one confidence 0.8: all three in the [0.8, 0.9) bin.
    cal = g["calibration"]
    assert cal["n"] == 3
    assert cal["brier"] == pytest.approx((2 * 0.2**2 + 0.8**2) / 3, abs=1e-4)
    assert cal["ece"] == pytest.approx(abs(2 / 3 - 0.8), abs=1e-4)
    assert [b["n"] for b in cal["bins"]] == [0, 0, 0, 3, 0]


def test_inconsistent_verdicts_are_counted_and_left_out() -> None:
    data = {**HAND, 5: (None, [0, 0]), 6: (None, [])}
    ai, humans = _votes(data)
    g = group_agreement(ai, humans, n_boot=50)
    assert (g["judged"], g["inconsistent"], g["excluded_inconsistent"]) == (6, 2, 1)
    assert g["flip_rate"] == pytest.approx(2 / 6, abs=1e-4)
    assert g["ai_human"]["pairs"] == 8  # the same as without them
    assert g["tasks"] == 4


def _random(seed: int, n_tasks: int = 40) -> dict[int, tuple[int, list[int]]]:
    rng = np.random.default_rng(seed)
    out = {}
    for t in range(n_tasks):
        truth = int(rng.integers(2))
        k = int(rng.integers(1, 4))
        humans = [truth if rng.random() < 0.8 else 1 - truth for _ in range(k)]
        out[t] = (truth if rng.random() < 0.7 else 1 - truth, humans)
    return out


def _pair_lists(data, tasks) -> tuple[list[int], list[int], list[int], list[int]]:
    """Explicit rater-pair lists, the way a reader would count them by hand."""
    ai_codes, human_codes, h1, h2 = [], [], [], []
    for t in tasks:
        a, hs = data[t]
        for h in hs:
            ai_codes.append(a)
            human_codes.append(h)
        for i, x in enumerate(hs):
            for j, y in enumerate(hs):
                if i != j:
                    h1.append(x)
                    h2.append(y)
    return ai_codes, human_codes, h1, h2


def _table(a: list[int], b: list[int]) -> np.ndarray:
    t = np.zeros((2, 2))
    for x, y in zip(a, b, strict=True):
        t[x, y] += 1
    return t


def test_against_statsmodels_and_scipy_bootstrap() -> None:
    data = _random(3)
    ai, humans = _votes(data)
    g = group_agreement(ai, humans, n_boot=150, seed=7)
    tasks = sorted(data)
    a, h, h1, h2 = _pair_lists(data, tasks)
    kappa = inter_rater.cohens_kappa(_table(a, h)).kappa
    assert g["ai_human"]["kappa"]["value"] == pytest.approx(kappa, abs=1e-4)
    assert g["ai_human"]["percent"]["value"] == pytest.approx(np.mean(np.equal(a, h)), abs=1e-4)
    # The ceiling: Cohen's kappa of the symmetric pooled human table, and with two raters per
    # task it is Fleiss' kappa (checked below on the two-rater tasks alone).
    ceiling = inter_rater.cohens_kappa(_table(h1, h2)).kappa
    assert g["ceiling"]["human"]["kappa"]["value"] == pytest.approx(ceiling, abs=1e-4)
    sk = pytest.importorskip("sklearn.metrics")
    assert g["ai_human"]["kappa"]["value"] == pytest.approx(sk.cohen_kappa_score(a, h), abs=1e-4)

    def naive(idx: np.ndarray) -> float:
        chosen = [tasks[int(i)] for i in idx]
        ra, rh, _, _ = _pair_lists(data, chosen)
        return float(inter_rater.cohens_kappa(_table(ra, rh)).kappa)

    ref = bootstrap(
        (np.arange(len(tasks)),),
        naive,
        vectorized=False,
        n_resamples=150,
        method="percentile",
        rng=np.random.default_rng(7),
    )
    low, high = ref.confidence_interval
    assert g["ai_human"]["kappa"]["low"] == pytest.approx(low, abs=1e-4)
    assert g["ai_human"]["kappa"]["high"] == pytest.approx(high, abs=1e-4)


def test_two_rater_ceiling_is_fleiss_kappa() -> None:
    data = {t: (a, (hs * 2)[:2]) for t, (a, hs) in _random(5, 60).items()}
    ai, humans = _votes(data)
    g = group_agreement(ai, humans, n_boot=20)
    counts = np.array([np.bincount(hs, minlength=2) for _, hs in data.values()])
    fleiss = inter_rater.fleiss_kappa(counts, method="fleiss")
    assert g["ceiling"]["human"]["kappa"]["value"] == pytest.approx(fleiss, abs=1e-4)
    assert g["ceiling"]["tasks"] == 60


def test_seeded_and_empty() -> None:
    ai, humans = _votes(_random(1))
    assert group_agreement(ai, humans, n_boot=100, seed=2) == group_agreement(
        ai, humans, n_boot=100, seed=2
    )
    empty = group_agreement([], {}, n_boot=10)
    assert empty["ai_human"]["kappa"] == {"value": None, "low": None, "high": None}
    assert empty["flip_rate"] is None
    assert empty["calibration"]["brier"] is None


# -- from the database ------------------------------------------------------------------------


@pytest.mark.django_db
def test_reader_codes_by_task_order_and_reads_only_eligible_votes(project) -> None:
    from annotation import models
    from annotation.insight.ai_agreement import ai_agreement
    from tests.factories import make_rater, make_task
    from tests.insight import ai_rows

    raters = [make_rater(project) for _ in range(3)]
    excluded = make_rater(project)
    models.RaterExclusion.objects.create(project=project, rater=excluded)
    ai = ai_rows.ai_pass(project)
    tasks = [make_task(project) for _ in range(len(HAND))]
    for task, (ai_code, codes) in zip(tasks, HAND.values(), strict=True):
        ai_rows.verdict(ai, task, ai_code, principle_index=0)
        ai_rows.verdict(ai, task, 1 - ai_code, principle_index=1, confidence=0.95)
        for rater, code in zip(raters, codes, strict=False):
            ai_rows.human(task, rater, code)
        ai_rows.human(task, excluded, 1 - codes[0])  # left out: the rater is excluded
    ai_rows.human(tasks[3], raters[2], "tie")  # ties say nothing: left out
    gold = make_task(project, is_gold=True, gold_answer={"choice": "A"})
    ai_rows.verdict(ai, gold, 0)
    ai_rows.human(gold, raters[0], 1)  # gold: a quality check, not a vote
    ai_rows.verdict(ai, make_task(project), None)  # inconsistent, no human

    out = ai_agreement(project.id, n_boot=50)
    [p] = out["passes"]
    ai0, humans = _votes(HAND)
    expected = group_agreement(ai0, humans, n_boot=50)
    by_index = {g["index"]: g for g in p["principles"]}
    first = by_index[0]
    assert first["principle"] == "Be helpful."
    assert first["ai_human"] == expected["ai_human"]
    assert first["ceiling"] == expected["ceiling"]
    assert (first["judged"], first["inconsistent"]) == (6, 1)  # + the gold and the flipped one
    flipped = by_index[1]
    assert flipped["ai_human"]["percent"]["value"] == pytest.approx(0.5)  # 4/8 the other way
    assert p["overall"]["ai_human"]["pairs"] == 16
    assert p["overall"]["inconsistent"] == 1
    assert p["overall"]["ceiling"]["human_pairs"] == 5  # human pairs counted once per task
    assert ai_agreement(project.id, ai_pass_id=ai.id + 1, n_boot=10)["passes"] == []
