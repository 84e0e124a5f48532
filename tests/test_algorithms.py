"""Advantages, losses and schedules on hand-computed examples (r1lib.algorithms)."""

from __future__ import annotations

import math

import pytest
import torch

from r1lib.algorithms import advantages as A
from r1lib.algorithms import losses as L
from r1lib.algorithms import schedules as S

# ---- advantages ------------------------------------------------------------------------------


def test_grpo_advantages_hand_example():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = A.grpo_advantages(r, 4)
    std = math.sqrt(1 / 3)  # unbiased std of (1, 0, 0, 1): sqrt(4 * 0.25 / 3)
    expected = [0.5 / (std + 1e-4), -0.5 / (std + 1e-4), -0.5 / (std + 1e-4), 0.5 / (std + 1e-4), 0, 0, 0, 0]
    assert adv.tolist() == pytest.approx(expected, abs=1e-6)
    assert expected[0] == pytest.approx(0.865876, abs=1e-6)


def test_dr_grpo_and_rloo_hand_example():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert A.dr_grpo_advantages(r, 4).tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5])
    # RLOO: baseline of row 0 = mean(0, 0, 1) = 1/3 -> 2/3; of row 1 = mean(1, 0, 1) = 2/3 -> -2/3
    assert A.rloo_advantages(r, 4).tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3])
    # RLOO = G/(G-1) * (r - mean)
    r2 = torch.tensor([3.0, 1.0, 0.0, 5.0, 2.0, 2.0])
    assert torch.allclose(A.rloo_advantages(r2, 3), 1.5 * A.dr_grpo_advantages(r2, 3))


def test_advantages_dispatch_and_errors():
    r = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert torch.equal(A.compute_advantages("grpo", r, 2), A.grpo_advantages(r, 2))
    assert torch.equal(A.compute_advantages("rloo", r, 2), A.rloo_advantages(r, 2))
    with pytest.raises(ValueError, match="PPO"):
        A.compute_advantages("ppo", r, 2)
    with pytest.raises(ValueError, match="divide"):
        A.grpo_advantages(torch.ones(5), 2)
    with pytest.raises(ValueError, match="1-D"):
        A.grpo_advantages(torch.ones(2, 2), 2)


def test_zero_spread_fraction():
    r = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    assert A.zero_spread_fraction(r, 2) == pytest.approx(2 / 3)

# ---- losses ----------------------------------------------------------------------------------


def test_kl_k3_hand_value_and_zero_at_equality():
    logp, ref = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))
    # ratio = ref/pi = 0.5: 0.5 - log(0.5) - 1 = 0.193147
    assert L.kl_k3(logp, ref).item() == pytest.approx(0.5 + math.log(2) - 1, abs=1e-6)
    assert L.kl_k3(logp, logp).item() == 0.0


def test_clipped_surrogate_four_cases():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 0.5, 1.5]]))
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    loss, clipped = L.clipped_surrogate(logp, old, adv, 0.2)
    # ratio 1.5, A+ -> -min(1.5, 1.2) = -1.2 (clipped); ratio .5, A+ -> -min(.5, .8) = -.5;
    # ratio .5, A- -> -min(-.5, -.8) = .8 (clipped); ratio 1.5, A- -> -min(-1.5, -1.2) = 1.5
    assert loss.tolist()[0] == pytest.approx([-1.2, -0.5, 0.8, 1.5], abs=1e-6)
    assert clipped.tolist() == [[True, False, True, False]]
    # asymmetric clip (DAPO clip-higher): eps_high 0.6 lets ratio 1.5 through
    loss2, clipped2 = L.clipped_surrogate(logp, old, adv, 0.2, 0.6)
    assert loss2[0, 0].item() == pytest.approx(-1.5) and not clipped2[0, 0]


def test_clipped_gradient_is_zero_where_clipped():
    logp = torch.log(torch.tensor([[1.5, 1.0]])).requires_grad_(True)
    loss, _ = L.clipped_surrogate(logp, torch.zeros(1, 2), torch.tensor([2.0]), 0.2)
    loss.sum().backward()
    # d/dlogp of -ratio*A = -ratio*A: 0 for the clipped token, -2 for ratio 1
    assert logp.grad.tolist()[0] == pytest.approx([0.0, -2.0])


