"""``python -m r1lib run --executor slurm`` and ``python -m r1lib status`` (r1lib.slurm).

The first tests need no Slurm (resources, template, job command, summary merging, dry run). The others run
against a real single-node Slurm started on this machine (tests/slurm_cluster.py: munged, slurmctld, slurmd from
Debian's slurm-wlm and munge packages; they skip when those are not installed or we are not root): the smoke
experiment's first two notebooks as a chain of jobs, a chain whose second stage fails, and a submission whose
second sbatch is refused.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from r1lib import cli
from r1lib.config import ConfigError, config_to_dict, load_config, parse_overrides, save_config
from r1lib.runner import _merged_summary
from r1lib.slurm import (SLURM_JOBS_FILE, JobState, NotebookStatus, SlurmError, StatusReport, format_status,
                         render_template, stage_resources, submit_experiment)
from slurm_cluster import LocalSlurmCluster, SlurmStartError, missing_binaries

REPO_ROOT = Path(__file__).resolve().parents[1]
SMOKE = REPO_ROOT / "experiments" / "smoke.yaml"
TEMPLATE = REPO_ROOT / "experiments" / "slurm" / "notebook.sbatch"
DATA = Path(__file__).resolve().parent / "data" / "notebooks"
GOOD_NB = DATA / "write_params.ipynb"
FAILING_NB = DATA / "failing.ipynb"


def write_project(folder: Path, notebooks: list, slurm: dict | None = None, name: str = "chain") -> Path:
    """A tiny experiment whose relative paths resolve inside ``folder`` (marked as a project root)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").touch()
    data = {"name": name, "notebooks": notebooks, "tasks": {"mix": {"arithmetic": 1.0}, "n_train": 10, "n_test": 4},
            "tracking": {"wandb_mode": "disabled"}}
    if slurm is not None:
        data["slurm"] = slurm
    path = folder / "experiments" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Without Slurm
# --------------------------------------------------------------------------------------------


def test_resources_merge_top_level_notebook_and_cli(tmp_path: Path) -> None:
    config = write_project(tmp_path, [
        str(GOOD_NB),
        {"path": str(FAILING_NB), "slurm": {"gpus_per_node": 8, "time": "1-00:00:00", "extra": ["--exclusive"]}},
    ], slurm={"partition": "cpu", "cpus": 4, "time": "30", "extra": ["--account=proj"], "setup": ["module load x"]})
    cfg = load_config(config)
    first, second = (stage_resources(cfg, e) for e in cfg.notebooks)
    assert (first.partition, first.gpus_per_node, first.cpus, first.time) == ("cpu", None, 4, "30")
    # the notebook's fields win, unset ones are inherited, lists are appended
    assert (second.partition, second.gpus_per_node, second.cpus, second.time) == ("cpu", 8, 4, "1-00:00:00")
    assert second.extra == ["--account=proj", "--exclusive"] and second.setup == ["module load x"]
    cli_res = stage_resources(cfg, cfg.notebooks[1], partition="gpu", gpus=2)
    assert (cli_res.partition, cli_res.gpus_per_node) == ("gpu", 2)
    # the resolved config saved with the results gives the same jobs
    again = load_config(save_config(cfg, tmp_path / "resolved.yaml"))
    assert [stage_resources(again, e) for e in again.notebooks] == [first, second]
    assert "slurm" not in config_to_dict(again)["notebooks"][0]   # no Slurm settings: written as before


@pytest.mark.parametrize(("override", "message"), [
    ("slurm.time=soon", "field 'slurm.time': a Slurm time limit is expected"),
    ("slurm.mem=12 GB", "field 'slurm.mem': a memory size"),
    ('slurm.extra=["--dependency=afterok:1"]', "r1lib sets the dependency"),
    ('slurm.extra=["account=x"]', "each item is one sbatch option"),
    ("slurm.gpus_per_node=-1", "field 'slurm.gpus_per_node'"),
    ("slurm.partion=gpu", "did you mean 'slurm.partition'"),
])
def test_bad_slurm_fields_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match="smoke.yaml") as err:
        load_config(SMOKE, parse_overrides([override]))
    assert message in str(err.value)


def test_template_placeholders_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"job.sbatch: line 2: unknown placeholder \{\{gpu\}\}"):
        render_template("#!/bin/bash\n#SBATCH --gres=gpu:{{gpu}}\n{{command}}\n", {"command": "x", "gpus": "1"},
                        "job.sbatch")
    with pytest.raises(ConfigError, match="no {{command}} placeholder"):
        render_template("#!/bin/bash\necho hi\n", {"command": "x"}, "job.sbatch")
    assert render_template("echo ${HOME} {{ command }}", {"command": "run"}, "t") == "echo ${HOME} run"


