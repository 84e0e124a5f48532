"""Papermill smoke run of notebook 05 (distillation) at toy size: a preset student pretrained on the spot and a
checkpoint student, the teacher's data, SFT, the RL baseline over two seeds, the optional distilled + RL row, the
tables and figures; then a rerun that retrains nothing."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conftest import run_notebook, write_tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "05_distillation.ipynb"
TINY = ("rl: {steps: 2, batch_size: 4, num_generations: 2, mini_batches: 2, max_new_tokens: 16, eval_every: 1, "
        "eval_k: 2, eval_limit: 2, checkpoint_every: 1, lr: 1.0e-3}",
        "eval: {max_new_tokens: 16, k: 2}",
        "pretrain: {steps: 3, batch_size: 2, seq_len: 64, corpus_size: 60, checkpoint_every: 3}",
        "pipeline: {rl_eval_problems: 2, rl_eval_k: 2}")


@pytest.mark.slow
def test_notebook_05_distillation(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    student_b = tmp_path / "student_b"
    shutil.copytree(tiny_model_dir, student_b)
    distill = ("distill: {prompts: 4, samples: 2, epochs: 1, batch_size: 4, max_length: 128, rl_steps: 2, eval_k: 2, "
               f"rl_after_distill_steps: 2, students: [nano, {student_b}], teacher: {tiny_model_dir}}}")
    cfg = write_tiny_config(tmp_path, "nb05", *TINY, distill)
    text = cfg.read_text().replace("model: {preset: nano, device: cpu}", "model: {preset: tiny, device: cpu}")
    cfg.write_text(text)
    run_notebook(NOTEBOOK, tmp_path / "05a.ipynb", {"config_path": str(cfg)})
    res = tmp_path / "results" / "distillation"
    m = json.loads((res / "metrics.json").read_text())
    assert set(m["students"]) == {"nano", "student_b"}
    assert m["students"]["nano"]["source"] == "pretrained" and m["students"]["student_b"]["source"] == "checkpoint"
    for s in m["students"].values():
        assert s["params"] > 0
        assert all(0 <= s[k] <= 1 for k in ("distilled_pass_at_1", "distilled_cons_at_k", "base_pass_at_1"))
    v = m["distill_vs_rl"]
    assert v["student"] == "nano" and v["seeds"] == [0, 1] and v["rl_steps"] == 2
    assert v["rl_seconds"] > 0 and v["distill_seconds"] > 0 and v["rl_train_tokens"] > 0
    assert "distilled_plus_rl_pass_at_1" in v and "verdict" in v
    assert set(m["rows"]) >= {"teacher", "nano/base", "nano/distilled", "nano/distilled_seed1", "nano/rl_seed0",
                              "nano/rl_seed1", "nano/distilled+rl", "student_b/base", "student_b/distilled"}
    assert m["teacher"]["data"]["n_rows"] >= 1 and m["teacher"]["data"]["filter"]["sampled"] == 8   # 4 prompts x 2
    for f in ("table5.md", "table6.md", "distillation.png"):
        assert (res / f).stat().st_size > 0, f
    # a rerun trains nothing again: no model folder is rewritten
    runs = tmp_path / "runs"
    stamps = {p: p.stat().st_mtime for p in runs.glob("**/config.json")}
    time.sleep(1)
    run_notebook(NOTEBOOK, tmp_path / "05b.ipynb", {"config_path": str(cfg)})
    assert {p: p.stat().st_mtime for p in runs.glob("**/config.json")} == stamps
