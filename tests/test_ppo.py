"""PPO in the r1lib engine (r1lib/algorithms/ppo.py): GAE, value loss, reward placement, whitening,
KL-in-reward shaping, value alignment, the critic, a small learning test and RLTrainer smoke runs.

Every expected number below is worked out by hand in the comments.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import write_tiny_config
from r1lib.algorithms.losses import policy_loss
from r1lib.algorithms.ppo import (ValueModel, build_critic, critic_loss, explained_variance,
                                  final_token_rewards, gae, ppo_advantages, value_loss, whiten)
from r1lib.rollouts import RolloutBatch

ATOL = 1e-6


def _t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


# -- GAE -----------------------------------------------------------------------------------------

# Row 0: 3 real tokens, values (0.5, 0.6, 0.7), reward 1 on the last token.
# Row 1: 2 real tokens, values (0.2, 0.4), reward 2 on its last token; the padded position holds
# garbage (reward 5, value 9) that must be ignored.
REWARDS = _t([[0.0, 0.0, 1.0], [0.0, 2.0, 5.0]])
VALUES = _t([[0.5, 0.6, 0.7], [0.2, 0.4, 9.0]])
MASK = _t([[1, 1, 1], [1, 1, 0]])


def test_gae_hand_example_gamma1_lam095():
    # Row 0: d2 = 1 + 0 - 0.7 = 0.3, A2 = 0.3
    #        d1 = 0 + 0.7 - 0.6 = 0.1, A1 = 0.1 + 0.95 * 0.3 = 0.385
    #        d0 = 0 + 0.6 - 0.5 = 0.1, A0 = 0.1 + 0.95 * 0.385 = 0.46575
    # Row 1: d1 = 2 + 0 (terminal) - 0.4 = 1.6, A1 = 1.6; d0 = 0.4 - 0.2 = 0.2, A0 = 0.2 + 0.95 * 1.6 = 1.72
    adv, ret = gae(REWARDS, VALUES, MASK, gamma=1.0, lam=0.95)
    torch.testing.assert_close(adv, _t([[0.46575, 0.385, 0.3], [1.72, 1.6, 0.0]]), atol=ATOL, rtol=0)
    # returns = A + V: (0.96575, 0.985, 1.0), (1.92, 2.0, 0 on padding)
    torch.testing.assert_close(ret, _t([[0.96575, 0.985, 1.0], [1.92, 2.0, 0.0]]), atol=ATOL, rtol=0)


def test_gae_hand_example_gamma09_lam1():
    # Row 0: d2 = 1 - 0.7 = 0.3, A2 = 0.3; d1 = 0.9*0.7 - 0.6 = 0.03, A1 = 0.03 + 0.9*0.3 = 0.3;
    #        d0 = 0.9*0.6 - 0.5 = 0.04, A0 = 0.04 + 0.9*0.3 = 0.31   (= MC: 0.9^2 * 1 - 0.5)
    # Row 1: d1 = 2 - 0.4 = 1.6; d0 = 0.9*0.4 - 0.2 = 0.16, A0 = 0.16 + 0.9*1.6 = 1.6   (= 0.9 * 2 - 0.2)
    adv, ret = gae(REWARDS, VALUES, MASK, gamma=0.9, lam=1.0)
    torch.testing.assert_close(adv, _t([[0.31, 0.3, 0.3], [1.6, 1.6, 0.0]]), atol=ATOL, rtol=0)
    torch.testing.assert_close(ret, _t([[0.81, 0.9, 1.0], [1.8, 2.0, 0.0]]), atol=ATOL, rtol=0)


def _random_case(seed: int = 0, B: int = 5, T: int = 7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 4, 1, 0, 6])
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float()
    rewards = torch.randn(B, T, generator=g)
    values = torch.randn(B, T, generator=g)
    return rewards, values, mask, lengths


def test_gae_lam1_gamma1_is_monte_carlo():
    rewards, values, mask, lengths = _random_case()
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    for b, n in enumerate(lengths.tolist()):
        for t in range(7):
            if t < n:
                mc = float(rewards[b, t:n].sum())  # reward-to-go over real tokens only
                assert adv[b, t].item() == pytest.approx(mc - float(values[b, t]), abs=1e-5)
                assert ret[b, t].item() == pytest.approx(mc, abs=1e-5)
            else:
                assert adv[b, t].item() == 0.0 and ret[b, t].item() == 0.0


def test_gae_lam0_is_one_step_td():
    rewards, values, mask, lengths = _random_case(seed=1)
    gamma = 0.8
    adv, ret = gae(rewards, values, mask, gamma=gamma, lam=0.0)
    for b, n in enumerate(lengths.tolist()):
        for t in range(n):
            v_next = float(values[b, t + 1]) if t + 1 < n else 0.0  # terminal after the last token
            td = float(rewards[b, t]) + gamma * v_next - float(values[b, t])
            assert adv[b, t].item() == pytest.approx(td, abs=1e-5)
            assert ret[b, t].item() == pytest.approx(float(rewards[b, t]) + gamma * v_next, abs=1e-5)
    assert float(adv[mask == 0].abs().sum()) == 0.0


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        gae(REWARDS, VALUES[:, :2], MASK, 1.0, 1.0)


# -- rewards, whitening, value loss --------------------------------------------------------------


def test_final_token_rewards_with_padding():
    mask = _t([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])
    out = final_token_rewards(_t([1.0, 2.0, 3.0, -0.5]), mask)
    # last real token: index 2, 0, none (empty completion: no reward anywhere), 1
    torch.testing.assert_close(out, _t([[0, 0, 1.0], [2.0, 0, 0], [0, 0, 0], [0, -0.5, 0]]))


def test_whiten_over_valid_tokens():
    x = _t([[1.0, 2.0, 3.0], [4.0, 100.0, -50.0]])
    mask = _t([[1, 1, 1], [1, 0, 0]])
    # valid 1,2,3,4: mean 2.5, unbiased var (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3
    sd = math.sqrt(5 / 3)
    expected = _t([[-1.5 / sd, -0.5 / sd, 0.5 / sd], [1.5 / sd, 0.0, 0.0]])
    torch.testing.assert_close(whiten(x, mask), expected, atol=1e-5, rtol=0)
    w = whiten(x, mask)
    assert float((w * mask).sum()) == pytest.approx(0.0, abs=1e-5)
    # one valid token: only centred (-> 0); none: zeros
    assert float(whiten(x, _t([[0, 1, 0], [0, 0, 0]])).abs().sum()) == 0.0
    assert float(whiten(x, torch.zeros(2, 3)).abs().sum()) == 0.0


def test_value_loss_hand_example_clip_active_and_inactive():
    clip = 0.2
    v = torch.tensor([[1.0, 0.0, 0.6, 7.0]], requires_grad=True)
    old = _t([[0.5, 0.5, 0.5, 0.0]])
    ret = _t([[2.0, 0.4, 1.0, 0.0]])
    mask = _t([[1, 1, 1, 0]])  # the 4th token is padding (its huge error must not count)
    # token 0: unclipped (1 - 2)^2 = 1; clipped v = 0.5 + 0.2 = 0.7, (0.7 - 2)^2 = 1.69 -> max 1.69 (clip active)
    # token 1: unclipped (0 - 0.4)^2 = 0.16; clipped v = 0.3, (0.3 - 0.4)^2 = 0.01 -> max 0.16 (clip inactive)
    # token 2: |0.6 - 0.5| < 0.2, both (0.6 - 1)^2 = 0.16
    # loss = 0.5 * (1.69 + 0.16 + 0.16) / 3 = 0.335
    loss = value_loss(v, old, ret, mask, clip)
    assert float(loss.detach()) == pytest.approx(0.335, abs=1e-6)
    loss.backward()
    # d/dv of 0.5/3 * (v - R)^2 = (v - R)/3 where the unclipped branch wins; 0 where the clipped one wins
    torch.testing.assert_close(v.grad, _t([[0.0, -0.4 / 3, -0.4 / 3, 0.0]]), atol=1e-6, rtol=0)


def test_explained_variance():
    ret = _t([[1.0, 2.0, 3.0, 9.0]])
    mask = _t([[1, 1, 1, 0]])
    assert explained_variance(ret, ret, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(ret, 2.0), ret, mask) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(explained_variance(ret, torch.ones_like(ret), mask))


# -- ppo_advantages / critic_loss with a fake trainer ----------------------------------------------


def _batch(prompt_ids, prompt_mask, completion_ids, completion_mask, rewards) -> RolloutBatch:
    B = len(rewards)
    return RolloutBatch(examples=[None] * B, prompts=[""] * B, completions=[None] * B, rewards=_t(rewards),
                        reward_parts={}, prompt_ids=torch.tensor(prompt_ids), prompt_mask=torch.tensor(prompt_mask),
                        completion_ids=torch.tensor(completion_ids), completion_mask=torch.tensor(completion_mask),
                        group_size=1, max_new_tokens=len(completion_ids[0]))


def _trainer(critic: nn.Module, mb_rows: int, **rl) -> SimpleNamespace:
    cfg = dict(kl_in="loss", beta=0.0, gamma=1.0, lam=1.0, value_clip=0.2)
    cfg.update(rl)
    return SimpleNamespace(critic=critic, mb_rows=mb_rows, rl=SimpleNamespace(**cfg),
                           acc=SimpleNamespace(device=torch.device("cpu")))


class ProbeCritic(nn.Module):
    """value = scale * (100 * token id + position id): shows which position a value was read at."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        return self.scale * (100.0 * input_ids.float() + position_ids.float())


