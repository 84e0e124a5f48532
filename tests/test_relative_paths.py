"""Committed results hold no absolute paths of the machine that made them.

Every writer of a path into a results file (ablation ``metrics.json``, evaluation tables, the runner's
summary and executed notebooks, the GRPO-vs-TRL benchmark) writes it relative to the project root when it
is inside the project, and as given otherwise. These tests build a throw-away project (a folder with a
pyproject.toml) and fail if its absolute path shows up in what is written. No kernel, no training.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

from r1lib.ablation import RunResult, curves, results_dicts, run_arms
from r1lib.config import load_config
from r1lib.evaluation import _display_path, write_results
from r1lib.paths import portable_path, project_root_of, relativize_obj, relativize_text
from r1lib.runner import make_notebook_portable


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "runs" / "default").mkdir(parents=True)
    (root / "pyproject.toml").touch()
    return root


def assert_no_root(text: str, root: Path) -> None:
    for form in {str(root), str(root.resolve())}:
        assert form not in text, f"absolute project path {form} written: ...{text[text.find(form) - 80:][:200]}..."


# --- r1lib.paths -----------------------------------------------------------------------------------


def test_portable_path_inside_outside_and_ids(project: Path, tmp_path: Path) -> None:
    assert portable_path(project / "runs" / "default" / "x", project) == "runs/default/x"
    assert portable_path(str(project / "runs"), str(project)) == "runs"
    assert portable_path(project, project) == "."
    outside = tmp_path / "elsewhere" / "model"
    assert portable_path(outside, project) == str(outside)
    assert portable_path("Qwen/Qwen2.5-0.5B", project) == "Qwen/Qwen2.5-0.5B"  # a hub id stays as it is
    assert portable_path(project / "x", None) == str(project / "x")


def test_portable_path_relative_to_cwd(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")
    assert portable_path("../runs/default", project) == "runs/default"


def test_portable_path_through_a_symlinked_root(project: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(project, target_is_directory=True)
    assert portable_path(link / "runs" / "default", project) == "runs/default"
    assert portable_path(project / "runs" / "default", link) == "runs/default"


def test_project_root_of(project: Path, tmp_path: Path) -> None:
    assert project_root_of(project / "runs" / "default" / "not_yet") == project.resolve()
    lonely = tmp_path / "no_project"
    lonely.mkdir()
    if project_root_of(tmp_path) is None:  # tmp dirs normally live outside any repository
        assert project_root_of(lonely) is None


def test_relativize_text_boundaries(project: Path) -> None:
    r = str(project)
    text = (f"wrote {r}/results/eval.md; cwd {r}; repr PosixPath('{r}/runs/a'); "
            f"other /x{r}/y and {r}-copy/z stay")
    out = relativize_text(text, project)
    assert out == ("wrote results/eval.md; cwd .; repr PosixPath('runs/a'); "
                   f"other /x{r}/y and {r}-copy/z stay")
    assert relativize_obj({"a": [Path(r) / "runs", 3, None], f"{r}/k": r}, project) == {"a": ["runs", 3, None], "k": "."}
    # wandb colours its paths: the root right after a terminal escape code is still replaced
    ansi = f"wandb: saved in \x1b[35m\x1b[1m{r}/runs/default/wandb/x\x1b[0m\n{r}/y:{r}"
    assert relativize_text(ansi, project) == "wandb: saved in \x1b[35m\x1b[1mruns/default/wandb/x\x1b[0m\ny:."


# --- r1lib.ablation --------------------------------------------------------------------------------


def _run_result(out_dir: Path, root: Path | None) -> RunResult:
    return RunResult(arm="GRPO", seed=0, out_dir=str(out_dir), steps=2, train_seconds=1.0, sec_per_step=0.5,
                     peak_rss_mb=1.0, delta_rss_mb=0.5, gpu_max_allocated_mb=None, trainable_params=10,
                     model_copies=2, final_eval={"eval/pass@1": 0.5}, root=None if root is None else str(root))


def _write_metrics(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "eval/pass@1": s / 10}) + "\n"
                                                   for s in (0, 1, 2)))


def test_results_dicts_writes_relative_out_dir_and_keeps_memory_absolute(project: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    inside = project / "runs" / "default" / "GRPO_seed0"
    outside = tmp_path / "scratch" / "GRPO_seed1"
    for d in (inside, outside):
        _write_metrics(d)
    results = [_run_result(inside, project), _run_result(outside, project)]
    dicts = results_dicts(results)
    assert [d["out_dir"] for d in dicts] == ["runs/default/GRPO_seed0", str(outside)]
    assert all("root" not in d for d in dicts)
    assert_no_root(json.dumps(dicts), project)
    # without a recorded root: the project holding the run folder; an explicit root wins
    assert results_dicts([_run_result(inside, None)])[0]["out_dir"] == "runs/default/GRPO_seed0"
    assert results_dicts([_run_result(inside, None)], root=project / "runs")[0]["out_dir"] == "default/GRPO_seed0"
    # the in-memory results still find their folders from anywhere
    assert Path(results[0].out_dir).is_absolute()
    monkeypatch.chdir(tmp_path)
    assert curves(results) == {"GRPO": {0: [0.0, 0.0], 1: [0.1, 0.1], 2: [0.2, 0.2]}}


class _FakeTrainer:
    """Stands in for r1lib.training.rl.RLTrainer: writes a metrics log, no model training."""

    def __init__(self, cfg, init_model, out_dir, eval_examples, progress, initial_eval) -> None:  # noqa: ANN001
        import torch

        self.out_dir = Path(out_dir)
        self.policy = torch.nn.Linear(2, 2)
        self.ref, self.critic = None, None

    def train(self, resume: bool = True) -> types.SimpleNamespace:
        _write_metrics(self.out_dir)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": 1, "step_time": 0.1}) + "\n")
        return types.SimpleNamespace(steps=2, train_seconds=0.2, final_eval={"eval/pass@1": 0.2})


def test_run_arms_metrics_json_has_no_absolute_project_path(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = project / "experiments" / "tiny.yaml"
    config.parent.mkdir()
    config.write_text(yaml.safe_dump({"name": "tiny", "notebooks": [],
                                      "tasks": {"mix": {"arithmetic": 1.0}, "n_train": 4, "n_test": 2},
                                      "tracking": {"wandb_mode": "disabled"}}))
    cfg = load_config(config)
    monkeypatch.setitem(sys.modules, "r1lib.training.rl", types.SimpleNamespace(RLTrainer=_FakeTrainer))
    monkeypatch.chdir(project)
    results = run_arms(cfg, {"GRPO": {}}, [0, 1], init_model="runs/default/base_model", runs_dir="runs/default/abl")
    assert all(Path(r.out_dir).is_absolute() and Path(r.out_dir).is_dir() for r in results)
    metrics = {"runs": results_dicts(results)}
    assert [r["out_dir"] for r in metrics["runs"]] == ["runs/default/abl/GRPO_seed0", "runs/default/abl/GRPO_seed1"]
    assert_no_root(json.dumps(metrics), project)
    # also when the notebook passes the absolute cfg.runs_path
    results = run_arms(cfg, {"GRPO": {}}, [0], init_model="m", runs_dir=cfg.runs_path / "abl2")
    assert results_dicts(results)[0]["out_dir"] == "runs/tiny/abl2/GRPO_seed0"


# --- r1lib.evaluation ------------------------------------------------------------------------------


def test_display_path(project: Path, tmp_path: Path) -> None:
    assert _display_path(project / "runs" / "default" / "base_model", project) == "runs/default/base_model"
    assert _display_path(tmp_path / "other", project) == str(tmp_path / "other")
    assert _display_path("Qwen/Qwen2.5-0.5B", project) == "Qwen/Qwen2.5-0.5B"


def test_write_results_relativises_absolute_checkpoints(project: Path, tmp_path: Path) -> None:
    from r1lib.evaluation import EvalResult

    outside = tmp_path / "models" / "external"
    details = EvalResult(records=[{"id": "q1", "correct": [True, False]}], summary={"pass@1": 0.5})
    rows = [{"checkpoint": str(project / "runs" / "default" / "base_model"), "synthetic pass@1": 0.5,
             "details": {"synthetic": details}},
            {"checkpoint": project / "runs" / "default" / "r1_zero" / "policy", "synthetic pass@1": 0.25},
            {"checkpoint": str(outside), "synthetic pass@1": 0.0},
            {"checkpoint": "Qwen/Qwen2.5-0.5B", "synthetic pass@1": 0.1}]
    paths = write_results(rows, project / "results" / "evaluation")
    for p in paths.values():
        assert_no_root(p.read_text(encoding="utf-8"), project)
    table = json.loads(paths["json"].read_text())
    assert [r["checkpoint"] for r in table] == ["runs/default/base_model", "runs/default/r1_zero/policy",
                                                str(outside), "Qwen/Qwen2.5-0.5B"]
    assert "| runs/default/base_model |" in paths["md"].read_text()
    assert json.loads(paths["records"].read_text().splitlines()[0])["checkpoint"] == "runs/default/base_model"
    # the caller's rows are not modified
    assert rows[0]["checkpoint"] == str(project / "runs" / "default" / "base_model")


# --- r1lib.runner ----------------------------------------------------------------------------------


def test_make_notebook_portable(project: Path, tmp_path: Path) -> None:
    r = str(project)
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": f"{r}/notebooks/01.ipynb", "output_path": f"{r}/results/.tmp-01-x.ipynb",
                                "parameters": {"config_path": f"{r}/experiments/default.yaml", "overrides": {}},
                                "environment_variables": {}, "duration": 1.5, "exception": None}
    injected = nbformat.v4.new_code_cell(f'config_path = "{r}/experiments/default.yaml"\noverrides = {{}}\n')
    injected.metadata["tags"] = ["injected-parameters"]
    code = nbformat.v4.new_code_cell("print(out_dir)")
    png = "iVBORw0KGgo=" + r  # never touched: images are binary payloads
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"results: {r}/results/r1_zero\ncache: /tmp/x\n"),
        nbformat.v4.new_output("stream", name="stderr", text=f"wandb: Find logs at: {r}/runs/default/wandb/x\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"PosixPath('{r}/results/m.json')",
                                                       "image/png": png}, execution_count=1),
        nbformat.v4.new_output("error", ename="ValueError", evalue=f"bad {r}/x",
                               traceback=[f"File {r}/r1lib/config.py, line 3"]),
    ]
    path = tmp_path / "executed.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[injected, code], metadata=nb.metadata), str(path))
    make_notebook_portable(path, project, source=project / "notebooks" / "01.ipynb",
                           output=project / "results" / "default" / "01.ipynb")
    out = nbformat.read(str(path), as_version=4)
    pm = out.metadata.papermill
    assert pm.input_path == "notebooks/01.ipynb" and pm.output_path == "results/default/01.ipynb"
    assert pm.parameters == {"config_path": "experiments/default.yaml", "overrides": {}}
    assert pm.duration == 1.5
    assert out.cells[0].source.startswith('config_path = "experiments/default.yaml"')
    outputs = out.cells[1].outputs
    assert outputs[0].text == "results: results/r1_zero\ncache: /tmp/x\n"
    assert outputs[2].data["text/plain"] == "PosixPath('results/m.json')"
    assert outputs[2].data["image/png"] == png
    assert outputs[3].traceback == ["File r1lib/config.py, line 3"]
    text = path.read_text(encoding="utf-8").replace(png, "")
    assert_no_root(text, project)


# --- benchmarks ------------------------------------------------------------------------------------


def test_grpo_bench_records_portable_model_and_command() -> None:
    """The benchmark writes its model path and command line through r1lib.paths (no absolute repo paths)."""
    repo = Path(__file__).resolve().parents[1]
    source = (repo / "benchmarks" / "bench_grpo_step_vs_trl.py").read_text(encoding="utf-8")
    assert "portable_path(args.model, REPO)" in source and "relativize_text(" in source
    assert relativize_text(f"benchmarks/bench_grpo_step_vs_trl.py --model {repo}/runs/default/base_model",
                           repo) == "benchmarks/bench_grpo_step_vs_trl.py --model runs/default/base_model"

