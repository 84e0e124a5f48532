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


from r1lib.models import QWEN_CHAT_TEMPLATE  # noqa: E402  (re-exported for the tests)


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer ``Qwen2ForCausalLM`` with a Qwen-family tokenizer built locally
    (``r1lib.models.build_random_qwen``). It stands in for a Qwen2.5 checkpoint in the recipes' CPU tests (no
    download), so chat templates, padding side, dtype and stop strings take the real-scale path."""
    from r1lib.models import build_random_qwen

    return build_random_qwen(tmp_path_factory.mktemp("models") / "qwen2_tiny", "tiny")


def run_notebook(notebook: Path, out: Path, parameters: dict):
    """Execute ``notebook`` with papermill (repository root as cwd) into ``out``; return the executed notebook."""
    papermill = pytest.importorskip("papermill")
    import nbformat

    papermill.execute_notebook(str(notebook), str(out), kernel_name="python3", cwd=str(REPO_ROOT),
                               progress_bar=False, parameters=parameters)
    return nbformat.read(out, as_version=4)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: one worker per logical core, one torch thread each), the tests of the local
    Slurm cluster (one munged/slurmctld/slurmd per machine) stay together on one worker (`--dist loadgroup`)."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("slurm_cluster"))
