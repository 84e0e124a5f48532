"""Ablation runs: several arms (config overrides) x seeds on one engine, with cost measurements.

Used by notebooks 02 (GRPO vs PPO) and 03 (length expansion). Every arm differs from the base config
only by its overrides; everything else (base model, tasks, held-out set, budget, evaluation) is shared.
The held-out set is fixed across seeds (the test split of the *experiment's* seed) so that seeds vary
only the RL randomness (data order, sampling, initialisation of a critic).
"""

from __future__ import annotations

import gc
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss / 2**20


class PeakMemory:
    """Peak memory while the block runs: RSS sampled every ``interval`` s on CPU (the process-wide
    ``ru_maxrss`` cannot be reset between runs), ``torch.cuda.max_memory_allocated`` on GPU.

    ``peak_rss_mb`` is the process's peak RSS (all memory incl. Python and libraries);
    ``delta_rss_mb`` = peak minus the RSS at entry: what this run added.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_rss_mb = 0.0
        self.start_rss_mb = 0.0
        self.gpu_max_allocated_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.start_rss_mb = self.peak_rss_mb = rss_mb()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_rss_mb = max(self.peak_rss_mb, rss_mb())
        if torch.cuda.is_available():
            self.gpu_max_allocated_mb = torch.cuda.max_memory_allocated() / 2**20

    @property
    def delta_rss_mb(self) -> float:
        return self.peak_rss_mb - self.start_rss_mb


@dataclass
class RunResult:
    """One training run of an arm. ``out_dir`` is absolute in memory (``curves`` reads it from any working
    directory); :func:`results_dicts` writes it relative to the project root ``root``."""

    arm: str
    seed: int
    out_dir: str
    steps: int
    train_seconds: float
    sec_per_step: float
    peak_rss_mb: float
    delta_rss_mb: float
    gpu_max_allocated_mb: float | None
    trainable_params: int
    model_copies: int
    model_state_mb: float = 0.0
    final_eval: dict[str, float] = field(default_factory=dict)
    #: Project root that ``out_dir`` is written relative to (``cfg.root`` of the run); not written itself.
    root: str | None = field(default=None, repr=False, compare=False)


def model_inventory(trainer: Any) -> tuple[int, int, float]:
    """(trainable parameters, full model copies in memory, model-state MiB) of a trainer.

    Model state = weights + gradients + AdamW's two moments of every trained model (policy, critic) and
    the weights of the frozen reference: 4 x trainable + 1 x frozen parameter bytes. Unlike the process
    RSS it does not depend on what ran earlier in the process, so arms compare fairly.
    """
    def nbytes(module: Any, trainable: bool) -> int:
        return sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad == trainable)

    trainable = sum(p.numel() for p in trainer.policy.parameters() if p.requires_grad)
    copies = 1 + (trainer.ref is not None)
    state = 4 * nbytes(trainer.policy, True)
    if trainer.ref is not None:
        state += nbytes(trainer.ref, False)
    if trainer.critic is not None:
        critic = trainer.acc.unwrap_model(trainer.critic)
        trainable += sum(p.numel() for p in critic.parameters() if p.requires_grad)
        state += 4 * nbytes(critic, True)
        copies += 1
    return trainable, copies, state / 2**20


def run_arms(cfg: Any, arms: Mapping[str, Mapping[str, Any]], seeds: Sequence[int], *, init_model: str | os.PathLike,
             runs_dir: str | os.PathLike, resume: bool = True, progress: bool = False) -> list[RunResult]:
    """Train every arm with every seed; return one :class:`RunResult` per run.

    ``arms``: ``{name: {dotted override: value}}`` applied on top of ``cfg``. Runs are resumable: a run
    whose out dir already holds a finished policy is re-read (its metrics from its log), not re-trained.
    """
    from r1lib.evaluation import held_out
    from r1lib.tracking import read_metrics
    from r1lib.training.rl import RLTrainer

    test = held_out(cfg, "test")
    results = []
    base_eval: dict[str, float] | None = None  # the step-0 evaluation is the same for every arm and seed
    for arm, overrides in arms.items():
        for seed in seeds:
            arm_cfg = _with_overrides(cfg, {**overrides, "seed": seed})
            out = Path(runs_dir).expanduser().absolute() / f"{arm}_seed{seed}"
            if progress:
                print(f"== {arm} seed {seed} -> {out}", flush=True)
            with PeakMemory() as mem:
                trainer = RLTrainer(arm_cfg, init_model=init_model, out_dir=out, eval_examples=test,
                                    progress=progress, initial_eval=base_eval)
                trainable, copies, state_mb = model_inventory(trainer)
                res = trainer.train(resume=resume)
            df = read_metrics(out)
            step_rows = df.dropna(subset=["step_time"]) if "step_time" in df else df.iloc[0:0]
            sec = float(step_rows["step_time"].median()) if len(step_rows) else float("nan")
            final = res.final_eval or _last_eval(df)
            if base_eval is None:
                first = df.dropna(subset=["eval/pass@1"]).sort_values("step")
                if len(first) and int(first.iloc[0]["step"]) == 0:
                    base_eval = {k: float(v) for k, v in first.iloc[0].items()
                                 if k.startswith("eval/") and v == v and k != "eval/seconds"}
            results.append(RunResult(arm=arm, seed=seed, out_dir=str(out), steps=res.steps,
                                     train_seconds=res.train_seconds, sec_per_step=sec, peak_rss_mb=mem.peak_rss_mb,
                                     delta_rss_mb=mem.delta_rss_mb, gpu_max_allocated_mb=mem.gpu_max_allocated_mb,
                                     trainable_params=trainable, model_copies=copies, model_state_mb=state_mb,
                                     final_eval=final, root=str(cfg.root)))
            del trainer
            gc.collect()
    return results


def _with_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of ``cfg`` with dotted overrides applied and re-validated (same rules as YAML + --set)."""
    from r1lib.config import ExperimentConfig, apply_overrides, config_to_dict

    data = apply_overrides(config_to_dict(cfg), dict(overrides))
    new = ExperimentConfig.model_validate(data, context={"search_dirs": [cfg.root]})
    new._root = cfg._root
    new._config_path = cfg._config_path
    return new