def test_aggregations_hand_example():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, 99.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert L.aggregate(per_token, mask, "sequence").item() == pytest.approx((2.0 + 4.0) / 2)
    assert L.aggregate(per_token, mask, "token").item() == pytest.approx(10.0 / 4)
    assert L.aggregate(per_token, mask, "dr_grpo", max_tokens=5).item() == pytest.approx(10.0 / (2 * 5))
    with pytest.raises(ValueError, match="max_tokens"):
        L.aggregate(per_token, mask, "dr_grpo")
    with pytest.raises(ValueError, match="unknown"):
        L.aggregate(per_token, mask, "bogus")


def test_policy_loss_combines_surrogate_and_kl():
    logp = torch.log(torch.tensor([[0.5, 0.4], [0.2, 0.9]]))
    old = logp.clone()
    ref = torch.log(torch.tensor([[0.25, 0.4], [0.1, 0.9]]))
    mask = torch.tensor([[1, 1], [1, 0]])
    adv = torch.tensor([1.0, -2.0])
    out = L.policy_loss(logp, old, adv, mask, epsilon=0.2, beta=0.1, ref_logp=ref)
    kl = L.kl_k3(logp, ref)
    # ratio 1 everywhere: surrogate per token = -A; sequence means: row0 -1, row1 +2 -> 0.5
    expected = (((-1 + 0.1 * kl[0, 0]) + (-1 + 0.1 * kl[0, 1])) / 2 + (2 + 0.1 * kl[1, 0])) / 2
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert out.surrogate.item() == pytest.approx(0.5)
    assert out.kl.item() == pytest.approx(((kl[0, 0] + kl[0, 1] + kl[1, 0]) / 3).item(), abs=1e-6)
    assert out.clip_fraction.item() == 0.0
    with pytest.raises(ValueError, match="ref_logp"):
        L.policy_loss(logp, old, adv, mask, epsilon=0.2, beta=0.1)


def test_policy_loss_gradient_sequence_mean():
    """At ratio 1 and beta 0, d loss / d logp_t = -A / (|o_i| * B) on real tokens, 0 on padding."""
    logp = torch.zeros(2, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = L.policy_loss(logp, logp.detach(), torch.tensor([1.0, 3.0]), mask, epsilon=0.2)
    out.loss.backward()
    assert logp.grad.tolist() == [pytest.approx([-1 / 6] * 3), pytest.approx([-3 / 4, -3 / 4, 0.0])]


def test_token_logprobs_and_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    tokens = torch.tensor([[0, 4, 2], [1, 1, 3]])
    ref = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(L.token_logprobs(logits, tokens), ref, atol=1e-6)
    ref_t = torch.log_softmax(logits / 0.5, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(L.token_logprobs(logits, tokens, 0.5), ref_t, atol=1e-6)
    uniform = torch.zeros(1, 1, 8)
    assert L.entropy_from_logits(uniform).item() == pytest.approx(math.log(8), abs=1e-6)

# ---- schedules -------------------------------------------------------------------------------


def test_paper_schedule_scaled():
    assert S.scaled_step(8200, 10400) == 8200
    assert S.scaled_step(8200, 104) == 82
    assert S.scaled_ref_reset_every(10400) == 400
    assert S.scaled_ref_reset_every(104) == 4
    assert S.scaled_ref_reset_every(10) == 1  # never 0
    sched = S.paper_length_schedule(128, 256, 100)
    assert sched == [(0, 128), (79, 256)]
    assert [S.step_value(sched, s) for s in (0, 78, 79, 99)] == [128, 128, 256, 256]
    assert S.paper_length_schedule(S.PAPER_SHORT, S.PAPER_LONG, 10400) == [(0, 32768), (8200, 65536)]


def test_length_schedule_errors_and_order():
    assert S.length_schedule(8, [(0.5, 32), (0.25, 16)], 8) == [(0, 8), (2, 16), (4, 32)]
    with pytest.raises(ValueError):
        S.length_schedule(8, [(1.5, 16)], 8)
    with pytest.raises(ValueError):
        S.scaled_step(10, 0)
