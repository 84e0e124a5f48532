"""Outcome-reward advantage estimators for a batch laid out as groups: ``rewards`` has shape ``(B,)``
with ``B = num_groups * G`` and the ``G`` completions of one prompt adjacent (rows ``g*G .. g*G+G-1``).

Each returns one scalar advantage per completion, shape ``(B,)``; the loss broadcasts it to every token
of that completion (DeepSeekMath §4.1.2, outcome supervision: "sets the advantages of all tokens in the
output as the normalized reward"). PPO's per-token GAE lives in :mod:`r1lib.algorithms.ppo`.
"""

from __future__ import annotations

import torch

# TRL adds 1e-4 to the std (grpo_trainer: ``advantages / (std + 1e-4)``); we use the same constant so
# the peer check against TRL is exact. The paper's Eq. 3 has no epsilon; it only matters for groups with
# zero spread, whose advantages are 0 either way.
STD_EPS = 1e-4


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (B,), got shape {tuple(rewards.shape)}")
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(f"group_size {group_size} must be >= 2 and divide the batch size {rewards.numel()}")
    return rewards.view(-1, group_size)  # (num_groups, G)


def grpo_advantages(rewards: torch.Tensor, group_size: int, *, scale: bool = True) -> torch.Tensor:
    """GRPO (paper Eq. 3): ``A_i = (r_i - mean(r_group)) / std(r_group)``.

    ``std`` is the unbiased sample std (Bessel's correction), as in TRL and DeepSeekMath's reference
    code; the paper does not say which. ``scale=False`` drops the division (Dr. GRPO).
    """
    g = _groups(rewards.float(), group_size)
    centred = g - g.mean(dim=1, keepdim=True)
    if scale:
        centred = centred / (g.std(dim=1, keepdim=True) + STD_EPS)
    return centred.reshape(-1)


def dr_grpo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-like training"): ``A_i = r_i - mean(r_group)``.

    Dividing by the group std up-weights questions that are almost always (or almost never) solved;
    Dr. GRPO removes it. Pair it with ``loss_aggregation="dr_grpo"`` (a constant normaliser) to also
    remove the length bias of the per-sequence mean.
    """
    return grpo_advantages(rewards, group_size, scale=False)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024): baseline = mean reward of the *other* G-1 samples of the prompt.

    ``A_i = r_i - (sum_j r_j - r_i) / (G - 1) = G/(G-1) * (r_i - mean(r_group))``.
    """
    g = _groups(rewards.float(), group_size)
    baseline = (g.sum(dim=1, keepdim=True) - g) / (group_size - 1)
    return (g - baseline).reshape(-1)


def compute_advantages(algorithm: str, rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Dispatch on the config's ``rl.algorithm`` for the critic-free estimators."""
    if algorithm == "grpo":
        return grpo_advantages(rewards, group_size)
    if algorithm == "dr_grpo":
        return dr_grpo_advantages(rewards, group_size)
    if algorithm == "rloo":
        return rloo_advantages(rewards, group_size)
    raise ValueError(f"no group advantage estimator for algorithm {algorithm!r} (PPO uses GAE with a critic)")


def zero_spread_fraction(rewards: torch.Tensor, group_size: int) -> float:
    """Fraction of groups whose G rewards are all equal: they carry no GRPO learning signal."""
    g = _groups(rewards.float(), group_size)
    return float(((g.max(dim=1).values - g.min(dim=1).values) == 0).float().mean())