class ZeroCritic(nn.Module):
    def forward(self, input_ids, attention_mask=None, position_ids=None):
        return torch.zeros(input_ids.shape)


# Row 0: prompt [pad, 11, 12] (left-padded), completion [21, 22, 23]; row 1: prompt [13, 14, 15], completion [24].
PROBE = dict(prompt_ids=[[0, 11, 12], [13, 14, 15]], prompt_mask=[[0, 1, 1], [1, 1, 1]],
             completion_ids=[[21, 22, 23], [24, 0, 0]], completion_mask=[[1, 1, 1], [1, 0, 0]])


@pytest.mark.parametrize("mb_rows", [1, 2])
def test_values_are_read_at_the_position_that_predicts_each_token(mb_rows):
    batch = _batch(**PROBE, rewards=[0.0, 0.0])
    adv, ret, values, stats = ppo_advantages(_trainer(ProbeCritic(), mb_rows), batch, torch.zeros(2, 3), None,
                                             whiten_advantages=False)
    # Value of completion token t = critic output at the token before it, with positions that skip the
    # left pad: row 0 positions are (pad 0), 11@0, 12@1, 21@2, 22@3, 23@4 -> V = 12@1, 21@2, 22@3.
    # Row 1: 13@0, 14@1, 15@2, 24@3 -> V(token 24) = 15@2; padding 0.
    torch.testing.assert_close(values, _t([[1201.0, 2102.0, 2203.0], [1502.0, 0.0, 0.0]]))
    # rewards 0, gamma = lam = 1: A_t = -V_t, returns 0 on real tokens
    torch.testing.assert_close(adv, -values)
    torch.testing.assert_close(ret, torch.zeros(2, 3))
    assert stats["ppo/value_mean"] == pytest.approx((1201 + 2102 + 2203 + 1502) / 4)


