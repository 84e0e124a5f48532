"""Tests for r1lib.tracking: JSONL log, W&B (disabled / offline / failing), reading, plotting, atomic writes."""

from __future__ import annotations

import json
import math
import os
import sys
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from r1lib.tracking import Tracker, atomic_write_json, atomic_write_text, plot_metrics, read_metrics  # noqa: E402


def test_log_writes_flushed_json_lines(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    tracker = Tracker(run_dir, {"lr": 0.1}, wandb_mode="disabled")
    assert tracker.wandb_run is None
    record = tracker.log({"loss": 2.5, "reward": 1}, step=1)
    tracker.log({"loss": 1.25}, step=2)
    # Readable before finish(): each line is flushed.
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == record
    assert set(first) == {"step", "time", "loss", "reward"}
    assert (first["step"], first["loss"], first["reward"]) == (1, 2.5, 1.0)
    assert isinstance(first["reward"], float) and first["time"] > 1.7e9
    tracker.finish()
    tracker.finish()  # idempotent
    with pytest.raises(RuntimeError, match="finished"):
        tracker.log({"loss": 0.0}, step=3)


def test_log_appends_across_trackers_and_validates(tmp_path: Path) -> None:
    with Tracker(tmp_path, wandb_mode="disabled") as tracker:
        tracker.log({"a": 1.0}, step=0)
        with pytest.raises(ValueError, match="reserved"):
            tracker.log({"step": 1.0}, step=1)
        with pytest.raises(TypeError, match="metric 'b' must be a number"):
            tracker.log({"b": "high"}, step=1)
    assert tracker._file.closed
    with Tracker(tmp_path, wandb_mode="disabled") as tracker:
        tracker.log({"a": float("nan")}, step=5)
    df = read_metrics(tmp_path)
    assert list(df["step"]) == [0, 5]
    assert df["a"].iloc[0] == 1.0 and math.isnan(df["a"].iloc[1])


def test_bad_wandb_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wandb_mode"):
        Tracker(tmp_path, wandb_mode="on")  # type: ignore[arg-type]


def test_wandb_offline_creates_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with Tracker(tmp_path, {"seed": 1}, wandb_mode="offline", name="t") as tracker:
        assert tracker.wandb_run is not None
        tracker.log({"loss": 0.5}, step=1)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("run-*.wandb"))
    assert read_metrics(tmp_path)["loss"].tolist() == [0.5]


def test_wandb_failures_are_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    class BrokenRun:
        finished = False

        def log(self, metrics: dict, step: int) -> None:
            raise ConnectionError("no network")

        def finish(self, exit_code: int = 0) -> None:
            BrokenRun.finished = True

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: BrokenRun()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    tracker = Tracker(tmp_path / "a", wandb_mode="offline")
    with pytest.warns(RuntimeWarning, match="wandb log failed .*no network"):
        tracker.log({"x": 1.0}, step=1)
    assert tracker.wandb_run is None  # disabled after the first failure
    tracker.log({"x": 2.0}, step=2)
    tracker.finish()
    assert read_metrics(tmp_path / "a")["x"].tolist() == [1.0, 2.0]

    def failing_init(**kwargs: object) -> None:
        raise RuntimeError("init exploded")

    fake.init = failing_init  # type: ignore[attr-defined]
    with pytest.warns(RuntimeWarning, match="wandb.init failed .*init exploded"):
        tracker = Tracker(tmp_path / "b", wandb_mode="online")
    tracker.log({"x": 3.0}, step=1)
    tracker.finish()
    assert read_metrics(tmp_path / "b")["x"].tolist() == [3.0]


