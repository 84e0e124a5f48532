"""Tests for r1lib.runner and the CLI. Papermill runs in-process (one kernel per notebook, ~3-4 s each),
so the notebook-executing run happens once per module and several tests inspect its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from r1lib import cli
from r1lib.config import ConfigError, load_config
from r1lib.runner import notebook_parameters, prepare_environment, run_experiment, select_notebooks

DATA = Path(__file__).resolve().parent / "data" / "notebooks"
GOOD_NB = DATA / "write_params.ipynb"
FAILING_NB = DATA / "failing.ipynb"
OLD_GOOD_COPY = '{"cells": [], "note": "an earlier good result"}'


def write_experiment(folder: Path, notebooks: list, name: str = "tiny") -> Path:
    """A config whose relative paths resolve inside ``folder`` (marked as the project root)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").touch()
    data = {"name": name, "notebooks": notebooks,
            "tasks": {"mix": {"arithmetic": 1.0}, "n_train": 10, "n_test": 4},
            "tracking": {"wandb_mode": "disabled"}}
    path = folder / "experiments" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run [failing, write_params] through the CLI once, with an earlier good copy of the failing
    notebook and a stale failure of the good one already in the results folder."""
    root = tmp_path_factory.mktemp("proj")
    config = write_experiment(root, [
        str(FAILING_NB),
        {"path": str(GOOD_NB), "overrides": {"rl.batch_size": 32, "seed": 5}},
    ])
    results = root / "results" / "tiny"
    results.mkdir(parents=True)
    (results / "failing.ipynb").write_text(OLD_GOOD_COPY)
    (results / "write_params.failed.ipynb").write_text("{}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "disabled")
        mp.setenv("HF_HUB_OFFLINE", "1")
        code = cli.main(["run", str(config), "--set", "rl.batch_size=16"])
    return {"root": root, "config": config, "results": results, "code": code}


def test_failing_batch_exit_code(batch_run: dict) -> None:
    assert batch_run["code"] == 1


def test_good_notebook_received_parameters(batch_run: dict) -> None:
    results, config = batch_run["results"], batch_run["config"]
    seen = json.loads((results / "params_seen.json").read_text())
    assert seen["config_path"] == str(config.resolve())
    # CLI --set wins over the notebook entry's overrides; the rest of the entry's overrides is kept.
    assert seen["overrides"] == {"rl.batch_size": 16, "seed": 5}
    assert seen["rl_batch_size"] == 16 and seen["seed"] == 5
    assert seen["cwd"] == str(batch_run["root"].resolve())  # kernel runs in the project root
    assert seen["hf_hub_offline"] == "1"
    executed = nbformat.read(results / "write_params.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    # The kernel got the absolute path (above); the committed copy records it relative to the project root
    # (r1lib.paths), and papermill's temporary output name is replaced by the final one.
    assert 'config_path = "experiments/tiny.yaml"' in injected[0].source
    assert executed.metadata.papermill.parameters == {
        "config_path": "experiments/tiny.yaml", "overrides": {"rl.batch_size": 16, "seed": 5}}
    assert executed.metadata.papermill.output_path == "results/tiny/write_params.ipynb"
    assert executed.metadata.papermill.input_path == str(GOOD_NB)  # outside the project: kept absolute
    root = batch_run["root"]
    for name in ("write_params.ipynb", "failing.failed.ipynb", "run_summary.json"):
        text = (results / name).read_text(encoding="utf-8")
        assert str(root) not in text and str(root.resolve()) not in text, name
    assert not (results / "write_params.failed.ipynb").exists()  # stale failure removed on success


def test_failing_notebook_keeps_earlier_good_copy(batch_run: dict) -> None:
    results = batch_run["results"]
    assert (results / "failing.ipynb").read_text() == OLD_GOOD_COPY
    failed = nbformat.read(results / "failing.failed.ipynb", as_version=4)
    errors = [o for c in failed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert [e["evalue"] for e in errors] == ["boom from failing_notebook"]
    assert not list(results.glob(".tmp*"))  # no temporary files left


def test_run_summary(batch_run: dict) -> None:
    results = batch_run["results"]
    summary = json.loads((results / "run_summary.json").read_text())
    assert summary["experiment"] == "tiny" and summary["ok"] is False
    assert summary["results_dir"] == "results/tiny" and summary["config_path"] == "experiments/tiny.yaml"
    assert summary["overrides"] == {"rl.batch_size": 16}
    failing, good = summary["notebooks"]
    assert failing["name"] == "failing.ipynb" and failing["status"] == "failed"
    assert failing["output"] == "results/tiny/failing.failed.ipynb"
    assert "ValueError: boom from failing_notebook" in failing["error"]
    assert failing["error"].startswith("cell ")
    assert good["name"] == "write_params.ipynb" and good["status"] == "ok" and good["error"] is None
    assert good["output"] == "results/tiny/write_params.ipynb" and good["seconds"] > 0
    saved = load_config(results / "config.yaml")  # the resolved config is saved next to the results
    assert saved.rl.batch_size == 16 and saved.name == "tiny"


def test_only_success_exit_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    config = write_experiment(tmp_path, [str(FAILING_NB), str(GOOD_NB)], name="solo")
    summary = run_experiment(config, only=["write_params"], log=None)
    assert summary.ok
    # the kernel (a child process writing to this process's stderr) starts quietly: no ipykernel transport warning
    assert "without encryption" not in capfd.readouterr().err
    assert [nb.name for nb in summary.notebooks] == ["write_params.ipynb"]
    results = tmp_path / "results" / "solo"
    assert json.loads((results / "params_seen.json").read_text())["overrides"] == {}
    assert json.loads((results / "run_summary.json").read_text())["ok"] is True
    assert not (results / "failing.ipynb").exists()


# ---------------------------------------------------------------------------------------------
# no kernel needed
# ---------------------------------------------------------------------------------------------


def test_only_unknown_name_fails_before_any_work(tmp_path: Path) -> None:
    config = write_experiment(tmp_path, [str(GOOD_NB)])
    with pytest.raises(ConfigError, match=r"--only 'nope': no such notebook.*available: write_params"):
        run_experiment(config, only=["nope"], log=None)
    assert not (tmp_path / "results").exists()


def test_invalid_config_run_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_experiment(tmp_path, [str(GOOD_NB)])
    code = cli.main(["run", str(config), "--set", "rl.batch_size=-4"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "tiny.yaml: field 'rl.batch_size'" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_select_and_parameters(tmp_path: Path) -> None:
    config = write_experiment(tmp_path, [str(FAILING_NB), {"path": str(GOOD_NB), "overrides": {"seed": 1}}])
    cfg = load_config(config)
    assert [e.path for e in select_notebooks(cfg, None)] == [str(FAILING_NB), str(GOOD_NB)]
    # Config order is kept whatever the order of --only.
    assert [e.path for e in select_notebooks(cfg, ["write_params.ipynb", "failing"])] == [
        str(FAILING_NB), str(GOOD_NB)]
    params = notebook_parameters(cfg, cfg.notebooks[1], {"seed": 2, "rl.steps": 3})
    assert params == {"config_path": str(config.resolve()), "overrides": {"seed": 2, "rl.steps": 3}}
    assert notebook_parameters(cfg, cfg.notebooks[1]) == {"config_path": str(config.resolve()),
                                                          "overrides": {"seed": 1}}


def test_prepare_environment_keeps_existing(tmp_path: Path) -> None:
    cfg = load_config(write_experiment(tmp_path, [str(GOOD_NB)]))
    env = {"WANDB_MODE": "offline"}
    prepare_environment(cfg, env)
    assert env == {"WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env = {}
    prepare_environment(cfg, env)
    assert env["WANDB_MODE"] == "disabled"  # from tracking.wandb_mode


def test_cli_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_experiment(tmp_path, [str(GOOD_NB)])
    assert cli.main(["validate", str(config), "--set", "eval.k=4"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["eval"]["k"] == 4 and printed["results_dir"] == "results/tiny"
    assert cli.main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"error: config file not found: {tmp_path / 'missing.yaml'}"
    assert cli.main([]) == 2


def test_cli_help_subprocess() -> None:
    """`python -m r1lib --help` (the __main__ module) works and lists the commands."""
    proc = subprocess.run([sys.executable, "-m", "r1lib", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "run" in proc.stdout and "validate" in proc.stdout and "python -m r1lib" in proc.stdout


# ---------------------------------------------------------------------------------------------
# needs and runner.parallel (r1lib.schedule)
# ---------------------------------------------------------------------------------------------

TIMED_NB = DATA / "timed_stage.ipynb"


def _timed_copies(folder: Path, names: list[str]) -> dict[str, Path]:
    """Copies of the timed test notebook under distinct file names (executed copies are stored by name)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        out[name] = folder / f"{name}.ipynb"
        out[name].write_text(TIMED_NB.read_text())
    return out


