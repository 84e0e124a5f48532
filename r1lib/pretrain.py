"""Pretraining of the embedded base model: our analogue of DeepSeek-V3-Base, built from scratch on CPU.

``build_base_model(cfg)`` = corpus (``r1lib.corpus``) -> byte-level BPE tokenizer -> Llama preset ->
next-token pretraining on packed documents -> a plain Hugging Face folder at ``<runs_dir>/base_model``.

The loop is a plain PyTorch loop (AdamW, linear warm-up then cosine decay to 10%), because it shares
checkpointing with r1lib's RL loop (``r1lib.checkpoint``): every ``checkpoint_every`` steps the model,
optimizer, scheduler, RNG states and step are saved atomically, and ``resume=True`` continues from the
newest checkpoint. The batch order is a function of (seed, step) only, so a resumed run sees exactly the
batches an uninterrupted one would, and ends with the same weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from r1lib.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


@dataclass
class PretrainResult:
    steps: int
    seconds: float
    final_loss: float
    tokens_seen: int
    resumed_from: int | None


def pack_documents(tokenizer, texts: list[str], seq_len: int) -> torch.Tensor:
    """Tokenize, join documents with the end-of-text token and cut into ``(n_chunks, seq_len)``."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(eos)
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"corpus too small: {len(ids)} tokens < seq_len {seq_len}")
    return torch.tensor(ids[: n * seq_len], dtype=torch.long).view(n, seq_len)


