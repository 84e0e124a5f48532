"""Smoke run of notebooks/00_base_model.ipynb with papermill at tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import write_tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "00_base_model.ipynb"


def test_notebook_is_thin_and_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("config_path", "overrides", "preset", "corpus_size", "seed", "steps"):
        assert f"{name} =" in params[0].source
    assert not any(line.startswith(("def ", "class ")) for c in code for line in c.source.splitlines())


@pytest.mark.slow
def test_notebook_runs_at_tiny_size(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = write_tiny_config(
        tmp_path, "nbbase",
        "pretrain: {steps: 6, batch_size: 4, seq_len: 64, corpus_size: 120, vocab_size: 300, checkpoint_every: 3}",
        "eval: {k: 4, limit: 4, max_new_tokens: 24}")
    out = tmp_path / "00_base_model.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(REPO_ROOT),
                               progress_bar=False, parameters={"config_path": str(cfg), "steps": 6, "seed": 1})
    stage = tmp_path / "results" / "base_model"
    metrics = json.loads((stage / "metrics.json").read_text())
    for key in ("pass_at_1", "pass_at_16", "format_rate", "reflection_rate", "language_mix_rate",
                "pretrain_seconds", "params", "style_share", "style_accuracy", "step_fact_accuracy",
                "harder_pass_at_1", "targets_met"):
        assert key in metrics, key
    assert set(metrics["style_share"]) == {"direct", "short", "careful"}
    assert abs(sum(metrics["style_share"].values()) - 1) < 1e-9
    assert metrics["harder_n_examples"] == 4
    assert metrics["params"] > 0 and metrics["k"] == 4 and metrics["n_test_examples"] == 4
    assert (stage / "pretrain_loss.png").stat().st_size > 0
    assert (stage / "pass_at_k_and_styles.png").stat().st_size > 0
    corpus = json.loads((stage / "corpus_stats.json").read_text())
    assert set(corpus["styles_under_template"]) == {"direct", "short", "careful"} and corpus["general"] > 0
    assert (tmp_path / "runs" / "base_model" / "config.json").exists()
    # the distillation students (default distill.students: nano, tiny): nano is this experiment's own base model,
    # tiny is pretrained on the same corpus with the base model's tokenizer
    students = {s["student"]: s for s in json.loads((stage / "students.json").read_text())}
    assert students["nano"]["source"] == "teacher_base" and students["tiny"]["source"] == "pretrained"
    assert students["tiny"]["params"] > students["nano"]["params"] == metrics["params"]
    tiny = tmp_path / "runs" / "students" / "tiny" / "base_model"
    assert (tiny / "tokenizer.json").read_text() == (tmp_path / "runs" / "base_model" / "tokenizer.json").read_text()
