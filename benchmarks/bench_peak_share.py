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
    return {"model": source, "prompts": len(prompts), "samples_per_prompt": g, "max_new_tokens": params.max_new_tokens,
            "tokens": tokens, "wall_s": wall, "wall_runs_s": walls, "tokens_per_s": tokens / wall,
            "gflops_per_s": flops / wall / 1e9, "mean_prompt_tokens": statistics.fmean(prompt_lens)}


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
          f"{100 * roll['share_of_peak']:.1f}% of peak")
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
