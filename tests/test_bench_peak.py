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