def _last_eval(df: Any) -> dict[str, float]:
    ev = df.dropna(subset=["eval/pass@1"]).sort_values("step")
    if not len(ev):
        return {}
    last = ev.iloc[-1]
    return {k: float(last[k]) for k in ev.columns if k.startswith("eval/") and last[k] == last[k]}


def summarize(results: Sequence[RunResult], metric: str = "eval/pass@1") -> dict[str, Any]:
    """Per arm: mean and std over seeds of the final ``metric``, median s/step, memory, sizes.

    ``peak_mem_mb`` is the process's peak RSS during the arm's runs (it includes everything loaded before,
    so it depends on the order of arms); ``model_state_mb`` is the order-free model-state size."""
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r.arm for r in results):
        rs = [r for r in results if r.arm == arm]
        finals = [r.final_eval.get(metric, float("nan")) for r in rs]
        out[arm] = {
            "final_pass_at_1": {"mean": statistics.fmean(finals), "std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
                                "per_seed": dict(zip([r.seed for r in rs], finals))},
            "sec_per_step": statistics.median(r.sec_per_step for r in rs),
            "peak_mem_mb": max(r.peak_rss_mb for r in rs),
            "added_mem_mb": max(r.delta_rss_mb for r in rs),
            "gpu_max_allocated_mb": max((r.gpu_max_allocated_mb or 0.0) for r in rs) or None,
            "trainable_params": rs[0].trainable_params,
            "model_copies": rs[0].model_copies,
            "model_state_mb": rs[0].model_state_mb,
            "train_seconds": sum(r.train_seconds for r in rs),
            "seeds": [r.seed for r in rs],
        }
    return out


def curves(results: Sequence[RunResult], key: str = "eval/pass@1") -> dict[str, dict[int, list[float]]]:
    """``{arm: {step: [value per seed]}}`` of one logged metric, for mean/spread plots."""
    from r1lib.tracking import read_metrics

    out: dict[str, dict[int, list[float]]] = {}
    for r in results:
        df = read_metrics(r.out_dir)
        if key not in df:
            continue
        for step, v in df.dropna(subset=[key])[["step", key]].itertuples(index=False):
            out.setdefault(r.arm, {}).setdefault(int(step), []).append(float(v))
    return out


