"""Papermill smoke run of notebook 04 (the multi-stage R1 pipeline) at toy size, and its rerun skipping every
finished stage."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import run_notebook, write_tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "04_r1_pipeline.ipynb"
TINY = ("rl: {steps: 2, batch_size: 4, num_generations: 2, mini_batches: 2, max_new_tokens: 16, eval_every: 1, "
        "eval_k: 2, eval_limit: 2, checkpoint_every: 1, lr: 1.0e-3}",
        "eval: {max_new_tokens: 16, k: 2}",
        "pipeline: {cold_start_prompts: 6, cold_start_samples: 2, demonstrations: 8, sft_epochs: 1, sft_batch_size: 4, "
        "sft_max_length: 128, stage2_steps: 2, rejection_prompts: 6, rejection_samples: 2, rm_pairs: 16, rm_epochs: 1, "
        "stage4_steps: 4, if_eval_prompts: 4}")
CHECKPOINT_KEYS = {"pass_at_1", "cons_at_k", "format_rate", "language_consistency", "mean_length", "reflection_rate",
                   "instruction_following", "general_accuracy", "instruction_following_and_correct", "rm_score"}


def _run(tmp_path, parameters, name):
    return run_notebook(NOTEBOOK, tmp_path / name, parameters)


@pytest.mark.slow
def test_notebook_04_r1_pipeline(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = write_tiny_config(tmp_path, "nb04", *TINY)
    params = {"config_path": str(cfg), "base_model": str(tiny_model_dir), "r1_zero_policy": str(tiny_model_dir)}
    _run(tmp_path, params, "04a.ipynb")
    res = tmp_path / "results" / "r1_pipeline"
    m = json.loads((res / "metrics.json").read_text())
    for name in ("base", "r1_zero", "dev1", "dev2", "dev3", "r1"):
        assert set(m[name]) >= CHECKPOINT_KEYS, name
        assert all(0 <= m[name][k] <= 1 for k in CHECKPOINT_KEYS - {"mean_length"}), name
    for arm in ("with_lc", "without_lc"):
        assert set(m["lc_ablation"][arm]) >= {"pass_at_1", "language_consistency"}, arm
    assert m["stages"]["dev1"]["filter"]["sampled"] == 12                   # 6 prompts x 2 samples
    assert sum(m["stages"]["dev1"]["filter"]["dropped"].values()) + m["stages"]["dev1"]["filter"]["kept"] == 12
    assert m["stages"]["dev3"]["rows"].get("general", 0) >= 1                # non-reasoning data in stage 3
    assert 0 <= m["stages"]["reward_model"]["held_out_accuracy"] <= 1
    assert set(m["shape"]) >= {"dev1_readable", "dev2_recovers_accuracy", "r1_best_instruction_following"}
    assert all(set(v) == {"holds", "measured"} for v in m["shape"].values())
    for fig in ("lc_ablation.png", "stages.png"):
        assert (res / fig).stat().st_size > 0, fig
    runs = tmp_path / "runs" / "r1_pipeline"
    for stage in ("dev1/model", "dev2/policy", "dev2_no_lc/policy", "dev3/model", "reward_model/model",
                  "r1/mixed/policy"):
        assert (runs / stage / "config.json").exists(), stage
    # a rerun skips every finished stage: no model folder is rewritten
    stamps = {p: p.stat().st_mtime for p in runs.glob("*/**/config.json")}
    time.sleep(1)
    _run(tmp_path, params, "04b.ipynb")
    assert {p: p.stat().st_mtime for p in runs.glob("*/**/config.json")} == stamps
