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
