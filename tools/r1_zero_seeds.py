"""Robustness of the R1-Zero result: base model + R1-Zero for several seeds -> results/r1_zero/seeds.json.

Not part of the main job (it costs about 12 minutes per seed on 2 CPU cores). For each seed it runs what
notebooks 00 and 01 run, with the experiment's settings and only ``seed`` changed (pretraining corpus, model
initialisation, RL data order and sampling all follow it):

    pretrain the base model -> evaluate it (held-out split, its styles) -> GRPO -> the R1-Zero report,
    including the harder split before and after.

Usage (from the repository root):

    .venv/bin/python tools/r1_zero_seeds.py                     # seeds 0 1 2, experiments/default.yaml
    .venv/bin/python tools/r1_zero_seeds.py --seeds 3 4 --config experiments/default.yaml --set rl.steps=80

Runs go to ``runs/<name>_seed<N>/`` (resumable: a finished stage is reused), the summary to
``results/r1_zero/seeds.json`` (``--out`` to change it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from r1lib.analysis import behaviour_report, r1_zero_report, read_eval_samples
from r1lib.config import load_config, parse_overrides
from r1lib.evaluation import evaluate_model, held_out
from r1lib.pretrain import base_model_report, build_base_model, skill_problems
from r1lib.tracking import atomic_write_json, read_metrics
from r1lib.training.rl import train_rl


def run_seed(config: str, seed: int, overrides: dict) -> dict:
    """Base model + R1-Zero for one seed; the figures that decide whether the result reproduces."""
    base_cfg = load_config(config, overrides)
    cfg = load_config(config, {**overrides, "seed": seed, "name": f"{base_cfg.name}_seed{seed}",
                               "tracking.wandb_mode": "disabled"})
    t0 = time.perf_counter()
    base_dir = cfg.runs_path / "base_model"
    build = build_base_model(cfg, progress=False)
    base_eval = evaluate_model(cfg, base_dir, held_out(cfg, "test"))
    base = base_model_report(build, base_eval.summary, behaviour=behaviour_report(base_eval.records))
    result = train_rl(cfg, init_model=base_dir, out_dir=cfg.runs_path / "r1_zero", progress=False)
    harder = held_out(cfg, "harder")
    harder_pass = None
    if harder:
        harder_pass = {name: evaluate_model(cfg, path, harder, ks=(1,), keep_completions=0).summary["pass@1"]
                       for name, path in (("base", base_dir), ("final", result.policy_path))}
    rl = r1_zero_report(read_metrics(cfg.runs_path / "r1_zero"), k=cfg.rl.eval_k, steps=result.steps,
                        train_seconds=result.train_seconds, samples=read_eval_samples(cfg.runs_path / "r1_zero"),
                        harder=harder_pass)
    keep = ("base_pass_at_1", "final_pass_at_1", "base_cons_at_k", "final_cons_at_k", "base_format_rate",
            "final_format_rate", "base_mean_length", "final_mean_length", "base_reflection_rate",
            "final_reflection_rate", "base_style_share", "final_style_share", "base_aha_count", "final_aha_count",
            "harder_base_pass_at_1", "harder_final_pass_at_1", "train_seconds", "targets")
    return {"seed": seed,
            "base_model": {key: base[key] for key in ("pass_at_1", "pass_at_16", "style_share", "style_accuracy",
                                                      "step_fact_accuracy", "pretrain_seconds", "targets_met")},
            "skill_problems": skill_problems(base),
            "r1_zero": {key: rl[key] for key in keep if key in rl},
            "gain": rl["final_pass_at_1"] - rl["base_pass_at_1"],
            "all_targets_met": all(rl["targets"].values()),
            "seconds": time.perf_counter() - t0}


def summarize(runs: list[dict]) -> dict:
    """Mean and spread over seeds of the headline figures, and which seeds miss a target."""
    def stats(values: list[float]) -> dict:
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}

    return {
        "seeds": [r["seed"] for r in runs],
        "base_pass_at_1": stats([r["r1_zero"]["base_pass_at_1"] for r in runs]),
        "final_pass_at_1": stats([r["r1_zero"]["final_pass_at_1"] for r in runs]),
        "gain": stats([r["gain"] for r in runs]),
        "final_careful_share": stats([r["r1_zero"]["final_style_share"]["careful"] for r in runs]),
        "seeds_meeting_every_target": [r["seed"] for r in runs if r["all_targets_met"]],
        "seeds_missing_a_target": {r["seed"]: [k for k, ok in r["r1_zero"]["targets"].items() if not ok]
                                   for r in runs if not r["all_targets_met"]},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="experiments/default.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="results/r1_zero/seeds.json")
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.overrides)
    runs = []
    for seed in args.seeds:
        print(f"== seed {seed}", flush=True)
        runs.append(run_seed(args.config, seed, overrides))
        r = runs[-1]
        print(f"   base pass@1 {r['r1_zero']['base_pass_at_1']:.3f} -> {r['r1_zero']['final_pass_at_1']:.3f}; "
              f"targets met: {r['all_targets_met']}; {r['seconds']:.0f} s", flush=True)
        atomic_write_json(Path(args.out), {"config": args.config, "overrides": overrides, "runs": runs,
                                           "summary": summarize(runs)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
