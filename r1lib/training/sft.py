"""Supervised fine-tuning (SFT) on chat data through TRL's ``SFTTrainer``.

What it is for: every SFT step of the R1 pipeline (docs/paper.md §3-4) is this one function on different data:

- **stage 1, cold start**: a few thousand long chain-of-thought examples fine-tune the base model before
  reasoning RL (gives Dev1);
- **stage 3, rejection-sampling SFT**: correct, readable samples of the stage-2 RL checkpoint plus
  non-reasoning data, trained again from the *base* model (gives Dev3);
- **distillation**: students fine-tuned on the teacher's traces (SFT only, no RL).

Data: a ``datasets.Dataset`` with a ``messages`` column, each row a chat
``[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]`` (optionally a system turn first,
several turns allowed). Rows are rendered with the tokenizer's chat template (``r1lib.models.CHAT_TEMPLATE``:
``<|bos|><|user|>{prompt}<|end|><|assistant|>{reply}<|end|>``).

Which tokens are trained: ``assistant_only_loss=True``. (A checkpoint whose template has no generation markers,
such as Qwen2.5's, is trained through TRL's prompt-completion format instead: the same tokens for one-reply chats.)
The template's ``{% generation %}`` markers enclose each
assistant reply *and its* ``<|end|>``; every other token (``<|bos|>``, role tokens, system and user turns, the
``<|assistant|>`` header) has label -100 (docs/dependencies.md §5). The model thus learns the reply and to stop.
``SFTResult.train_tokens`` counts exactly those labelled tokens: the tokens of all assistant replies including
each reply's ``<|end|>``, after truncation to ``max_length``, summed over the dataset once and multiplied by
``epochs`` (tokens of the ``<|assistant|>`` header are not counted).

Paper settings [V2 B.4.2, B.4.3; docs/paper.md §2.2, §4]: 2 epochs, cosine decay of the learning rate to a tenth
of its peak, batch 64, context up to 32,768, lr 5e-6 (R1 stages) or 1e-4 .. 7e-5 (distilled students).
What this module does with them:

- epochs: 2 (``epochs=2.0``), as in the paper;
- schedule: transformers' ``cosine_with_min_lr`` with ``min_lr_rate = min_lr_ratio = 0.1``: linear warm-up over
  ``warmup_ratio`` of the steps, then half a cosine from the peak down to exactly ``0.1 * lr`` at the last step;
- DEVIATION: lr 1e-3 by default (paper 5e-6 for the 671B model): a ~1M-parameter model needs a learning rate
  of the order of its pretraining one (3e-3, ``r1lib.config``);
- DEVIATION: batch 16 by default (paper 64), context ``max_length=384`` (paper 32,768): the tiny model's traces
  are short and the whole SFT must take minutes on 2 CPU cores; longer rows are truncated at the end
  (``keep_start``), which also cuts their ``<|end|>`` (a warning says how many);
- DEVIATION: a linear warm-up over ``warmup_ratio`` = 3% of the steps (the paper states none; it keeps the first,
  large-lr steps of a tiny model from wrecking the base). transformers' warm-up starts at lr 0, so the first
  optimizer step changes nothing (``lr`` 0.0 in the log);
- fp32 (``bf16=False``: TRL's default bf16 fails on a CPU, docs/dependencies.md §3), no gradient checkpointing
  (TRL's default ``True`` only slows a tiny model down), no evaluation during training.

Output layout of ``out_dir`` (one folder per stage):

- ``checkpoints/``: Trainer checkpoints (model, optimizer, scheduler, RNG, trainer state) every ``save_every``
  steps, or at each epoch's end when ``save_every`` is None; the newest 2 are kept. A rerun after an
  interruption continues from the newest complete one (the data order of the resumed run is the same as an
  uninterrupted run's: the Trainer skips the batches already seen);
- ``model/``: the final model as a plain Hugging Face folder with its tokenizer (``r1lib.models.save_model``,
  atomic). Its ``config.json`` marks the stage as finished: a later call returns the recorded result without
  training (``skipped=True``);
- ``train_log.jsonl``: one JSON object per logging step (``logging_steps``, default every step): ``step``,
  ``loss``, ``lr``, ``epoch``, and TRL's other numbers (``grad_norm``, ``entropy``, ``mean_token_accuracy``,
  ``num_tokens``); after a resume the steps past the checkpoint are rewritten, never duplicated;
- ``data/``: the training dataset as given (``Dataset.save_to_disk``), written once;
- ``sft_meta.json``: the data's size and hash and the settings (a checkpoint resumes only with the same data
  and settings: ``ValueError`` otherwise) and, at the end, the result's figures (read back when skipped).

W&B: when the effective mode is not ``"disabled"`` (as in ``r1lib.tracking``, a ``WANDB_MODE`` environment
variable wins over ``wandb_mode``), every Trainer log goes to a W&B run of its own (``train/loss``,
``train/learning_rate``, ...; offline runs under ``out_dir/wandb``), finished when the stage ends. This is done by
our log callback, with ``report_to="none"``, rather than by transformers' ``WandbCallback`` (why: ``_wandb_run``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

CHECKPOINTS_DIR = "checkpoints"
MODEL_DIR = "model"
DATA_DIR = "data"
TRAIN_LOG = "train_log.jsonl"
META_FILE = "sft_meta.json"
ROLES = ("system", "user", "assistant")

__all__ = ["SFTResult", "run_sft", "validate_messages", "read_train_log", "latest_checkpoint"]


@dataclass
class SFTResult:
    """What :func:`run_sft` did (or, when ``skipped``, what the finished run recorded).

    ``seconds``: wall time of the call that finished the run (a resumed run counts only its own part).
    ``steps``: optimizer steps of the whole run. ``losses``: the training loss at each logging step, in order
    (the whole run, resumed or not). ``resumed_from``: the checkpoint step this call continued from.
    ``train_tokens``: labelled (assistant) tokens per epoch times ``epochs`` (module docstring).
    """

    model_dir: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    skipped: bool = False
    resumed_from: int | None = None
    n_examples: int = 0
    train_tokens: int = 0


# --------------------------------------------------------------------------------------------
# Helpers shared with r1lib.training.reward_model
# --------------------------------------------------------------------------------------------


def _trainer_log_callback(path: Path):
    """A ``TrainerCallback`` that appends each training log (with a loss) as a JSON line to ``path``.

    Its ``wandb_run`` attribute, when set to a W&B run, also receives every log (``train/<name>``, at the step).
    """
    from transformers import TrainerCallback

    class _JsonlLog(TrainerCallback):
        wandb_run: Any = None

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001 - transformers' signature
            if not state.is_world_process_zero or not logs:
                return
            numbers = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if self.wandb_run is not None and numbers:
                try:
                    self.wandb_run.log({f"train/{k}": v for k, v in numbers.items()}, step=int(state.global_step))
                except Exception as exc:  # noqa: BLE001 - W&B must never be fatal
                    warnings.warn(f"wandb log failed ({type(exc).__name__}: {exc}); disabling W&B for this run",
                                  RuntimeWarning, stacklevel=2)
                    self.wandb_run = None
            if "loss" not in logs:  # the end-of-training summary (train_runtime, train_loss, ...)
                return
            record: dict[str, Any] = {"step": int(state.global_step), "loss": float(logs["loss"]),
                                      "lr": float(logs.get("learning_rate", float("nan"))),
                                      "epoch": float(logs.get("epoch", state.epoch or 0.0))}
            record.update({k: v for k, v in numbers.items() if k not in ("loss", "learning_rate", "epoch")})
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    return _JsonlLog()


def read_train_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``train_log.jsonl`` (a truncated last line, from a kill mid-write, is dropped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _trim_train_log(path: Path, max_step: int | None) -> None:
    """Keep the records up to ``max_step`` (a resumed run rewrites the steps after its checkpoint); None: clear."""
    from r1lib.tracking import atomic_write_text

    if max_step is None:
        path.unlink(missing_ok=True)
        return
    kept = [r for r in read_train_log(path) if int(r.get("step", 0)) <= max_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(ckpt_dir: str | os.PathLike) -> tuple[Path, int] | None:
    """The newest *complete* Trainer checkpoint in ``ckpt_dir`` and its step, or None.

    The Trainer writes a checkpoint folder in place, ``trainer_state.json`` last; a folder without it was
    interrupted mid-save and is removed here (transformers' ``get_last_checkpoint`` would pick it).
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    found = []
    for p in ckpt_dir.iterdir():
        m = _CKPT.match(p.name)
        if m and p.is_dir():
            if (p / "trainer_state.json").is_file():
                found.append((int(m.group(1)), p))
            else:
                shutil.rmtree(p, ignore_errors=True)
    if not found:
        return None
    step, path = max(found)
    return path, step


def _effective_wandb_mode(wandb_mode: str) -> str:
    if wandb_mode not in ("offline", "online", "disabled"):
        raise ValueError(f"wandb_mode must be 'offline', 'online' or 'disabled', got {wandb_mode!r}")
    env = os.environ.get("WANDB_MODE")
    return env if env in ("offline", "online", "disabled") else wandb_mode


@contextlib.contextmanager
def _wandb_run(mode: str, out_dir: Path, name: str, config: dict[str, Any] | None = None,
               project: str = "r1lib") -> Iterator[Any]:
    """Yield a W&B run (None when disabled or when W&B fails: a warning, never an error, as in ``r1lib.tracking``).

    The run is started with explicit ``mode`` and ``dir`` (offline runs go to ``out_dir/wandb``) and
    ``reinit="create_new"``, so it never touches another run of the process, and it is finished on the way out.
    Why not ``report_to="wandb"`` (transformers' ``WandbCallback``): that callback starts its run with the project and
    name only, so mode and folder come from ``WANDB_*`` variables that wandb reads once per process (it prints
    "Changes to your `wandb` environment variables will be ignored because your `wandb` session has already
    started"; a process whose first W&B run was started without ``WANDB_MODE`` then fails with
    ``wandb.errors.errors.UsageError: No API key configured``), it logs into the module-global ``wandb.run`` (which
    a ``create_new`` run does not set) and it never finishes its run, so a second stage in the same process would
    log into the first stage's run. Our log callback sends the same ``train/*`` metrics to this run instead.
    """
    if mode == "disabled":
        yield None
        return
    run = None
    try:
        import wandb

        from r1lib.tracking import wandb_grouping  # group = experiment, job_type = stage, from out_dir's place

        run = wandb.init(mode=mode, dir=str(out_dir), project=os.environ.get("WANDB_PROJECT", project), name=name,
                         config=config, reinit="create_new", **wandb_grouping(out_dir))
    except Exception as exc:  # noqa: BLE001 - W&B must never be fatal
        warnings.warn(f"wandb.init failed ({type(exc).__name__}: {exc}); training without W&B", RuntimeWarning,
                      stacklevel=3)
    failed = True
    try:
        yield run
        failed = False
    finally:
        if run is not None:
            try:
                run.finish(exit_code=1 if failed else 0)
            except Exception as exc:  # noqa: BLE001 - W&B must never be fatal
                warnings.warn(f"wandb finish failed ({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=3)


@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """Without ``progress``: no datasets / transformers progress bars while inside (restored afterwards)."""
    if progress:
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    ds_was_on = datasets.is_progress_bar_enabled()
    hf_was_on = hf_logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if ds_was_on:
            datasets.enable_progress_bars()
        if hf_was_on:
            hf_logging.enable_progress_bar()


def _silence_printer(trainer, progress: bool) -> None:
    """``disable_tqdm=True`` makes the Trainer print every log dict; drop that printer when ``progress`` is off."""
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)


def _resolve_device(device: str) -> str:
    from r1lib.models import resolve_device

    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available; use device='cpu' or 'auto'")
    return resolved


def _check_model_dir(path: str | os.PathLike, what: str) -> None:
    """A missing local model folder is a clear ``FileNotFoundError`` (a hub id ``org/name`` is let through)."""
    p = Path(path)
    if not p.exists():
        hub_offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "false", "")
        if re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) and not hub_offline:
            return  # may be a hub id; loading it fails with a clear error if it is not one
        raise FileNotFoundError(f"{what} not found: {path}")
    if not (p / "config.json").exists():
        raise FileNotFoundError(f"{what} {path} is not a Hugging Face model folder (no config.json)")


