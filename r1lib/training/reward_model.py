"""The preference (helpfulness) reward model of the R1 pipeline's last RL stage, trained with TRL's ``RewardTrainer``.

What it is for: stage 4 of DeepSeek-R1 (docs/paper.md §1.4, §3) scores general, non-reasoning prompts with a
helpfulness reward model: the policy model with a scalar head, trained on preference pairs for one epoch, that
looks at the **final summary only**, never at the chain of thought. ``r1lib.rewards`` (``preference``) calls
:class:`RewardModelScorer` on the text after ``</think>``.

Model: ``AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1)``, i.e. the base model's
transformer with a new, randomly initialised linear head ``score`` (hidden -> 1, no bias; seeded by ``seed``).
``config.pad_token_id`` is set from the tokenizer: the head reads the hidden state of the **last non-pad token**
of each row (transformers' ``...ForSequenceClassification``: the rightmost token that is not the pad id), which
with our formatting is the reply's ``<|end|>``.

Input format (training and scoring alike): the conversation ``[{"role": "user", "content": prompt},
{"role": "assistant", "content": reply}]`` rendered by the tokenizer's chat template and tokenized by
``apply_chat_template(..., tokenize=True)``, i.e. ``<|bos|><|user|>{prompt}<|end|><|assistant|>{reply}<|end|>``.
TRL is given the conversational form (``prompt`` = the user turn, ``chosen`` / ``rejected`` = one assistant turn
each) and concatenates prompt and reply the same way, so the scorer sees exactly the training inputs.

Loss: TRL's Bradley-Terry loss ``-log sigmoid(r_chosen - r_rejected)`` (no margin, no centring).

Paper settings [V2 §3.1; docs/paper.md §1.4]: 66,000 pairs, one epoch, batch 256, lr 6e-6, max length 8,192.

- DEVIATION: lr 1e-3, batch 16, max length 128 (our general replies are one or two short sentences; a 1M model
  needs a large lr). The schedule is transformers' default (linear decay to 0, no warm-up): the paper states none.
- TRL **drops** pairs longer than ``max_length`` (it does not truncate them); a warning says how many, and
  ``RewardModelResult.n_pairs`` counts the pairs actually trained on.
- The replies must be summaries: a ``chosen`` / ``rejected`` text with ``<think>`` or ``</think>`` is an error.

Output layout of ``out_dir``, and the skip / resume rules, as in :mod:`r1lib.training.sft`: ``checkpoints/``
(resumable Trainer checkpoints), ``model/`` (a plain Hugging Face sequence-classification folder with its
tokenizer; its ``config.json`` marks the stage as finished), ``train_log.jsonl`` (``step``, ``loss``, ``lr``,
``epoch``, and TRL's ``accuracy`` / ``margin`` per logging step), ``data/`` (the pairs as given) and
``rm_meta.json``.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from r1lib.training.sft import (
    CHECKPOINTS_DIR,
    DATA_DIR,
    MODEL_DIR,
    TRAIN_LOG,
    _begin_stage,
    _check_model_dir,
    _dataset_hash,
    _fit,
    _quiet,
    _resolve_device,
    _resume_point,
    _save_dataset_once,
    _silence_printer,
    _trainer_log_callback,
    read_train_log,
)

META_FILE = "rm_meta.json"
PAIR_COLUMNS = ("prompt", "chosen", "rejected")
THINK_TAGS = ("<think>", "</think>")

__all__ = ["RewardModelResult", "RewardModelScorer", "pair_accuracy", "train_reward_model", "validate_pairs"]


@dataclass
class RewardModelResult:
    """What :func:`train_reward_model` did (or, when ``skipped``, what the finished run recorded).

    ``n_pairs``: pairs trained on (those within ``max_length``); ``n_dropped``: pairs TRL left out as too long.
    ``seconds``: wall time of the call that finished the run. ``losses``: loss per logging step.
    """

    model_dir: Path
    seconds: float
    steps: int
    losses: list[float] = field(default_factory=list)
    skipped: bool = False
    n_pairs: int = 0
    n_dropped: int = 0
    resumed_from: int | None = None


def validate_pairs(pairs) -> dict[str, list[str]]:
    """Check a preference dataset and return its three columns; ``ValueError``s name the bad row.

    Rules: a non-empty ``datasets.Dataset`` with string columns ``prompt`` (the user message), ``chosen`` and
    ``rejected`` (assistant replies: summaries, without ``<think>`` tags); no reply empty.
    """
    from datasets import Dataset

    if not isinstance(pairs, Dataset):
        raise TypeError(f"pairs must be a datasets.Dataset with columns {PAIR_COLUMNS}, got {type(pairs).__name__}")
    missing = [c for c in PAIR_COLUMNS if c not in pairs.column_names]
    if missing:
        raise ValueError(f"the preference dataset lacks column(s) {missing} (columns: {pairs.column_names}); expected "
                         "'prompt' (user message), 'chosen' and 'rejected' (assistant replies) as strings")
    if len(pairs) == 0:
        raise ValueError("the preference dataset is empty")
    cols = {c: list(pairs[c]) for c in PAIR_COLUMNS}
    for i in range(len(pairs)):
        for c in PAIR_COLUMNS:
            v = cols[c][i]
            if not isinstance(v, str):
                raise ValueError(f"row {i}: '{c}' must be a string (plain text, not chat messages), got "
                                 f"{type(v).__name__}")
            if c != "prompt" and not v.strip():
                raise ValueError(f"row {i}: '{c}' is empty")
            if c != "prompt" and any(t in v for t in THINK_TAGS):
                raise ValueError(f"row {i}: '{c}' contains a <think> tag; the helpfulness reward model sees the final "
                                 "summary only (the text after </think>), docs/paper.md §1.4")
    return cols


def _conversational(cols: dict[str, list[str]]):
    """TRL's conversational preference form: prompt = [user turn], chosen / rejected = [assistant turn]."""
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [[{"role": "user", "content": p}] for p in cols["prompt"]],
        "chosen": [[{"role": "assistant", "content": r}] for r in cols["chosen"]],
        "rejected": [[{"role": "assistant", "content": r}] for r in cols["rejected"]],
    })


