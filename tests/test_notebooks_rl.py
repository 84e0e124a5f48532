"""Smoke runs of the RL notebooks (01 R1-Zero, 02 GRPO vs PPO, 03 length expansion) at tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import run_notebook, write_tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {name: REPO_ROOT / "notebooks" / name for name in
             ("01_r1_zero_grpo.ipynb", "02_ablation_grpo_vs_ppo.ipynb", "03_ablation_length_expansion.ipynb")}
TINY_RL = ("rl: {steps: 2, batch_size: 4, num_generations: 2, mini_batches: 2, max_new_tokens: 8, eval_every: 1, "
           "eval_k: 2, eval_limit: 2, checkpoint_every: 1, lr: 1.0e-3, sampler: hf}",
           "eval: {max_new_tokens: 8}")


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS[name], as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'config_path = "experiments/default.yaml"' in params[0].source
    assert "overrides = {}" in params[0].source and "init_model = None" in params[0].source


def _run(name, tmp_path, parameters):
    return run_notebook(NOTEBOOKS[name], tmp_path / name, parameters)


@pytest.mark.slow
def test_notebook_01_r1_zero(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = write_tiny_config(tmp_path, "nb01", *TINY_RL)
    _run("01_r1_zero_grpo.ipynb", tmp_path, {"config_path": str(cfg), "init_model": str(tiny_model_dir)})
    res = tmp_path / "results" / "r1_zero"
    metrics = json.loads((res / "metrics.json").read_text())
    for key in ("base_pass_at_1", "final_pass_at_1", "final_cons_at_k", "k", "base_mean_length", "final_mean_length",
                "base_reflection_rate", "final_reflection_rate", "final_format_rate", "steps", "train_seconds",
                "base_style_share", "final_style_share", "harder_base_pass_at_1", "harder_final_pass_at_1",
                "aha_examples_found", "targets"):
        assert key in metrics, key
    assert set(metrics["final_style_share"]) == {"direct", "short", "careful"}
    assert metrics["steps"] == 2 and metrics["k"] == 2 and metrics["eval_steps"] == [0, 1, 2]
    for fig in ("fig2_accuracy.png", "fig3_length.png", "reflection_words.png", "training_dynamics.png",
                "style_distribution.png"):
        assert (res / fig).stat().st_size > 0, fig
    assert len((res / "train_log.jsonl").read_text().splitlines()) >= 5  # 2 steps + 3 evals
    assert (tmp_path / "runs" / "r1_zero" / "policy" / "config.json").exists()


@pytest.mark.slow
def test_notebook_02_grpo_vs_ppo(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = write_tiny_config(tmp_path, "nb02", *TINY_RL)
    _run("02_ablation_grpo_vs_ppo.ipynb", tmp_path, {"config_path": str(cfg), "init_model": str(tiny_model_dir),
                                                      "seeds": [0, 1]})
    m = json.loads((tmp_path / "results" / "ablation_grpo_vs_ppo" / "metrics.json").read_text())
    assert set(m["methods"]) == {"GRPO", "PPO (lambda=0.95)", "PPO (lambda=1.0)"}
    for arm, s in m["methods"].items():
        assert set(s["final_pass_at_1"]) >= {"mean", "std"} and s["sec_per_step"] > 0 and s["peak_mem_mb"] > 0 and s["model_state_mb"] > 0, arm
    assert m["methods"]["GRPO"]["model_copies"] == 2 and m["methods"]["PPO (lambda=1.0)"]["model_copies"] == 3
    assert m["methods"]["PPO (lambda=1.0)"]["trainable_params"] > m["methods"]["GRPO"]["trainable_params"]
    assert len(m["runs"]) == 6 and "finding" in m and set(m["verdict"]) >= {"ppo_095_worse_than_grpo", "ppo_10_close_to_grpo"}


@pytest.mark.slow
def test_notebook_03_length_expansion(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = write_tiny_config(tmp_path, "nb03", *TINY_RL)
    _run("03_ablation_length_expansion.ipynb", tmp_path, {"config_path": str(cfg), "init_model": str(tiny_model_dir),
                                                           "short_tokens": 2, "long_tokens": 8,
                                                           "overrides": {"rl.steps": 4}})
    m = json.loads((tmp_path / "results" / "ablation_length" / "metrics.json").read_text())
    assert set(m["arms"]) == {"fixed_short", "fixed_long", "short_to_long"}
    assert m["expansion_step"] == 3  # round(8200/10400 * 4)
    # the short limit binds: a random nano model never stops within 2 tokens
    assert m["arms"]["fixed_short"]["first_step_truncated_fraction"] == 1.0
    logs = {arm: [json.loads(l) for l in (tmp_path / "runs" / "ablation_length" / f"{arm}_seed0" / "metrics.jsonl")
                  .read_text().splitlines()] for arm in m["arms"]}
    caps = {arm: [r["max_new_tokens"] for r in rows if "max_new_tokens" in r] for arm, rows in logs.items()}
    assert caps == {"fixed_short": [2, 2, 2, 2], "fixed_long": [8, 8, 8, 8], "short_to_long": [2, 2, 2, 8]}
