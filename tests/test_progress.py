"""r1lib.progress: the runner's status line while a notebook runs (which cell, elapsed time, the cell's last
progress bar), on a terminal and in a log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from r1lib.progress import NotebookProgress, format_elapsed, last_status_line


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_status_names_notebook_cell_elapsed_and_the_last_bar():
    clock, out = Clock(), io.StringIO()
    p = NotebookProgress("[1/7] 00_base_model", out=out, tty=False, interval=0, clock=clock)
    assert p.status() == "[1/7] 00_base_model · 0 s"
    p.cell_started(5, 14)
    clock.t += 151
    p.write("pretrain:  44%|####4     | 620/1400\rpretrain:  45%|####5     | 630/1400 [02:10<02:40, loss=0.31]")
    assert p.status() == ("[1/7] 00_base_model · cell 6/14 · 2 min 31 s · "
                          "pretrain:  45%|####5     | 630/1400 [02:10<02:40, loss=0.31]")
    p.write("\n")                       # an empty write keeps the last line
    assert p.status().endswith("loss=0.31]")
    p.cell_started(6, 14)               # a new cell forgets the old cell's bar
    assert p.status() == "[1/7] 00_base_model · cell 7/14 · 2 min 31 s"


def test_long_lines_are_cut_and_helpers():
    p = NotebookProgress("nb", out=io.StringIO(), tty=False, interval=0, max_width=20)
    p.write("x" * 100)
    assert len(p.status()) == 20 and p.status().endswith("…")
    assert format_elapsed(3725) == "1 h 02 min" and last_status_line("\x1b[2Kstep 3/60\n") == "step 3/60"
    p.write("step 7/60\n")
    p.write("wandb: View this run in the terminal with `wandb leet`\n")   # W&B's chatter is not progress
    assert p.last == "step 7/60"


def test_terminal_rewrites_one_line_and_clears_it():
    out = io.StringIO()
    with NotebookProgress("nb", out=out, tty=True, interval=0) as p:
        p._show()
        p.write("step 1/60")
        p._show()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") == 4 and "nb · 0 s · step 1/60" in text


def test_log_mode_prints_a_line_per_interval():
    out = io.StringIO()
    import time

    with NotebookProgress("nb", out=out, tty=False, interval=0.05):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("nb · ") for line in lines)


@pytest.mark.slow
def test_runner_reports_cells_and_streamed_progress(tmp_path, capfd):
    """A real papermill run through the runner's engine: the status lines name the running cell and the last
    line the cell printed, and the executed notebook is unchanged by the hook."""
    import nbformat

    from r1lib.runner import execute_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import time, sys\nfor i in range(3):\n    print(f'step {i + 1}/3', "
                                          "flush=True)\n    time.sleep(0.4)"),
                nbformat.v4.new_code_cell("x + 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    run = execute_notebook(src, tmp_path / "out" / "nb.ipynb", {"x": 2}, root=tmp_path, progress_label="[1/1] nb",
                           progress_interval=0.2)
    assert run.status == "ok"
    err = capfd.readouterr().err
    assert "[1/1] nb · cell 3/4 · " in err and "step " in err       # papermill adds the injected-parameters cell
    out = nbformat.read(tmp_path / "out" / "nb.ipynb", as_version=4)
    assert out.cells[-1].outputs[0]["data"]["text/plain"] == "3"


@pytest.mark.slow
def test_rl_progress_bar_in_notebooks_and_lines_for_the_cli(tmp_path, tiny_model_dir, capsys):
    """``train_rl``'s default (the notebooks'): one bar with reward, accuracy and length, the held-out checks
    written above it; ``progress=True`` (the CLI): a line per step."""
    from conftest import write_tiny_config

    from r1lib.config import load_config
    from r1lib.training.rl import train_rl

    cfg = load_config(write_tiny_config(
        tmp_path, "bar", "rl: {steps: 2, batch_size: 4, num_generations: 2, mini_batches: 2, max_new_tokens: 8, "
        "eval_every: 2, eval_k: 2, eval_limit: 2, checkpoint_every: 2}", "eval: {max_new_tokens: 8}"))
    train_rl(cfg, init_model=tiny_model_dir, out_dir=tmp_path / "bar")
    err = capsys.readouterr()
    assert "grpo steps: 100%" in err.err and "2/2" in err.err and "acc=" in err.err
    assert "eval @ 2: pass@1" in err.out + err.err and "step    1/2" not in err.out
    train_rl(cfg, init_model=tiny_model_dir, out_dir=tmp_path / "lines", progress=True)
    out = capsys.readouterr().out
    assert "step    1/2  reward" in out and "eval @ 2: pass@1" in out
