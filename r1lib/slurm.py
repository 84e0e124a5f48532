"""Run an experiment's notebooks as a chain of Slurm jobs, and report on them.

``python -m r1lib run CONFIG --executor slurm`` submits one batch job per notebook of the experiment (or of
``--only``), in config order, each depending on the one before (``--dependency=afterok:<prev>``,
``--kill-on-invalid-dep=yes``), or, for a notebook entry with ``needs``, on the jobs of the notebooks it lists
(``afterok:<a>:<b>``; :mod:`r1lib.schedule`), so that independent stages can run at the same time on the cluster:
a stage starts only after the stages it depends on succeeded, and when one fails Slurm cancels the stages depending
on it (reason ``DependencyNeverSatisfied``) instead of leaving them pending forever.

Each job runs r1lib's own runner on its one notebook::

    python -m r1lib run CONFIG --only <notebook> --merge-summary [--set key=value ...] [--kernel K]

so overrides, executed copies, portable paths and ``run_summary.json`` are exactly those of a local run; with
``--merge-summary`` each job adds its notebook's entry to the summary instead of replacing the others' (a failed
stage leaves the earlier stages' executed notebooks, stage outputs and summary entries as they were).

The job script is rendered from a template (default ``experiments/slurm/notebook.sbatch``; placeholders
``{{name}}``, listed in :data:`TEMPLATE_VARIABLES` and in ``experiments/slurm/README.md``). Resources come from the
config's ``slurm`` section, a notebook entry's own ``slurm`` fields over it, and ``--partition`` / ``--gpus`` over
both (:func:`stage_resources`). Rendered scripts and job logs go to ``<runs_dir>/slurm/`` (large, machine-specific,
not committed); the submission record, ``<results_dir>/slurm_jobs.json``, holds per notebook the job id, its
dependency, the log and script paths and the command (paths relative to the project root, as in the summary).

``python -m r1lib status CONFIG`` reads that record and asks Slurm about each job: ``squeue`` for queued and
running jobs, ``sacct`` for finished ones, and ``scontrol show job`` when accounting is not configured (finished
jobs stay there for the cluster's MinJobAge, 300 s by default). A job Slurm no longer knows is reported from
its notebook's entry in ``run_summary.json``.

Plain ``sbatch`` rather than submitit: submitit pickles a Python function into its own folder layout and needs
submitit on the cluster side too; a rendered shell script running ``r1lib run`` can be read, edited and
resubmitted by hand, and a chain of stages is one sbatch option.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from r1lib.config import ConfigError, ExperimentConfig, NotebookEntry, SlurmConfig, load_config, parse_overrides
from r1lib.paths import portable_path, relativize_text
from r1lib.runner import SUMMARY_FILE, merge_by_notebook, select_notebooks, utc_now
from r1lib.schedule import notebook_needs
from r1lib.tracking import atomic_write_json, atomic_write_text

__all__ = [
    "SLURM_JOBS_FILE",
    "DEFAULT_TEMPLATE",
    "TEMPLATE_VARIABLES",
    "SlurmError",
    "SubmittedJob",
    "JobState",
    "NotebookStatus",
    "StatusReport",
    "stage_resources",
    "sbatch_options",
    "render_template",
    "job_command",
    "submit_experiment",
    "query_jobs",
    "experiment_status",
    "format_status",
]

SLURM_JOBS_FILE = "slurm_jobs.json"
DEFAULT_TEMPLATE = Path("experiments") / "slurm" / "notebook.sbatch"
TEMPLATE_VARIABLES: dict[str, str] = {
    "job_name": "r1lib-<experiment>-<notebook stem>",
    "log": "absolute path of the job's log (stdout and stderr), with %j for the job id",
    "sbatch_options": "the #SBATCH lines of the resources (partition, gpus, cpus, time, mem, extra)",
    "workdir": "absolute path of the project root (the runner's working directory)",
    "setup": "the config's slurm.setup lines (module load, source a venv, ...)",
    "command": "the r1lib command that executes the notebook (shell-quoted)",
    "notebook": "the notebook's file name",
    "experiment": "the experiment name",
    "config": "absolute path of the experiment YAML",
    "gpus": "GPUs per node requested (0 if none)",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
# States after which a job will never run (again); CANCELLED covers the dependents Slurm kills.
FAILED_STATES = frozenset({"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                           "PREEMPTED", "REVOKED", "SPECIAL_EXIT"})
NEVER_SATISFIED = "DependencyNeverSatisfied"


class SlurmError(RuntimeError):
    """A Slurm command failed or is missing; the message holds the command and its error output."""


@dataclass
class SubmittedJob:
    """One notebook's job, as recorded in ``slurm_jobs.json`` (paths relative to the project root)."""

    notebook: str
    job_id: str
    dependency: str | None   # the job id(s) it waits for, joined by ':' ("afterok:" in its sbatch line)
    log: str
    script: str
    command: str
    sbatch: list[str]
    resources: dict[str, Any]
    submitted: str