def test_parallel_run_follows_needs_and_sets_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """a; b and c need a (they run at the same time, one core's share of threads each); x needs a too but is
    exclusive (alone, every core: listed first, it runs before b and c); d has no needs (after all of them, every
    core, like a). Each notebook records when it ran and its kernel's torch threads."""
    from r1lib.runner import usable_cpus

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    nbs = _timed_copies(tmp_path / "nbs", ["a", "x", "b", "c", "d"])
    config = write_experiment(tmp_path / "proj", [
        {"path": str(nbs["a"]), "overrides": {"seed": 1}},
        {"path": str(nbs["x"]), "overrides": {"seed": 5}, "needs": ["a"], "exclusive": True},
        {"path": str(nbs["b"]), "overrides": {"seed": 2}, "needs": ["a"]},
        {"path": str(nbs["c"]), "overrides": {"seed": 3}, "needs": ["a.ipynb"]},
        {"path": str(nbs["d"]), "overrides": {"seed": 4}},
    ], name="par")
    messages: list[str] = []
    results = tmp_path / "proj" / "results" / "par"
    results.mkdir(parents=True)
    (results / "partners.json").write_text(json.dumps({"2": 3, "3": 2}))   # b and c wait to see each other start
    summary = run_experiment(config, {"runner.parallel": 2}, log=messages.append)
    assert summary.ok, summary.notebooks
    rec = {n: json.loads((results / f"stage_{i}.json").read_text()) for i, n in enumerate("abcdx", 1)}
    assert rec["a"]["end"] <= min(rec["b"]["start"], rec["c"]["start"])
    assert rec["b"]["met_partner"] and rec["c"]["met_partner"]   # b and c ran at the same time
    assert rec["a"]["end"] <= rec["x"]["start"] and rec["x"]["end"] <= min(rec["b"]["start"], rec["c"]["start"])
    assert max(rec["b"]["end"], rec["c"]["end"]) <= rec["d"]["start"]
    share = max(1, usable_cpus() // 2)
    for n in "bc":
        assert rec[n]["omp_num_threads"] == str(share) and rec[n]["torch_threads"] == share
    for n in "adx":
        assert rec[n]["omp_num_threads"] is None
    assert [nb.threads for nb in summary.notebooks] == [None, None, share, share, None]
    saved = json.loads((results / "run_summary.json").read_text())
    assert [nb["name"] for nb in saved["notebooks"]] == ["a.ipynb", "x.ipynb", "b.ipynb", "c.ipynb", "d.ipynb"]
    assert saved["ok"] is True and all((results / f"{n}.ipynb").exists() for n in "abcdx")
    assert any("up to 2 notebooks at once" in m for m in messages)


def test_failed_need_skips_dependents_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing notebook: the one that lists it in needs is skipped, the one without needs still runs. No two of
    them can overlap, so runner.parallel 2 runs them in this process, one by one, on every core."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    nbs = _timed_copies(tmp_path / "nbs", ["after"])
    config = write_experiment(tmp_path / "proj", [
        str(FAILING_NB),
        {"path": str(GOOD_NB), "needs": ["failing"]},
        {"path": str(nbs["after"]), "overrides": {"seed": 7}},
    ], name="skip")
    messages: list[str] = []
    summary = run_experiment(config, {"runner.parallel": 2}, log=messages.append)
    assert not any("at once" in m for m in messages) and all(nb.threads is None for nb in summary.notebooks)
    assert [(nb.name, nb.status) for nb in summary.notebooks] == [
        ("failing.ipynb", "failed"), ("write_params.ipynb", "skipped"), ("after.ipynb", "ok")]
    assert "needs failing, which did not succeed" in summary.notebooks[1].error
    results = tmp_path / "proj" / "results" / "skip"
    assert not (results / "params_seen.json").exists() and (results / "stage_7.json").exists()
    assert json.loads((results / "run_summary.json").read_text())["notebooks"][1]["status"] == "skipped"


def test_needs_must_name_an_earlier_notebook(tmp_path: Path) -> None:
    config = write_experiment(tmp_path, [{"path": str(GOOD_NB), "needs": ["failing"]}, str(FAILING_NB)])
    with pytest.raises(ConfigError, match=r"notebooks\[0\] \(write_params\): needs 'failing', which is not a "
                                          r"notebook listed before it \(listed before it: none\)"):
        load_config(config)


def test_schedule_plan() -> None:
    """The default experiment's graph: 00 alone; 01, 02, 03 after it; 04 after 01; 05 after 04; 06 after all."""
    from types import SimpleNamespace as E

    from r1lib.schedule import ancestors, descendants, may_overlap, notebook_needs, start_order, thread_plan

    entries = [E(path="nb/00.ipynb", needs=None), E(path="nb/01.ipynb", needs=["00"]),
               E(path="nb/02.ipynb", needs=["00"]), E(path="nb/03.ipynb", needs=["00.ipynb"]),
               E(path="nb/04.ipynb", needs=["00", "01"]), E(path="nb/05.ipynb", needs=["04"]),
               E(path="nb/06.ipynb", needs=None)]
    needs = notebook_needs(entries)
    assert needs["00.ipynb"] == () and needs["04.ipynb"] == ("00.ipynb", "01.ipynb")
    assert needs["06.ipynb"] == tuple(f"0{i}.ipynb" for i in range(6))
    assert ancestors(needs)["05.ipynb"] == {"00.ipynb", "01.ipynb", "04.ipynb"}
    overlap = may_overlap(needs)
    assert overlap["00.ipynb"] == set() and overlap["06.ipynb"] == set()
    assert overlap["01.ipynb"] == {"02.ipynb", "03.ipynb"}
    assert overlap["05.ipynb"] == {"02.ipynb", "03.ipynb"}
    plan = thread_plan(needs, parallel=2, cpus=2)
    assert plan == {"00.ipynb": None, "01.ipynb": 1, "02.ipynb": 1, "03.ipynb": 1, "04.ipynb": 1, "05.ipynb": 1,
                    "06.ipynb": None}
    assert set(thread_plan(needs, parallel=2, cpus=16).values()) == {None, 8}
    assert set(thread_plan(needs, parallel=1, cpus=2).values()) == {None}
    # 05 exclusive (the default experiment): alone, every core; the others' possible neighbours lose it
    plan = thread_plan(needs, parallel=2, cpus=2, exclusive={"05.ipynb"})
    assert plan["05.ipynb"] is None and plan["04.ipynb"] == 1
    assert may_overlap(needs, {"05.ipynb"})["02.ipynb"] == {"01.ipynb", "03.ipynb", "04.ipynb"}
    # the head of the longest chain first, then config order
    assert descendants(needs)["01.ipynb"] == {"04.ipynb", "05.ipynb", "06.ipynb"}
    assert start_order(["02.ipynb", "03.ipynb", "01.ipynb"], needs) == ["01.ipynb", "02.ipynb", "03.ipynb"]
    assert start_order(["03.ipynb", "04.ipynb"], needs) == ["04.ipynb", "03.ipynb"]
    # --only: a need that is not selected counts as met (its outputs come from an earlier run)
    assert notebook_needs(entries, [entries[4], entries[5]]) == {"04.ipynb": (), "05.ipynb": ("04.ipynb",)}


def test_worker_process_death_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook whose worker process dies (its kernel kills it, as the OOM killer would): it and the notebook
    running beside it are recorded as failed with a clear error, the run ends normally, earlier results stay, and
    what papermill had written of the dead notebook is kept as its .failed copy."""
    import nbformat

    monkeypatch.setenv("WANDB_MODE", "disabled")
    killer = tmp_path / "nbs" / "killer.ipynb"
    killer.parent.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell('config_path = ""\noverrides = {}', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os, signal, time\ntime.sleep(1)\nos.kill(os.getppid(), signal.SIGKILL)")]
    nbformat.write(nb, killer)
    nbs = _timed_copies(tmp_path / "nbs", ["beside"])
    config = write_experiment(tmp_path / "proj", [
        str(GOOD_NB),
        {"path": str(killer), "needs": ["write_params"]},
        {"path": str(nbs["beside"]), "needs": ["write_params"], "overrides": {"seed": 3}},
    ], name="dies")
    summary = run_experiment(config, {"runner.parallel": 2}, log=None)
    assert [(nb.name, nb.status) for nb in summary.notebooks] == [
        ("write_params.ipynb", "ok"), ("killer.ipynb", "failed"), ("beside.ipynb", "failed")]
    assert "its process died (BrokenProcessPool" in summary.notebooks[1].error
    results = tmp_path / "proj" / "results" / "dies"
    assert (results / "write_params.ipynb").exists() and not list(results.glob(".tmp*.ipynb"))
    partial = nbformat.read(results / "killer.failed.ipynb", as_version=4)
    assert "os.kill" in partial.cells[-1].source and summary.notebooks[1].output == "results/dies/killer.failed.ipynb"
    saved = json.loads((results / "run_summary.json").read_text())
    assert saved["ok"] is False and [nb["status"] for nb in saved["notebooks"]] == ["ok", "failed", "failed"]
