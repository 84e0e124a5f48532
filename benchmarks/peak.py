"""The yardsticks of the speed benchmarks: this CPU's measured fp32 matmul peak, and the FLOPs a Llama-style model
spends per token (forward for generation; forward + backward for training), so that a throughput can be stated as
a share of what the machine can do, measured in the same run.

FLOPs per token (the usual accounting: 2 FLOPs per multiply-add; backward = 2 x forward):
- the matmuls of every layer: 2 x (q, k, v, o projections + the MLP's three) weights;
- the LM head: 2 x hidden x vocab;
- attention scores and the weighted sum: 2 x 2 x layers x hidden x context (context = the tokens attended to).
Embedding lookups, norms, activations and softmax are left out (they are memory-bound and small here).
"""

from __future__ import annotations

import time
from typing import Any

import torch


def matmul_peak_gflops(threads: int, n: int = 1024, seconds: float = 2.0) -> float:
    """The best GFLOP/s of ``n x n`` fp32 matmuls on ``threads`` torch threads over about ``seconds`` (a warm-up
    first; the best of 5 timed rounds, as the peak is what the hardware can do when nothing else interferes)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(3):
            a @ b
        t0 = time.perf_counter()
        reps = 0
        while time.perf_counter() - t0 < 0.2:
            a @ b
            reps += 1
        per_round = max(1, int(reps * seconds / 5 / 0.2))
        best = 0.0
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(per_round):
                a @ b
            best = max(best, 2 * n**3 * per_round / (time.perf_counter() - t0) / 1e9)
        return best
    finally:
        torch.set_num_threads(old)


def flops_per_token(config: Any, context: float, *, training: bool = False) -> float:
    """FLOPs to process one token of a ``LlamaConfig``-like ``config`` attending to ``context`` tokens (mean);
    ``training``: forward + backward (3 x forward)."""
    h, layers = config.hidden_size, config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or h // heads
    per_layer = h * heads * head_dim + 2 * h * kv_heads * head_dim + heads * head_dim * h + 3 * h * config.intermediate_size
    forward = 2 * layers * per_layer + 2 * h * config.vocab_size + 4 * layers * heads * head_dim * context
    return forward * (3 if training else 1)
