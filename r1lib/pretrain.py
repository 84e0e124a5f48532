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


def pretrain(model, chunks: torch.Tensor, *, steps: int, batch_size: int, lr: float, warmup_steps: int,
             run_dir: str | Path, checkpoint_every: int, seed: int = 0, resume: bool = True,
             log: Callable[[dict, int], None] | None = None, progress: bool = True,
             interrupt_at: int | None = None, weight_decay: float = 0.1) -> PretrainResult:
    """Train ``model`` on ``chunks`` for ``steps`` optimizer steps, checkpointing into ``run_dir/checkpoints``.

    ``interrupt_at`` raises ``KeyboardInterrupt`` after that step (tests use it to simulate a kill).
    """
    from tqdm.auto import tqdm

    ckpt_dir = Path(run_dir) / "checkpoints"
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup_steps, steps))
    start, resumed_from = 0, None
    last = latest_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        state = load_checkpoint(last)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = resumed_from = state["step"]
    model.train()
    t0, loss_val, tokens = time.perf_counter(), float("nan"), 0
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="pretrain", disable=not progress)
    for step in bar:
        idx = batch_indices(chunks.shape[0], batch_size, step, seed)
        batch = chunks[idx]
        out = model(input_ids=batch, labels=batch)
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
                 "tokens_per_s": tokens / max(time.perf_counter() - t0, 1e-9)}, done)
        bar.set_postfix(loss=f"{loss_val:.3f}")
        if done % checkpoint_every == 0 or done == steps:
            save_checkpoint(ckpt_dir, done, model=model.state_dict(), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict())
        if interrupt_at is not None and done == interrupt_at:
            raise KeyboardInterrupt(f"simulated interrupt after step {done}")
    bar.close()
    model.eval()
    return PretrainResult(steps=steps, seconds=time.perf_counter() - t0, final_loss=loss_val, tokens_seen=tokens,
                          resumed_from=resumed_from)


def build_base_model(cfg, *, progress: bool = True, resume: bool = True, interrupt_at: int | None = None,
                     corpus_cfg=None) -> dict:
    """Corpus -> tokenizer -> model -> pretraining -> ``<runs_dir>/base_model``. Returns a summary dict.

    ``cfg`` is an ``r1lib.config.ExperimentConfig``. Re-running with ``resume=True`` continues an interrupted
    pretraining from its last checkpoint (the tokenizer is saved once and reloaded, so ids never change).
    """
    from transformers import AutoTokenizer

    from r1lib.corpus import CorpusConfig, build_corpus, corpus_stats
    from r1lib.models import build_model, build_tokenizer, count_parameters, save_model
    from r1lib.tracking import Tracker

    p = cfg.pretrain
    run_dir = Path(cfg.runs_dir) / "base_model_train"
    tok_dir = run_dir / "tokenizer"
    corpus_cfg = corpus_cfg or CorpusConfig()
    t_start = time.perf_counter()
    docs = build_corpus(p.corpus_size, mix=cfg.tasks.mix, difficulty=tuple(cfg.tasks.difficulty), seed=cfg.seed,
                        cfg=corpus_cfg)
    texts = [d.text for d in docs]
    if resume and (tok_dir / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tok = build_tokenizer(texts, vocab_size=p.vocab_size, model_max_length=max(512, p.seq_len))
        tok.save_pretrained(tok_dir)
    model = build_model(cfg.model.preset, tok, seed=cfg.seed)
    chunks = pack_documents(tok, texts, p.seq_len)
    prep_seconds = time.perf_counter() - t_start
    with Tracker(run_dir, config={"pretrain": p.model_dump(), "preset": cfg.model.preset},
                 wandb_mode=cfg.tracking.wandb_mode, project=cfg.tracking.project,
                 name=f"{cfg.name}-pretrain") as tracker:
        result = pretrain(model, chunks, steps=p.steps, batch_size=p.batch_size, lr=p.lr, warmup_steps=p.warmup_steps,
                          run_dir=run_dir, checkpoint_every=p.checkpoint_every, seed=cfg.seed, resume=resume,
                          log=tracker.log, progress=progress, interrupt_at=interrupt_at)
    out = save_model(model, tok, Path(cfg.runs_dir) / "base_model")
    return {
        "model_dir": str(out),
        "params": count_parameters(model),
        "preset": cfg.model.preset,
        "pretrain_seconds": prep_seconds + result.seconds,
        "train_loop_seconds": result.seconds,
        "final_loss": result.final_loss,
        "tokens_seen": result.tokens_seen,
        "corpus_tokens": int(chunks.numel()),
        "resumed_from": result.resumed_from,
        "metrics_log": str(run_dir / "metrics.jsonl"),
        "corpus": corpus_stats(docs),
        "corpus_config": {"styles": corpus_cfg.styles, "frames": corpus_cfg.frames,
                          "language_mix": corpus_cfg.language_mix, "error_scale": corpus_cfg.error_scale},
    }


def base_model_report(build: dict, eval_summary: dict, k_curve: dict[int, float] | None = None) -> dict:
    """The base model's figures (``results/base_model/metrics.json``) against the issue's targets.

    Targets (so that RL has room): pass@1 (T 0.6) in [5%, 40%], pass@16 >= 2 x pass@1, format rate in
    [10%, 80%], a non-zero reflection-word rate and language-mix rate, pretraining <= 5 minutes.
    """
    p1, p16 = eval_summary["pass@1"], eval_summary.get("pass@16")
    report = {
        "pass_at_1": p1,
        "pass_at_16": p16,
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
    report["targets_met"] = {
        "pass_at_1_in_5_40": 0.05 <= p1 <= 0.40,
        "pass_at_16_ge_2x_pass_at_1": p16 is not None and p16 >= 2 * p1,
        "format_rate_in_10_80": 0.10 <= report["format_rate"] <= 0.80,
        "reflection_rate_nonzero": report["reflection_rate"] > 0,
        "language_mix_rate_nonzero": report["language_mix_rate"] > 0,
        "pretrain_le_300s": report["pretrain_seconds"] <= 300,
    }
    return report