def test_dry_run_renders_one_job_per_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, [str(GOOD_NB), {"path": str(FAILING_NB), "slurm": {"gpus_per_node": 4}}],
                           slurm={"partition": "cpu", "mem": "16G"})
    sets = ["rl.batch_size=16", "tasks.mix={arithmetic: 1.0, linear: 2.0}", "seed=7"]
    code = cli.main(["run", str(config), "--executor", "slurm", "--dry-run", "--slurm-template", str(TEMPLATE),
                     *[a for s in sets for a in ("--set", s)]])
    assert code == 0
    out = capsys.readouterr().out
    assert "--dependency=afterok:DRYRUN-1 --kill-on-invalid-dep=yes" in out
    assert not (tmp_path / "results" / "chain" / SLURM_JOBS_FILE).exists()   # nothing submitted, nothing recorded
    scripts = tmp_path / "runs" / "chain" / "slurm"
    first, second = (scripts / "write_params.sbatch").read_text(), (scripts / "failing.sbatch").read_text()
    assert "#SBATCH --partition=cpu\n#SBATCH --mem=16G" in first and "--gpus-per-node" not in first
    assert "#SBATCH --partition=cpu\n#SBATCH --gpus-per-node=4\n#SBATCH --mem=16G" in second
    assert f"#SBATCH --output={scripts}/failing-%j.log" in second
    assert "{{" not in second
    # The job runs r1lib's runner on its one notebook, with the run's overrides arriving unchanged.
    cmd = shlex.split(second.strip().splitlines()[-1])
    assert cmd[1:8] == ["-m", "r1lib", "run", str(config.resolve()), "--only", "failing", "--merge-summary"]
    got = parse_overrides([cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"])
    assert got == {"rl.batch_size": 16, "tasks.mix": {"arithmetic": 1.0, "linear": 2.0}, "seed": 7}
    assert cli.main(["run", str(config), "--gpus", "2"]) == 2   # Slurm options without the Slurm executor
    assert "--gpus: only with --executor slurm" in capsys.readouterr().err


def test_merged_summary_keeps_other_notebooks_in_config_order(tmp_path: Path) -> None:
    path = tmp_path / "run_summary.json"
    path.write_text(json.dumps({"notebooks": [{"name": "a.ipynb", "status": "ok"},
                                              {"name": "b.ipynb", "status": "failed", "error": "old"},
                                              {"name": "c.ipynb", "status": "ok"}]}))
    mine = {"experiment": "x", "notebooks": [{"name": "b.ipynb", "status": "ok"}], "ok": True}
    merged = _merged_summary(path, mine, ["a.ipynb", "b.ipynb", "c.ipynb"], warn=print)
    assert [(nb["name"], nb["status"]) for nb in merged["notebooks"]] == [
        ("a.ipynb", "ok"), ("b.ipynb", "ok"), ("c.ipynb", "ok")]
    assert merged["ok"] is True and merged["experiment"] == "x"
    mine["notebooks"] = [{"name": "c.ipynb", "status": "failed"}]
    assert _merged_summary(path, mine, ["a.ipynb", "b.ipynb", "c.ipynb"], warn=print)["ok"] is False
    path.write_text("{not json")
    warnings: list[str] = []
    assert _merged_summary(path, mine, ["c.ipynb"], warn=warnings.append)["notebooks"] == mine["notebooks"]
    assert "unreadable" in warnings[0]


def test_status_report_names_failed_and_cancelled_jobs_without_reasons() -> None:
    """sacct (accounting on) gives states without reasons: a CANCELLED job after a failed one is 'not run'."""
    def row(nb: str, job_id: str, dep: str | None, state: str, summary: dict | None = None) -> NotebookStatus:
        job = {"notebook": nb, "job_id": job_id, "dependency": dep, "log": f"runs/x/slurm/{nb}-{job_id}.log"}
        return NotebookStatus(job, JobState(job_id, state, "00:01:02", "0:0" if state != "TIMEOUT" else "0:15",
                                            source="sacct"), summary)

    report = StatusReport("x", "results/x/slurm_jobs.json", [
        row("a.ipynb", "11", None, "COMPLETED"), row("b.ipynb", "12", "11", "TIMEOUT"),
        row("c.ipynb", "13", "12", "CANCELLED"), row("d.ipynb", "14", "13", "CANCELLED")])
    text = format_status(report)
    assert [r.job["job_id"] for r in report.failed] == ["12", "13", "14"]
    assert "FAILED: job 12 (b.ipynb) ended TIMEOUT, exit code 0:15; log: runs/x/slurm/b.ipynb-12.log" in text
    assert "NOT RUN: job 13 (c.ipynb) was cancelled by Slurm (DependencyNeverSatisfied): job 12 (b.ipynb)" in text
    assert "NOT RUN: job 14 (d.ipynb) was cancelled by Slurm (DependencyNeverSatisfied): job 13 (c.ipynb)" in text
    assert text.endswith("2 cancelled, 1 completed, 1 timeout")
    assert not StatusReport("x", "r", [row("a.ipynb", "11", None, "RUNNING")]).failed


def test_status_without_a_record_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, [str(GOOD_NB)])
    assert cli.main(["status", str(config)]) == 2
    err = capsys.readouterr().err
    assert "slurm_jobs.json: no submission record" in err and "--executor slurm" in err


# --------------------------------------------------------------------------------------------
# Against a real single-node Slurm
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[LocalSlurmCluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm is not installed (missing {', '.join(missing)}): apt-get install -y slurm-wlm munge")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's slurmd runs jobs as root (SlurmUser=root): run the tests as root")
    cluster = LocalSlurmCluster()
    try:
        cluster.start()
    except SlurmStartError as exc:
        shutil.rmtree(cluster.dir, ignore_errors=True)
        pytest.fail(f"the local Slurm cluster did not start: {exc}")
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.dir, ignore_errors=True)