def test_kl_in_reward_shaping():
    batch = _batch(**PROBE, rewards=[1.0, 0.5])
    old = _t([[-1.0, -2.0, -0.5], [-1.0, 0.0, 0.0]])
    ref = _t([[-1.5, -1.0, -0.5], [-3.0, 0.0, 0.0]])
    beta = 0.1
    # k1 = old - ref: row 0 (0.5, -1, 0), row 1 (2).  Shaped rewards, beta 0.1:
    # row 0: (-0.05, +0.1, 1 - 0) ; row 1: (0.5 - 0.2) = 0.3.  V = 0, gamma = lam = 1: A = reward-to-go.
    tr = _trainer(ZeroCritic(), 2, kl_in="reward", beta=beta)
    adv, ret, _, stats = ppo_advantages(tr, batch, old, ref, whiten_advantages=False)
    torch.testing.assert_close(adv, _t([[1.05, 1.1, 1.0], [0.3, 0.0, 0.0]]), atol=ATOL, rtol=0)
    torch.testing.assert_close(ret, adv)
    assert stats["ppo/kl_k1"] == pytest.approx((0.5 - 1 + 0 + 2) / 4)
    assert stats["ppo/kl_penalty"] == pytest.approx((0.1 * -0.5 + 0.1 * 2) / 2)
    # the same rollout with the KL in the loss: the rewards are the rule rewards alone
    tr_loss = _trainer(ZeroCritic(), 2, kl_in="loss", beta=beta)
    adv2, _, _, stats2 = ppo_advantages(tr_loss, batch, old, ref, whiten_advantages=False)
    torch.testing.assert_close(adv2, _t([[1.0, 1.0, 1.0], [0.5, 0.0, 0.0]]))
    assert "ppo/kl_k1" not in stats2
    # whitening (default) over the 4 valid tokens (1.05, 1.1, 1.0, 0.3)
    adv3, _, _, _ = ppo_advantages(tr, batch, old, ref)
    torch.testing.assert_close(adv3, whiten(adv, batch.completion_mask))
    assert float(adv3[batch.completion_mask.bool()].std()) == pytest.approx(1.0, abs=1e-5)


