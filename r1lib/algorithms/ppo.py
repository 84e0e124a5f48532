"""PPO for the r1lib engine: a critic, per-token rewards, GAE and the clipped value loss.

The GRPO-vs-PPO ablation (docs/paper.md §8, [V2 A.3]) runs both algorithms on one engine
(``r1lib.training.rl.RLTrainer``); with ``rl.algorithm == "ppo"`` the trainer calls three functions
of this module:

- :func:`build_critic` once, to make the value model (trained with the policy by the same optimizer,
  its own learning rate ``rl.critic_lr``);
- :func:`ppo_advantages` once per step, after the rollout: values of the rollout, per-token rewards,
  GAE, returns, advantage whitening;
- :func:`critic_loss` once per mini-batch: the clipped value loss, added to the policy loss with the
  weight ``rl.vf_coef``.

Under DeepSpeed (ZeRO-1/2/3) the critic is its own DeepSpeed engine (:func:`deepspeed_critic`), with its own
optimizer, backward and step, as OpenRLHF does: accelerate trains one DeepSpeed engine per ``Accelerator``.
Without DeepSpeed one optimizer holds both models' parameter groups.

The policy loss itself is the shared clipped surrogate (``r1lib.algorithms.losses.policy_loss``) with
per-token advantages ``(B, T)`` instead of GRPO's one advantage per completion.

Alignment. For a completion ``o_1..o_T`` after a prompt ``q``, token ``o_t`` is the *action* taken in
the *state* ``s_t = (q, o_<t)``. Its log-prob is read from the logits at the position of the last token
of ``s_t`` (the position that predicts ``o_t``, as in ``r1lib.training.rl.sequence_logprobs``), and so
is its value ``V(s_t)``: the critic's hidden state *before* ``o_t``. With ``input_ids = cat(prompt,
completion)`` of length ``P + T`` that is positions ``P-1 .. P+T-2``, i.e. ``[:, -(T+1):-1]``.

Rewards (classic PPO-RLHF, Ziegler et al. 2019; Ouyang et al. 2022): the rule reward of the completion
is given at its last real token, every other token gets 0; with ``rl.kl_in == "reward"`` every token
also gets ``-beta * kl_t`` (the dense KL penalty the paper contrasts with GRPO's KL-in-the-loss,
[V2 A.3 p.16]). The episode ends after the last token: the value there is 0 (also for completions cut
by ``max_new_tokens``, which we treat as terminal like TRL and OpenRLHF do rather than bootstrapping).

Shapes: ``B`` completions, ``T`` the longest completion, ``mask (B, T)`` 1 on real completion tokens
(right padding). Tensors on padded positions are 0 in every output.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

# Added to the variance in whitening (TRL's masked_whiten uses the same 1e-8).
WHITEN_EPS = 1e-8


# -- pure tensor functions -------------------------------------------------------------------------


def final_token_rewards(seq_rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Put each completion's scalar reward on its last real token: ``(B,), (B, T) -> (B, T)``.

    The last real token is the last position where ``mask`` is 1 (right padding is the engine's layout,
    but any padding works). A completion with no tokens gets no reward anywhere: there is no action to
    credit, and the engine's loss ignores it either way.
    """
    if seq_rewards.dim() != 1 or mask.dim() != 2 or seq_rewards.size(0) != mask.size(0):
        raise ValueError(f"need seq_rewards (B,) and mask (B, T); got {tuple(seq_rewards.shape)} and "
                         f"{tuple(mask.shape)}")
    B, T = mask.shape
    out = torch.zeros(B, T, dtype=torch.float32, device=mask.device)
    if T == 0:
        return out
    pos = torch.arange(T, device=mask.device).expand(B, T)
    last = torch.where(mask > 0, pos, torch.full_like(pos, -1)).max(dim=-1).values  # (B,), -1 if empty
    has = last >= 0
    rows = torch.arange(B, device=mask.device)[has]
    out[rows, last[has]] = seq_rewards.to(out)[has]
    return out


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over the masked completion tokens.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``A_t = delta_t + gamma * lam * A_{t+1}``, with
    ``V`` and ``A`` past the last real token taken as 0 (terminal). Returns ``(advantages, returns)``,
    both ``(B, T)``, with ``returns = advantages + values`` (the critic's regression target, i.e. the
    lambda-return). ``lam = 1`` gives Monte-Carlo advantages ``sum_k gamma^k r_{t+k} - V_t``;
    ``lam = 0`` the one-step TD error ``r_t + gamma V_{t+1} - V_t``.
    """
    if not (rewards.shape == values.shape == mask.shape) or rewards.dim() != 2:
        raise ValueError(f"rewards, values and mask must all be (B, T); got {tuple(rewards.shape)}, "
                         f"{tuple(values.shape)}, {tuple(mask.shape)}")
    m = mask.to(torch.float32)
    r = rewards.to(torch.float32) * m
    v = values.to(torch.float32) * m
    B, T = r.shape
    adv = torch.zeros_like(r)
    next_v = torch.zeros(B, dtype=r.dtype, device=r.device)
    next_a = torch.zeros(B, dtype=r.dtype, device=r.device)
    for t in range(T - 1, -1, -1):  # python loop over T: O(T) small ops, negligible next to a forward pass
        delta = r[:, t] + gamma * next_v - v[:, t]
        a = (delta + gamma * lam * next_a) * m[:, t]
        adv[:, t] = a
        # A padded position (m = 0) passes 0 on: the token before it is the last one (terminal).
        next_v = v[:, t] * m[:, t]
        next_a = a
    return adv, (adv + v) * m


def whiten(x: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True) -> torch.Tensor:
    """Normalise ``x`` to mean 0, std 1 over the tokens where ``mask`` is 1 (padding stays 0).

    Advantage whitening over the batch is common PPO practice (OpenAI baselines, TRL's PPOTrainer
    ``masked_whiten``, OpenRLHF), not part of PPO's definition. The variance is the unbiased one (as
    TRL's ``masked_var``) plus ``1e-8``. Fewer than 2 valid tokens: only centred (no spread to scale by).
    """
    m = mask.to(torch.float32)
    xf = x.to(torch.float32)
    n = m.sum()
    if n < 1:
        return torch.zeros_like(xf)
    mean = (xf * m).sum() / n
    centred = (xf - mean) * m
    if n < 2:
        return centred if shift_mean else xf * m
    var = (centred ** 2).sum() / (n - 1)
    out = centred * torch.rsqrt(var + WHITEN_EPS)
    if not shift_mean:
        out = out + mean
    return out * m


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip: float) -> torch.Tensor:
    """PPO's clipped value loss (PPO2 / OpenAI baselines form), a token mean over ``mask``:

    ``0.5 * mean_t max((v_t - R_t)^2, (clip(v_t, v_old_t - c, v_old_t + c) - R_t)^2)``.

    The clip keeps the critic from moving more than ``c`` per update away from the values that computed
    the advantages; the max makes the loss pessimistic (it never rewards the clip).
    """
    m = mask.to(torch.float32)
    v = values.float()
    clipped = old_values.float() + torch.clamp(v - old_values.float(), -clip, clip)
    per_token = torch.max((v - returns.float()) ** 2, (clipped - returns.float()) ** 2)
    return 0.5 * (per_token * m).sum() / m.sum().clamp(min=1.0)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """``1 - Var(R - V) / Var(R)`` over valid tokens: 1 = perfect critic, 0 = no better than a constant,
    negative = worse. NaN when the returns have no spread."""
    m = mask.to(torch.float32)
    n = m.sum()
    if n < 2:
        return float("nan")

    def var(x: torch.Tensor) -> torch.Tensor:
        mu = (x * m).sum() / n
        return (((x - mu) * m) ** 2).sum() / (n - 1)

    vr = var(returns.float())
    if vr <= 0:
        return float("nan")
    return float(1.0 - var(returns.float() - values.float()) / vr)


# -- the critic ------------------------------------------------------------------------------------


class ValueModel(nn.Module):
    """A transformer body (no LM head) plus a scalar value head: ``(B, L) -> values (B, L)``.

    A plain ``nn.Module`` so that ``accelerate.prepare`` can wrap it (DDP / DeepSpeed) like the policy.
    The head is zero-initialised: every value starts at 0 (the critic knows nothing yet) and the first
    updates move only the head, so a copied policy body is not disturbed by a random head's gradients.
    """

    def __init__(self, backbone: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        with torch.random.fork_rng(devices=[]):  # Linear's default init draws from the global RNG; keep it as it was
            self.value_head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               use_cache=False).last_hidden_state  # (B, L, H)
        w = self.value_head.weight
        return self.value_head(hidden.to(w.dtype)).squeeze(-1).float()  # (B, L)


def _backbone(causal_lm: nn.Module) -> nn.Module:
    """The transformer body of a ``*ForCausalLM`` (``.model`` for Llama/Qwen2), without the LM head."""
    prefix = getattr(causal_lm, "base_model_prefix", "model")
    body = getattr(causal_lm, prefix, None)
    if not isinstance(body, nn.Module):
        raise ValueError(f"cannot find the transformer body of {type(causal_lm).__name__} (no .{prefix})")
    return body


def build_critic(rl_cfg: Any, policy_model: nn.Module, init_model_path: Any, tokenizer: Any) -> ValueModel:
    """The PPO value model for ``rl_cfg.critic``:

    - ``"value_head"``: a deep copy of the policy's transformer body, i.e. the *initial policy weights*
      (the trainer calls this before any update), plus a zero-initialised value head. Same size as the
      policy: the cost the paper counts against PPO ([V2 A.3]: "the value model is about the same size
      as the policy"). Copying from ``policy_model`` (already loaded, on its device) rather than
      reloading ``init_model_path``, except under ZeRO-3, where the loaded policy is already partitioned
      and the body is loaded again from ``init_model_path``.
    - ``"separate"``: a separate small Llama of preset ``rl_cfg.critic_preset`` (``r1lib.models.
      build_model``), **randomly initialised** (seed 0), plus a value
      head. DEVIATION (none from the paper, which uses a policy-sized critic): a cheaper critic to test
      whether critic size matters at our scale. It shares the policy's tokenizer, so it reads the same
      token ids. Kept in float32.

    Neither mode changes the caller's global torch RNG state (rollout seeds stay as without a critic).
    """
    from r1lib.launch import is_partitioned

    kind = getattr(rl_cfg, "critic", "value_head")
    if kind == "value_head":
        source = policy_model
        if is_partitioned(policy_model):
            # ZeRO-3: transformers loaded the policy already partitioned (deepspeed.zero.Init), and a deep copy
            # would copy empty shards; load the same initial weights again (partitioned the same way).
            from r1lib.models import load_model

            first = next(policy_model.parameters())
            source, _ = load_model(init_model_path, dtype=str(first.dtype).removeprefix("torch."),
                                   device=str(first.device))
        try:
            body = _backbone(source) if source is not policy_model else copy.deepcopy(_backbone(policy_model))
        except ValueError as err:
            raise ValueError(f"rl.critic='value_head' with the model from {init_model_path}: {err}") from None
        hidden = int(policy_model.config.hidden_size)
        critic = ValueModel(body, hidden)
        dtype = next(body.parameters()).dtype
        critic.value_head.to(dtype=dtype)
    elif kind == "separate":
        from r1lib.models import build_model

        with torch.random.fork_rng(devices=[]):  # build_model reseeds torch; keep the caller's RNG as it was
            small = build_model(rl_cfg.critic_preset, tokenizer, seed=0)
        critic = ValueModel(_backbone(small), int(small.config.hidden_size))
    else:
        raise ValueError(f"unknown rl.critic {kind!r}; choose 'value_head' or 'separate'")
    critic.requires_grad_(True)
    return critic.train()


def deepspeed_critic(critic: nn.Module, accelerator: Any, *, lr: float, weight_decay: float) -> Any:
    """The critic as a DeepSpeed engine of its own, next to the policy's (which ``accelerator.prepare`` made).

    Why ``deepspeed.initialize`` directly and not accelerate: ``Accelerator.prepare`` builds one engine from the
    *last* module it is given (two models in one call both become that engine), and ``Accelerator.backward``
    drives the first engine it prepared; accelerate's several ``deepspeed_plugins`` serve one trained model plus
    models in inference (a teacher), and must be given when the Accelerator is built, while the trainer takes a
    ready one. TRL prepares its reference model the same way (``trl.models.prepare_deepspeed``).

    The config is the policy's, as accelerate completed it (ZeRO stage, micro-batch, precision, gradient
    clipping: the critic is clipped separately, as without DeepSpeed), minus any ``optimizer`` / ``scheduler``
    block: the critic's optimizer is our AdamW with its own learning rate (``rl.critic_lr``), mapped to
    DeepSpeed's CPU Adam when the config offloads the optimizer (as accelerate does for the policy). The
    trainer calls ``engine.backward(vf_coef * value_loss)`` and ``engine.step()`` per mini-batch and saves it
    with ``engine.save_checkpoint`` next to accelerate's state.
    """
    import deepspeed
    from accelerate.utils.deepspeed import map_pytorch_optim_to_deepspeed

    config = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    config.pop("optimizer", None)
    config.pop("scheduler", None)
    optimizer = torch.optim.AdamW([p for p in critic.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)
    offload = config.get("zero_optimization", {}).get("offload_optimizer", {}).get("device", "none")
    if offload not in (None, "none") and config.get("zero_force_ds_cpu_optimizer", True):
        optimizer = map_pytorch_optim_to_deepspeed(optimizer)
    engine, *_ = deepspeed.initialize(model=critic, optimizer=optimizer, config=config)
    return engine


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding (as ``r1lib.training.rl.sequence_logprobs`` passes them)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def critic_values(critic: nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                  completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """``V(s_t)`` for every completion token: ``(B, T)``, read at the position that predicts token ``t``
    (module docstring, "Alignment"). Padded positions hold whatever the critic says; mask them."""
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    T = completion_ids.size(1)
    v = critic(input_ids=input_ids, attention_mask=attention_mask, position_ids=_position_ids(attention_mask))
    return v[:, input_ids.size(1) - T - 1: input_ids.size(1) - 1]  # (B, T)


_TOKEN_KEYS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")


@torch.no_grad()
def rollout_values(trainer: Any, batch: Any) -> torch.Tensor:
    """Values of the whole rollout from ``trainer.critic``, in chunks of ``trainer.mb_rows`` rows, on CPU
    ``(B, T)`` right-padded with 0 (the same layout as the trainer's ``_score_batch`` log-probs)."""
    B, T = batch.completion_ids.shape
    values = torch.zeros(B, T)
    dev = trainer.acc.device
    for s in range(0, B, trainer.mb_rows):
        rows = torch.arange(s, min(B, s + trainer.mb_rows))
        t = batch.select(rows)
        v = critic_values(trainer.critic, *(t[k].to(dev) for k in _TOKEN_KEYS))
        values[rows, : v.size(1)] = v.float().cpu()
    return values * batch.completion_mask.float()


def ppo_advantages(trainer: Any, batch: Any, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, *,
                   whiten_advantages: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                            dict[str, float]]:
    """Per-token PPO advantages of one rollout batch (the module docstring's reward and alignment).

    1. ``V(s_t)`` from ``trainer.critic`` (no gradient);
    2. rewards: ``batch.rewards`` on the last real token; with ``rl.kl_in == "reward"`` also
       ``-rl.beta * k1_t`` on every token, ``k1_t = old_logp_t - ref_logp_t`` (the log-ratio of the
       sampled token, Schulman's "k1": its sum over a completion is an unbiased estimate of the
       sequence KL(pi_old || pi_ref); it is what classic PPO-RLHF and TRL's PPOTrainer use as the dense
       penalty, and unlike k3 it can be negative per token);
    3. GAE with ``rl.gamma``, ``rl.lam``; returns = advantages + values (before whitening);
    4. ``whiten_advantages``: mean 0 / std 1 over this process's valid tokens (common practice, see
       :func:`whiten`).

    Returns ``(advantages, returns, old_values, stats)``, tensors ``(B, T)`` on CPU like ``old_logp``.
    """
    rl = trainer.rl
    mask = batch.completion_mask.float()
    values = rollout_values(trainer, batch)
    rewards = final_token_rewards(batch.rewards.float(), mask)
    stats: dict[str, float] = {}
    if rl.kl_in == "reward":
        if ref_logp is None:
            if rl.beta != 0.0:
                raise ValueError("rl.kl_in='reward' with rl.beta > 0 needs the reference log-probs")
        else:
            k1 = (old_logp.float() - ref_logp.float()) * mask
            rewards = rewards - rl.beta * k1
            n_tok = mask.sum().clamp(min=1.0)
            stats["ppo/kl_k1"] = float(k1.sum() / n_tok)
            stats["ppo/kl_penalty"] = float((rl.beta * k1).sum(-1).mean())  # per completion, summed over tokens
    adv, returns = gae(rewards, values, mask, rl.gamma, rl.lam)
    n_tok = mask.sum().clamp(min=1.0)
    stats.update({
        "ppo/value_mean": float((values * mask).sum() / n_tok),
        "ppo/return_mean": float((returns * mask).sum() / n_tok),
        "ppo/advantage_mean": float((adv * mask).sum() / n_tok),
        "ppo/explained_variance": explained_variance(values, returns, mask),
    })
    if whiten_advantages:
        adv = whiten(adv, mask)
    return adv, returns, values, stats


def critic_loss(trainer: Any, t: dict[str, torch.Tensor], rows: torch.Tensor, returns: torch.Tensor,
                old_values: torch.Tensor) -> torch.Tensor:
    """The clipped value loss of one mini-batch (:func:`value_loss`, ``c = rl.value_clip``), with gradient.

    ``t`` are the mini-batch's token tensors (``RolloutBatch.select(rows)``), trimmed to its longest
    completion ``T_mb <= T``; ``returns`` and ``old_values`` are the whole batch's ``(B, T)``.
    """
    dev = trainer.acc.device
    values = critic_values(trainer.critic, *(t[k].to(dev) for k in _TOKEN_KEYS))  # (b, T_mb)
    T_mb = values.size(1)
    return value_loss(values, old_values[rows, :T_mb].to(dev), returns[rows, :T_mb].to(dev),
                      t["completion_mask"].to(dev), trainer.rl.value_clip)