def _job_ids(results: Path) -> list[str]:
    return [j["job_id"] for j in json.loads((results / SLURM_JOBS_FILE).read_text())["jobs"]]


@pytest.mark.slow
def test_smoke_notebooks_run_as_a_chain_of_jobs(slurm_cluster: LocalSlurmCluster, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    res, runs = tmp_path / "results", tmp_path / "runs"
    sets = [f"results_dir={res}", f"stages_dir={res}", f"runs_dir={runs}", "pretrain.steps=4",
            "pretrain.corpus_size=120", "tasks.n_test=4", "eval.k=2", "distill.students=[nano]", "rl.steps=1",
            "rl.eval_limit=2"]
    set_args = [a for s in sets for a in ("--set", s)]
    code = cli.main(["run", str(SMOKE), "--executor", "slurm", "--only", "00_base_model", "--only", "01_r1_zero_grpo",
                     *set_args])
    assert code == 0
    record = json.loads((res / SLURM_JOBS_FILE).read_text())
    jobs = record["jobs"]
    assert [j["notebook"] for j in jobs] == ["00_base_model.ipynb", "01_r1_zero_grpo.ipynb"]
    assert jobs[0]["dependency"] is None and jobs[1]["dependency"] == jobs[0]["job_id"]
    assert "--kill-on-invalid-dep=yes" in jobs[1]["sbatch"] and "--only 01_r1_zero_grpo" in jobs[1]["command"]
    slurm_cluster.wait_jobs([j["job_id"] for j in jobs], timeout=300)

    assert (res / "00_base_model.ipynb").is_file() and (res / "01_r1_zero_grpo.ipynb").is_file()
    assert json.loads((res / "base_model" / "metrics.json").read_text())["params"] > 0
    assert (res / "r1_zero" / "metrics.json").is_file()
    # Both jobs wrote their entry into one summary (--merge-summary), each with its job id.
    summary = json.loads((res / "run_summary.json").read_text())
    assert [(nb["name"], nb["status"], nb["slurm_job_id"]) for nb in summary["notebooks"]] == [
        ("00_base_model.ipynb", "ok", jobs[0]["job_id"]), ("01_r1_zero_grpo.ipynb", "ok", jobs[1]["job_id"])]
    assert summary["ok"] is True
    for job in jobs:
        assert f"[r1lib] job {job['job_id']} on " in Path(job["log"]).read_text()

    capsys.readouterr()
    assert cli.main(["status", str(SMOKE), *set_args]) == 0
    out = capsys.readouterr().out
    for job in jobs:
        line = next(x for x in out.splitlines() if f"job {job['job_id']:>8}" in x)
        assert job["notebook"] in line and "COMPLETED" in line and job["log"] in line
    assert "2 completed" in out and "FAILED" not in out


@pytest.mark.slow
def test_failed_stage_keeps_earlier_results_and_cancels_later_ones(
        slurm_cluster: LocalSlurmCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    third = tmp_path / "write_params_again.ipynb"
    shutil.copy(GOOD_NB, third)
    config = write_project(tmp_path / "proj", [str(GOOD_NB), str(FAILING_NB), str(third)])
    code = cli.main(["run", str(config), "--executor", "slurm", "--slurm-template", str(TEMPLATE),
                     "--set", "rl.batch_size=16"])
    assert code == 0
    results = tmp_path / "proj" / "results" / "chain"
    ids = _job_ids(results)
    assert len(ids) == 3
    slurm_cluster.wait_jobs(ids, timeout=120)

    # Stage 1's results are intact; stage 2 left its failed copy; stage 3 never ran.
    assert json.loads((results / "params_seen.json").read_text())["rl_batch_size"] == 16
    assert (results / "write_params.ipynb").is_file() and (results / "failing.failed.ipynb").is_file()
    assert not (results / "write_params_again.ipynb").exists()
    summary = json.loads((results / "run_summary.json").read_text())
    assert [(nb["name"], nb["status"], nb["slurm_job_id"]) for nb in summary["notebooks"]] == [
        ("write_params.ipynb", "ok", ids[0]), ("failing.ipynb", "failed", ids[1])]
    assert summary["ok"] is False
    jobs = json.loads((results / SLURM_JOBS_FILE).read_text())["jobs"]
    root = tmp_path / "proj"   # the record's paths are relative to the project root, as in run_summary.json
    assert jobs[1]["log"] == "runs/chain/slurm/failing-" + ids[1] + ".log"
    assert "boom from failing_notebook" in (root / jobs[1]["log"]).read_text()
    assert not (root / jobs[2]["log"]).exists()

    capsys.readouterr()
    assert cli.main(["status", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"FAILED: job {ids[1]} (failing.ipynb) ended FAILED, exit code 1:0; log: {jobs[1]['log']}" in out
    assert "notebook error: cell" in out and "ValueError: boom from failing_notebook" in out
    assert (f"NOT RUN: job {ids[2]} (write_params_again.ipynb) was cancelled by Slurm (DependencyNeverSatisfied): "
            f"job {ids[1]} (failing.ipynb)") in out
    line = next(x for x in out.splitlines() if f"job {ids[0]:>8}" in x)
    assert "COMPLETED" in line
    assert "1 cancelled, 1 completed, 1 failed" in out


@pytest.mark.slow
def test_refused_sbatch_cancels_the_jobs_already_submitted(slurm_cluster: LocalSlurmCluster, tmp_path: Path) -> None:
    config = write_project(tmp_path, [str(GOOD_NB), {"path": str(FAILING_NB), "slurm": {"partition": "nosuch"}}])
    with pytest.raises(SlurmError, match="nosuch|[Ii]nvalid partition"):
        submit_experiment(config, template=TEMPLATE, log=None)
    assert not (tmp_path / "results" / "chain" / SLURM_JOBS_FILE).exists()
    # the first job of the chain was cancelled: scontrol knows it (MinJobAge), and it is CANCELLED
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True).stdout
    mine = [line for line in out.splitlines() if "write_params" in line and str(tmp_path) in line]
    assert len(mine) == 1 and "JobState=CANCELLED" in mine[0]


def test_dry_run_dependencies_follow_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A notebook with `needs` waits for the jobs of the notebooks it lists (several: afterok:a:b); one without
    waits for the job before it; a need outside --only puts no dependency."""
    third = tmp_path / "nbs" / "third.ipynb"
    third.parent.mkdir(parents=True)
    third.write_text(GOOD_NB.read_text())
    config = write_project(tmp_path, [str(GOOD_NB), {"path": str(FAILING_NB), "needs": ["write_params"]},
                                      {"path": str(third), "needs": ["write_params", "failing"]}])
    assert cli.main(["run", str(config), "--executor", "slurm", "--dry-run", "--slurm-template", str(TEMPLATE)]) == 0
    out = capsys.readouterr().out
    assert "failing.ipynb: would submit job DRYRUN-2 after job DRYRUN-1;" in out
    assert "--dependency=afterok:DRYRUN-1:DRYRUN-2 --kill-on-invalid-dep=yes" in out
    assert cli.main(["run", str(config), "--executor", "slurm", "--dry-run", "--slurm-template", str(TEMPLATE),
                     "--only", "failing"]) == 0
    assert "--dependency" not in capsys.readouterr().out
    assert cli.main(["run", str(config), "--executor", "slurm", "--parallel", "2"]) == 2
    assert "--parallel: only with --executor local" in capsys.readouterr().err
