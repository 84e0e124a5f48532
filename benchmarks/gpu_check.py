"""The GPU check: bf16 GRPO steps of r1lib's engine on a Qwen2.5-0.5B-sized random-weight model, with tokens/s and
model FLOPs utilisation (MFU), written to ``results/benchmarks/gpu.json``.

Run on one GPU (nothing is downloaded: the model and a Qwen-family tokenizer are built locally):

    python benchmarks/gpu_check.py                       # HF sampler; add --sampler vllm where vLLM is installed
    python benchmarks/gpu_check.py --shape tiny --device cpu --dtype float32 --steps 1 --batch-size 8 \\
        --num-generations 4 --max-new-tokens 8 --out /tmp/gpu.json         # the CPU dry run the tests do

What one step is: the engine's ``RLTrainer._step`` (rollouts of ``batch_size`` completions, rule rewards, GRPO
advantages, reference log-probs, ``mini_batches`` optimizer steps), the same code as every notebook. The random
model never emits ``</answer>`` or EOS, so every completion runs to ``--max-new-tokens``: the step is the worst
case of its settings, and the token counts are exact.

MFU = model FLOPs / (seconds x peak). Model FLOPs use ``benchmarks/peak.py``'s accounting (2 FLOPs per
multiply-add, backward = 2 x forward, attention over the mean context):
- generation: a forward per prompt token (prefill) and per generated token (decode, over a growing context);
- training: forward + backward of the policy over every prompt + completion token, plus the reference forward,
  plus the old-log-prob forward when the sampler does not report log-probs and there are several mini-batches.
Two peaks are reported: the dense bf16 matmul peak measured in the same run (8192^3 matmuls), and the
vendor's number for the GPU where known (H100/H200 SXM: 989 TFLOP/s dense bf16).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from peak import flops_per_token, matmul_peak_gflops  # noqa: E402

DEFAULT_OUT = REPO / "results" / "benchmarks" / "gpu.json"
VENDOR_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.1}  # dense, SXM where it matters


def gpu_matmul_peak_tflops(dtype: torch.dtype, n: int = 8192, rounds: int = 5) -> float:
    """Best TFLOP/s of ``n x n`` matmuls on the current GPU (a warm-up first, the best of ``rounds``)."""
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(10):
            a @ b
        torch.cuda.synchronize()
        best = max(best, 2 * n**3 * 10 / (time.perf_counter() - t0) / 1e12)
    return best


def vendor_peak(name: str) -> float | None:
    return next((v for k, v in VENDOR_BF16_TFLOPS.items() if k in name), None)


def step_flops(model_cfg: Any, rows: int, prompt_len: float, new_tokens: float, *, old_logp_forward: bool) -> dict:
    """Model FLOPs of one RL step (see the module docstring)."""
    seq = prompt_len + new_tokens
    prefill = rows * prompt_len * flops_per_token(model_cfg, prompt_len / 2)
    decode = rows * new_tokens * flops_per_token(model_cfg, prompt_len + new_tokens / 2)
    fwd = rows * seq * flops_per_token(model_cfg, seq / 2)
    train = 3 * fwd + fwd + (fwd if old_logp_forward else 0.0)  # policy fwd+bwd, reference, old log-probs
    return {"generation": prefill + decode, "training": train}


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: --device cuda but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                         "for a dry run on CPU: --shape tiny --device cpu --dtype float32")
    vllm_note = None
    if args.sampler == "vllm":
        from r1lib.sampling_vllm import VLLMUnavailableError, require_vllm

        try:
            require_vllm("--sampler")
        except VLLMUnavailableError as err:
            raise SystemExit(f"gpu_check: {err}") from None
    elif args.device == "cuda":
        import importlib.util

        vllm_note = ("vLLM is installed: rerun with --sampler vllm" if importlib.util.find_spec("vllm")
                     else "vLLM not installed on this machine (pip install -e .[gpu]); HF sampler only")
    with tempfile.TemporaryDirectory(prefix="r1lib_gpu_check_") as tmp:  # the model (2 GB at 0.5b) and the run
        return _run_in(args, Path(tmp), vllm_note)


def _run_in(args: argparse.Namespace, work: Path, vllm_note: str | None) -> dict[str, Any]:
    from r1lib.config import load_config
    from r1lib.models import build_random_qwen, count_parameters
    from r1lib.paths import relativize_text
    from r1lib.training.rl import RLTrainer

    t0 = time.perf_counter()
    model_dir = build_random_qwen(work / f"qwen2_{args.shape}", args.shape, max_positions=4096)
    build_s = time.perf_counter() - t0
    overrides = {
        "name": "gpu_check", "runs_dir": str(work / "runs"), "results_dir": str(work / "results"),
        "stages_dir": str(work / "results"), "tracking.wandb_mode": "disabled",
        "model.dtype": args.dtype, "model.device": args.device,
        "rl.steps": args.warmup + args.steps, "rl.batch_size": args.batch_size,
        "rl.num_generations": args.num_generations, "rl.mini_batches": args.mini_batches,
        "rl.max_new_tokens": args.max_new_tokens, "rl.sampler": args.sampler, "rl.lr": 3e-6, "rl.beta": 0.001,
        "rl.checkpoint_every": 10_000, "rl.eval_every": 10_000, "rl.eval_k": 1, "rl.eval_limit": 1,
        "eval.max_new_tokens": 8, "tasks.n_train": 256, "tasks.n_test": 4,
    }
    cfg = load_config(REPO / "experiments" / "default.yaml", overrides)
    steps: list[dict[str, float]] = []
    trainer = RLTrainer(cfg, init_model=model_dir, out_dir=work / "run", progress=False,
                        initial_eval={"eval/pass@1": 0.0})
    trainer.train(on_step=lambda s, m: steps.append({"step": s, **m}))
    policy = trainer.policy
    n_params = count_parameters(policy)
    timed = steps[args.warmup:]
    rows = args.batch_size
    fmt = trainer.prompt_format  # the prompts exactly as rollouts render them
    prompt_len = statistics.mean(
        len(trainer.tokenizer(fmt(e.problem), add_special_tokens=fmt.add_special_tokens)["input_ids"])
        for e in trainer.data.examples)
    new_tokens = statistics.mean(s["length/mean"] for s in timed)
    old_fwd = args.mini_batches > 1 and args.sampler == "hf"
    fl = step_flops(policy.config, rows, prompt_len, new_tokens, old_logp_forward=old_fwd)
    step_s = statistics.median(s["step_time"] for s in timed)
    gen_s = statistics.median(s["gen_time"] for s in timed)
    if args.device == "cuda":
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[args.dtype]
        device_name = torch.cuda.get_device_name()
        peak = gpu_matmul_peak_tflops(dtype)
        vendor = vendor_peak(device_name) if args.dtype == "bfloat16" else None
        memory = torch.cuda.max_memory_allocated() / 2**30
    else:
        device_name = f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
        peak = matmul_peak_gflops(torch.get_num_threads()) / 1e3
        vendor, memory = None, None

    def mfu(flops: float, seconds: float, tflops: float | None) -> float | None:
        return None if not tflops or seconds <= 0 else flops / seconds / (tflops * 1e12)

    total = fl["generation"] + fl["training"]
    return {
        "benchmark": "gpu_check", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": relativize_text("python " + " ".join([str(Path(sys.argv[0]).as_posix())] + sys.argv[1:]), REPO),
        "device": device_name, "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "model": {"architecture": "Qwen2ForCausalLM", "shape": args.shape, "parameters": n_params,
                  "dtype": args.dtype, "weights": "random (r1lib.models.build_random_qwen)", "build_seconds": build_s},
        "settings": {"sampler": type(trainer.sampler()).__name__, "steps_timed": len(timed), "warmup": args.warmup,
                     "batch_size": rows, "num_generations": args.num_generations, "mini_batches": args.mini_batches,
                     "max_new_tokens": args.max_new_tokens, "mean_prompt_tokens": prompt_len,
                     "mean_new_tokens": new_tokens},
        "step_seconds": [s["step_time"] for s in timed], "step_seconds_median": step_s,
        "generation_seconds_median": gen_s, "generation_share_of_step": gen_s / step_s,
        "generated_tokens_per_s": rows * new_tokens / step_s,
        "generation_tokens_per_s": rows * new_tokens / gen_s,
        "model_tflops_per_step": {k: v / 1e12 for k, v in fl.items()},
        "peak_tflops_measured": peak, "peak_tflops_vendor": vendor,
        "mfu_measured_peak": {"step": mfu(total, step_s, peak), "generation": mfu(fl["generation"], gen_s, peak),
                              "training": mfu(fl["training"], step_s - gen_s, peak)},
        "mfu_vendor_peak": {"step": mfu(total, step_s, vendor)},
        "max_memory_gib": memory, "vllm": vllm_note,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="0.5b", choices=["0.5b", "tiny"])
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--sampler", default="hf", choices=["hf", "kv", "vllm"])
    p.add_argument("--steps", type=int, default=4, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64, help="completions per step")
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--mini-batches", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    m = result["mfu_measured_peak"]
    print(f"{result['device']}: {result['model']['parameters'] / 1e6:.0f}M params, step {result['step_seconds_median']:.2f} s "
          f"(generation {result['generation_share_of_step']:.0%}), {result['generated_tokens_per_s']:.0f} generated tok/s, "
          f"MFU {m['step']:.1%} of the measured peak {result['peak_tflops_measured']:.0f} TFLOP/s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
