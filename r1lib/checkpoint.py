"""Atomic training checkpoints shared by every r1lib training loop (pretraining, RL).

A checkpoint is one folder ``step_00000123/`` holding ``state.pt`` (model and optimizer state dicts,
scheduler, RNG states, the step and any extra state such as the data position) and is written to a
temporary sibling folder first, then renamed: an interrupted save leaves the previous checkpoint intact.
``latest_checkpoint`` ignores unfinished folders. Only the newest ``keep`` checkpoints are kept.

Why not ``transformers.Trainer``'s checkpointing: our RL loop is our own (the GRPO-vs-PPO ablation needs
both algorithms on one engine), and both loops should resume the same way.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

_PREFIX = "step_"


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(ckpt_dir: str | os.PathLike, step: int, *, keep: int = 2, **state: Any) -> Path:
    """Write ``state`` (any picklable / state-dict objects) as checkpoint ``step`` atomically."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    final = ckpt_dir / f"{_PREFIX}{step:08d}"
    tmp = ckpt_dir / f".tmp-{_PREFIX}{step:08d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    torch.save({"step": step, "rng": rng_state(), **state}, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / "state.pt").exists())


def latest_checkpoint(ckpt_dir: str | os.PathLike) -> Path | None:
    ckpts = list_checkpoints(ckpt_dir)
    return ckpts[-1] if ckpts else None


def load_checkpoint(path: str | os.PathLike, *, restore_rng: bool = True) -> dict[str, Any]:
    """Load a checkpoint folder's state (CPU tensors) and, by default, restore the RNG states."""
    try:
        state = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise RuntimeError(f"checkpoint {path} is unreadable: {err}") from err
    if restore_rng:
        set_rng_state(state["rng"])
    return state