def test_read_metrics_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "time": 0, "loss": 3.0}\n\n{"step": 2, "time": 1, "reward": 0.5}\n{"step": 3, "lo')
    with pytest.warns(RuntimeWarning, match=r"metrics.jsonl:4: dropping truncated last line"):
        df = read_metrics(path)
    assert list(df["step"]) == [1, 2]
    assert df["loss"].iloc[0] == 3.0 and math.isnan(df["loss"].iloc[1])
    assert df["reward"].iloc[1] == 0.5


def test_read_metrics_errors_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON object line"):
        read_metrics(path)
    path.write_text("")
    df = read_metrics(path)
    assert df.empty and list(df.columns) == ["step", "time"]
    with pytest.raises(FileNotFoundError, match="metrics file not found"):
        read_metrics(tmp_path / "missing.jsonl")


def test_plot_metrics() -> None:
    df = pd.DataFrame({"step": [0, 1, 2, 3], "loss": [4.0, 3.0, 2.0, 1.0], "acc": [None, 0.5, None, 0.75]})
    fig = plot_metrics(df, ["loss", "acc"], title="run")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"loss", "acc"}
    assert list(lines["acc"].get_xdata()) == [1, 3]  # NaN rows dropped
    assert list(lines["acc"].get_ydata()) == [0.5, 0.75]
    assert ax.get_title() == "run" and ax.get_xlabel() == "step"
    plt.close(fig)
    fig2, ax2 = plt.subplots()
    assert plot_metrics(df, "loss", ax=ax2) is fig2
    assert ax2.get_ylabel() == "loss"
    with pytest.raises(KeyError, match=r"\['nope'\] not in the data"):
        plot_metrics(df, ["nope"], ax=ax2)
    plt.close(fig2)