def test_critic_loss_on_a_trimmed_mini_batch():
    batch = _batch(**PROBE, rewards=[0.0, 0.0])
    critic = ProbeCritic()
    tr = _trainer(critic, 2, value_clip=1e9)  # no clipping: plain 0.5 * MSE
    rows = torch.tensor([1])
    t = batch.select(rows)  # row 1 alone: completion trimmed to T_mb = 1
    assert t["completion_ids"].shape == (1, 1)
    returns = _t([[0, 0, 0], [1500.0, 0, 0]])
    old_values = _t([[0, 0, 0], [1502.0, 0, 0]])
    loss = critic_loss(tr, t, rows, returns, old_values)
    # V = 1502 (token 15 at position 2), R = 1500: 0.5 * 2^2 = 2
    assert float(loss.detach()) == pytest.approx(2.0)
    loss.backward()
    assert float(critic.scale.grad) == pytest.approx((1502 - 1500) * 1502)  # d/ds 0.5 (s*1502 - 1500)^2


class ConstCritic(nn.Module):
    """value = c everywhere (a learnable scalar)."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        return self.c * torch.ones(input_ids.shape)


@pytest.mark.parametrize("c,expected_loss,expected_grad", [
    # v = 1.0, v_old = 0.5, R = 2, clip 0.2: unclipped (1 - 2)^2 = 1, clipped v = 0.7: 1.69 -> 0.5 * 1.69,
    # and no gradient (the clipped branch is constant in v)
    (1.0, 0.845, 0.0),
    # v = 0.6 within 0.2 of v_old: both branches (0.6 - 2)^2 = 1.96 -> 0.98, gradient v - R = -1.4
    (0.6, 0.98, -1.4),
])
def test_critic_loss_value_clip(c, expected_loss, expected_grad):
    batch = _batch(**PROBE, rewards=[0.0, 0.0])
    critic = ConstCritic(c)
    rows = torch.tensor([1])
    t = batch.select(rows)
    returns = _t([[0, 0, 0], [2.0, 99.0, 99.0]])  # columns past T_mb = 1 must be sliced away
    old_values = _t([[0, 0, 0], [0.5, 99.0, 99.0]])
    loss = critic_loss(_trainer(critic, 2, value_clip=0.2), t, rows, returns, old_values)
    assert float(loss.detach()) == pytest.approx(expected_loss, abs=1e-6)
    loss.backward()
    assert float(critic.c.grad) == pytest.approx(expected_grad, abs=1e-6)


# -- the critic ----------------------------------------------------------------------------------


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_build_critic_value_head_copies_the_policy_body(tiny_model_dir):
    from r1lib.models import load_model

    policy, tok = load_model(tiny_model_dir, device="cpu")
    rl = SimpleNamespace(critic="value_head", critic_preset="nano")
    critic = build_critic(rl, policy, tiny_model_dir, tok)
    assert isinstance(critic, ValueModel)
    hidden = policy.config.hidden_size
    assert _n_params(critic) == _n_params(policy.model) + hidden + 1
    for (n1, p1), (n2, p2) in zip(critic.backbone.named_parameters(), policy.model.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()  # a copy, not shared
    ids = tok(["<think> 1 + 2", "3"], padding=True, return_tensors="pt")
    am = ids["attention_mask"]
    v = critic(ids["input_ids"], am, (am.cumsum(-1) - 1).clamp(min=0))
    assert v.shape == ids["input_ids"].shape and v.dtype == torch.float32
    assert float(v.detach().abs().max()) == 0.0  # zero-initialised head
    # training the critic leaves the policy alone
    before = policy.model.embed_tokens.weight.clone()
    with torch.no_grad():
        critic.backbone.embed_tokens.weight.add_(1.0)
    assert torch.equal(policy.model.embed_tokens.weight, before)


def test_build_critic_separate_is_a_small_random_model(tiny_model_dir):
    from r1lib.models import build_model, load_model

    _, tok = load_model(tiny_model_dir, device="cpu")
    policy = build_model("tiny", tok, seed=1)  # a bigger policy than the nano critic
    rl = SimpleNamespace(critic="separate", critic_preset="nano")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    critic = build_critic(rl, policy, "unused", tok)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG is untouched
    nano = build_model("nano", tok, seed=0)
    assert _n_params(critic) == _n_params(nano.model) + nano.config.hidden_size + 1
    assert _n_params(critic) < _n_params(policy.model) / 3
    ids = torch.tensor([[5, 6, 7, 8]])
    assert critic(ids, torch.ones_like(ids), torch.arange(4).unsqueeze(0)).shape == (1, 4)
    with pytest.raises(ValueError):
        build_critic(SimpleNamespace(critic="bogus"), policy, "unused", tok)


# -- a small learning test -----------------------------------------------------------------------


def _toy_policy(vocab: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                      tie_word_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg)


@torch.no_grad()
def _sample(model: nn.Module, prompt: torch.Tensor, n_new: int, g: torch.Generator) -> torch.Tensor:
    ids = prompt
    for _ in range(n_new):
        logits = model(input_ids=ids, use_cache=False).logits[:, -1].float()
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=g)
        ids = torch.cat([ids, nxt], dim=1)
    return ids[:, prompt.size(1):]


def test_ppo_learns_a_bandit():
    """Reward 1 iff the first of 3 generated tokens is token 5 (vocabulary 8): the mean reward starts
    near 1/8 and PPO (critic + GAE + clipped surrogate + clipped value loss, this module's functions)
    drives it above 0.8 within 30 steps. Fixed seeds: deterministic on CPU."""
    from r1lib.training.rl import sequence_logprobs

    V, TARGET, B, T, STEPS = 8, 5, 32, 3, 30
    policy = _toy_policy(V, seed=0)
    critic = build_critic(SimpleNamespace(critic="value_head"), policy, "toy", None)
    tr = _trainer(critic, mb_rows=B // 2, gamma=1.0, lam=0.95, value_clip=0.2)
    opt = torch.optim.Adam([{"params": policy.parameters(), "lr": 3e-3},
                            {"params": critic.parameters(), "lr": 1e-2}])
    g = torch.Generator().manual_seed(0)
    prompt = torch.tensor([[1, 3, 4]]).expand(B, 3)
    pmask = torch.ones_like(prompt)
    history = []
    for step in range(STEPS):
        comp = _sample(policy, prompt, T, g)
        cmask = torch.ones_like(comp)
        rewards = (comp[:, 0] == TARGET).float()
        history.append(float(rewards.mean()))
        batch = _batch(prompt.tolist(), pmask.tolist(), comp.tolist(), cmask.tolist(), rewards.tolist())
        with torch.no_grad():
            old_logp, _ = sequence_logprobs(policy, prompt, pmask, comp, cmask)
        adv, ret, old_v, stats = ppo_advantages(tr, batch, old_logp, None)
        assert all(math.isfinite(v) or k == "ppo/explained_variance" for k, v in stats.items())
        order = torch.randperm(B, generator=g)
        for i in range(2):
            rows = order[i * B // 2:(i + 1) * B // 2]
            t = batch.select(rows)
            logp, _ = sequence_logprobs(policy, t["prompt_ids"], t["prompt_mask"], t["completion_ids"],
                                        t["completion_mask"])
            out = policy_loss(logp, old_logp[rows], adv[rows], t["completion_mask"], epsilon=0.2)
            loss = out.loss + 0.5 * critic_loss(tr, t, rows, ret, old_v)
            opt.zero_grad()
            loss.backward()
            opt.step()
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert first < 0.35, history
    assert last > 0.8, history


# -- RLTrainer end to end ------------------------------------------------------------------------


@pytest.mark.parametrize("critic,kl_in", [("value_head", "reward"), ("value_head", "loss"),
                                          ("separate", "reward"), ("separate", "loss")])
def test_rltrainer_ppo_smoke(tmp_path, tiny_model_dir, critic, kl_in):
    from r1lib.config import load_config
    from r1lib.training.rl import RLTrainer

    # language_consistency scores an untrained model's word-free text 1.0, so the rewards are non-zero and
    # the critic has something to fit; a large lr moves the policy away from the reference in one step.
    # The separate critic is a 'tiny' preset, i.e. not the same shape as the nano policy.
    cfg = write_tiny_config(
        tmp_path, "ppo",
        "rl: {algorithm: ppo, steps: 2, batch_size: 4, num_generations: 2, mini_batches: 2, max_new_tokens: 8, "
        "eval_every: 2, eval_k: 2, checkpoint_every: 2, sampler: hf, lr: 0.001, ref_reset_every: 100, "
        f"critic: {critic}, critic_preset: tiny, kl_in: {kl_in}, beta: 0.05, "
        "rewards: {accuracy: 1.0, format: 1.0, language_consistency: 1.0}}",
        "eval: {max_new_tokens: 8}")
    out = tmp_path / "out"
    trainer = RLTrainer(load_config(cfg), init_model=tiny_model_dir, out_dir=out)
    n_policy_body = _n_params(trainer.policy.model)
    n_critic = _n_params(trainer.critic)
    if critic == "value_head":
        assert n_critic == n_policy_body + trainer.policy.config.hidden_size + 1
    else:
        assert n_critic > 2 * n_policy_body  # 'tiny' body > nano body
    res = trainer.train()
    assert res.steps == 2 and (res.policy_path / "config.json").exists()
    lines = [json.loads(x) for x in res.metrics_path.read_text().splitlines()]
    steps = [x for x in lines if "loss" in x]
    assert [x["step"] for x in steps] == [1, 2]
    for x in steps:
        assert math.isfinite(x["loss"]) and math.isfinite(x["value_loss"])
        assert math.isfinite(x["ppo/value_mean"]) and math.isfinite(x["ppo/return_mean"])
        assert ("ppo/kl_k1" in x) == (kl_in == "reward")
    # step 1: the zero-initialised head predicts 0 everywhere; the rewards are not all 0, so the loss is > 0
    assert steps[0]["ppo/value_mean"] == 0.0
    assert steps[0]["reward/mean"] > 0 and steps[0]["value_loss"] > 0
    assert steps[1]["ppo/value_mean"] != 0.0  # the critic was updated
    if kl_in == "reward":
        assert steps[0]["ppo/kl_k1"] == 0.0  # the reference is the initial policy
        assert steps[1]["ppo/kl_k1"] != 0.0  # the policy moved in step 1: a dense KL penalty in step 2
    ckpt = out / "checkpoints" / "step_00000002"
    assert (ckpt / "pytorch_model_1.bin").exists()  # the critic is saved with the policy
