"""benchmarks/gpu_check.py (the GPU check of bf16 GRPO steps) runs end to end on CPU at toy size, so the script a GPU
session runs is known to work before any device time is spent on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from gpu_check import step_flops  # noqa: E402
from peak import flops_per_token  # noqa: E402


def test_step_flops_counts_generation_and_the_training_forwards():
    from transformers import Qwen2Config

    cfg = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=400)
    fl = step_flops(cfg, rows=8, prompt_len=100, new_tokens=20, old_logp_forward=False)
    fwd = 8 * 120 * flops_per_token(cfg, 60)
    assert fl["training"] == 4 * fwd  # policy forward + backward (3x) and the reference forward
    assert step_flops(cfg, 8, 100, 20, old_logp_forward=True)["training"] == 5 * fwd
    assert fl["generation"] == 8 * 100 * flops_per_token(cfg, 50) + 8 * 20 * flops_per_token(cfg, 110)


def test_gpu_check_dry_run_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--shape", "tiny", "--device",
                           "cpu", "--dtype", "float32", "--steps", "1", "--batch-size", "8", "--num-generations", "4",
                           "--max-new-tokens", "8", "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["model"]["architecture"] == "Qwen2ForCausalLM" and r["settings"]["sampler"] == "HFSampler"
    assert r["settings"]["mean_new_tokens"] == 8  # a random model never stops early: every row hits the cap
    assert len(r["step_seconds"]) == 1 and 0 < r["generation_share_of_step"] < 1
    assert 0 < r["mfu_measured_peak"]["step"] < 1 and r["peak_tflops_measured"] > 0


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"})
    assert proc.returncode != 0 and "no CUDA GPU" in proc.stderr and not (tmp_path / "x.json").exists()
