"""benchmarks/peak.py: the FLOP count behind the benchmarks' share of peak, checked against the model's own
matmul weights, and the matmul probe's sanity."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peak import flops_per_token, matmul_peak_gflops  # noqa: E402


@pytest.mark.parametrize("preset", ["nano", "tiny", "small"])
def test_flops_per_token_are_two_per_matmul_weight_plus_attention(preset, tiny_model_dir):
    import torch
    from transformers import AutoTokenizer

    from r1lib.models import build_model

    model = build_model(preset, AutoTokenizer.from_pretrained(tiny_model_dir))
    c = model.config
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))   # layers + LM head
    assert flops_per_token(c, 0) == 2 * linear
    head_dim = c.hidden_size // c.num_attention_heads
    attention = 4 * c.num_hidden_layers * c.num_attention_heads * head_dim * 100
    assert flops_per_token(c, 100) == 2 * linear + attention
    assert flops_per_token(c, 100, training=True) == 3 * (2 * linear + attention)


def test_matmul_probe_measures_something():
    assert 0.1 < matmul_peak_gflops(1, n=256, seconds=0.2) < 10_000


def test_decode_bounds_cover_every_weight_matmul_and_sum_over_steps(tiny_model_dir):
    """bench_peak_share's decode bounds: the matmul floor multiplies by every weight matrix of a decode step (2 FLOPs
    per weight per row, as peak.flops_per_token counts them without attention), and each bound is its per-row-count
    time summed over the rollout's steps. (Which bound is faster is the benchmark's measurement, not asserted here:
    timings under a loaded test run are not reliable.)"""
    from transformers import AutoModelForCausalLM

    from bench_peak_share import decode_bounds, step_matmul_weights
    from r1lib.decode import fast_decoder_for

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    decoder = fast_decoder_for(model)
    if decoder is None:
        pytest.skip(f"no fast decoder for {type(model).__name__}")
    assert 2 * sum(w.numel() for _, w in step_matmul_weights(decoder)) == flops_per_token(model.config, 0)
    rows_per_step = [8, 8, 5, 2, 2, 1]
    out = decode_bounds(model, rows_per_step, context=40, flops=1e6, repeats=2, compile=False)
    assert out["steps"] == 6 and out["mean_rows_per_step"] == pytest.approx(26 / 6)
    assert set(out["per_rows_ms"]) == {"8", "5", "2", "1"} and "compiled" not in out
    for key in ("eager", "matmul_floor"):
        expected = sum(out["per_rows_ms"][str(r)][f"{key}_ms"] for r in rows_per_step) / 1e3
        assert out[key]["decode_s"] == pytest.approx(expected) and expected > 0
        assert out[key]["gflops_per_s"] == pytest.approx(1e6 / expected / 1e9)
