"""Rollouts: prompts -> G sampled completions each -> rule rewards -> padded token tensors.

One :class:`RolloutBatch` is what a policy update consumes. Groups are contiguous: rows
``g*G .. g*G+G-1`` are the G completions of prompt ``g`` (the layout ``r1lib.algorithms.advantages``
expects). Token tensors follow TRL's layout so the peer check can feed both engines the same inputs:
prompts left-padded, completions right-padded, ``input_ids = cat(prompt_ids, completion_ids)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from r1lib.analysis import correction_attempt, find_aha
from r1lib.corpus import style_distribution
from r1lib.prompts import PromptFormat, r1_zero_prompt
from r1lib.rewards import RewardFn, language_consistency_reward
from r1lib.sampling import Completion, Sampler, SamplingParams
from r1lib.tasks.base import Example
from r1lib.text_stats import has_reflection, language_mix


class EmptyBatchError(RuntimeError):
    """A rollout produced nothing to learn from (no prompts, or only empty completions)."""


@dataclass
class RolloutBatch:
    examples: list[Example]            # (B,) the problem of each row (repeated G times)
    prompts: list[str]                 # (B,)
    completions: list[Completion]      # (B,)
    rewards: torch.Tensor              # (B,) weighted total reward
    reward_parts: dict[str, torch.Tensor]  # name -> (B,) unweighted reward of each function
    prompt_ids: torch.Tensor           # (B, P) left-padded
    prompt_mask: torch.Tensor          # (B, P)
    completion_ids: torch.Tensor       # (B, T) right-padded
    completion_mask: torch.Tensor      # (B, T)
    group_size: int
    max_new_tokens: int
    gen_seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.completions)

    @property
    def truncated(self) -> torch.Tensor:
        return torch.tensor([c.finish_reason == "length" for c in self.completions])

    def select(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Token tensors of a subset of rows (a mini-batch), trimmed to its longest completion."""
        cm = self.completion_mask[rows]
        t = int(cm.sum(-1).max().item()) if len(rows) else 0
        pm = self.prompt_mask[rows]
        p0 = int((pm.sum(0) > 0).nonzero()[0].item()) if len(rows) else 0  # drop all-pad prompt columns
        return {"prompt_ids": self.prompt_ids[rows][:, p0:], "prompt_mask": pm[:, p0:],
                "completion_ids": self.completion_ids[rows][:, :t], "completion_mask": cm[:, :t]}


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """List of token-id lists -> ``(ids (N, L), mask (N, L))``, padded on the left or the right."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if not r:
            continue
        sl = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, sl] = torch.tensor(list(r), dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


def score(completions: Sequence[Completion], examples: Sequence[Example],
          reward_fns: Sequence[tuple[str, RewardFn, float]]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total reward and each function's reward. A NaN/inf reward is an error naming the row."""
    parts = {name: torch.tensor([float(fn(c.text, ex)) for c, ex in zip(completions, examples)])
             for name, fn, _ in reward_fns}
    total = torch.zeros(len(completions))
    for name, _, weight in reward_fns:
        bad = (~torch.isfinite(parts[name])).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"reward function {name!r} returned a non-finite value for example "
                             f"{examples[bad[0]].id!r} (rows {bad[:5]})")
        total += weight * parts[name]
    return total, parts


