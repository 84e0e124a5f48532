"""The engine settings of the default experiment, measured: RL step time by ``rl.micro_batches`` / ``rl.share_prefix``
on two checkpoints, and evaluation decode time by ``sampling.batch_size``.

Run:  .venv/bin/python benchmarks/bench_engine_settings.py   -> results/benchmarks/engine_settings.json
      (``--quick``: fewer steps and settings, writes nothing)

RL: ``RLTrainer`` steps of the default experiment (64 completions, G 8, <= 200 new tokens, 4 mini-batches) with the
main job's thread count (torch's default: both cores), from the base model (short, uneven completions) and from the
R1-Zero policy (``runs/default/r1_zero/policy``: long, even completions); the median of the steps after the first,
split into generation and the rest (reference pass, training forward and backward, optimizer). The settings differ
only in how the same update is computed (tests/test_rl_resume.py, tests/test_rl_prefix.py). Evaluation: 32 held-out
problems x 16 samples at T 0.6 / top-p 0.95 through the KV-cache sampler with 64 and 256 rows per batch, alternating,
median of 3 (the same per-row samples: identical completions are checked).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "runs" / "default" / "base_model"
POLICY = REPO / "runs" / "default" / "r1_zero" / "policy"
OUT = REPO / "results" / "benchmarks" / "engine_settings.json"
SETTINGS = [(1, False), (2, False), (4, False), (8, False), (1, True), (2, True)]   # (micro_batches, share_prefix)


def rl_steps(init: Path, micro: int, share: bool, steps: int) -> dict[str, float]:
    from r1lib.config import load_config
    from r1lib.training.rl import RLTrainer

    cfg = load_config(REPO / "experiments" / "default.yaml",
                      {"rl.micro_batches": micro, "rl.share_prefix": share, "rl.steps": steps, "rl.eval_every": 10**6,
                       "rl.checkpoint_every": 10**6, "tracking.wandb_mode": "disabled"})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = RLTrainer(cfg, init_model=init, out_dir=tmp, initial_eval={"eval/pass@1": 0.0})
        history = trainer.train(resume=False).history[1:]   # the first step pays one-time costs
    step = [h["step_time"] for h in history]
    gen = [h["gen_time"] for h in history]
    return {"step_s": statistics.median(step), "gen_s": statistics.median(gen),
            "train_s": statistics.median(s - g for s, g in zip(step, gen)),
            "mean_length": statistics.fmean(h["length/mean"] for h in history)}


def eval_batches(repeats: int) -> dict[str, Any]:
    from r1lib.config import load_config
    from r1lib.evaluation import held_out
    from r1lib.models import load_model
    from r1lib.prompts import r1_zero_prompt
    from r1lib.sampling import KVCacheSampler, SamplingParams

    cfg = load_config(REPO / "experiments" / "default.yaml")
    model, tok = load_model(BASE, device="cpu")
    prompts = [r1_zero_prompt(ex.problem) for ex in held_out(cfg, "test")[:32]]
    params = SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=256, n=16, seed=0)
    walls: dict[int, list[float]] = {64: [], 256: []}
    outs: dict[int, Any] = {}
    for _ in range(repeats):
        for rows in walls:
            t0 = time.perf_counter()
            outs[rows] = KVCacheSampler(model, tok, batch_size=rows).generate(prompts, params)
            walls[rows].append(time.perf_counter() - t0)
    tokens = sum(c.num_tokens for row in outs[256] for c in row)
    res = {str(rows): {"wall_s": statistics.median(w), "wall_runs_s": w} for rows, w in walls.items()}
    return {"completions": len(prompts) * params.n, "tokens": tokens, "batches": res,
            "speedup_256_over_64": res["64"]["wall_s"] / res["256"]["wall_s"],
            "same_completions": [[c.token_ids for c in r] for r in outs[64]] == [[c.token_ids for c in r] for r in outs[256]]}


def main(quick: bool = False) -> dict[str, Any] | None:
    if not (BASE / "config.json").is_file() or not (POLICY / "config.json").is_file():
        print(f"bench_engine_settings: needs {BASE} and {POLICY} (run notebooks 00 and 01 first). Skipped.")
        return None
    load_before = os.getloadavg()
    steps = 3 if quick else 5
    settings = SETTINGS[:2] if quick else SETTINGS
    rl: dict[str, Any] = {}
    for name, init in (("base_model", BASE), ("r1_zero_policy", POLICY)):
        rl[name] = {}
        for micro, share in settings:
            key = f"micro_batches={micro},share_prefix={str(share).lower()}"
            rl[name][key] = r = rl_steps(init, micro, share, steps)
            print(f"{name:15} {key:40} step {r['step_s']:.2f} s (generation {r['gen_s']:.2f}, rest {r['train_s']:.2f}), "
                  f"mean length {r['mean_length']:.0f}", flush=True)
    ev = eval_batches(1 if quick else 3)
    print(f"evaluation, {ev['completions']} completions: 64 rows/batch {ev['batches']['64']['wall_s']:.2f} s, 256 rows "
          f"{ev['batches']['256']['wall_s']:.2f} s ({ev['speedup_256_over_64']:.2f}x), same completions: "
          f"{ev['same_completions']}")
    res = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "load_avg_before": load_before,
                       "load_avg_after": os.getloadavg()},
           "rl_steps_per_setting": steps, "rl": rl, "evaluation": ev}
    if not quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {OUT.relative_to(REPO)}")
    return res


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 steps, two settings, one repeat; writes nothing")
    main(quick=parser.parse_args().quick)
