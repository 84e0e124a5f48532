"""Wall time of HFSampler (transformers ``generate``) against KVCacheSampler on the default base model.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sampler.py   -> results/benchmarks/sampler.json
      (``--quick``: one repeat, 128 tokens, one thread; a smoke run that writes nothing)

Setting (the RL rollout shape): R1-Zero prompts over generate_mix tasks, T=1.0, top_p=1.0, seed 0,
64 prompts x n=1 and 8 prompts x n=8, max_new_tokens 128 and 256, torch threads 1 and 2, batch_size 64.
Samplers, run alternately (median of ``repeats`` runs each, so load drift hits all of them alike):

- ``hf``: HFSampler, the reference.
- ``kv_hf_rng``: KVCacheSampler(rng="hf"): HF's random stream and whole-prompt prefill, so its completions
  equal ``hf``'s bit for bit (checked: ``equal_outputs``); the like-for-like speed comparison.
- ``kv_hf_rng_shared``: the same plus ``share_prefix=True`` (the R1-Zero template prefilled once); logits
  then differ from a full prefill by float rounding, so equality is checked, not guaranteed.
- ``kv``: KVCacheSampler defaults (rng="per_row", decode steps through r1lib.decode.FastDecoder): other random
  draws from the same distribution.
- ``kv_forward``: the same with ``fast_decode=False`` (every decode step through the model's forward); ``kv``'s
  ``equal_to_kv_forward`` checks that the fast decoder changes no completion, ``speedup_vs_forward`` its gain.

Plus a sweep of the compaction threshold (``compact``, None = never) on both shapes, and an
evaluation-like setting (T=0.6, top_p=0.95).
The machine is shared with other jobs (2 cores): wall times are noisy, so CPU times (process time) and
the load average are recorded too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from r1lib.models import load_model
from r1lib.prompts import r1_zero_prompt
from r1lib.sampling import HFSampler, KVCacheSampler, SamplingParams
from r1lib.tasks import generate_mix

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "runs" / "default" / "base_model"
OUT = REPO / "results" / "benchmarks" / "sampler.json"


def _run(sampler: Any, prompts: list[str], params: SamplingParams) -> tuple[float, float, list]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = sampler.generate(prompts, params)
    return time.perf_counter() - t0, time.process_time() - c0, out


def _summary(walls: list[float], cpus: list[float], out: list) -> dict:
    comps = [c for row in out for c in row]
    tokens = sum(c.num_tokens for c in comps)
    wall = statistics.median(walls)
    return {"wall_s": wall, "wall_runs_s": walls, "cpu_s": statistics.median(cpus), "tokens": tokens,
            "tokens_per_s": tokens / wall, "mean_len": tokens / len(comps), "max_len": max(c.num_tokens for c in comps),
            "finish": {r: sum(c.finish_reason == r for c in comps) for r in ("stop", "eos", "length")}}


def compare(samplers: dict[str, Any], prompts: list[str], params: SamplingParams, threads: int,
            repeats: int) -> dict[str, Any]:
    """Alternate the samplers ``repeats`` times on one setting; medians, tokens/s, speed-ups, output equality."""
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in samplers}
    outs: dict[str, list] = {}
    for _ in range(repeats):
        for name, sampler in samplers.items():
            sampler.num_threads = threads
            wall, cpu, outs[name] = _run(sampler, prompts, params)
            times[name][0].append(wall)
            times[name][1].append(cpu)
    res: dict[str, Any] = {name: _summary(*times[name], outs[name]) for name in samplers}
    if "hf" in res:
        for name in samplers:
            if name != "hf":
                res[name]["speedup_wall"] = res["hf"]["wall_s"] / res[name]["wall_s"]
                res[name]["speedup_cpu"] = res["hf"]["cpu_s"] / res[name]["cpu_s"]
        for name in ("kv_hf_rng", "kv_hf_rng_shared"):
            if name in outs:
                res[name]["equal_outputs"] = outs[name] == outs["hf"]
    if "kv" in res and "kv_forward" in res:
        res["kv"]["equal_to_kv_forward"] = outs["kv"] == outs["kv_forward"]
        res["kv"]["speedup_vs_forward"] = res["kv_forward"]["wall_s"] / res["kv"]["wall_s"]
    return res


def main(repeats: int = 3, threads: tuple[int, ...] = (1, 2), lengths: tuple[int, ...] = (128, 256),
         write: bool = True, merge: bool = False) -> dict | None:
    """Run the benchmark; the evaluation-like setting and the compaction sweep run with ``threads[0]``.

    ``merge``: start from the results already in the JSON and replace only the settings of ``threads``
    (their extras too when ``threads[0]`` is the thread count they were measured with).
    """
    if not (MODEL / "config.json").is_file():
        print(f"bench_sampler: no base model at {MODEL}; train it first (notebook 01 / `make base`). Skipped.")
        return None
    model, tok = load_model(MODEL, device="cpu")
    tasks = generate_mix({"arithmetic": 1, "linear": 1, "word": 1}, 64, split="train", seed=0, difficulty=(1, 2))
    prompts = [r1_zero_prompt(ex.problem) for ex in tasks]
    shapes = {"64x1": (prompts, 1), "8x8": (prompts[:8], 8)}
    samplers = {"hf": HFSampler(model, tok, batch_size=64),
                "kv_hf_rng": KVCacheSampler(model, tok, batch_size=64, rng="hf"),
                "kv_hf_rng_shared": KVCacheSampler(model, tok, batch_size=64, rng="hf", share_prefix=True),
                "kv": KVCacheSampler(model, tok, batch_size=64),
                "kv_forward": KVCacheSampler(model, tok, batch_size=64, fast_decode=False)}
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "load_avg_before": os.getloadavg()},
        "model": str(MODEL.relative_to(REPO)), "batch_size": 64, "repeats": repeats,
        "params": {"temperature": 1.0, "top_p": 1.0, "seed": 0}, "complete": False,
        "settings": [], "eval_like": None, "compaction_sweep": [],
    }
    if merge and OUT.is_file():
        old = json.loads(OUT.read_text())
        results["settings"] = [s for s in old["settings"] if s["threads"] not in threads]
        if old.get("eval_like") and old["eval_like"]["threads"] != threads[0]:
            results["eval_like"], results["compaction_sweep"] = old["eval_like"], old["compaction_sweep"]

    def save() -> None:  # after every setting, so that an interrupted run keeps what it measured
        results["machine"]["load_avg_after"] = os.getloadavg()
        if write:
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(results, indent=2) + "\n")

    warm = SamplingParams(temperature=1.0, max_new_tokens=8, seed=0)
    for sampler in samplers.values():  # first-call costs (imports, token-string table) stay out of the timings
        sampler.generate(prompts[:8], warm)

    def run_settings(n_threads: int) -> None:
        for max_new in lengths:
            for shape, (ps, n) in shapes.items():
                params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new, n=n, seed=0)
                res = compare(samplers, ps, params, n_threads, repeats)
                results["settings"].append({"shape": shape, "max_new_tokens": max_new, "threads": n_threads,
                                            "load_avg": os.getloadavg(), "results": res})
                _print_row(results["settings"][-1])
                save()

    def run_extras() -> None:
        """Evaluation-like setting (T=0.6, top_p=0.95) and the compaction sweep, at ``threads[0]``."""
        eval_params = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=lengths[-1], n=1, seed=0)
        results["eval_like"] = {"shape": "64x1", "max_new_tokens": lengths[-1], "threads": threads[0],
                                "temperature": 0.6, "top_p": 0.95,
                                "results": compare(samplers, prompts, eval_params, threads[0], repeats)}
        _print_row(results["eval_like"])
        save()
        sweep = {str(c): KVCacheSampler(model, tok, batch_size=64, compact=c) for c in (None, 0.05, 0.125, 0.25, 0.5)}
        for shape, (ps, n) in shapes.items():
            sweep_params = SamplingParams(temperature=1.0, max_new_tokens=lengths[-1], n=n, seed=0)
            results["compaction_sweep"].append({"shape": shape, "max_new_tokens": lengths[-1], "threads": threads[0],
                                                "results": compare(sweep, ps, sweep_params, threads[0], repeats)})
            print(f"compaction threshold sweep (kv, {shape}, T=1, {lengths[-1]} tokens):",
                  ", ".join(f"{k}: {v['wall_s']:.2f}s wall / {v['cpu_s']:.2f}s cpu"
                            for k, v in results["compaction_sweep"][-1]["results"].items()))
            save()

    # one thread first, with the extra settings; more threads (slow when other jobs share the cores) last
    _print_header()
    run_settings(threads[0])
    if results["eval_like"] is None:  # else kept from an earlier run (--merge) with another thread count
        run_extras()
    for n_threads in threads[1:]:
        run_settings(n_threads)
    results["complete"] = {s["threads"] for s in results["settings"]} >= {1, 2}
    save()
    return results


def _print_header() -> None:
    print(f"{'shape':6} {'new':>4} {'thr':>3} | {'hf s':>6} {'tok/s':>6} | {'kv_hf_rng s':>11} {'x':>5} {'eq':>3} | "
          f"{'+shared s':>9} {'x':>5} {'eq':>3} | {'kv s':>6} {'tok/s':>6} {'x':>5} | {'fwd s':>6} {'x':>5} {'eq':>3}")


def _print_row(setting: dict) -> None:
    """One table line: wall medians, tokens/s and wall-time speed-ups over ``hf``."""
    res = setting["results"]
    hf, hr, hs, kv = res["hf"], res["kv_hf_rng"], res["kv_hf_rng_shared"], res["kv"]
    tag = f" (T={setting['temperature']}, top_p={setting['top_p']})" if "temperature" in setting else ""
    print(f"{setting['shape']:6} {setting['max_new_tokens']:>4} {setting['threads']:>3} | {hf['wall_s']:6.2f} "
          f"{hf['tokens_per_s']:6.0f} | {hr['wall_s']:11.2f} {hr['speedup_wall']:5.2f} "
          f"{'yes' if hr['equal_outputs'] else 'NO':>3} | {hs['wall_s']:9.2f} {hs['speedup_wall']:5.2f} "
          f"{'yes' if hs['equal_outputs'] else 'NO':>3} | {kv['wall_s']:6.2f} {kv['tokens_per_s']:6.0f} "
          f"{kv['speedup_wall']:5.2f} | {res['kv_forward']['wall_s']:6.2f} {kv['speedup_vs_forward']:5.2f} "
          f"{'yes' if kv['equal_to_kv_forward'] else 'NO':>3}{tag}", flush=True)



if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, 128 tokens, 1 thread; writes nothing")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the results of other thread counts already in the JSON (resume a run in parts)")
    args = parser.parse_args()
    if args.quick:
        main(repeats=1, threads=(1,), lengths=(128,), write=False)
    else:
        main(threads=tuple(args.threads), merge=args.merge)
