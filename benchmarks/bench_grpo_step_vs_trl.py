"""Wall time of one GRPO step: r1lib's engine (``RLTrainer._step``) against TRL ``GRPOTrainer`` on the
same configuration, in one process, alternating (TRL step, r1lib step, TRL step, ...).

Run:  .venv/bin/python benchmarks/bench_grpo_step_vs_trl.py [--steps 5] [--sampler kv] [--mini-batches 1]
                                                            [--micro-batches 4] [--share-prefix]
      -> results/benchmarks/grpo_step_vs_trl.json (and a table on stdout)

"One GRPO step" = one rollout of ``batch_size`` completions (``batch_size / G`` prompts x G) scored with
the rule rewards, old/reference log-probs, and the optimizer steps of one inner epoch over it.

Identical on both sides: the model (``runs/default/base_model``, fp32, CPU), the prompts of every step
(R1-Zero template over ``r1lib.tasks.generate_mix`` problems, in r1lib's step order; TRL reads the
dataset unshuffled in that order), G, batch size, max new tokens, temperature 1.0 / top-p 1.0 / no
top-k, beta, epsilon, lr (constant), AdamW, grad clipping 1.0, the reward functions (r1lib's own
accuracy + format, wrapped for TRL's signature, same weights), GRPO advantages ((r - mean) / (std +
1e-4)), loss aggregation (ours "sequence" = TRL ``loss_type="grpo"``), and the torch thread count.

Mini-batch mapping (TRL ``grpo_config.py``: ``generation_batch_size = per_device_train_batch_size x
num_processes x steps_per_generation``; one generation is reused for ``steps_per_generation`` optimizer
steps): r1lib ``rl.mini_batches = M`` <-> TRL ``per_device_train_batch_size = batch_size / M``,
``steps_per_generation = M``, ``gradient_accumulation_steps = 1``, ``num_iterations = 1``. Both then take
M optimizer steps per rollout, each on ``batch_size / M`` completions. One TRL "GRPO step" is timed from
``on_step_begin`` of the first of its M optimizer steps to ``on_step_end`` of the last (TRL's logging,
done after ``on_step_end``, is outside the window; r1lib's ``_step`` has no logging either).

Two TRL defaults are changed to match GRPO as r1lib (and the paper) defines it: ``use_bias_correction_kl
=False`` (TRL 1.16 multiplies the k3 KL by the importance ratio by default, DeepSeek-V3.2) and
``lr_scheduler_type="constant"`` (TRL default: linear decay).

Stopping (``--stop``): TRL's transformers ``generate`` path stops only at EOS (it passes no tokenizer,
so ``stop_strings`` cannot be used as is), while r1lib stops at ``</answer>``.
- ``answer`` (default; what r1lib's engine does in training): TRL gets ``generation_kwargs={"stop_strings":
  ["</answer>"]}``, its model's ``generate`` is given the tokenizer, and the pad id joins TRL's EOS ids so
  the padding generate writes after a stop string is masked out of TRL's loss (as after EOS).
- ``none``: r1lib's sampler is wrapped to drop its stop strings; both stop at EOS or max new tokens.

Sampler: r1lib's ``rl.sampler`` (default ``kv``, the lean KV-cache sampler); the engine falls back to HF
``generate`` when that back-end is not available. The JSON records which class actually ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "runs" / "default" / "base_model"
DEFAULT_OUT = REPO / "results" / "benchmarks" / "grpo_step_vs_trl.json"
STOP = "</answer>"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="HF model folder (the tiny base model)")
    p.add_argument("--steps", type=int, default=5, help="timed GRPO steps per engine (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed GRPO steps per engine first")
    p.add_argument("--sampler", choices=("kv", "hf"), default="kv", help="r1lib rl.sampler")
    p.add_argument("--mini-batches", type=int, default=1, help="r1lib rl.mini_batches (TRL: see the docstring)")
    p.add_argument("--micro-batches", type=int, default=1,
                   help="r1lib rl.micro_batches: length-sorted forward/backward passes per mini-batch, gradients "
                        "accumulated (the same update to float rounding; TRL has no counterpart, its settings are "
                        "unchanged)")
    p.add_argument("--share-prefix", action="store_true",
                   help="r1lib rl.share_prefix: the prompt prefix all rows of a pass share (the R1-Zero template) "
                        "computed once per pass (the same log-probs and gradients to float rounding; TRL unchanged)")
    p.add_argument("--batch-size", type=int, default=64, help="completions per GRPO step")
    p.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--beta", type=float, default=0.001)
    p.add_argument("--epsilon", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--stop", choices=("answer", "none"), default="answer", help="stopping rule for both engines")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads for both engines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    if args.batch_size % args.group_size or args.batch_size % args.mini_batches:
        p.error("--group-size and --mini-batches must divide --batch-size")
    return args


class NoStopSampler:
    """Wraps an r1lib sampler and drops the stop strings (``--stop none``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def generate(self, prompts: list[str], params: Any) -> list[list[Any]]:
        return self.inner.generate(prompts, dataclasses.replace(params, stop=()))


class TimedGenerate:
    """Replaces a model's bound ``generate``: times each call and optionally passes the tokenizer (needed by
    transformers' ``stop_strings``)."""

    def __init__(self, model: Any, tokenizer: Any | None) -> None:
        self.fn = model.generate
        self.tokenizer = tokenizer
        self.seconds = 0.0

    def __call__(self, *a: Any, **kw: Any) -> Any:
        if self.tokenizer is not None:
            kw.setdefault("tokenizer", self.tokenizer)
        t0 = time.perf_counter()
        try:
            return self.fn(*a, **kw)
        finally:
            self.seconds += time.perf_counter() - t0


def build_r1lib(args: argparse.Namespace, examples: list[Any], out_dir: Path) -> Any:
    from accelerate import Accelerator

    from r1lib.config import ExperimentConfig
    from r1lib.training.rl import RLTrainer

    total = args.warmup + args.steps
    cfg = ExperimentConfig.model_validate({
        "name": "bench_grpo_step", "seed": args.seed, "notebooks": [],
        "tasks": {"mix": {"arithmetic": 1, "linear": 1, "word": 1}, "n_train": len(examples), "n_test": 1,
                  "difficulty": [1, 2]},
        "model": {"device": "cpu", "dtype": "float32"},
        "rl": {"algorithm": "grpo", "steps": max(total, 1), "batch_size": args.batch_size,
               "num_generations": args.group_size, "lr": args.lr, "weight_decay": 0.0, "max_grad_norm": 1.0,
               "beta": args.beta, "epsilon": args.epsilon, "mini_batches": args.mini_batches,
               "micro_batches": args.micro_batches, "share_prefix": args.share_prefix,
               "max_new_tokens": args.max_new_tokens, "temperature": 1.0, "loss_aggregation": "sequence",
               "rewards": {"accuracy": 1.0, "format": 1.0}, "sampler": args.sampler, "num_threads": None,
               "ref_reset_every": 10 ** 9},  # no reference reset inside the benchmark (TRL: no ref sync)
        "tracking": {"wandb_mode": "disabled"},
    })
    return RLTrainer(cfg, init_model=args.model, out_dir=out_dir, train_examples=examples,
                     eval_examples=examples[:1], accelerator=Accelerator(cpu=True))


def build_trl(args: argparse.Namespace, r1: Any, out_dir: Path, callbacks: list[Any]) -> tuple[Any, TimedGenerate]:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from r1lib.models import load_model
    from r1lib.prompts import r1_zero_prompt

    total = args.warmup + args.steps
    M = args.mini_batches
    # The prompts of r1lib's steps 0..total-1, in order; TRL reads them unshuffled -> same prompts per step.
    step_examples = [ex for s in range(total) for ex in r1.data.batch(s)]
    rows = [{"prompt": r1_zero_prompt(ex.problem), "row": i} for i, ex in enumerate(step_examples)]

    def wrap(name: str, fn: Any) -> Any:
        def reward(prompts: list[str], completions: list[str], row: list[int], **kw: Any) -> list[float]:
            return [float(fn(c, step_examples[i])) for c, i in zip(completions, row)]
        reward.__name__ = name
        return reward

    reward_funcs = [wrap(name, fn) for name, fn, _ in r1.reward_fns]
    weights = [float(w) for _, _, w in r1.reward_fns]
    gen_kwargs = {"stop_strings": [STOP]} if args.stop == "answer" else None
    cfg = GRPOConfig(
        output_dir=str(out_dir), max_steps=M * total, num_train_epochs=1, seed=args.seed,
        loss_type="grpo", beta=args.beta, epsilon=args.epsilon, use_bias_correction_kl=False,
        num_generations=args.group_size, per_device_train_batch_size=args.batch_size // M,
        steps_per_generation=M, gradient_accumulation_steps=1, num_iterations=1,
        max_completion_length=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
        generation_kwargs=gen_kwargs, scale_rewards="group", mask_truncated_completions=False,
        reward_weights=weights, shuffle_dataset=False,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        optim="adamw_torch", bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
        report_to="none", save_strategy="no", logging_steps=M, disable_tqdm=True, dataloader_num_workers=0,
        log_completions=False)
    model, tok = load_model(args.model, dtype="float32", device="cpu")
    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=cfg, train_dataset=Dataset.from_list(rows),
                          processing_class=tok, callbacks=callbacks)
    timed = TimedGenerate(trainer.model, tok if args.stop == "answer" else None)
    trainer.model.generate = timed  # unwrap_model_for_generation returns this object on one CPU process
    if args.stop == "answer" and tok.pad_token_id not in trainer.eos_token_ids:
        # generate pads a row after its stop string; TRL masks only after EOS ids -> treat pad as one.
        trainer.eos_token_ids = [*trainer.eos_token_ids, tok.pad_token_id]
    return trainer, timed


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build both engines, alternate ``warmup + steps`` GRPO steps, return the result dict."""
    import torch

    from r1lib.tasks import generate_mix

    torch.set_num_threads(args.threads)
    total = args.warmup + args.steps
    prompts_per_step = args.batch_size // args.group_size
    examples = generate_mix({"arithmetic": 1, "linear": 1, "word": 1}, max(256, prompts_per_step * total),
                            split="train", seed=args.seed, difficulty=(1, 2))
    with tempfile.TemporaryDirectory(prefix="bench_grpo_") as tmp_name:
        return _run_in(args, examples, Path(tmp_name))


def _run_in(args: argparse.Namespace, examples: list[Any], tmp: Path) -> dict[str, Any]:
    import torch
    from transformers import TrainerCallback

    total = args.warmup + args.steps
    prompts_per_step = args.batch_size // args.group_size
    r1 = build_r1lib(args, examples, tmp / "r1lib")
    if args.stop == "none":
        r1._sampler = NoStopSampler(r1.sampler())
    sampler = r1.sampler()
    inner = sampler.inner if isinstance(sampler, NoStopSampler) else sampler
    backend = type(inner).__name__
    r1_times: list[float] = []
    trl_times: list[float] = []
    per_step: list[dict[str, Any]] = []
    M = args.mini_batches
    timed_box: dict[str, TimedGenerate] = {}

    class Alternate(TrainerCallback):
        """Times each TRL GRPO step (M optimizer steps) and runs one r1lib step right after it."""

        def on_step_begin(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % M == 0:
                self.gen0 = timed_box["g"].seconds
                self.t0 = time.perf_counter()

        def on_step_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step % M:
                return
            trl_s = time.perf_counter() - self.t0
            m = trainer._metrics["train"]
            trl_rec = {"s": trl_s, "gen_s": timed_box["g"].seconds - self.gen0,
                       "mean_len": m["completions/mean_length"][-1], "reward": m["reward"][-1],
                       "threads": torch.get_num_threads()}
            t0 = time.perf_counter()
            metrics = r1._step()
            r1_s = time.perf_counter() - t0
            r1.step += 1
            r1_rec = {"s": r1_s, "gen_s": metrics["gen_time"], "mean_len": metrics["length/mean"],
                      "reward": metrics["reward/mean"], "threads": torch.get_num_threads()}
            trl_times.append(trl_s)
            r1_times.append(r1_s)
            per_step.append({"step": len(per_step), "warmup": len(per_step) < args.warmup, "trl": trl_rec,
                             "r1lib": r1_rec})
            print(f"step {len(per_step) - 1}{' (warm-up)' if len(per_step) <= args.warmup else ''}: "
                  f"TRL {trl_s:.2f}s (gen {trl_rec['gen_s']:.2f}s, len {trl_rec['mean_len']:.1f})  "
                  f"r1lib {r1_s:.2f}s (gen {r1_rec['gen_s']:.2f}s, len {r1_rec['mean_len']:.1f})", flush=True)

    trainer, timed = build_trl(args, r1, tmp / "trl", [Alternate()])
    timed_box["g"] = timed
    trainer.train()
    if len(per_step) != total:
        raise RuntimeError(f"expected {total} GRPO steps, ran {len(per_step)}")

    r1_t, trl_t = r1_times[args.warmup:], trl_times[args.warmup:]
    med = statistics.median
    timed_steps = per_step[args.warmup:]
    from r1lib.paths import portable_path, relativize_text

    model_name = portable_path(args.model, REPO)  # committed JSON: no absolute paths inside the repository
    r1_len = statistics.mean(s["r1lib"]["mean_len"] for s in timed_steps)
    trl_len = statistics.mean(s["trl"]["mean_len"] for s in timed_steps)
    result = {
        "r1lib_s": med(r1_t),
        "trl_s": med(trl_t),
        "ratio": med(r1_t) / med(trl_t),
        # The machine may be shared: adjacent (TRL, r1lib) pairs see similar load, so the median of the
        # per-pair ratios is the more robust number when the load drifts.
        "paired_ratio_median": med([a / b for a, b in zip(r1_t, trl_t)]),
        "target_ratio": 0.35,  # issue 13 (was 0.5)
        "details": {
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": relativize_text(" ".join(["benchmarks/bench_grpo_step_vs_trl.py", *args.argv]), REPO),
            "r1lib_sampler_requested": args.sampler,
            "r1lib_sampler_backend": backend,
            "trl_generation": "transformers generate (no vLLM)",
            "stop": ("both stop at '</answer>' (TRL: stop_strings + tokenizer passed to generate)"
                     if args.stop == "answer" else "no stop strings: both stop at EOS or max_new_tokens"),
            "torch_threads": args.threads,
            "config": {"model": model_name,
                       "batch_size": args.batch_size, "group_size": args.group_size,
                       "prompts_per_step": prompts_per_step, "max_new_tokens": args.max_new_tokens,
                       "temperature": 1.0, "top_p": 1.0, "beta": args.beta, "epsilon": args.epsilon, "lr": args.lr,
                       "r1lib_mini_batches": M, "r1lib_micro_batches": args.micro_batches,
                       "r1lib_share_prefix": args.share_prefix, "trl_per_device_train_batch_size": args.batch_size // M,
                       "trl_steps_per_generation": M, "trl_gradient_accumulation_steps": 1,
                       "optimizer_steps_per_grpo_step": M, "loss": "r1lib sequence == TRL grpo",
                       "trl_use_bias_correction_kl": False, "rewards": "accuracy + format (weights 1, 1)",
                       "tasks": "generate_mix(arithmetic, linear, word), difficulty (1, 2)",
                       "warmup_steps": args.warmup, "timed_steps": args.steps},
            "r1lib_times_s": r1_t, "trl_times_s": trl_t,
            "r1lib_gen_median_s": med([s["r1lib"]["gen_s"] for s in timed_steps]),
            "trl_gen_median_s": med([s["trl"]["gen_s"] for s in timed_steps]),
            "r1lib_mean_completion_tokens": r1_len,
            "trl_mean_completion_tokens": trl_len,
            "note": (f"The engines sample with different RNG streams from the same weights, so completion lengths "
                     f"differ by chance: TRL's were {100 * (trl_len / r1_len - 1):+.0f}% vs r1lib's on average "
                     f"(per-step work is not exactly equal). Timings on a shared 2-core machine are noisy; "
                     f"see paired_ratio_median."),
            "per_step": per_step,
            "machine": {"python": platform.python_version(), "processor": platform.machine(),
                        "cpu_count": os.cpu_count(), "torch": torch.__version__,
                        "load_avg_1m_at_end": os.getloadavg()[0]},
            "versions": _versions(),
        },
    }
    return result


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "trl", "accelerate"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def print_table(res: dict[str, Any]) -> None:
    d = res["details"]
    print()
    print(f"{'engine':<8} {'median s/step':>14} {'gen median s':>13} {'mean tokens':>12}  steps (s)")
    print(f"{'r1lib':<8} {res['r1lib_s']:>14.3f} {d['r1lib_gen_median_s']:>13.3f} "
          f"{d['r1lib_mean_completion_tokens']:>12.1f}  {', '.join(f'{t:.2f}' for t in d['r1lib_times_s'])}")
    print(f"{'TRL':<8} {res['trl_s']:>14.3f} {d['trl_gen_median_s']:>13.3f} "
          f"{d['trl_mean_completion_tokens']:>12.1f}  {', '.join(f'{t:.2f}' for t in d['trl_times_s'])}")
    print(f"ratio r1lib/TRL = {res['ratio']:.3f} (median of per-pair ratios {res['paired_ratio_median']:.3f}; "
          f"target <= {res['target_ratio']}); sampler "
          f"{d['r1lib_sampler_backend']} (requested {d['r1lib_sampler_requested']}); {d['torch_threads']} thread(s); "
          f"stop: {d['stop']}")


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    if not (args.model / "config.json").is_file():
        print(f"SKIP: no model at {args.model} (train the base model first: notebooks/00_base_model.ipynb)")
        return 0
    try:
        import trl  # noqa: F401
    except ImportError:
        print("SKIP: trl is not installed (the TRL side of the comparison needs it)")
        return 0
    res = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print_table(res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
