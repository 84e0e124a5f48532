"""How much of this CPU's fp32 matmul peak the two hot loops reach: rollouts (the KV-cache sampler at the RL batch
shape) and pretraining (a training step of each model preset), the peak measured in the same run (issue 13's
targets: rollouts >= 25% on the default model, pretraining >= 50% on `small`).

Run:  .venv/bin/python benchmarks/bench_peak_share.py   -> results/benchmarks/peak_share.json, and the rollout
      figures into results/benchmarks/sampler.json (top-level `share_of_peak`, `rollout_share`)
      (``--quick``: fewer repeats, writes nothing)

Both cores (torch threads 2), nothing else running. Rollouts: the default experiment's base model (or a freshly
initialised `tiny` model when it is missing: the FLOPs are the same), 8 prompts x G 8 of the default tasks under the
R1-Zero template, T 1.0, up to 200 new tokens (rl.max_new_tokens), the median of 3 runs; FLOPs counted on the
tokens generated, each attending to its prompt and the tokens before it (``peak.flops_per_token``). Pretraining:
batch 12 x 320 tokens (the default `pretrain`), AdamW, the median step of 10 after 3 warm-up steps, eager and
through ``torch.compile`` (``pretrain.compile``).

Why the rollout share is low (``rollouts.anatomy``): the share counts generated tokens over the call's wall time,
and a call runs as many decode steps as its longest completion; most completions end early (direct answers), so
the average step carries ``mean_rows_per_step`` rows, not 64. One decode step is timed alone at 64, 16 and 4 rows:
at few rows it costs the fixed per-step work (~100 small tensor ops), at 64 rows attention reads the whole
key/value cache (``kv_read_mb``, against the machine's copy bandwidth) and the matmuls are [64 x 128] by
[128 x 768] at most, far from the 1024 x 1024 of the peak probe. ``rollouts.bounds`` times the decode step alone at
the rollout's own rows per step, eager, through ``torch.compile`` and as its bare matmuls (a floor no loop of
PyTorch ops can pass), and states the share the whole call would reach with each, the rest of the call (prefill,
sampling, stop checks, compaction, the Python loop) as measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak import flops_per_token, matmul_peak_gflops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "runs" / "default" / "base_model"
OUT = REPO / "results" / "benchmarks" / "peak_share.json"
SAMPLER_JSON = REPO / "results" / "benchmarks" / "sampler.json"
THREADS = 2


def _model_and_tokenizer() -> tuple[Any, Any, str]:
    from r1lib.models import build_model, load_model

    if (MODEL / "config.json").exists():
        model, tok = load_model(MODEL, device="cpu")
        return model, tok, str(MODEL.relative_to(REPO))
    from r1lib.config import load_config
    from r1lib.corpus import build_corpus
    from r1lib.models import build_tokenizer

    cfg = load_config(REPO / "experiments" / "default.yaml")
    tok = build_tokenizer([d.text for d in build_corpus(2000, mix=cfg.tasks.mix, seed=0)], vocab_size=1024)
    return build_model("tiny", tok, seed=0), tok, "tiny, random weights (no base model)"


def rollouts(repeats: int) -> dict[str, Any]:
    from r1lib.config import load_config
    from r1lib.evaluation import train_problems
    from r1lib.prompts import r1_zero_prompt
    from r1lib.sampling import KVCacheSampler, SamplingParams

    cfg = load_config(REPO / "experiments" / "default.yaml")
    model, tok, source = _model_and_tokenizer()
    prompts = [r1_zero_prompt(ex.problem) for ex in train_problems(cfg, 8, seed=0)]
    g = cfg.rl.num_generations
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=cfg.rl.max_new_tokens, n=g, seed=0)
    sampler = KVCacheSampler(model, tok, batch_size=64, num_threads=THREADS)
    sampler.generate(prompts[:2], SamplingParams(temperature=1.0, max_new_tokens=8, n=2, seed=0))   # warm-up
    walls, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = sampler.generate(prompts, params)
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    prompt_lens = [len(tok(p, add_special_tokens=True)["input_ids"]) for p in prompts]
    flops, tokens = 0.0, 0
    for plen, row in zip(prompt_lens, out):
        for c in row:
            n = c.num_tokens
            tokens += n
            flops += n * flops_per_token(model.config, plen + (n - 1) / 2)   # mean context of its tokens
    steps = max(c.num_tokens for row in out for c in row)   # decode steps: the longest completion
    context = int(statistics.fmean(prompt_lens)) + steps // 2   # the mean cache length of a decode step
    return {"model": source, "prompts": len(prompts), "samples_per_prompt": g, "max_new_tokens": params.max_new_tokens,
            "tokens": tokens, "wall_s": wall, "wall_runs_s": walls, "tokens_per_s": tokens / wall,
            "gflops_per_s": flops / wall / 1e9, "mean_prompt_tokens": statistics.fmean(prompt_lens),
            "decode_steps": steps, "mean_rows_per_step": tokens / steps,
            "anatomy": decode_anatomy(model, context=context),
            "bounds": decode_bounds(model, [sum(c.num_tokens > s for row in out for c in row) for s in range(steps)],
                                    context=context, flops=flops)}


def decode_anatomy(model: Any, context: int, repeats: int = 200) -> dict[str, Any]:
    """Where a decode step's time goes: one ``FastDecoder.step`` (the sampler's decode step) over a ``context``-token
    KV cache at 64 rows (the RL batch) and at 16 and 4 rows (the tail, when most completions have ended), its GFLOP/s,
    and the bytes of keys/values it reads against the machine's copy bandwidth (a memory-bound lower bound for
    attention, which does ~2 FLOPs per float it reads)."""
    from r1lib.decode import fast_decoder_for

    torch.set_num_threads(THREADS)
    cfg = model.config
    decoder = fast_decoder_for(model)
    if decoder is None:
        return {"skipped": f"no fast decoder for {type(model).__name__}"}
    big = torch.empty(64 * 2**20 // 4)          # 64 MiB: far beyond the L2 caches
    dst = torch.empty_like(big)
    dst.copy_(big)
    t0 = time.perf_counter()
    for _ in range(10):
        dst.copy_(big)
    copy_gb_s = 2 * big.numel() * 4 * 10 / (time.perf_counter() - t0) / 1e9   # read + write
    out: dict[str, Any] = {"context": context, "copy_bandwidth_gb_s": copy_gb_s, "rows": {}}
    head_dim = decoder.head_dim
    with torch.inference_mode():
        for rows in (64, 16, 4):
            caches = [(torch.randn(rows, cfg.num_key_value_heads, context + 8, head_dim),
                       torch.randn(rows, cfg.num_key_value_heads, context + 8, head_dim))
                      for _ in range(cfg.num_hidden_layers)]
            tokens = torch.randint(0, cfg.vocab_size, (rows,))
            pos = torch.full((rows,), context)
            mask = torch.ones(rows, context + 8, dtype=torch.bool)
            for _ in range(10):
                decoder.step(tokens, pos, caches, context, mask)
            t0 = time.perf_counter()
            for _ in range(repeats):
                decoder.step(tokens, pos, caches, context, mask)
            step = (time.perf_counter() - t0) / repeats
            kv_bytes = 2 * cfg.num_hidden_layers * rows * cfg.num_key_value_heads * head_dim * (context + 1) * 4
            out["rows"][str(rows)] = {"step_ms": 1e3 * step, "tokens_per_s": rows / step,
                                      "gflops_per_s": rows * flops_per_token(cfg, context + 1) / step / 1e9,
                                      "kv_read_mb": kv_bytes / 1e6,
                                      "kv_read_ms_at_copy_bandwidth": 1e3 * kv_bytes / (copy_gb_s * 1e9)}
    return out


def step_matmul_weights(decoder: Any) -> list[tuple[str, Any]]:
    """The weight matrices a decode step multiplies by, pre-transposed ([in, out]), each with the activation it
    multiplies (``"hidden"`` or ``"intermediate"``): per layer q/k/v, o, gate/up (fused or not, as the decoder holds
    them) and down, then the LM head (the matmul floor's work)."""
    def split(w: Any) -> list[Any]:   # FastDecoder keeps unfused lists for large models
        return list(w) if isinstance(w, list) else [w]

    out = []
    for _, qkv, _, o, _, gate_up, down in decoder._layers:
        out += [("hidden", w) for w in [*split(qkv), o, *split(gate_up)]] + [("intermediate", down)]
    out.append(("hidden", decoder._head))
    return [(kind, w.t().contiguous()) for kind, w in out]


def decode_bounds(model: Any, rows_per_step: list[int], context: int, flops: float, repeats: int = 30,
                  compile: bool = True) -> dict[str, Any]:
    """The rollout's decode steps alone, at its own rows per step (``rows_per_step[s]``: completions still running at
    step s; the sampler's batch holds at least these), three ways: the eager decode step (``FastDecoder.step``, what
    the sampler runs), the same step through ``torch.compile`` (dynamic shapes: one compilation for every row count
    and cache length), and the **matmul floor**: only the step's matmuls (fused q/k/v, o, gate/up, down per layer and
    the LM head) as plain ``torch.mm`` calls on pre-transposed weights, no attention, norms, rotary, sampling or
    Python loop. Each is summed over the steps and stated as a share of peak with the rollout's FLOPs (attention
    included), so the floor's share is a ceiling that no decode loop built from PyTorch ops can pass.
    ``compile=False`` (or no C++ compiler): no compiled entry."""
    from r1lib.decode import fast_decoder_for
    from r1lib.pretrain import _can_compile

    torch.set_num_threads(THREADS)
    cfg = model.config
    decoder = fast_decoder_for(model)
    if decoder is None:
        return {"skipped": f"no fast decoder for {type(model).__name__}"}
    weights = step_matmul_weights(decoder)

    def matmuls(x: Any, mid: Any) -> None:   # mid: the [rows, intermediate] input of the down projection
        for kind, w in weights:
            torch.mm(mid if kind == "intermediate" else x, w)

    def timed(fn: Any) -> float:
        for _ in range(3):
            fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats

    compiled = torch.compile(decoder.step, dynamic=True) if compile and _can_compile() else None
    per_rows: dict[int, dict[str, float]] = {}
    compile_s = 0.0
    with torch.inference_mode():
        for rows in sorted(set(rows_per_step), reverse=True):
            caches = [(torch.randn(rows, cfg.num_key_value_heads, context + 8, decoder.head_dim),
                       torch.randn(rows, cfg.num_key_value_heads, context + 8, decoder.head_dim))
                      for _ in range(cfg.num_hidden_layers)]
            tokens, pos = torch.randint(0, cfg.vocab_size, (rows,)), torch.full((rows,), context)
            x, mid = torch.randn(rows, cfg.hidden_size), torch.randn(rows, cfg.intermediate_size)
            entry = {"eager_ms": 1e3 * timed(lambda: decoder.step(tokens, pos, caches, context, None)),
                     "matmul_floor_ms": 1e3 * timed(lambda: matmuls(x, mid))}
            if compiled is not None:
                t0 = time.perf_counter()
                compiled(tokens, pos, caches, context, None)
                compile_s += time.perf_counter() - t0
                entry["compiled_ms"] = 1e3 * timed(lambda: compiled(tokens, pos, caches, context, None))
            per_rows[rows] = entry
    out: dict[str, Any] = {"context": context, "steps": len(rows_per_step),
                           "mean_rows_per_step": statistics.fmean(rows_per_step), "flops": flops,
                           "compile_s": compile_s if compiled is not None else None,
                           "per_rows_ms": {str(r): v for r, v in per_rows.items()}}
    for key in ("eager", "compiled", "matmul_floor"):
        if all(f"{key}_ms" in v for v in per_rows.values()):
            seconds = sum(per_rows[r][f"{key}_ms"] for r in rows_per_step) / 1e3
            out[key] = {"decode_s": seconds, "gflops_per_s": flops / seconds / 1e9}
    return out


def pretraining(presets: list[str], steps: int, compile: bool = False) -> dict[str, Any]:
    """A training step of each preset, eager or through ``torch.compile`` (``pretrain.compile``; the compilation
    happens in the warm-up steps and is reported apart)."""
    from r1lib.models import PRESETS, build_model, count_parameters

    _, tok, _ = _model_and_tokenizer()
    torch.set_num_threads(THREADS)
    batch, seq = 12, 320
    out = {}
    for name in presets:
        model = build_model(name, tok, seed=0)
        model.train()
        forward = torch.compile(model) if compile else model
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, len(tok), (batch, seq))
        times, warm = [], time.perf_counter()
        for i in range(3 + steps):
            if i == 3:
                warm = time.perf_counter() - warm
            t0 = time.perf_counter()
            loss = forward(input_ids=x, labels=x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 3:
                times.append(time.perf_counter() - t0)
        step = statistics.median(times)
        flops = batch * seq * flops_per_token(model.config, (seq + 1) / 2, training=True)
        out[name] = {"params": count_parameters(model), "step_s": step, "tokens_per_s": batch * seq / step,
                     "gflops_per_s": flops / step / 1e9, "hidden": PRESETS[name].hidden_size,
                     "layers": PRESETS[name].num_hidden_layers, "warmup_s": warm}
        del model, opt, forward
    return {"batch_size": batch, "seq_len": seq, "presets": out}


def main(quick: bool = False) -> dict[str, Any]:
    load_before = os.getloadavg()
    peak = matmul_peak_gflops(THREADS)
    roll = rollouts(1 if quick else 3)
    presets = ["nano", "tiny", "small"] if quick else ["nano", "tiny", "small", "medium"]
    pre = pretraining(presets, 3 if quick else 10)
    pre_compiled = pretraining(presets, 3 if quick else 10, compile=True)
    peak_after = matmul_peak_gflops(THREADS)
    peak = max(peak, peak_after)
    roll["share_of_peak"] = roll["gflops_per_s"] / peak
    for v in roll["anatomy"].get("rows", {}).values():
        v["share_of_peak"] = v["gflops_per_s"] / peak
    bounds = roll["bounds"]
    if "eager" in bounds:
        # the rest of the call (prefill, sampling, stop checks, row compaction, the Python loop): its wall time minus
        # the eager decode steps; with that rest unchanged, the share the call would reach with each decode step
        bounds["rest_of_call_s"] = max(0.0, roll["wall_s"] - bounds["eager"]["decode_s"])
    for key in ("eager", "compiled", "matmul_floor"):
        if key in bounds:
            bounds[key]["share_of_peak"] = bounds[key]["gflops_per_s"] / peak
            if "rest_of_call_s" in bounds:
                bounds[key]["call_share_of_peak"] = (bounds["flops"] / (bounds[key]["decode_s"] + bounds["rest_of_call_s"])
                                                     / 1e9 / peak)
    for v in [*pre["presets"].values(), *pre_compiled["presets"].values()]:
        v["share_of_peak"] = v["gflops_per_s"] / peak
    pre["compiled"] = pre_compiled["presets"]
    res = {"machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
                       "torch": torch.__version__, "threads": THREADS, "load_avg_before": load_before,
                       "load_avg_after": os.getloadavg()},
           "matmul_peak_gflops": peak, "rollouts": roll, "pretraining": pre,
           "targets": {"rollouts_share_ge_0.25": roll["share_of_peak"] >= 0.25,
                       "pretraining_small_share_ge_0.5": pre["presets"]["small"]["share_of_peak"] >= 0.5,
                       "pretraining_small_compiled_share_ge_0.5": pre["compiled"]["small"]["share_of_peak"] >= 0.5}}
    print(f"matmul peak {peak:.1f} GFLOP/s ({THREADS} threads)")
    print(f"rollouts: {roll['tokens_per_s']:.0f} tokens/s, {roll['gflops_per_s']:.2f} GFLOP/s = "
          f"{100 * roll['share_of_peak']:.1f}% of peak; {roll['decode_steps']} decode steps, "
          f"{roll['mean_rows_per_step']:.1f} rows per step on average")
    anatomy = roll["anatomy"]
    for rows, v in anatomy.get("rows", {}).items():
        print(f"  one decode step, {rows} rows, {anatomy['context']}-token context: {v['step_ms']:.2f} ms, "
              f"{v['gflops_per_s']:.1f} GFLOP/s = {100 * v['share_of_peak']:.1f}% of peak; reads {v['kv_read_mb']:.1f} MB "
              f"of keys/values ({v['kv_read_ms_at_copy_bandwidth']:.2f} ms at {anatomy['copy_bandwidth_gb_s']:.1f} GB/s copy)")
    for key, label in (("eager", "eager decode step (the sampler's)"), ("compiled", "torch.compile'd decode step"),
                       ("matmul_floor", "matmul floor (the step's matmuls alone)")):
        if key in bounds:
            print(f"  decode steps alone at the rollout's rows per step, {label}: {bounds[key]['decode_s']:.3f} s = "
                  f"{100 * bounds[key]['share_of_peak']:.1f}% of peak; the whole call with this step and the rest "
                  f"({bounds.get('rest_of_call_s', float('nan')):.3f} s) as measured: "
                  f"{100 * bounds[key].get('call_share_of_peak', float('nan')):.1f}%")
    for name, v in pre["presets"].items():
        c = pre["compiled"][name]
        print(f"pretraining {name} ({v['params']:,} params): {v['tokens_per_s']:.0f} tokens/s, "
              f"{v['gflops_per_s']:.1f} GFLOP/s = {100 * v['share_of_peak']:.1f}% of peak; compiled "
              f"{c['tokens_per_s']:.0f} tokens/s = {100 * c['share_of_peak']:.1f}% (warm-up {c['warmup_s']:.0f} s)")
    if not quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2) + "\n")
        if SAMPLER_JSON.exists():   # the sampler benchmark's file gets the figure at the top level
            s = json.loads(SAMPLER_JSON.read_text())
            s["share_of_peak"] = roll["share_of_peak"]
            s["rollout_share"] = {k: roll[k] for k in ("tokens_per_s", "gflops_per_s", "share_of_peak")} | {
                "matmul_peak_gflops": peak, "source": "benchmarks/bench_peak_share.py"}
            SAMPLER_JSON.write_text(json.dumps(s, indent=2) + "\n")
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and presets; writes nothing")
    main(quick=parser.parse_args().quick)
