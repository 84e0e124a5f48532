"""Learning tests: the r1lib engine improves a fixed-seed reward on a tiny model within a small budget."""

from __future__ import annotations

import json

import pytest

from conftest import write_tiny_config


def _seven(text, example=None) -> float:
    """A toy verifiable reward: 1 if the completion contains the digit 7."""
    return float("7" in text)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grpo", "dr_grpo", "rloo"])
def test_engine_learns_a_rule_reward(tmp_path, tiny_model_dir, monkeypatch, algorithm):
    import r1lib.rewards as rewards
    from r1lib.config import load_config
    from r1lib.training.rl import RLTrainer

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "seven", _seven)
    cfg = load_config(write_tiny_config(
        tmp_path, "learn",
        f"rl: {{algorithm: {algorithm}, steps: 24, batch_size: 32, num_generations: 8, mini_batches: 2, "
        "max_new_tokens: 6, temperature: 1.0, lr: 3.0e-3, rewards: {seven: 1.0}, eval_every: 100, eval_k: 1, "
        "eval_limit: 1, checkpoint_every: 100, sampler: kv, loss_aggregation: "
        f"{'dr_grpo' if algorithm == 'dr_grpo' else 'sequence'}}}",
        "eval: {max_new_tokens: 4}"))
    result = RLTrainer(cfg, init_model=tiny_model_dir, out_dir=tmp_path / "run").train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    reward = [r["reward/mean"] for r in rows if "reward/mean" in r]
    assert len(reward) == 24 and result.steps == 24
    first, last = sum(reward[:4]) / 4, sum(reward[-4:]) / 4
    assert last > first + 0.3, (first, last, reward)