def _dataset_hash(columns: dict[str, list]) -> str:
    h = hashlib.sha256()
    for name in sorted(columns):
        h.update(name.encode())
        h.update(json.dumps(columns[name], ensure_ascii=False, sort_keys=True).encode("utf-8"))
    return h.hexdigest()


def _save_dataset_once(dataset, path: Path) -> None:
    """``dataset.save_to_disk(path)`` unless ``path`` already holds it (atomic: a temporary folder, renamed)."""
    if (path / "dataset_info.json").exists():
        return
    tmp = path.with_name(path.name + ".tmp-save")
    if tmp.exists():
        shutil.rmtree(tmp)
    dataset.save_to_disk(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _check_resume_meta(meta_path: Path, n: int, data_hash: str, *, finished: bool, has_checkpoint: bool = True,
                       settings: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The stored meta of an earlier call on ``out_dir``, checked against the data and settings given now.

    Other data than the stored run's: a finished run is returned with a warning; a checkpoint refuses to resume
    (``ValueError``: it would train one model on two datasets); with no checkpoint yet the old ``data/`` copy is
    removed and the run starts afresh (returns None). Other training ``settings`` (epochs, lr, ...) than those
    of a checkpointed run also refuse to resume: the schedule in the checkpoint belongs to the old ones.
    """
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    old_settings = meta.get("settings")
    if not finished and has_checkpoint and settings is not None and old_settings is not None:
        changed = {k: (old_settings.get(k), v) for k, v in settings.items() if old_settings.get(k) != v}
        if changed:
            raise ValueError(f"{meta_path.parent} holds checkpoints of a run with other settings "
                             f"(name: (checkpointed, now) {changed}); resume with the same settings, or use a new "
                             "out_dir / delete the old one")
    if meta.get("data_sha256") not in (None, data_hash):
        msg = (f"{meta_path.parent} holds a run on other data ({meta.get('n_examples')} rows, hash "
               f"{str(meta.get('data_sha256'))[:12]}) than the {n} rows given (hash {data_hash[:12]})")
        if finished:
            warnings.warn(msg + "; returning the finished run as it is", RuntimeWarning, stacklevel=3)
        elif has_checkpoint:
            raise ValueError(msg + "; use a new out_dir or delete the old one")
        else:
            shutil.rmtree(meta_path.parent / DATA_DIR, ignore_errors=True)
            return None
    return meta


def _base_training_args(*, out_dir: Path, ckpt_dir: Path, epochs: float, lr: float, batch_size: int, seed: int,
                        device: str, wandb_mode: str, save_every: int | None, logging_steps: int,
                        progress: bool, run_name: str) -> dict[str, Any]:
    """The TrainingArguments fields both SFT and the reward model set (CPU-safe, docs/dependencies.md §3, §5)."""
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if save_every is not None and save_every < 1:
        raise ValueError(f"save_every must be >= 1 or None, got {save_every}")
    # Under `accelerate launch` with DeepSpeed, use_cpu would silently turn DeepSpeed off (docs/dependencies.md §1):
    # a CPU-only DeepSpeed run (the ZeRO-3 check) keeps it False and names gloo, as r1lib.launch does for the RL.
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    on_cpu = _resolve_device(device) == "cpu"
    use_cpu = on_cpu and not deepspeed
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1 or deepspeed
    return dict(ddp_backend="gloo" if on_cpu and launched else None,
        output_dir=str(ckpt_dir), num_train_epochs=float(epochs), learning_rate=lr,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=1, seed=seed, data_seed=seed,
        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=use_cpu,
        report_to="none", run_name=run_name,  # W&B through our own callback (see _wandb_run)
        eval_strategy="no", logging_strategy="steps", logging_steps=logging_steps, logging_first_step=True,
        save_strategy="steps" if save_every else "epoch", save_steps=save_every or 500, save_total_limit=2,
        save_only_model=False, disable_tqdm=not progress, dataloader_num_workers=0,
    )


def _begin_stage(out_dir: Path, *, n: int, data_hash: str, init_model: Any, what: str, settings: dict[str, Any],
                 run_name: str, wandb_mode: str, device: str, save_every: int | None, logging_steps: int,
                 progress: bool, meta_file: str = META_FILE) -> tuple[dict[str, Any] | None, dict[str, Any], str]:
    """The start both Trainer-backed stages share (SFT, reward model): ``(meta, {}, mode)`` when the stage already
    finished (its ``model/config.json`` exists; the data must be the recorded data), else ``(None, TrainingArguments
    fields, mode)`` after checking the init model and that a checkpoint to resume has the same data and settings.
    ``settings`` holds at least ``epochs``, ``lr``, ``batch_size`` and ``seed``; ``meta_file``: the stage's record."""
    mode = _effective_wandb_mode(wandb_mode)
    ckpt_dir, meta_path = out_dir / CHECKPOINTS_DIR, out_dir / meta_file
    if (out_dir / MODEL_DIR / "config.json").exists():
        return _check_resume_meta(meta_path, n, data_hash, finished=True) or {}, {}, mode
    _check_model_dir(init_model, what)
    args_kw = _base_training_args(out_dir=out_dir, ckpt_dir=ckpt_dir, epochs=settings["epochs"], lr=settings["lr"],
                                  batch_size=settings["batch_size"], seed=settings["seed"], device=device,
                                  wandb_mode=mode, save_every=save_every, logging_steps=logging_steps,
                                  progress=progress, run_name=run_name)
    _check_resume_meta(meta_path, n, data_hash, finished=False, has_checkpoint=latest_checkpoint(ckpt_dir) is not None,
                       settings=settings)
    return None, args_kw, mode


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def validate_messages(train) -> list[list[dict[str, str]]]:
    """Check an SFT dataset and return its ``messages`` column; clear ``ValueError``s name the bad row.

    Rules: a non-empty ``datasets.Dataset`` with a ``messages`` column; every row a non-empty list of
    ``{"role", "content"}`` dicts with roles among system / user / assistant, string contents, and at least one
    assistant turn.
    """
    from datasets import Dataset

    if not isinstance(train, Dataset):
        raise TypeError(f"train must be a datasets.Dataset with a 'messages' column, got {type(train).__name__}")
    if "messages" not in train.column_names:
        raise ValueError(f"the SFT dataset has no 'messages' column (columns: {train.column_names}); expected chats "
                         "like [{'role': 'user', 'content': ...}, {'role': 'assistant', 'content': ...}]")
    if len(train) == 0:
        raise ValueError("the SFT dataset is empty")
    rows = train["messages"]
    rows = list(rows)
    for i, msgs in enumerate(rows):
        if not isinstance(msgs, list) or not msgs:
            raise ValueError(f"row {i}: 'messages' must be a non-empty list of {{'role', 'content'}} dicts, "
                             f"got {msgs!r:.120}")
        for j, m in enumerate(msgs):
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise ValueError(f"row {i}, message {j}: expected a dict with 'role' and 'content', got {m!r:.120}")
            if m["role"] not in ROLES:
                raise ValueError(f"row {i}, message {j}: unknown role {m['role']!r}; expected one of {ROLES}")
            if not isinstance(m["content"], str):
                raise ValueError(f"row {i}, message {j}: content must be a string, got {type(m['content']).__name__}")
        if not any(m["role"] == "assistant" for m in msgs):
            raise ValueError(f"row {i} has no assistant turn: nothing to train on (roles: "
                             f"{[m['role'] for m in msgs]})")
    return rows


# --------------------------------------------------------------------------------------------
# SFT
# --------------------------------------------------------------------------------------------


def _resume_point(ckpt_dir: Path, log_path: Path) -> tuple[tuple[Path, int] | None, int | None]:
    """The newest complete checkpoint to resume from (or None) and its step; the train log is cut back to it."""
    last = latest_checkpoint(ckpt_dir)
    resumed_from = last[1] if last else None
    _trim_train_log(log_path, resumed_from)
    return last, resumed_from


def _fit(trainer, log_cb, last: tuple[Path, int] | None, *, mode: str, out_dir: Path, settings: dict[str, Any],
         use_cache: bool):
    """Train (from ``last`` when given) inside the stage's W&B run; the trained model in eval mode, with the
    ``use_cache`` the Trainer switched off (TrainingArguments.use_cache) restored for generation."""
    with _wandb_run(mode, out_dir, trainer.args.run_name, config=settings) as log_cb.wandb_run:
        trainer.train(resume_from_checkpoint=str(last[0]) if last else None)
    trained = trainer.model
    trained.eval()
    trained.config.use_cache = use_cache
    return trained


def _prompt_completion(messages: list[dict[str, str]], i: int, init_model: Any) -> dict[str, Any]:
    """One chat as TRL's conversational prompt-completion row: everything before the last turn, and that turn."""
    if messages[-1]["role"] != "assistant" or sum(m["role"] == "assistant" for m in messages) != 1:
        raise ValueError(f"row {i}: the chat template of {init_model} has no {{% generation %}} markers, so only chats "
                         "with one assistant turn, at the end, can be trained (roles: "
                         f"{[m['role'] for m in messages]})")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _result_from_meta(meta: dict[str, Any], model_dir: Path, log_path: Path, *, skipped: bool) -> SFTResult:
    log = read_train_log(log_path)
    return SFTResult(model_dir=model_dir, steps=int(meta.get("steps", log[-1]["step"] if log else 0)),
                     seconds=float(meta.get("seconds", 0.0)), losses=[float(r["loss"]) for r in log],
                     skipped=skipped, resumed_from=meta.get("resumed_from"),
                     n_examples=int(meta.get("n_examples", 0)), train_tokens=int(meta.get("train_tokens", 0)))


def run_sft(init_model: str | os.PathLike, train, out_dir: str | os.PathLike, *, epochs: float = 2.0,
            lr: float = 1e-3, batch_size: int = 16, max_length: int = 384, seed: int = 0,
            min_lr_ratio: float = 0.1, warmup_ratio: float = 0.03, wandb_mode: str = "disabled",
            device: str = "auto", save_every: int | None = None, logging_steps: int = 1, progress: bool = False,
            callbacks: Sequence[Any] | None = None) -> SFTResult:
    """Fine-tune the causal LM at ``init_model`` on the chats in ``train`` (TRL ``SFTTrainer``); see the module doc.

    ``init_model``: a Hugging Face folder (e.g. ``runs/base_model``) or hub id with its tokenizer and a chat
    template. With ``{% generation %}`` markers (r1lib's template) every assistant turn is trained; without them
    (Qwen2.5, Llama) each chat must end with its only assistant turn, trained as a prompt-completion pair. ``train``: a ``datasets.Dataset`` with a ``messages``
    column (other columns are ignored). ``save_every``: checkpoint every that many steps (None: each epoch).
    ``logging_steps``: steps between ``train_log.jsonl`` records. ``callbacks``: extra ``TrainerCallback``s
    (tests use one to simulate a kill).

    Raises before any work: ``TypeError``/``ValueError`` for bad data (empty, no ``messages``, a row without an
    assistant turn, named by index) or bad settings, ``FileNotFoundError`` when ``init_model`` is missing.
    """
    rows = validate_messages(train)
    if not 0 <= min_lr_ratio <= 1:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
    if max_length < 8:
        raise ValueError(f"max_length must be >= 8, got {max_length}")
    out_dir = Path(out_dir)
    data_hash = _dataset_hash({"messages": rows})
    settings = {"init_model": str(init_model), "epochs": float(epochs), "lr": lr, "batch_size": batch_size,
                "max_length": max_length, "seed": seed, "min_lr_ratio": min_lr_ratio, "warmup_ratio": warmup_ratio}
    done, args_kw, mode = _begin_stage(out_dir, n=len(rows), data_hash=data_hash, init_model=init_model,
                                       what="init_model", settings=settings, run_name=f"sft-{out_dir.name}",
                                       wandb_mode=wandb_mode, device=device, save_every=save_every,
                                       logging_steps=logging_steps, progress=progress)
    if done is not None:
        return _result_from_meta(done, out_dir / MODEL_DIR, out_dir / TRAIN_LOG, skipped=True)

    t0 = time.perf_counter()
    with _quiet(progress):
        return _run_sft(init_model, train, rows, out_dir, t0=t0, data_hash=data_hash, args_kw=args_kw, mode=mode,
                        settings=settings, progress=progress, callbacks=callbacks)


def _run_sft(init_model, train, rows, out_dir: Path, *, t0: float, data_hash: str, args_kw: dict, mode: str,
             settings: dict[str, Any], progress: bool, callbacks) -> SFTResult:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from r1lib.models import load_model, save_model
    from r1lib.tracking import atomic_write_json

    model_dir, ckpt_dir = out_dir / MODEL_DIR, out_dir / CHECKPOINTS_DIR
    log_path, meta_path = out_dir / TRAIN_LOG, out_dir / META_FILE
    epochs, max_length, min_lr_ratio = settings["epochs"], settings["max_length"], settings["min_lr_ratio"]
    meta: dict[str, Any] = {"n_examples": len(rows), "data_sha256": data_hash, "settings": settings}
    model, tokenizer = load_model(init_model, device="cpu")
    if not tokenizer.chat_template:
        raise ValueError(f"the tokenizer of {init_model} has no chat template: SFT renders chats with it")
    markers = re.search(r"\{%-?\s*generation\s*-?%\}", tokenizer.chat_template) is not None
    data = train.select_columns(["messages"])
    if not markers:
        # A template without {% generation %} markers (Qwen2.5's, Llama's): TRL's prompt-completion format gives the
        # same loss for one-reply chats (completion_only_loss: the tokens after the rendered prompt, end token
        # included); chats with several assistant turns need the markers.
        data = Dataset.from_list([_prompt_completion(msgs, i, init_model) for i, msgs in enumerate(rows)])
    out_dir.mkdir(parents=True, exist_ok=True)
    config = SFTConfig(
        **args_kw, lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": min_lr_ratio},
        warmup_steps=settings["warmup_ratio"], assistant_only_loss=markers, completion_only_loss=True,
        max_length=max_length, packing=False, dataset_num_proc=None, weight_decay=0.0,
    )
    main = _is_main_process()
    if main:   # under `accelerate launch` every process runs this function; one writes the shared files
        atomic_write_json(meta_path, meta)
        _save_dataset_once(train, out_dir / DATA_DIR)
    last, resumed_from = _resume_point(ckpt_dir, log_path) if main else (latest_checkpoint(ckpt_dir), None)
    use_cache = getattr(model.config, "use_cache", True)
    log_cb = _trainer_log_callback(log_path)
    trainer = SFTTrainer(model=model, args=config, train_dataset=data,
                         processing_class=tokenizer, callbacks=[log_cb, *(callbacks or [])])
    _silence_printer(trainer, progress)
    processed = trainer.train_dataset
    labels = processed["labels"]
    tokens_per_epoch = sum(sum(1 for t in lab if t != -100) for lab in labels)
    n_truncated = sum(1 for ids in processed["input_ids"] if len(ids) >= max_length)
    n_dropped = len(rows) - len(processed)
    if n_truncated or n_dropped:
        warnings.warn(f"SFT data: {n_truncated} of {len(rows)} rows reach max_length={max_length} and are cut at the "
                      f"end (their reply loses its <|end|>), {n_dropped} lost all assistant tokens and are dropped",
                      RuntimeWarning, stacklevel=2)
    trained = _fit(trainer, log_cb, last, mode=mode, out_dir=out_dir, settings=settings, use_cache=use_cache)
    steps = int(trainer.state.global_step)
    seconds = time.perf_counter() - t0
    meta.update(steps=steps, seconds=seconds, resumed_from=resumed_from, n_trained_examples=len(processed),
                train_tokens=int(round(tokens_per_epoch * epochs)), tokens_per_epoch=tokens_per_epoch,
                n_truncated=n_truncated)
    if trainer.accelerator.num_processes > 1 or trainer.is_deepspeed_enabled:
        # Data parallel or DeepSpeed: the Trainer's save gathers ZeRO-3's shards (zero3_save_16bit_model) and writes
        # on the main process only; the folder is renamed into place last, as save_model does.
        tmp = model_dir.with_name(model_dir.name + ".tmp-save")
        trainer.save_model(str(tmp))
        if main:
            tokenizer.save_pretrained(str(tmp))
            atomic_write_json(meta_path, meta)
            if model_dir.exists():
                shutil.rmtree(model_dir)
            os.replace(tmp, model_dir)
        trainer.accelerator.wait_for_everyone()
        return _result_from_meta(meta, model_dir, log_path, skipped=False)
    atomic_write_json(meta_path, meta)
    save_model(trained.to("cpu"), tokenizer, model_dir)  # written last: its config.json marks the stage as done
    return _result_from_meta(meta, model_dir, log_path, skipped=False)


def _is_main_process() -> bool:
    """Rank 0 of a launched job (``accelerate launch`` / torchrun set ``RANK``), or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0
