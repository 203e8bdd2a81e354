"""Each loss against hand-computed numbers and against TRL 1.16.0 on the same log-probs.

TRL computes its losses inside ``_compute_loss`` from model outputs, so the reference comparison
calls TRL's unbound method with a stub ``self`` and a stub model whose per-token log-probs sum to
the log-probs under test. TRL is installed for tests only; the library never imports it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from training import losses

trl_dpo = pytest.importorskip("trl.trainer.dpo_trainer")
trl_kto = pytest.importorskip("trl.trainer.kto_trainer")
trl_rm = pytest.importorskip("trl.trainer.reward_trainer")


def approx(x: torch.Tensor | float, expected: float) -> bool:
    return abs(float(x) - expected) < 1e-6


# --- hand-computed values ------------------------------------------------------------------


def test_bradley_terry_by_hand() -> None:
    """r_c=1, r_r=0: -log sigmoid(1) = log(1 + e^-1) = 0.3132617;
    with margin 0.5: -log sigmoid(0.5) = 0.4740770; plus centering 0.01 * (1 + 0)^2 = 0.4840770."""
    c, r = torch.tensor([1.0]), torch.tensor([0.0])
    assert approx(losses.bradley_terry_loss(c, r)[0], 0.3132617)
    assert approx(losses.bradley_terry_loss(c, r, torch.tensor([0.5]))[0], 0.4740770)
    assert approx(losses.bradley_terry_loss(c, r, torch.tensor([0.5]), 0.01)[0], 0.4840770)


def test_dpo_by_hand() -> None:
    """Log-ratios +1 and -1, beta 0.5: h = 0.5 * 2 = 1, loss = -log sigmoid(1) = 0.3132617.
    cDPO eps=0.1: 0.9 * 0.3132617 + 0.1 * -log sigmoid(-1) (=1.3132617) = 0.4132617."""
    c, r = torch.tensor([1.0]), torch.tensor([-1.0])
    assert approx(losses.dpo_sigmoid_loss(c, r, beta=0.5)[0], 0.3132617)
    assert approx(losses.dpo_sigmoid_loss(c, r, beta=0.5, label_smoothing=0.1)[0], 0.4132617)


def test_ipo_by_hand() -> None:
    """Log-ratios +1, -1 over 2 tokens each: per-token 0.5 - (-0.5) = 1; beta 0.25:
    1 / (2 * 0.25) = 2, loss = (1 - 2)^2 = 1."""
    c, r, n = torch.tensor([1.0]), torch.tensor([-1.0]), torch.tensor([2])
    assert approx(losses.ipo_loss(c, r, beta=0.25, chosen_lengths=n, rejected_lengths=n)[0], 1.0)


def test_kto_by_hand() -> None:
    """z0 = 0.5, beta 1. Desirable r=1: 1 - sigmoid(0.5) = 0.3775407, times lambda_D 2 = 0.7550813.
    Undesirable r=-1: 1 - sigmoid(0.5 + 1) = 0.1824255.
    KL estimate from diffs [1, -2]: mean -0.5, clamped to 0."""
    out = losses.kto_loss(
        torch.tensor([1.0, -1.0]),
        torch.tensor([True, False]),
        torch.tensor(0.5),
        beta=1.0,
        desirable_weight=2.0,
    )
    assert approx(out[0], 0.7550813)
    assert approx(out[1], 0.1824255)
    kl = losses.kto_kl_estimate(torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0]))
    assert float(kl) == 0.0
    assert not kl.requires_grad


def test_sft_by_hand() -> None:
    """Uniform logits over V=4: each response token costs ln 4 = 1.3862944; 2 response tokens
    (the prompt token is masked) sum to 2.7725887."""
    logits = torch.zeros(1, 4, 4)
    labels = torch.tensor([[-100, 1, 2, -100]])
    assert approx(losses.sft_loss(logits, labels)[0], 2 * math.log(4))


# --- TRL reference -----------------------------------------------------------------------


def _accelerator() -> SimpleNamespace:
    return SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x)


def _logp_model(seq_logps: torch.Tensor, width: int = 3):
    """A stub TRL model whose completion log-probs sum to ``seq_logps`` (N,) over 2 tokens."""
    n = seq_logps.shape[0]
    per_token = torch.zeros(n, width - 1)
    per_token[:, -2:] = (seq_logps / 2)[:, None]
    out = SimpleNamespace(
        log_probs=per_token,
        entropy=torch.zeros(n, width - 1),
        mean_logits=torch.zeros(n, width - 1),
        is_top1=torch.zeros(n, width - 1, dtype=torch.bool),
    )
    return lambda **kwargs: out


def _batch(n: int, width: int = 3) -> dict[str, torch.Tensor]:
    mask = torch.zeros(n, width, dtype=torch.long)
    mask[:, -2:] = 1  # the last 2 tokens are the completion
    return {
        "input_ids": torch.ones(n, width, dtype=torch.long),
        "attention_mask": torch.ones(n, width, dtype=torch.long),
        "completion_mask": mask,
    }


def _trl_dpo(pc, pr, rc, rr, *, loss_type: str, beta: float, eps: float) -> torch.Tensor:
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_accelerator(),
        aux_loss_enabled=False,
        ld_alpha=None,
        precompute_ref_logps=True,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=eps,
        use_weighting=False,
        _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {**_batch(2 * len(pc)), "ref_chosen_logps": rc, "ref_rejected_logps": rr}
    model = _logp_model(torch.cat([pc, pr]))
    return trl_dpo.DPOTrainer._compute_loss(stub, model, inputs, return_outputs=False)


LOGPS = {
    "pc": torch.tensor([-5.0, -7.5, -3.2, -10.0]),
    "pr": torch.tensor([-6.0, -7.0, -9.1, -4.0]),
    "rc": torch.tensor([-5.5, -7.0, -4.0, -9.0]),
    "rr": torch.tensor([-5.0, -8.0, -8.0, -5.5]),
}


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_matches_trl(beta: float) -> None:
    pc, pr, rc, rr = LOGPS.values()
    ours = losses.dpo_sigmoid_loss(pc - rc, pr - rr, beta=beta).mean()
    theirs = _trl_dpo(pc, pr, rc, rr, loss_type="sigmoid", beta=beta, eps=0.0)
    assert abs(float(ours) - float(theirs)) < 1e-5


def test_cdpo_matches_trl() -> None:
    """TRL 1.16 applies label smoothing in its 'aot' loss, which for a batch of one pair (sorting
    is then the identity) is exactly cDPO; compare pair by pair."""
    pc, pr, rc, rr = LOGPS.values()
    for i in range(len(pc)):
        s = slice(i, i + 1)
        ours = losses.dpo_sigmoid_loss(pc[s] - rc[s], pr[s] - rr[s], beta=0.2, label_smoothing=0.2)
        theirs = _trl_dpo(pc[s], pr[s], rc[s], rr[s], loss_type="aot", beta=0.2, eps=0.2)
        assert abs(float(ours.mean()) - float(theirs)) < 1e-5


def test_ipo_matches_trl() -> None:
    pc, pr, rc, rr = LOGPS.values()
    n = torch.full((4,), 2)
    ours = losses.ipo_loss(pc - rc, pr - rr, beta=0.1, chosen_lengths=n, rejected_lengths=n)
    theirs = _trl_dpo(pc, pr, rc, rr, loss_type="ipo", beta=0.1, eps=0.0)
    assert abs(float(ours.mean()) - float(theirs)) < 1e-5


@pytest.mark.parametrize(("kl_shift", "weights"), [(0.0, (1.0, 1.0)), (3.0, (1.5, 0.7))])
def test_kto_matches_trl(kl_shift: float, weights: tuple[float, float]) -> None:
    logps = torch.tensor([-5.0, -7.5, -3.2, -10.0, -4.4])
    ref = torch.tensor([-5.5, -7.0, -4.0, -9.0, -4.0])
    label = torch.tensor([True, False, True, False, False])
    kl_logps = torch.tensor([-6.0, -8.0, -5.0, -9.5, -4.0]) + kl_shift
    ref_kl = torch.tensor([-6.5, -7.0, -5.5, -10.0, -4.5])
    beta, dw, uw = 0.3, *weights
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True),
        accelerator=_accelerator(),
        aux_loss_enabled=False,
        calculate_KL=True,
        precompute_ref_logps=True,
        loss_type="kto",
        beta=beta,
        desirable_weight=dw,
        undesirable_weight=uw,
        _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0,
        _tp_size=1,
        _compute_kl_logps=lambda model, batch: kl_logps,
    )
    inputs = {**_batch(5), "label": label, "ref_logps": ref, "ref_KL_logps": ref_kl}
    theirs = trl_kto.KTOTrainer._compute_loss(
        stub, _logp_model(logps), inputs, return_outputs=False
    )
    kl = losses.kto_kl_estimate(kl_logps, ref_kl)
    ours = losses.kto_loss(
        logps - ref, label, kl, beta=beta, desirable_weight=dw, undesirable_weight=uw
    ).mean()
    assert abs(float(ours) - float(theirs)) < 1e-5
    assert abs(float(kl) - stub._metrics["train"]["kl"][0]) < 1e-6


@pytest.mark.parametrize(("margin", "center"), [(False, None), (True, 0.01)])
def test_bradley_terry_matches_trl(margin: bool, center: float | None) -> None:
    rc = torch.tensor([1.2, -0.3, 0.5, 2.0])
    rr = torch.tensor([0.2, 0.4, -1.5, 2.5])
    m = torch.tensor([0.5, 0.0, 1.0, 0.25])
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True),
        args=SimpleNamespace(center_rewards_coefficient=center),
        accelerator=_accelerator(),
        _metrics=defaultdict(lambda: defaultdict(list)),
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {"input_ids": torch.ones(8, 3, dtype=torch.long), "attention_mask": torch.ones(8, 3)}
    if margin:
        inputs["margin"] = m
    outputs = SimpleNamespace(logits=torch.cat([rc, rr])[:, None])
    theirs = trl_rm.RewardTrainer.compute_loss(stub, lambda **kw: outputs, inputs)
    ours = losses.bradley_terry_loss(rc, rr, m if margin else None, center or 0.0).mean()
    assert abs(float(ours) - float(theirs)) < 1e-5


def test_sft_matches_torch_cross_entropy() -> None:
    """Independent reference: torch's own mean cross-entropy with ignore_index."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.tensor([[-100, -100, 3, 4, 1], [-100, 2, 6, -100, -100]])
    ours = losses.sft_loss(logits, labels).sum() / (labels[:, 1:] != -100).sum()
    ref = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    assert abs(float(ours) - float(ref)) < 1e-5


def test_pair_losses_are_picked_by_name() -> None:
    assert set(losses.PAIR_LOSSES) == {"sigmoid", "ipo"}
