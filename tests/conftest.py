"""Shared fixtures. Tests run offline and without W&B (see also the Makefile)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data next to the repo (or $R1LIB_SHARED_DATA); None in a user's fresh clone."""
    env = os.environ.get("R1LIB_SHARED_DATA")
    d = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return d if d.is_dir() else None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved, randomly initialised 'nano' Llama model with a BPE tokenizer trained on task text."""
    from r1lib.models import build_model, build_tokenizer, save_model
    from r1lib.prompts import r1_zero_prompt

    texts = [r1_zero_prompt(f"Compute {a} + {b}.") + f" <think> {a} + {b} = {a + b} </think> <answer> {a + b} </answer>"
             for a in range(30) for b in range(0, 30, 3)]
    tok = build_tokenizer(texts, vocab_size=300)
    model = build_model("nano", tok, seed=0)
    out = tmp_path_factory.mktemp("models") / "nano"
    save_model(model, tok, out)
    return out


def write_tiny_config(tmp_path: Path, name: str, *sections: str) -> Path:
    """A tiny experiment YAML whose results and runs live under ``tmp_path`` (for notebook smoke runs).

    ``sections`` are extra YAML lines (e.g. "eval: {k: 2}") appended to the shared tiny base.
    """
    cfg = tmp_path / "tiny.yaml"
    lines = [f"name: {name}", f"results_dir: {tmp_path / 'results'}", f"stages_dir: {tmp_path / 'results'}",
             f"runs_dir: {tmp_path / 'runs'}", "notebooks: []",
             "tasks: {mix: {addition: 1.0, subtraction: 1.0}, difficulty: [1, 2], n_train: 8, n_test: 4, n_harder: 4}",
             "model: {preset: nano, device: cpu}", "tracking: {wandb_mode: disabled}", *sections]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg
