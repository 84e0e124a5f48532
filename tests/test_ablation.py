"""The ablations' verdicts on hand-made summaries (the runs themselves are exercised by the notebook smoke tests)."""

from __future__ import annotations

from r1lib.ablation import grpo_vs_ppo_finding, separated


def test_separated_needs_a_gap_larger_than_both_spreads():
    assert separated({"mean": 0.9, "std": 0.02}, {"mean": 0.2, "std": 0.1})
    assert not separated({"mean": 0.5, "std": 0.2}, {"mean": 0.3, "std": 0.1})     # gap 0.2 < 0.3
    assert not separated({"mean": 0.9, "std": 0.0}, {"mean": 0.1, "std": 0.0})     # one seed: no verdict


def _arm(mean, std, copies=2, params=100, state=1.0, sec=1.0):
    return {"final_pass_at_1": {"mean": mean, "std": std}, "model_copies": copies, "trainable_params": params,
            "model_state_mb": state, "sec_per_step": sec}


def test_grpo_vs_ppo_finding_reproduces_and_fails_the_papers_claims():
    paper_like = {"GRPO": _arm(0.9, 0.02), "PPO 0.95": _arm(0.1, 0.05, 3, 200, 1.8, 1.5),
                  "PPO 1.0": _arm(0.92, 0.03, 3, 200, 1.8, 1.5)}
    f = grpo_vs_ppo_finding(paper_like, "GRPO", "PPO 0.95", "PPO 1.0")
    assert f["verdict"] == {"ppo_095_worse_than_grpo": True, "ppo_10_close_to_grpo": True,
                            "ppo_10_better_than_ppo_095": True}
    assert "3 model copies vs GRPO's 2" in f["text"] and "2.00x the trainable parameters" in f["text"]
    unlike = {"GRPO": _arm(0.4, 0.2), "PPO 0.95": _arm(0.3, 0.2), "PPO 1.0": _arm(0.95, 0.01)}
    f = grpo_vs_ppo_finding(unlike, "GRPO", "PPO 0.95", "PPO 1.0")
    assert f["verdict"]["ppo_095_worse_than_grpo"] is False and f["verdict"]["ppo_10_close_to_grpo"] is False