@dataclass
class JobState:
    """What Slurm (or, failing that, ``run_summary.json``) says about one job."""

    job_id: str
    state: str                 # COMPLETED, RUNNING, PENDING, FAILED, CANCELLED, ..., UNKNOWN
    elapsed: str | None = None
    exit_code: str | None = None
    reason: str | None = None
    dependency: str | None = None
    source: str = "unknown"    # squeue, sacct, scontrol, run_summary.json

    @property
    def failed(self) -> bool:
        """The job failed or will never run (a dependency failed)."""
        return self.state in FAILED_STATES or self.reason == NEVER_SATISFIED


# --------------------------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------------------------


def stage_resources(cfg: ExperimentConfig, entry: NotebookEntry, *, partition: str | None = None,
                    gpus: int | None = None) -> SlurmConfig:
    """The resources of one notebook's job: the config's ``slurm`` section, the entry's ``slurm`` fields that are
    set (not None) over it, ``extra``/``setup`` appended, then ``partition``/``gpus`` (the CLI) over both."""
    merged = cfg.slurm.model_dump()
    if entry.slurm is not None:
        for key, value in entry.slurm.model_dump().items():
            if key in ("extra", "setup"):
                merged[key] = merged[key] + value
            elif value is not None:
                merged[key] = value
    if partition is not None:
        merged["partition"] = partition
    if gpus is not None:
        merged["gpus_per_node"] = gpus
    return SlurmConfig.model_validate(merged)


def sbatch_options(res: SlurmConfig) -> list[str]:
    """The ``#SBATCH`` lines of the resources (nothing for a field left to the cluster's default)."""
    opts = []
    if res.partition:
        opts.append(f"--partition={res.partition}")
    if res.gpus_per_node:
        opts.append(f"--gpus-per-node={res.gpus_per_node}")
    if res.cpus:
        opts.append(f"--cpus-per-task={res.cpus}")
    if res.time:
        opts.append(f"--time={res.time}")
    if res.mem:
        opts.append(f"--mem={res.mem}")
    opts.extend(res.extra)
    return [f"#SBATCH {o}" for o in opts]


def render_template(text: str, values: Mapping[str, str], source: str) -> str:
    """Fill the ``{{name}}`` placeholders of a job template.

    Written by hand rather than with string.Template or Jinja2: a batch script is full of shell ``$VAR``,
    ``${VAR}`` and ``${#x}`` (a Jinja2 comment opener), and an unknown placeholder must be an error naming the
    template's line, not an empty string in a job that then fails on the cluster.
    """
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in _PLACEHOLDER.finditer(line):
            if m.group(1) not in values:
                raise ConfigError(f"{source}: line {lineno}: unknown placeholder {{{{{m.group(1)}}}}}; "
                                  f"known: {', '.join(sorted(values))}")
    if "command" not in {m.group(1) for m in _PLACEHOLDER.finditer(text)}:
        raise ConfigError(f"{source}: the template has no {{{{command}}}} placeholder: its job would not run the "
                          f"notebook")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def job_command(cfg: ExperimentConfig, entry: NotebookEntry, overrides: Mapping[str, Any], *,
                kernel_name: str = "python3", python: str | None = None) -> list[str]:
    """The command a job runs: r1lib's runner on this one notebook, with the run's overrides (values as JSON,
    which the runner parses back as YAML, so they arrive unchanged) and a merged summary."""
    if cfg.config_path is None:
        raise ValueError("the config was not loaded from a file; a job needs a config path")
    cmd = [python or sys.executable, "-m", "r1lib", "run", str(cfg.config_path), "--only", Path(entry.path).stem,
           "--merge-summary", "--kernel", kernel_name]
    for key, value in overrides.items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    return cmd


