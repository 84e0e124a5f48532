"""Smoke run of notebooks/06_evaluation.ipynb with papermill at tiny size (random nano model)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import write_tiny_config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "06_evaluation.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert 'config_path = "experiments/default.yaml"' in params[0].source
    assert "overrides = {}" in params[0].source and "checkpoints = None" in params[0].source


@pytest.mark.slow
def test_notebook_runs_at_tiny_size(tmp_path, tiny_model_dir, monkeypatch):
    papermill = pytest.importorskip("papermill")
    # The kernel inherits this: one OpenMP thread keeps the nano model's generation fast even when
    # other processes share the two cores (two threads were several times slower then).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    results = tmp_path / "results" / "evaluation"
    cfg = write_tiny_config(tmp_path, "nbeval", "eval: {benchmarks: [synthetic], k: 2, limit: 4, max_new_tokens: 16}")
    out = tmp_path / "06_evaluation.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(REPO_ROOT),
                               progress_bar=False,
                               parameters={"config_path": str(cfg), "overrides": {"eval.temperature": 0.6},
                                           "checkpoints": [str(tiny_model_dir)]})
    md = (results / "eval.md").read_text()
    assert "synthetic pass@1" in md and str(tiny_model_dir) in md
    rows = json.loads((results / "eval.json").read_text())
    assert len(rows) == 1 and rows[0]["synthetic n_examples"] == 4 and rows[0]["synthetic k"] == 2
    assert 0.0 <= rows[0]["synthetic pass@1"] <= 1.0
    assert "synthetic pass@1" in (results / "eval.csv").read_text().splitlines()[0]
    assert len((results / "eval_records.jsonl").read_text().splitlines()) == 4
    assert (results / "eval_pass_at_k.png").stat().st_size > 0 and (results / "eval_lengths.png").stat().st_size > 0
    executed = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