def batch_indices(n_chunks: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Chunk indices of batch ``step``: epoch-wise permutations seeded by (seed, epoch)."""
    per_epoch = max(n_chunks // batch_size, 1)
    epoch, pos = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n_chunks, generator=g)
    idx = perm[pos * batch_size:(pos + 1) * batch_size]
    if len(idx) < batch_size:  # fewer chunks than a batch: wrap around
        idx = perm.repeat(math.ceil(batch_size / n_chunks))[:batch_size]
    return idx


def lr_lambda(warmup: int, total: int, floor: float = 0.1) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def _can_compile() -> bool:
    """Whether ``torch.compile`` can build CPU kernels here: inductor needs a C++ compiler. Without one, pretraining
    runs eager (a warning says so) instead of failing at its first step."""
    import warnings

    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except (ImportError, RuntimeError, OSError) as err:   # inductor raises RuntimeError when it finds no compiler
        warnings.warn(f"pretrain.compile: torch.compile is not available ({err}); pretraining runs eager", stacklevel=3)
        return False
    return True


def pretrain(model, chunks: torch.Tensor, *, steps: int, batch_size: int, lr: float, warmup_steps: int,
             run_dir: str | Path, checkpoint_every: int, seed: int = 0, resume: bool = True,
             log: Callable[[dict, int], None] | None = None, progress: bool = True,
             interrupt_at: int | None = None, weight_decay: float = 0.1, compile: bool = False) -> PretrainResult:
    """Train ``model`` on ``chunks`` for ``steps`` optimizer steps, checkpointing into ``run_dir/checkpoints``.

    ``compile``: run the forward and backward through ``torch.compile`` (the parameters stay ``model``'s, so
    checkpoints and the saved model are the same either way; the float rounding differs slightly).

    ``interrupt_at`` raises ``KeyboardInterrupt`` after that step (tests use it to simulate a kill).
    """
    from tqdm.auto import tqdm

    ckpt_dir = Path(run_dir) / "checkpoints"
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup_steps, steps))
    start, resumed_from, seconds_before, loss_val = 0, None, 0.0, float("nan")
    last = latest_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = resumed_from = state["step"]
        seconds_before = float(state.get("train_seconds", 0.0))  # older checkpoints: not recorded
        loss_val = float(state.get("loss", float("nan")))
    model.train()
    t0 = time.perf_counter()
    tokens = start * batch_size * chunks.shape[1]   # the whole run's, as if it had not been interrupted
    forward = torch.compile(model) if compile and _can_compile() else model
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="pretrain", disable=not progress)
    for step in bar:
        idx = batch_indices(chunks.shape[0], batch_size, step, seed)
        batch = chunks[idx]
        out = forward(input_ids=batch, labels=batch)
        loss = out.loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining loss is {loss.item()} at step {step}; the last good checkpoint "
                                     f"is kept in {ckpt_dir}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_val = loss.item()
        tokens += batch.numel()
        done = step + 1
        if log is not None:
            log({"loss": loss_val, "lr": sched.get_last_lr()[0],
                 "tokens_per_s": (done - start) * batch.numel() / max(time.perf_counter() - t0, 1e-9)}, done)
        bar.set_postfix(loss=f"{loss_val:.3f}")
        if done % checkpoint_every == 0 or done == steps:
            save_checkpoint(ckpt_dir, done, model=model.state_dict(), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), loss=loss_val,
                            train_seconds=seconds_before + time.perf_counter() - t0)
        if interrupt_at is not None and done == interrupt_at:
            raise KeyboardInterrupt(f"simulated interrupt after step {done}")
    bar.close()
    model.eval()
    if loss_val != loss_val:   # a finished run from a checkpoint older than the loss record: its training log
        loss_val = _last_logged_loss(Path(run_dir) / "metrics.jsonl")
    return PretrainResult(steps=steps, seconds=seconds_before + time.perf_counter() - t0, final_loss=loss_val,
                          tokens_seen=tokens, resumed_from=resumed_from)


def _last_logged_loss(path: Path) -> float:
    """The last ``loss`` in a training log (JSON lines), NaN when there is none."""
    import json

    if not path.exists():
        return float("nan")
    losses = [r["loss"] for r in map(json.loads, path.read_text().splitlines()) if "loss" in r]
    return float(losses[-1]) if losses else float("nan")


def build_base_model(cfg, *, progress: bool = True, resume: bool = True, interrupt_at: int | None = None,
                     corpus_cfg=None, preset: str | None = None, name: str = "base_model",
                     tokenizer_from: str | Path | None = None) -> dict:
    """Corpus -> tokenizer -> model -> pretraining -> ``<runs_dir>/<name>``. Returns a summary dict.

    ``cfg`` is an ``r1lib.config.ExperimentConfig``. Re-running with ``resume=True`` continues an interrupted
    pretraining from its last checkpoint (the tokenizer is saved once and reloaded, so ids never change).
    ``preset`` (default ``model.preset``) and ``name`` build another model on the same corpus, e.g. a distillation
    student (``students/nano/base_model``); ``tokenizer_from``: a folder whose tokenizer to reuse (the teacher's
    base) instead of training one.
    """
    from transformers import AutoTokenizer

    from r1lib.corpus import build_corpus, corpus_stats
    from r1lib.models import build_model, build_tokenizer, count_parameters, save_model
    from r1lib.config import config_to_dict
    from r1lib.tracking import Tracker, stage_job_type

    p = cfg.pretrain
    preset = preset or cfg.model.preset
    run_dir = cfg.runs_path / f"{name}_train"
    tok_dir = run_dir / "tokenizer"
    corpus_cfg = corpus_cfg or p.corpus
    t_start = time.perf_counter()
    docs = build_corpus(p.corpus_size, mix=cfg.tasks.mix, difficulty=tuple(cfg.tasks.difficulty), seed=cfg.seed,
                        cfg=corpus_cfg)
    texts = [d.text for d in docs]
    if resume and (tok_dir / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(tok_dir)
    elif tokenizer_from is not None:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_from))
        tok.save_pretrained(tok_dir)
    else:
        tok = build_tokenizer(texts, vocab_size=p.vocab_size, model_max_length=max(512, p.seq_len))
        tok.save_pretrained(tok_dir)
    model = build_model(preset, tok, seed=cfg.seed)
    chunks = pack_documents(tok, texts, p.seq_len)
    prep_seconds = time.perf_counter() - t_start
    # W&B: the whole resolved config + this stage's model, grouped by experiment, job type pretrain[_<student>]
    with Tracker(run_dir, config={**config_to_dict(cfg), "preset": preset, "stage": {"name": name}},
                 wandb_mode=cfg.tracking.wandb_mode, project=cfg.tracking.project,
                 name=f"{cfg.name}-pretrain" + ("" if name == "base_model" else f"-{name.replace('/', '-')}"),
                 group=cfg.tracking.group or cfg.name, job_type=stage_job_type(run_dir, cfg.runs_path)) as tracker:
        result = pretrain(model, chunks, steps=p.steps, batch_size=p.batch_size, lr=p.lr, warmup_steps=p.warmup_steps,
                          run_dir=run_dir, checkpoint_every=p.checkpoint_every, seed=cfg.seed, resume=resume,
                          log=tracker.log, progress=progress, interrupt_at=interrupt_at, compile=p.compile)
    out = save_model(model, tok, cfg.runs_path / name)
    return {
        "model_dir": str(out),
        "params": count_parameters(model),
        "preset": preset,
        "pretrain_seconds": prep_seconds + result.seconds,
        "train_loop_seconds": result.seconds,
        "final_loss": result.final_loss,
        "tokens_seen": result.tokens_seen,
        "corpus_tokens": int(chunks.numel()),
        "resumed_from": result.resumed_from,
        "metrics_log": str(run_dir / "metrics.jsonl"),
        "corpus": corpus_stats(docs),
        "corpus_config": corpus_cfg.model_dump(mode="json"),
    }


def base_model_report(build: dict, eval_summary: dict, k_curve: dict[int, float] | None = None, *,
                      behaviour: dict | None = None, harder_summary: dict | None = None) -> dict:
    """The base model's figures (``results/base_model/metrics.json``) and the checks that RL has a skill to amplify.

    ``eval_summary``: :func:`r1lib.evaluation.evaluate` on the held-out split under the R1-Zero template;
    ``behaviour``: :func:`r1lib.analysis.behaviour_report` of the same samples (styles, written facts, aha
    fixes); ``harder_summary``: the evaluation on the harder split (one level more). Targets:

    - pass@1 (T 0.6) in [5%, 25%] and pass@16 >= 4 x pass@1: low, with a large gap a skill can close;
    - the self-checking ``careful`` style is the most accurate one, and >= 50% accurate in the base's own
      samples (:func:`skill_problems` says so loudly when not);
    - pretraining (corpus, tokenizer and training loop) <= 7 minutes on 2 CPU cores.
    """
    p1, p16 = eval_summary["pass@1"], eval_summary.get("pass@16")
    report = {
        "pass_at_1": p1,
        "pass_at_16": p16,
        "cons_at_k": eval_summary.get(f"cons@{eval_summary['k']}"),
        "format_rate": eval_summary["format_rate"],
        "reflection_rate": eval_summary["reflection_rate"],
        "language_mix_rate": eval_summary["language_mix_rate"],
        "pretrain_seconds": build["pretrain_seconds"],
        "params": build["params"],
        "mean_length": eval_summary["mean_length"],
        "truncated_fraction": eval_summary["truncated_fraction"],
        "n_test_examples": eval_summary["n_examples"],
        "k": eval_summary["k"],
        "final_loss": build["final_loss"],
        "tokens_seen": build["tokens_seen"],
    }
    if k_curve:
        report["pass_at_k_curve"] = {str(k): v for k, v in k_curve.items()}
    if behaviour:
        styles = behaviour["styles"]
        report["style_share"] = {s: v["share"] for s, v in styles.items()}
        report["style_accuracy"] = {s: v["accuracy"] for s, v in styles.items()}
        report["style_mean_length"] = {s: v["mean_length"] for s, v in styles.items()}
        report["style_n"] = {s: v["n"] for s, v in styles.items()}
        report["step_fact_accuracy"] = behaviour["facts"]["accuracy"]
        report["step_facts_written"] = behaviour["facts"]["n"]
        report["aha_examples"] = behaviour["aha"]["count"]
        report["correction_attempts"] = behaviour["aha"]["attempts"]
    if harder_summary:
        report["harder_pass_at_1"] = harder_summary["pass@1"]
        report["harder_pass_at_k"] = harder_summary.get(f"pass@{harder_summary['k']}")
        report["harder_n_examples"] = harder_summary["n_examples"]
    report["targets_met"] = {
        "pass_at_1_in_5_25": 0.05 <= p1 <= 0.25,
        "pass_at_16_ge_4x_pass_at_1": p16 is not None and p16 >= 4 * p1,
        "pretrain_le_420s": report["pretrain_seconds"] <= 420,
    }
    if behaviour:
        report["targets_met"]["careful_style_most_accurate"] = not skill_problems(report)
    return report


def skill_problems(report: dict, min_accuracy: float = 0.5) -> list[str]:
    """Why the base model has no reliable step-by-step skill for RL to amplify (empty when it has one).

    The check reads the base's own samples: the self-checking ``careful`` style must be sampled at all,
    be at least ``min_accuracy`` accurate, and beat the other styles. When it fails, RL has nothing to
    find and every later notebook inherits the problem (README, "The embedded base model").
    """
    acc, n = report.get("style_accuracy") or {}, report.get("style_n") or {}
    careful = acc.get("careful")
    if not n.get("careful"):
        return ["the base model never sampled the careful (step-by-step, self-checking) style under the template"]
    problems = []
    if careful < min_accuracy:
        problems.append(f"the careful style is only {careful:.0%} accurate in the base's own samples "
                        f"(< {min_accuracy:.0%}): pretraining did not teach the procedure")
    for style in ("direct", "short"):
        other = acc.get(style)
        if other is not None and n.get(style, 0) >= 20 and other >= careful:
            problems.append(f"the {style} style ({other:.0%}) is as accurate as the careful style ({careful:.0%})")
    return problems