def collect_rollouts(sampler: Sampler, tokenizer: Any, examples: Sequence[Example], *, group_size: int,
                     max_new_tokens: int, temperature: float, reward_fns: Sequence[tuple[str, RewardFn, float]],
                     stop: Sequence[str] = ("</answer>",), seed: int | None = None,
                     add_special_tokens: bool = True, prompt_format: PromptFormat | None = None) -> RolloutBatch:
    """Sample ``group_size`` completions for each example and score them.

    Prompts use the R1-Zero template, or ``prompt_format`` (which then also sets the stop strings and how
    prompts are tokenized: ``r1lib.prompts.PromptFormat``). Rollouts use top-p 1.0 (no nucleus): the
    policy-gradient log-probs are those of the full distribution at ``temperature`` (paper: T = 1,
    docs/paper.md §2.2).
    """
    import time

    if not examples:
        raise EmptyBatchError("rollout: no prompts in this batch (the training set is empty?)")
    if prompt_format is not None:
        stop, add_special_tokens = prompt_format.stop, prompt_format.add_special_tokens
        prompts = [prompt_format(ex.problem) for ex in examples]
    else:
        prompts = [r1_zero_prompt(ex.problem) for ex in examples]
    params = SamplingParams(temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens, n=group_size,
                            stop=tuple(stop), seed=seed)
    t0 = time.perf_counter()
    out = sampler.generate(prompts, params)
    gen_seconds = time.perf_counter() - t0
    rows_ex = [ex for ex in examples for _ in range(group_size)]
    rows_prompt = [p for p in prompts for _ in range(group_size)]
    completions = [c for row in out for c in row]
    if len(completions) != len(rows_ex):
        raise RuntimeError(f"rollout: the sampler returned {len(completions)} completions, expected {len(rows_ex)}")
    if sum(c.num_tokens for c in completions) == 0:
        raise EmptyBatchError("rollout: every completion is empty (0 tokens); nothing to train on")
    rewards, parts = score(completions, rows_ex, reward_fns)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prompt_tok = tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]
    prompt_ids, prompt_mask = pad_rows([prompt_tok[i] for i in range(len(prompts)) for _ in range(group_size)],
                                       pad, left=True)
    completion_ids, completion_mask = pad_rows([c.token_ids for c in completions], pad, left=False)
    return RolloutBatch(examples=rows_ex, prompts=rows_prompt, completions=completions, rewards=rewards,
                        reward_parts=parts, prompt_ids=prompt_ids, prompt_mask=prompt_mask,
                        completion_ids=completion_ids, completion_mask=completion_mask, group_size=group_size,
                        max_new_tokens=max_new_tokens, gen_seconds=gen_seconds)


def rollout_stats(batch: RolloutBatch) -> dict[str, float]:
    """Per-step rollout metrics: reward mean/std per function, length, truncation, reflection, language mix,
    the share of each corpus style (``style/<name>``: which pretraining style RL amplifies), and the share of
    completions with a self-correction that fixed a wrong step (``self_correction_rate``; ``aha_rate`` when
    the answer is also correct: ``r1lib.analysis.find_aha``) or that only announce one
    (``correction_attempt_rate``: "Wait", fixed or not)."""
    n = len(batch)
    lengths = torch.tensor([c.num_tokens for c in batch.completions], dtype=torch.float)
    stats: dict[str, float] = {
        "reward/mean": float(batch.rewards.mean()),
        "reward/std": float(batch.rewards.std()) if n > 1 else 0.0,
        "length/mean": float(lengths.mean()),
        "length/max": float(lengths.max()),
        "truncated_fraction": float(batch.truncated.float().mean()),
        "reflection_rate": sum(has_reflection(c.text) for c in batch.completions) / n,
        "language_mix_rate": sum(bool(language_mix(c.text)) for c in batch.completions) / n,
        "language_consistency": sum(language_consistency_reward(c.text) for c in batch.completions) / n,
    }
    for style, share in style_distribution([c.text for c in batch.completions]).items():
        stats[f"style/{style}"] = share
    fixes = [find_aha(c.text) is not None for c in batch.completions]
    stats["self_correction_rate"] = sum(fixes) / n
    stats["correction_attempt_rate"] = sum(correction_attempt(c.text) for c in batch.completions) / n
    if "accuracy" in batch.reward_parts:  # the paper's "aha": a check that fixed a step, in a correct answer
        stats["aha_rate"] = sum(f and a >= 0.5 for f, a in zip(fixes, batch.reward_parts["accuracy"].tolist())) / n
    for name, vals in batch.reward_parts.items():
        stats[f"rewards/{name}/mean"] = float(vals.mean())
        stats[f"rewards/{name}/std"] = float(vals.std()) if n > 1 else 0.0
    if "accuracy" in batch.reward_parts:
        stats["accuracy"] = float((batch.reward_parts["accuracy"] >= 0.5).float().mean())
    if "format" in batch.reward_parts:
        stats["format_rate"] = float((batch.reward_parts["format"] >= 0.5).float().mean())
    stats = {k: (v if math.isfinite(v) else float("nan")) for k, v in stats.items()}
    return stats