def _resolve_template(template: str | Path | None, root: Path) -> Path:
    path = Path(template) if template is not None else DEFAULT_TEMPLATE
    for candidate in ([path] if path.is_absolute() else [Path.cwd() / path, root / path]):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"--slurm-template: file not found: {path} (looked in {Path.cwd()} and {root})")


def _run(cmd: Sequence[str], what: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client command; a missing binary or (with ``check``) a non-zero exit is a SlurmError."""
    if shutil.which(cmd[0]) is None:
        raise SlurmError(f"{cmd[0]} not found: {what} needs the Slurm client commands (run on a login node)")
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SlurmError(f"{shlex.join(cmd)} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _load_record(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable submission record: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ConfigError(f"{path}: not a submission record (no 'jobs' list)")
    return data


def submit_experiment(config_path: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                      only: Sequence[str] | None = None, *, template: str | Path | None = None,
                      partition: str | None = None, gpus: int | None = None, kernel_name: str = "python3",
                      dry_run: bool = False, log: Callable[[str], None] | None = print) -> list[SubmittedJob]:
    """Submit the notebooks as a chain of jobs (see the module docstring); returns the jobs in order.

    Everything is checked before the first ``sbatch``: the config, the overrides, ``only``, the resources and the
    template. If an ``sbatch`` fails, the jobs of this chain already submitted are cancelled (``scancel``) so that
    no half chain runs, and :class:`SlurmError` is raised. ``dry_run`` writes the job scripts and prints the
    commands without submitting (job ids are then ``DRYRUN-<i>``) and leaves ``slurm_jobs.json`` alone.
    The record ``<results_dir>/slurm_jobs.json`` keeps the entries of notebooks not submitted now (an earlier
    chain), so ``status`` still finds them.
    """
    say = log or (lambda _msg: None)
    cli_overrides = parse_overrides(overrides)
    cfg = load_config(config_path, cli_overrides)
    entries = select_notebooks(cfg, only)
    if gpus is not None and gpus < 0:
        raise ConfigError(f"--gpus must be >= 0 (got {gpus})")
    try:
        resources = [stage_resources(cfg, e, partition=partition, gpus=gpus) for e in entries]
    except ValueError as exc:  # pydantic's ValidationError: a bad --partition
        raise ConfigError(f"--partition/--gpus: {exc}") from None
    template_path = _resolve_template(template, cfg.root)
    template_text = template_path.read_text(encoding="utf-8")
    root = cfg.root
    jobs_dir = cfg.runs_path / "slurm"
    scripts = []
    for entry, res in zip(entries, resources):
        stem = Path(entry.path).stem
        cmd = job_command(cfg, entry, cli_overrides, kernel_name=kernel_name)
        values = {
            "job_name": f"r1lib-{cfg.name}-{stem}",
            "log": str(jobs_dir / f"{stem}-%j.log"),
            "sbatch_options": "\n".join(sbatch_options(res)),
            "workdir": shlex.quote(str(root)),
            "setup": "\n".join(res.setup),
            "command": shlex.join(cmd),
            "notebook": Path(entry.path).name,
            "experiment": cfg.name,
            "config": shlex.quote(str(cfg.config_path)),
            "gpus": str(res.gpus_per_node or 0),
        }
        scripts.append((entry, res, cmd, render_template(template_text, values, portable_path(template_path, root)),
                        values["log"]))
    jobs_dir.mkdir(parents=True, exist_ok=True)
    cfg.results_path.mkdir(parents=True, exist_ok=True)
    submitted: list[SubmittedJob] = []
    previous: str | None = None
    needs = notebook_needs(cfg.notebooks, entries)
    job_of: dict[str, str] = {}
    for i, (entry, res, cmd, script_text, log_pattern) in enumerate(scripts, 1):
        script = jobs_dir / f"{Path(entry.path).stem}.sbatch"
        atomic_write_text(script, script_text)
        script.chmod(0o755)
        sbatch = ["sbatch", "--parsable"]
        # listed needs: their jobs; without a list: the job before (the plain chain)
        after = [job_of[n] for n in needs[Path(entry.path).name]] if entry.needs is not None else \
            [previous] if previous is not None else []
        if after:
            sbatch += [f"--dependency=afterok:{':'.join(after)}", "--kill-on-invalid-dep=yes"]
        sbatch.append(str(script))
        if dry_run:
            job_id = f"DRYRUN-{i}"
        else:
            try:
                proc = _run(sbatch, "--executor slurm")
            except SlurmError:
                _cancel([j.job_id for j in submitted], say)
                raise
            job_id = proc.stdout.strip().split(";", 1)[0]   # --parsable: "jobid" or "jobid;cluster"
            if not job_id.isdigit():
                _cancel([j.job_id for j in submitted], say)
                raise SlurmError(f"{shlex.join(sbatch)}: unexpected output {proc.stdout.strip()!r} (expected a job id)")
        log_path = Path(log_pattern.replace("%j", job_id))
        job = SubmittedJob(notebook=Path(entry.path).name, job_id=job_id, dependency=":".join(after) or None,
                           log=portable_path(log_path, root), script=portable_path(script, root),
                           command=relativize_text(shlex.join(cmd), root),
                           sbatch=[relativize_text(a, root) for a in sbatch],
                           resources=res.model_dump(exclude_defaults=True), submitted=utc_now())
        submitted.append(job)
        previous = job_of[job.notebook] = job_id
        verb = "would submit" if dry_run else "submitted"
        waits = f" after job{'s' * (len(after) > 1)} {', '.join(after)}" if after else ""
        say(f"[{i}/{len(scripts)}] {job.notebook}: {verb} job {job_id}{waits}; log {job.log}")
        if dry_run:
            say(f"    {shlex.join(sbatch)}")
    if not dry_run:
        _write_record(cfg, cli_overrides, submitted)
        say(f"{cfg.name}: {len(submitted)} job(s) submitted; record {portable_path(cfg.results_path / SLURM_JOBS_FILE, root)}"
            f"; follow with: python -m r1lib status {portable_path(cfg.config_path or Path(config_path), root)}"
            + "".join(f" --set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in cli_overrides.items()))
    return submitted


def _cancel(job_ids: Sequence[str], say: Callable[[str], None]) -> None:
    if not job_ids:
        return
    proc = subprocess.run(["scancel", *job_ids], capture_output=True, text=True, check=False)
    state = "cancelled" if proc.returncode == 0 else f"could not be cancelled ({proc.stderr.strip()})"
    say(f"submission failed: the jobs already submitted ({', '.join(job_ids)}) {state}")


def _write_record(cfg: ExperimentConfig, overrides: Mapping[str, Any], jobs: Sequence[SubmittedJob]) -> None:
    """Write ``slurm_jobs.json``: these jobs, plus the earlier record's entries of other notebooks (config order)."""
    path = cfg.results_path / SLURM_JOBS_FILE
    try:
        old = _load_record(path) or {}
    except ConfigError:
        old = {}  # an unreadable record is replaced: the new jobs must be findable
    all_jobs = merge_by_notebook(old.get("jobs", []), [asdict(j) for j in jobs], "notebook",
                                 [Path(e.path).name for e in cfg.notebooks])
    root = cfg.root
    record = {"experiment": cfg.name, "config_path": portable_path(cfg.config_path, root) if cfg.config_path else None,
              "results_dir": portable_path(cfg.results_path, root), "overrides": dict(overrides), "updated": utc_now(),
              "jobs": all_jobs}
    atomic_write_json(path, record, default=str)


# --------------------------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------------------------


def _first_word(state: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``COMPLETED+`` -> ``COMPLETED``."""
    return state.split()[0].rstrip("+") if state.strip() else "UNKNOWN"


def _squeue(ids: Sequence[str]) -> dict[str, JobState]:
    proc = _run(["squeue", "-h", "-j", ",".join(ids), "-o", "%i|%T|%M|%r"], "status", check=False)
    out: dict[str, JobState] = {}
    if proc.returncode != 0:   # "Invalid job id specified" when none of them is queued any more
        return out
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] in ids:
            out[parts[0]] = JobState(parts[0], _first_word(parts[1]), parts[2], None,
                                     None if parts[3] in ("None", "") else parts[3], source="squeue")
    return out


def _sacct(ids: Sequence[str]) -> dict[str, JobState]:
    """Finished jobs from accounting; empty when accounting is not configured (sacct then exits non-zero:
    'Slurm accounting storage is disabled')."""
    proc = _run(["sacct", "-n", "-P", "-X", "-j", ",".join(ids), "-o", "JobID,State,Elapsed,ExitCode"], "status",
                check=False)
    out: dict[str, JobState] = {}
    if proc.returncode != 0:
        return out
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and parts[0] in ids:
            out[parts[0]] = JobState(parts[0], _first_word(parts[1]), parts[2], parts[3], source="sacct")
    return out


def _scontrol(job_id: str) -> JobState | None:
    """A job still in the controller's memory (until MinJobAge after it ended); None if it is gone."""
    proc = _run(["scontrol", "-o", "show", "job", job_id], "status", check=False)
    if proc.returncode != 0 or "JobId=" not in proc.stdout:
        return None
    fields = dict(re.findall(r"(?:^|\s)([A-Za-z/:_]+)=(\S*)", proc.stdout))
    reason = fields.get("Reason")
    return JobState(job_id, _first_word(fields.get("JobState", "UNKNOWN")), fields.get("RunTime"),
                    fields.get("ExitCode"), None if reason in (None, "None") else reason,
                    None if fields.get("Dependency") in (None, "(null)") else fields.get("Dependency"),
                    source="scontrol")


def query_jobs(job_ids: Sequence[str]) -> dict[str, JobState]:
    """The state of each job: squeue (queued, running), then sacct (finished, if accounting is on), then
    scontrol (accounting off). Jobs none of them knows are left out. Raises SlurmError without squeue."""
    ids = [j for j in job_ids if j.isdigit()]
    if not ids:
        return {}
    states = _squeue(ids)
    rest = [j for j in ids if j not in states]
    if rest and shutil.which("sacct") is not None:
        states.update(_sacct(rest))
    for job_id in [j for j in ids if j not in states]:
        found = _scontrol(job_id)
        if found is not None:
            states[job_id] = found
    return states


@dataclass
class NotebookStatus:
    """One line of ``status``: a recorded job, its state and its notebook's summary entry (if any)."""

    job: dict[str, Any]
    state: JobState
    summary: dict[str, Any] | None = None


@dataclass
class StatusReport:
    """The status of an experiment's recorded jobs."""

    experiment: str
    record_path: str
    rows: list[NotebookStatus] = field(default_factory=list)
    note: str | None = None

    @property
    def failed(self) -> list[NotebookStatus]:
        return [r for r in self.rows if r.state.failed]


def _from_summary(job_id: str, entry: dict[str, Any] | None) -> JobState:
    """A job Slurm has forgotten, told from its notebook's summary entry when that entry was written by it."""
    if entry is not None and str(entry.get("slurm_job_id")) == job_id:
        state = "COMPLETED" if entry.get("status") == "ok" else "FAILED"
        seconds = entry.get("seconds")
        return JobState(job_id, state, f"{seconds:.0f}s (notebook)" if isinstance(seconds, (int, float)) else None,
                        source=SUMMARY_FILE)
    return JobState(job_id, "UNKNOWN", source="unknown")


def experiment_status(config_path: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None
                      ) -> StatusReport:
    """Read ``<results_dir>/slurm_jobs.json`` and ask Slurm about each job (see :func:`query_jobs`)."""
    cfg = load_config(config_path, parse_overrides(overrides))
    path = cfg.results_path / SLURM_JOBS_FILE
    shown = portable_path(path, cfg.root)
    record = _load_record(path)
    if record is None:
        raise ConfigError(f"{shown}: no submission record; submit first with "
                          f"`python -m r1lib run CONFIG --executor slurm` (same --set overrides)")
    jobs = [j for j in record["jobs"] if isinstance(j, dict) and "job_id" in j]
    note = None
    try:
        states = query_jobs([str(j["job_id"]) for j in jobs])
    except SlurmError as exc:
        states, note = {}, f"{exc}; states below come from {SUMMARY_FILE}"
    summary_entries: dict[str, dict[str, Any]] = {}
    summary_path = cfg.results_path / SUMMARY_FILE
    if summary_path.exists():
        try:
            summary_entries = {nb["name"]: nb for nb in json.loads(summary_path.read_text(encoding="utf-8"))
                               .get("notebooks", []) if isinstance(nb, dict) and "name" in nb}
        except (OSError, ValueError, AttributeError) as exc:
            note = f"{SUMMARY_FILE} is unreadable: {exc}"
    report = StatusReport(cfg.name, shown, note=note)
    for job in jobs:
        job_id = str(job["job_id"])
        entry = summary_entries.get(job.get("notebook", ""))
        state = states.get(job_id) or _from_summary(job_id, entry)
        mine = entry if entry is not None and str(entry.get("slurm_job_id")) == job_id else None
        report.rows.append(NotebookStatus(job, state, mine))
    return report


def format_status(report: StatusReport) -> str:
    """The human-readable report: one line per notebook, then one paragraph per failed or cancelled job."""
    lines = [f"{report.experiment}: {len(report.rows)} job(s) in {report.record_path}"]
    if report.note:
        lines.append(f"note: {report.note}")
    width = max((len(r.job.get("notebook", "")) for r in report.rows), default=0)
    for r in report.rows:
        s = r.state
        extra = f" ({s.reason})" if s.reason and s.state != "COMPLETED" else ""
        lines.append(f"  {r.job.get('notebook', '?'):<{width}}  job {s.job_id:>8}  {s.state + extra:<40}  "
                     f"elapsed {s.elapsed or '-':>10}  log {r.job.get('log', '?')}")
    by_id = {r.state.job_id: r for r in report.rows}
    for r in report.failed:
        s, nb = r.state, r.job.get("notebook", "?")
        dep = r.job.get("dependency")   # a job id, or several joined by ':' (a notebook with `needs`)
        causes = [by_id[d] for d in str(dep).split(":") if d in by_id] if dep is not None else []
        cause = next((c for c in causes if c.state.failed), causes[0] if causes else None)
        # sacct shows no reason: a cancelled job whose dependency failed is taken as one Slurm cancelled for it.
        if s.reason == NEVER_SATISFIED or (s.state == "CANCELLED" and cause is not None and cause.state.failed):
            cause_nb = f" ({cause.job.get('notebook', '?')})" if cause is not None else ""
            lines.append(f"NOT RUN: job {s.job_id} ({nb}) was cancelled by Slurm ({NEVER_SATISFIED}): job {dep}"
                         f"{cause_nb}, which it depends on, did not complete")
            continue
        code = f", exit code {s.exit_code}" if s.exit_code else ""
        lines.append(f"FAILED: job {s.job_id} ({nb}) ended {s.state}{code}; log: {r.job.get('log', '?')}")
        if r.summary is not None and r.summary.get("error"):
            lines.append(f"    notebook error: {r.summary['error']}")
            if r.summary.get("output"):
                lines.append(f"    partly executed copy: {r.summary['output']}")
    counts: dict[str, int] = {}
    for r in report.rows:
        counts[r.state.state] = counts.get(r.state.state, 0) + 1
    lines.append(", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items())) or "no jobs")
    return "\n".join(lines)
