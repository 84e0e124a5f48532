"""Policy-gradient losses as pure functions on per-token tensors.

Shapes: ``B`` completions in a (mini-)batch, ``T`` = the longest completion (right-padded), ``V`` vocab.
``mask`` is ``(B, T)`` with 1 on real completion tokens. Log-probabilities are of the sampled tokens.

The GRPO objective (paper Eq. 1-2, docs/paper.md §2.1) written per token, as in
DeepSeekMath's implementation and TRL (the paper writes it per sequence and leaves the aggregation
unspecified, docs/paper.md §2.1 "Per-token averaging: not specified by R1"):

    ratio_t   = exp(logp_t - old_logp_t)
    surrogate = -min(ratio_t * A, clip(ratio_t, 1 - eps, 1 + eps) * A)
    kl_t      = exp(ref_logp_t - logp_t) - (ref_logp_t - logp_t) - 1          (k3, paper Eq. 2)
    loss_t    = surrogate + beta * kl_t

then aggregated over tokens by :func:`aggregate`.

Peer check (tests/test_trl_equivalence.py): with ``aggregation="sequence"`` this equals TRL
``GRPOTrainer`` ``loss_type="grpo"`` (loss and gradients to 1e-7) **with** ``use_bias_correction_kl=False``.
TRL 1.16 defaults that flag to True, which multiplies the KL term by the importance ratio (the
DeepSeek-V3.2 variant); that is not the R1 paper's GRPO, so we do not do it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

AGGREGATIONS = ("sequence", "token", "dr_grpo")


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``log softmax(logits / temperature)`` gathered at ``tokens``: ``(B, T, V), (B, T) -> (B, T)``.

    Dividing by the rollout temperature makes these the log-probs of the distribution that was actually
    sampled (TRL does the same). The paper samples R1-Zero at T = 1, where this is a no-op.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    # log_softmax then gather: (B, T, V) -> (B, T); logsumexp form keeps memory at one (B, T, V) copy.
    return torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-token entropy of the sampling distribution: ``(B, T, V) -> (B, T)`` (a metric; no gradient needed)."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's unbiased, always-non-negative k3 estimator of KL(pi || pi_ref), per token (paper Eq. 2)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      eps_low: float, eps_high: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO/GRPO clipped surrogate, per token, as a *loss* (negated objective).

    ``advantages`` is ``(B,)`` (one per completion, broadcast over tokens) or ``(B, T)`` (PPO's GAE).
    Returns ``(loss (B, T), clipped (B, T) bool)``, where ``clipped`` marks tokens whose gradient the
    clip removed (the ratio is outside the trust region on the side the advantage pushes towards).
    """
    eps_high = eps_low if eps_high is None else eps_high
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)  # (B,) -> (B, 1), broadcast over T
    ratio = torch.exp(logp - old_logp)
    clipped_ratio = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = -torch.min(ratio * advantages, clipped_ratio * advantages)
    clipped = ((ratio < 1.0 - eps_low) & (advantages < 0)) | ((ratio > 1.0 + eps_high) & (advantages > 0))
    return loss, clipped


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str, *, max_tokens: int | None = None) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss to a scalar.

    - ``"sequence"``: mean over completions of each completion's token mean (GRPO as in DeepSeekMath
      Eq. 3's ``1/|o_i|``; TRL ``loss_type="grpo"``). **Our default**: it is GRPO as defined, and the
      peer check against TRL uses it. Known bias: a long wrong answer is penalised less per token.
    - ``"token"``: sum over all tokens / number of tokens (DAPO; TRL ``"bnpo"`` on one process).
    - ``"dr_grpo"``: sum over all tokens / (B * max_tokens), a constant (Dr. GRPO; TRL ``"dr_grpo"``),
      removing the length bias. ``max_tokens`` is the generation cap.
    """
    mask = mask.to(per_token.dtype)
    if mode == "sequence":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if mode == "token":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "dr_grpo":
        if not max_tokens:
            raise ValueError("loss aggregation 'dr_grpo' needs max_tokens (the generation cap)")
        return (per_token * mask).sum() / (per_token.size(0) * max_tokens)
    raise ValueError(f"unknown loss aggregation {mode!r}; choose one of {AGGREGATIONS}")


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor          # scalar, differentiable
    surrogate: torch.Tensor     # scalar, detached: the aggregated clipped-surrogate part
    kl: torch.Tensor            # scalar, detached: token-mean k3 KL (0 without a reference)
    clip_fraction: torch.Tensor  # scalar, detached: fraction of tokens whose gradient was clipped


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
                epsilon: float, epsilon_high: float | None = None, beta: float = 0.0,
                ref_logp: torch.Tensor | None = None, aggregation: str = "sequence",
                max_tokens: int | None = None) -> PolicyLossOutput:
    """The GRPO loss (module docstring), also used by PPO with per-token advantages and ``beta`` set by
    where its KL goes (in the loss, as here, or in the reward, then ``beta=0`` here)."""
    surrogate, clipped = clipped_surrogate(logp, old_logp, advantages, epsilon, epsilon_high)
    per_token = surrogate
    maskf = mask.to(logp.dtype)
    n_tok = maskf.sum().clamp(min=1.0)
    kl_mean = torch.zeros((), dtype=logp.dtype)
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs ref_logp (the reference model's log-probs)")
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + beta * kl
        kl_mean = ((kl * maskf).sum() / n_tok).detach()
    elif ref_logp is not None:
        kl_mean = ((kl_k3(logp, ref_logp) * maskf).sum() / n_tok).detach()
    loss = aggregate(per_token, mask, aggregation, max_tokens=max_tokens)
    return PolicyLossOutput(
        loss=loss,
        surrogate=aggregate(surrogate, mask, aggregation, max_tokens=max_tokens).detach(),
        kl=kl_mean,
        clip_fraction=((clipped.to(logp.dtype) * maskf).sum() / n_tok).detach(),
    )