def _result_from_meta(meta: dict[str, Any], model_dir: Path, log_path: Path, *, skipped: bool) -> RewardModelResult:
    log = read_train_log(log_path)
    return RewardModelResult(model_dir=model_dir, seconds=float(meta.get("seconds", 0.0)),
                             steps=int(meta.get("steps", log[-1]["step"] if log else 0)),
                             losses=[float(r["loss"]) for r in log], skipped=skipped,
                             n_pairs=int(meta.get("n_pairs", 0)), n_dropped=int(meta.get("n_dropped", 0)),
                             resumed_from=meta.get("resumed_from"))


def train_reward_model(base_model: str | os.PathLike, pairs, out_dir: str | os.PathLike, *, epochs: float = 1.0,
                       lr: float = 1e-3, batch_size: int = 16, max_length: int = 128, seed: int = 0,
                       wandb_mode: str = "disabled", device: str = "auto", save_every: int | None = None,
                       logging_steps: int = 1, progress: bool = False,
                       callbacks: Sequence[Any] | None = None) -> RewardModelResult:
    """Train a scalar-head reward model on ``pairs`` (prompt / chosen / rejected strings); see the module doc.

    ``base_model``: a causal-LM Hugging Face folder with its tokenizer (the head is new). ``batch_size`` counts
    pairs (each step scores ``2 * batch_size`` sequences). ``save_every``: checkpoint every that many steps
    (None: at the end of each epoch). Raises before any work on bad data or a missing ``base_model``.
    """
    cols = validate_pairs(pairs)
    if max_length < 8:
        raise ValueError(f"max_length must be >= 8, got {max_length}")
    out_dir = Path(out_dir)
    data_hash = _dataset_hash(cols)
    settings = {"base_model": str(base_model), "epochs": float(epochs), "lr": lr, "batch_size": batch_size,
                "max_length": max_length, "seed": seed}
    done, args_kw, mode = _begin_stage(out_dir, n=len(pairs), data_hash=data_hash, init_model=base_model,
                                       what="base_model", settings=settings, run_name=f"rm-{out_dir.name}",
                                       wandb_mode=wandb_mode, device=device, save_every=save_every,
                                       logging_steps=logging_steps, progress=progress, meta_file=META_FILE)
    if done is not None:
        return _result_from_meta(done, out_dir / MODEL_DIR, out_dir / TRAIN_LOG, skipped=True)
    t0 = time.perf_counter()
    with _quiet(progress):
        return _train(base_model, pairs, cols, out_dir, t0=t0, data_hash=data_hash, args_kw=args_kw, mode=mode,
                      settings=settings, progress=progress, callbacks=callbacks)


