"""Two notebooks at once, one core each, against one after another on both cores: the basis of ``runner.parallel``.

Run:  .venv/bin/python benchmarks/bench_parallel_arms.py   -> results/benchmarks/parallel_arms.json
      (``--quick``: 3 steps per arm, writes nothing)

Two GRPO arms of notebook 02 (the default experiment with its 02 overrides: 32 completions, G 8, 2 mini-batches;
seeds 0 and 1; no evaluation) from the default base model, each in its own process as the runner starts notebooks:

- ``sequential_2_threads``: one after the other, torch's threads 2 (a plain sequential run on this machine),
- ``sequential_1_thread``: one after the other, 1 thread each,
- ``parallel_1_thread``: both at once, 1 thread each (``runner.parallel: 2`` on 2 cores).

Two rounds, the second in reverse order; reported: each arm's wall time and median step time, each setting's total
wall time (median of the rounds), and ``speedup`` = sequential on 2 threads / parallel. The work is the same in every setting (the same two arms, same steps); only where it runs
differs. The thread count changes floating-point reduction order, so the arms' numbers are not bit-identical across
settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "runs" / "default" / "base_model"
OUT = REPO / "results" / "benchmarks" / "parallel_arms.json"
NOTEBOOK = "02_ablation_grpo_vs_ppo"


def worker(seed: int, steps: int, out_dir: str) -> dict[str, Any]:
    """One GRPO arm in this process (its torch threads come from OMP_NUM_THREADS)."""
    import torch

    from r1lib.config import load_config
    from r1lib.training.rl import RLTrainer

    cfg = load_config(REPO / "experiments" / "default.yaml")
    entry = next(e for e in cfg.notebooks if Path(e.path).stem == NOTEBOOK)
    cfg = load_config(REPO / "experiments" / "default.yaml",
                      {**entry.overrides, "rl.steps": steps, "rl.eval_every": 10**6, "rl.checkpoint_every": 10**6,
                       "tracking.wandb_mode": "disabled", "seed": seed})
    t0 = time.perf_counter()
    trainer = RLTrainer(cfg, init_model=BASE, out_dir=out_dir, initial_eval={"eval/pass@1": 0.0})
    history = trainer.train(resume=False).history
    return {"seed": seed, "threads": torch.get_num_threads(), "wall_s": time.perf_counter() - t0,
            "median_step_s": statistics.median(h["step_time"] for h in history[1:] or history),
            "steps": len(history)}


def _start(seed: int, steps: int, threads: int, tmp: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, __file__, "--worker", str(seed), "--steps", str(steps),
                             "--out-dir", str(Path(tmp) / f"arm{seed}_{threads}_{time.monotonic_ns()}")],
                            env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)


def _finish(proc: subprocess.Popen) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def setting(seeds: list[int], steps: int, threads: int, together: bool, tmp: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    if together:
        procs = [_start(s, steps, threads, tmp) for s in seeds]
        arms = [_finish(p) for p in procs]
    else:
        arms = [_finish(_start(s, steps, threads, tmp)) for s in seeds]
    return {"threads": threads, "together": together, "wall_s": time.perf_counter() - t0, "arms": arms}


def main(quick: bool = False) -> dict[str, Any]:
    if not (BASE / "config.json").exists():
        raise SystemExit(f"{BASE.relative_to(REPO)} is missing: run notebook 00 first (make reproduce)")
    steps = 3 if quick else 12
    seeds = [0, 1]
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "processor": platform.machine(), "cpus": os.cpu_count(),
                    "load_avg_before": list(os.getloadavg())},
        "arms": f"notebook {NOTEBOOK}'s GRPO arm, seeds {seeds}, {steps} steps each, no evaluation",
        "settings": {}}
    order = [("sequential_2_threads", 2, False), ("sequential_1_thread", 1, False), ("parallel_1_thread", 1, True)]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in order}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1 if quick else 2):   # the second round in reverse order: drift hits every setting
            for name, threads, together in (order if round_ == 0 else order[::-1]):
                runs[name].append(setting(seeds, steps, threads, together, tmp))
                print(f"{name}: {runs[name][-1]['wall_s']:.1f} s", flush=True)
    for name, rs in runs.items():
        result["settings"][name] = {"wall_s": statistics.median(r["wall_s"] for r in rs), "runs": rs}
    walls = {k: v["wall_s"] for k, v in result["settings"].items()}
    result["speedup"] = walls["sequential_2_threads"] / walls["parallel_1_thread"]
    result["one_thread_vs_two"] = walls["sequential_1_thread"] / walls["sequential_2_threads"]
    result["machine"]["load_avg_after"] = list(os.getloadavg())
    print(f"speedup of two at once (1 thread each) over one after another (2 threads): {result['speedup']:.2f}x")
    if not quick:
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {OUT.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=12, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        sys.path.insert(0, str(REPO))
        print(json.dumps(worker(args.worker, args.steps, args.out_dir)), flush=True)
    else:
        main(quick=args.quick)