def test_atomic_write_text_and_json(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.json"
    atomic_write_json(target, {"a": [1, 2], "b": "é"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": [1, 2], "b": "é"}
    assert target.read_text(encoding="utf-8").endswith("}\n")
    with pytest.raises(ValueError):
        atomic_write_json(target, {"a": float("nan")})  # strict JSON
    atomic_write_text(tmp_path / "t.txt", "hello")
    assert (tmp_path / "t.txt").read_text() == "hello"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["f.json", "sub", "t.txt"]  # no temp files


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_wandb_mode_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with Tracker(tmp_path, {"seed": 1}, wandb_mode="offline") as tracker:
        assert tracker.wandb_run is None and tracker.wandb_mode == "disabled"
    assert not (tmp_path / "wandb").exists()


# --------------------------------------------------------------------------------------------
# Grouping (group / job_type), tables, and reading back an offline run
# --------------------------------------------------------------------------------------------

from r1lib.tracking import (  # noqa: E402
    completion_rows,
    read_offline_run,
    read_table,
    stage_job_type,
    table_path,
    wandb_grouping,
)


def _record(i: int, k: int = 2) -> dict:
    """A per-example record as r1lib.evaluation.evaluate keeps it (k samples)."""
    return {"id": f"p{i}", "gold": str(10 + i), "answers": [str(10 + i), "0"][:k], "correct": [True, False][:k],
            "lengths": [7 + i, 3][:k], "completions": [f"<answer> {10 + i} </answer>", "<answer> 0 </answer>"][:k]}


def test_offline_run_has_group_job_type_config_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_dir = tmp_path / "runs" / "exp1" / "r1_zero"
    config = {"name": "exp1", "rl": {"lr": 5e-5, "steps": 3}, "stage": {"big": "x" * 70_000}}  # > 2 log blocks
    rows = completion_rows(10, ["Compute 1 + 9.", "Compute 2 + 9."], [_record(0), _record(1)])
    with Tracker(run_dir, config, wandb_mode="offline", name="exp1-r1_zero", group="exp1",
                 job_type=stage_job_type(run_dir, tmp_path / "runs" / "exp1")) as tracker:
        tracker.log({"eval/pass@1": 0.25}, step=0)
        tracker.log({"eval/pass@1": 0.75}, step=10)
        tracker.log_table("eval/completions", rows, step=10)
    run = read_offline_run(run_dir, wait=20)
    assert run["complete"]
    assert (run["group"], run["job_type"], run["name"], run["project"]) == ("exp1", "r1_zero", "exp1-r1_zero", "r1lib")
    assert run["config"]["rl"] == {"lr": 5e-5, "steps": 3}
    assert run["config"]["stage"]["big"] == "x" * 70_000  # a record split over blocks (FIRST/MIDDLE/LAST) reassembled
    assert [h["eval/pass@1"] for h in run["history"]] == [0.25, 0.75]
    table = run["summary"]["eval/completions"]
    assert table["_type"] == "table-file" and table["nrows"] == 2 and table["ncols"] == 8
    # The table's rows are the file W&B uploads on `wandb sync`, beside the .wandb file.
    data = json.loads((Path(run["file"]).parent / "files" / table["path"]).read_text())
    assert data["columns"] == ["step", "id", "prompt", "completion", "answer", "gold", "correct", "length"]
    assert data["data"][1][:3] == [10, "p1", "Compute 2 + 9."] and data["data"][1][5:] == ["11", True, 8]
    # ... and the same rows locally, for the HTML report.
    assert read_table(table_path(run_dir, "eval/completions")) == rows


def test_default_tracker_sends_no_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backwards compatible: without group / job_type, wandb.init gets exactly the arguments it got before."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    calls: list[dict] = []

    class Run:
        def log(self, metrics: dict, step: int) -> None:
            pass

        def finish(self, exit_code: int = 0) -> None:
            pass

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: calls.append(kwargs) or Run()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    Tracker(tmp_path / "a", {"seed": 1}, wandb_mode="offline").finish()
    Tracker(tmp_path / "b", wandb_mode="offline", group="g", job_type="pretrain").finish()
    assert set(calls[0]) == {"mode", "dir", "project", "name", "config", "reinit"}
    assert (calls[1]["group"], calls[1]["job_type"]) == ("g", "pretrain")


def test_log_table_local_jsonl_and_resume(tmp_path: Path) -> None:
    with Tracker(tmp_path, wandb_mode="disabled") as tracker:
        path = tracker.log_table("eval/completions", [{"prompt": "a", "correct": True}], step=0)
        tracker.log_table("eval/completions", [{"prompt": "b", "correct": False}], step=5)
        tracker.log_table("eval/completions", [{"prompt": "c", "correct": True}], step=10)
    assert path == tmp_path / "tables" / "eval_completions.jsonl"
    # A resumed run logs step 5 again: the rows from step 5 on are replaced, not duplicated.
    with Tracker(tmp_path, wandb_mode="disabled") as tracker:
        tracker.log_table("eval/completions", [{"prompt": "b2", "correct": True}, {"prompt": "b3"}], step=5)
    assert [(r["step"], r["prompt"]) for r in read_table(path)] == [(0, "a"), (5, "b2"), (5, "b3")]
    path.write_text('{"step": 0}\n[1]\n')
    with pytest.raises(ValueError, match=r"eval_completions.jsonl:2: expected a JSON object"):
        read_table(path)
    with pytest.raises(ValueError, match="no usable characters"):
        table_path(tmp_path, "//")


def test_completion_rows() -> None:
    rows = completion_rows(4, ["P0", "P1"], [_record(0), _record(1)], per_prompt=2)
    assert [(r["prompt"], r["answer"], r["correct"], r["length"]) for r in rows] == [
        ("P0", "10", True, 7), ("P0", "0", False, 3), ("P1", "11", True, 8), ("P1", "0", False, 3)]
    assert all(r["step"] == 4 for r in rows) and rows[2]["gold"] == "11" and rows[2]["id"] == "p1"
    assert completion_rows(4, ["P0"], []) == []
    with pytest.raises(ValueError, match="1 prompts for 2 records"):
        completion_rows(4, ["P0"], [_record(0), _record(1)])


@pytest.mark.parametrize("rel, job_type", [
    ("base_model_train", "pretrain"),
    ("students/nano/base_model_train", "pretrain_nano"),
    ("r1_zero", "r1_zero"),
    ("ablation_grpo_vs_ppo/PPO_lambda1.0_seed2", "ablation_grpo_vs_ppo"),
    ("ablation_length/short_to_long_seed0", "ablation_length"),
    ("r1_pipeline/dev1", "sft_cold_start"),
    ("r1_pipeline/dev2_no_lc", "reasoning_rl_no_lc"),
    ("r1_pipeline/reward_model", "reward_model"),
    ("r1_pipeline/dev3", "rejection_sft"),
    ("r1_pipeline/r1/mixed", "rl_all_scenarios"),
    ("distillation/students/nano/sft_seed1", "distill_nano"),
    ("distillation/students/nano/rl/rl_seed0", "rl_nano"),
    ("distillation/students/tiny/distilled_rl", "distill_rl_tiny"),
    ("something_new/x", "something_new"),
])
def test_stage_job_type(tmp_path: Path, rel: str, job_type: str) -> None:
    root = tmp_path / "runs" / "exp"
    assert stage_job_type(root / rel, root) == job_type
    assert stage_job_type(root / rel) == job_type  # inferred from the last 'runs' folder
    assert wandb_grouping(root / rel) == {"group": "exp", "job_type": job_type}


def test_stage_job_type_outside_runs(tmp_path: Path) -> None:
    assert stage_job_type(tmp_path / "elsewhere", tmp_path / "runs" / "exp") is None
    if "runs" not in tmp_path.parts:  # no runs/ folder above: nothing to infer, no job type (as before)
        assert stage_job_type(tmp_path / "out") is None and wandb_grouping(tmp_path / "out") == {}
    assert wandb_grouping(tmp_path / "runs" / "exp", group="mine") == {"group": "mine"}


def test_rl_engine_logs_group_job_type_and_completions_table(tmp_path: Path, tiny_model_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The RL engine end to end (2 tiny steps): its offline W&B run carries the experiment as group, the stage as
    job type, the resolved config, and the held-out completions table at each evaluation (also in tables/)."""
    from conftest import write_tiny_config

    from r1lib.config import load_config
    from r1lib.evaluation import held_out
    from r1lib.training.rl import RLTrainer

    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = load_config(write_tiny_config(
        tmp_path, "trk", "rl: {steps: 2, batch_size: 4, num_generations: 2, mini_batches: 2, max_new_tokens: 8, "
        "eval_every: 2, eval_k: 2, eval_limit: 3, checkpoint_every: 2, lr: 1.0e-3, sampler: hf}",
        "eval: {max_new_tokens: 8}"))
    out = cfg.runs_path / "r1_zero"
    RLTrainer(cfg, init_model=tiny_model_dir, out_dir=out, progress=False).train()
    run = read_offline_run(out, wait=20)
    assert run["complete"]
    assert (run["group"], run["job_type"], run["name"]) == ("trk", "r1_zero", "trk-r1_zero")
    assert run["config"]["rl"]["steps"] == 2 and run["config"]["name"] == "trk"
    tables = [h["eval/completions"] for h in run["history"] if "eval/completions" in h]
    assert [t["nrows"] for t in tables] == [3, 3]  # step 0 and step 2, one sample per held-out problem
    rows = read_table(table_path(out, "eval/completions"))
    assert [r["step"] for r in rows] == [0, 0, 0, 2, 2, 2]
    assert [r["prompt"] for r in rows[:3]] == [ex.problem for ex in held_out(cfg, "test")[:3]]
    assert all(isinstance(r["correct"], bool) and r["length"] >= 1 for r in rows)


def test_sft_stage_runs_are_grouped_from_their_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TRL stages (SFT, reward model) start their W&B run without a config at hand: group and job type come
    from the run folder's place under runs/<experiment>/."""
    from r1lib.training.sft import _wandb_run

    calls: list[dict] = []

    class Run:
        def finish(self, exit_code: int = 0) -> None:
            pass

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: calls.append(kwargs) or Run()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    with _wandb_run("offline", tmp_path / "runs" / "exp2" / "r1_pipeline" / "dev1", "sft-dev1") as run:
        assert isinstance(run, Run)
    with _wandb_run("offline", tmp_path / "runs" / "exp2" / "distillation" / "students" / "nano" / "sft_seed0", "s"):
        pass
    with _wandb_run("offline", tmp_path / "elsewhere", "s"):
        pass
    assert [(c.get("group"), c.get("job_type")) for c in calls] == [
        ("exp2", "sft_cold_start"), ("exp2", "distill_nano"), (None, None)]