def results_dicts(results: Sequence[RunResult], root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The runs as plain dicts for a committed ``metrics.json``: ``out_dir`` relative to the project root
    when inside it (absolute only for a run folder outside the project), no ``root`` key.

    ``root``: the project root; default: each run's own ``root`` (the config's), else the project that
    holds the run folder."""
    from r1lib.paths import portable_path, project_root_of

    out = []
    for r in results:
        d = asdict(r)
        del d["root"]
        base = root if root is not None else (r.root or project_root_of(r.out_dir))
        d["out_dir"] = portable_path(r.out_dir, base)
        out.append(d)
    return out


def length_summary(results: Sequence[RunResult], expand_at: int) -> dict[str, dict[str, float]]:
    """Per arm of the length-expansion ablation (means over seeds): the final held-out pass@1 (and its std),
    pass@1 at the last evaluation before the expansion step and the jump after it, the truncated fraction of
    the rollouts (first step, before the expansion at its highest, last 5 steps), the rollout length (last 5
    steps) and the median seconds per step."""
    import numpy as np

    from r1lib.tracking import read_metrics

    rows: dict[str, list[dict[str, float]]] = {}
    for r in results:
        df = read_metrics(r.out_dir)
        tr = df.dropna(subset=["truncated_fraction"]).sort_values("step")
        ev = df.dropna(subset=["eval/pass@1"]).sort_values("step")
        before = ev[ev["step"] <= expand_at]
        final = float(r.final_eval.get("eval/pass@1", float("nan")))
        at_switch = float(before["eval/pass@1"].iloc[-1]) if len(before) else float("nan")
        rows.setdefault(r.arm, []).append({
            "final_pass_at_1": final,
            "pass_at_1_before_expansion": at_switch,
            "gain_after_expansion": final - at_switch,
            "first_step_truncated_fraction": float(tr["truncated_fraction"].iloc[0]),
            "max_truncated_fraction_before_expansion": float(tr[tr["step"] <= expand_at]["truncated_fraction"].max()),
            "final_truncated_fraction": float(tr["truncated_fraction"].iloc[-5:].mean()),
            "final_length": float(tr["length/mean"].iloc[-5:].mean()),
            "final_eval_length": float(r.final_eval.get("eval/mean_length", float("nan"))),
        })
    per_arm = summarize(results)
    out = {}
    for arm, xs in rows.items():
        out[arm] = {k: float(np.mean([x[k] for x in xs])) for k in xs[0]}
        out[arm]["final_pass_at_1_std"] = per_arm[arm]["final_pass_at_1"]["std"]
        out[arm]["sec_per_step"] = per_arm[arm]["sec_per_step"]
    return out


def separated(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Whether two arms' final scores (``{"mean", "std"}`` over seeds) separate beyond the seed spread: the gap
    between the means is larger than the sum of the two standard deviations (a deliberately simple, strict
    criterion for 3 seeds; with one seed nothing separates)."""
    if a.get("std", 0.0) == 0.0 and b.get("std", 0.0) == 0.0:
        return False
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


def grpo_vs_ppo_finding(summary: Mapping[str, Any], grpo: str, ppo_095: str, ppo_10: str) -> dict[str, Any]:
    """The paper's claims (v2 A.3) checked on measured arms: PPO with lambda 0.95 worse than GRPO, PPO with
    lambda 1.0 close to GRPO (not separated from it), and the cost of the critic. Returns the verdicts and a
    one-paragraph text."""
    g, p95, p10 = (summary[a]["final_pass_at_1"] for a in (grpo, ppo_095, ppo_10))
    verdict = {
        "ppo_095_worse_than_grpo": p95["mean"] < g["mean"] and separated(p95, g),
        "ppo_10_close_to_grpo": not separated(p10, g),
        "ppo_10_better_than_ppo_095": p10["mean"] > p95["mean"] and separated(p10, p95),
    }

    def rel(x: Mapping[str, float]) -> str:
        if not separated(x, g):
            return "not separated from GRPO"
        return "above GRPO" if x["mean"] > g["mean"] else "below GRPO"

    text = (f"GRPO {g['mean']:.3f} ± {g['std']:.3f}; PPO λ=0.95 {p95['mean']:.3f} ± {p95['std']:.3f} ({rel(p95)}); "
            f"PPO λ=1.0 {p10['mean']:.3f} ± {p10['std']:.3f} ({rel(p10)}); separated = the gap between means exceeds "
            f"the sum of the seed stds. PPO holds {summary[ppo_095]['model_copies']} model copies vs GRPO's "
            f"{summary[grpo]['model_copies']}, {summary[ppo_095]['trainable_params'] / summary[grpo]['trainable_params']:.2f}x "
            f"the trainable parameters, {summary[ppo_095]['model_state_mb'] / summary[grpo]['model_state_mb']:.2f}x the model "
            f"state and {summary[ppo_095]['sec_per_step'] / summary[grpo]['sec_per_step']:.2f}x GRPO's seconds per step.")
    return {"verdict": verdict, "text": text}