def _train(base_model, pairs, cols, out_dir: Path, *, t0: float, data_hash: str, args_kw: dict, mode: str,
           settings: dict[str, Any], progress: bool, callbacks) -> RewardModelResult:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from transformers.utils import logging as hf_logging
    from trl import RewardConfig, RewardTrainer

    from r1lib.models import save_model
    from r1lib.tracking import atomic_write_json

    model_dir, ckpt_dir = out_dir / MODEL_DIR, out_dir / CHECKPOINTS_DIR
    log_path, meta_path = out_dir / TRAIN_LOG, out_dir / META_FILE
    max_length, seed = settings["max_length"], settings["seed"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    except OSError as err:
        raise FileNotFoundError(f"could not load the tokenizer of base_model {base_model!r}: {err}") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_seed(seed)  # the new head's initialisation
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report lists the new score.weight as "missing": expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(base_model), num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token

    config = RewardConfig(**args_kw, max_length=max_length, weight_decay=0.0, dataset_num_proc=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"n_given": len(pairs), "data_sha256": data_hash, "settings": settings}
    atomic_write_json(meta_path, meta)
    _save_dataset_once(pairs, out_dir / DATA_DIR)
    last, resumed_from = _resume_point(ckpt_dir, log_path)
    use_cache = getattr(model.config, "use_cache", True)
    log_cb = _trainer_log_callback(log_path)
    trainer = RewardTrainer(model=model, args=config, train_dataset=_conversational(cols), processing_class=tokenizer,
                            callbacks=[log_cb, *(callbacks or [])])
    _silence_printer(trainer, progress)
    n_pairs = len(trainer.train_dataset)
    n_dropped = len(pairs) - n_pairs
    if n_pairs == 0:
        raise ValueError(f"every pair is longer than max_length={max_length} tokens (prompt + reply); raise max_length")
    if n_dropped:
        warnings.warn(f"reward model data: {n_dropped} of {len(pairs)} pairs are longer than max_length={max_length} "
                      "tokens and are left out (TRL drops them, it does not truncate)", RuntimeWarning, stacklevel=3)
    trained = _fit(trainer, log_cb, last, mode=mode, out_dir=out_dir, settings=settings, use_cache=use_cache)
    meta.update(steps=int(trainer.state.global_step), seconds=time.perf_counter() - t0, resumed_from=resumed_from,
                n_pairs=n_pairs, n_dropped=n_dropped)
    atomic_write_json(meta_path, meta)
    save_model(trained.to("cpu"), tokenizer, model_dir)  # written last: its config.json marks the stage as done
    return _result_from_meta(meta, model_dir, log_path, skipped=False)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


class RewardModelScorer:
    """Scores ``(prompt, response)`` pairs with a trained reward model folder: one raw scalar each.

    Formatting is exactly the training one (module docstring): the chat ``[user: prompt, assistant: response]``
    rendered by the tokenizer's chat template, so the reply is followed by ``<|end|>``, the token whose hidden
    state the head reads. A response that already ends with the end token is not given a second one. Pass the
    *summary* (the text after ``</think>``), as in training. Rows are sorted by length, right-padded and run in
    batches of ``batch_size`` under ``torch.inference_mode``; the head reads each row's last non-pad token, so
    batched scores equal one-by-one scores (to float rounding). No truncation: inputs much longer than the
    training ``max_length`` are outside what the model was trained on.
    """

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        _check_model_dir(model_dir, "reward model")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_dir = Path(model_dir)
        self.device = _resolve_device(device)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch.float32)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{model_dir} has num_labels={self.model.config.num_labels}; a reward model has 1")
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.pad_id = int(self.model.config.pad_token_id)
        self.model.to(self.device).eval()

    def encode(self, prompt: str, response: str) -> list[int]:
        """The token ids the model scores for one pair (the training format)."""
        end = self.tokenizer.eos_token
        if end and response.endswith(end):
            response = response[: -len(end)]
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        return list(self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])

    def score(self, prompts: list[str], responses: list[str]) -> list[float]:
        """Raw scalar rewards, one per ``(prompts[i], responses[i])``, in order."""
        import torch

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return []
        encoded = [self.encode(p, r) for p, r in zip(prompts, responses)]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        scores = [0.0] * len(encoded)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                width = max(len(encoded[i]) for i in idx)
                ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                for row, i in enumerate(idx):
                    scores[i] = float(logits[row, 0])
        return scores


def pair_accuracy(scorer: RewardModelScorer, pairs) -> float:
    """Share of pairs whose ``chosen`` reply scores strictly above its ``rejected`` one.

    ``pairs``: a ``datasets.Dataset`` or a list of dicts with ``prompt``, ``chosen``, ``rejected`` strings.
    """
    rows = pairs.to_list() if hasattr(pairs, "to_list") else list(pairs)
    if not rows:
        raise ValueError("pair_accuracy needs at least one pair")
    prompts = [r["prompt"] for r in rows]
    scores = scorer.score(prompts + prompts, [r["chosen"] for r in rows] + [r["rejected"] for r in rows])
    n = len(rows)
    return sum(1 for i in range(n) if scores[i] > scores[n + i]) / n
