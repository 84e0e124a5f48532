"""Run an experiment's notebooks with papermill: in order, or several at once where their ``needs`` allow it.

For each notebook listed in the config, papermill executes it with two injected parameters:

- ``config_path``: the absolute path of the experiment YAML;
- ``overrides``: the notebook entry's overrides with the run's overrides (CLI ``--set``) merged over them.

The notebook then calls ``r1lib.config.load_config(config_path, overrides)`` itself. Executed copies go to
``<results_dir>/<notebook file name>``; papermill writes to a temporary file in that folder, which replaces
the copy only when the notebook succeeded. A failing notebook is saved as ``<stem>.failed.ipynb`` (the last
good copy is kept), the error is reported and the run goes on (a notebook whose ``needs`` list the failed one is
recorded as ``skipped``; one without ``needs`` runs anyway, as the next in order). With ``runner.parallel`` > 1,
notebooks whose needs have succeeded run at the same time, each in its own process (:mod:`r1lib.schedule`: which may overlap, and their torch threads); their status
lines then print one per notebook every ``PARALLEL_PROGRESS_INTERVAL`` seconds. A worker process that dies (killed,
out of memory) fails the notebooks it was running, with what papermill had written kept as their ``.failed`` copies,
and the run still ends with its summary. A summary of the run
is written (atomically) to ``<results_dir>/run_summary.json`` after every notebook. With ``merge_summary`` (the
Slurm executor's jobs, one notebook each: :mod:`r1lib.slurm`) the entries of the notebooks this run does not
execute are kept from the summary already there, so each stage adds its entry instead of replacing the others.

Executed notebooks and the summary are committed results, so they record no absolute paths inside the
project root (:mod:`r1lib.paths`): the summary's paths are relative to the root, and each executed copy is
rewritten by :func:`make_notebook_portable` before it is saved (papermill's metadata, the injected
parameters cell and the cell outputs: ``/home/me/r1lib/runs/x`` is stored as ``runs/x``). Paths outside the
project are kept.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from r1lib.config import ConfigError, ExperimentConfig, NotebookEntry, load_config, parse_overrides, save_config
from r1lib.paths import portable_path, relativize_obj, relativize_text
from r1lib.schedule import may_overlap, notebook_needs, start_order, thread_plan
from r1lib.tracking import atomic_write_json

__all__ = [
    "SUMMARY_FILE",
    "NotebookRun",
    "RunSummary",
    "prepare_environment",
    "select_notebooks",
    "notebook_parameters",
    "execute_notebook",
    "make_notebook_portable",
    "run_experiment",
]

SUMMARY_FILE = "run_summary.json"
RESOLVED_CONFIG_FILE = "config.yaml"
Status = Literal["ok", "failed", "skipped"]
PARALLEL_PROGRESS_INTERVAL = 30.0


@dataclass
class NotebookRun:
    """Outcome of one notebook."""

    name: str
    source: str
    status: Status
    seconds: float
    output: str | None
    error: str | None = None
    load_avg_before: list[float] | None = None   # 1/5/15-minute load averages: was the machine otherwise idle?
    load_avg_after: list[float] | None = None
    slurm_job_id: str | None = None   # the Slurm job it ran in ($SLURM_JOB_ID), None outside Slurm
    threads: int | None = None        # torch threads of its kernel when the runner set them (runner.parallel > 1)


@dataclass
class RunSummary:
    """Outcome of a whole run; ``ok`` iff every notebook succeeded."""

    experiment: str
    config_path: str
    results_dir: str
    overrides: dict[str, Any]
    started: str
    finished: str | None = None
    notebooks: list[NotebookRun] = field(default_factory=list)
    wall_seconds: float | None = None
    cpus: int | None = None
    load_avg_start: list[float] | None = None
    load_avg_end: list[float] | None = None

    @property
    def ok(self) -> bool:
        return all(nb.status == "ok" for nb in self.notebooks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the summaries' and job records' timestamps)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def merge_by_notebook(old: Sequence[Any], new: Sequence[dict[str, Any]], key: str,
                      order: Sequence[str]) -> list[dict[str, Any]]:
    """``new`` entries plus ``old``'s entries of other notebooks (``key`` holds the notebook's file name), in config
    order (``order``: the file names); used for ``run_summary.json`` and the Slurm record, which several jobs
    write in turn."""
    mine = {entry[key] for entry in new}
    kept = [entry for entry in old if isinstance(entry, dict) and entry.get(key) not in mine]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(kept + list(new), key=lambda entry: rank.get(entry.get(key), len(rank)))


def _shown(path: Path, root: Path) -> str:
    """Path relative to the repository root when inside it (summaries stay portable), else absolute."""
    return portable_path(path, root)


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (None where the OS has none): timings mean little on a busy machine."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_environment(cfg: ExperimentConfig, environ: dict[str, str] | None = None) -> None:
    """Offline Hugging Face by default, and WANDB_MODE from the config; variables already set win.

    Kernels started by papermill inherit this environment.
    """
    env = os.environ if environ is None else environ
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("WANDB_MODE", cfg.tracking.wandb_mode)


def select_notebooks(cfg: ExperimentConfig, only: Sequence[str] | None = None) -> list[NotebookEntry]:
    """The notebook entries to run, in config order; ``only`` names them by file name or stem."""
    if not only:
        return list(cfg.notebooks)
    names = {entry.path: (Path(entry.path).name, Path(entry.path).stem) for entry in cfg.notebooks}
    unknown = [n for n in only if not any(n in pair for pair in names.values())]
    if unknown:
        available = ", ".join(Path(e.path).stem for e in cfg.notebooks)
        where = cfg.config_path.name if cfg.config_path is not None else cfg.name
        raise ConfigError(f"{where}: --only {unknown[0]!r}: no such notebook in the config; available: {available}")
    return [entry for entry in cfg.notebooks if any(n in names[entry.path] for n in only)]


def notebook_parameters(cfg: ExperimentConfig, entry: NotebookEntry,
                        overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Papermill parameters for one notebook: ``config_path`` and merged ``overrides``."""
    if cfg.config_path is None:
        raise ValueError("the config was not loaded from a file; notebooks need a config_path")
    return {"config_path": str(cfg.config_path), "overrides": {**entry.overrides, **dict(overrides or {})}}


def _describe_error(exc: BaseException) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"cell {exc.cell_index} (execution count {exc.exec_count}): {exc.ename}: {exc.evalue}"
    return f"{type(exc).__name__}: {exc}"


def run_experiment(config_path: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                   only: Sequence[str] | None = None, *, kernel_name: str = "python3",
                   log: Callable[[str], None] | None = _stderr, merge_summary: bool = False) -> RunSummary:
    """Validate the config, then execute its notebooks in order (see the module docstring).

    ``merge_summary``: keep the other notebooks' entries of an existing ``run_summary.json`` (the returned
    summary, and so ``ok``, covers this run's notebooks only).

    Raises :class:`ConfigError` before running anything if the config, the overrides or ``only``
    are invalid. Notebook failures are not raised: see ``RunSummary.ok`` and ``run_summary.json``.
    """
    say = log or (lambda _msg: None)
    cli_overrides = parse_overrides(overrides)
    cfg = load_config(config_path, cli_overrides)
    entries = select_notebooks(cfg, only)
    prepare_environment(cfg)
    results = cfg.results_path
    results.mkdir(parents=True, exist_ok=True)
    save_config(cfg, results / RESOLVED_CONFIG_FILE)
    summary = RunSummary(experiment=cfg.name, config_path=_shown(cfg.config_path or Path(config_path), cfg.root),
                         results_dir=_shown(results, cfg.root), overrides=cli_overrides, started=utc_now(),
                         cpus=os.cpu_count(), load_avg_start=load_average())
    t_start = time.perf_counter()
    summary_path = results / SUMMARY_FILE
    order = [Path(e.path).name for e in cfg.notebooks]

    def write_summary() -> None:
        data = summary.to_dict()
        if merge_summary:
            data = _merged_summary(summary_path, data, order, warn=say)
        atomic_write_json(summary_path, data, default=str)

    needs = notebook_needs(cfg.notebooks, entries)
    exclusive = {Path(e.path).name for e in entries if e.exclusive}
    # several at once only where the needs let two notebooks overlap; otherwise in this process, one by one
    parallel = cfg.runner.parallel if any(may_overlap(needs, exclusive).values()) else 1
    threads = thread_plan(needs, parallel, usable_cpus(), exclusive)
    index = {Path(e.path).name: i for i, e in enumerate(entries, 1)}
    pending = list(entries)
    state: dict[str, Status] = {}
    runs: dict[str, NotebookRun] = {}
    if parallel > 1:
        say(f"{cfg.name}: up to {parallel} notebooks at once; threads: "
            + ", ".join(f"{Path(n).stem} {t or 'all'}" for n, t in threads.items()))

    def record(outcome: NotebookRun) -> None:
        runs[outcome.name] = outcome
        state[outcome.name] = outcome.status
        summary.notebooks = sorted(runs.values(), key=lambda r: index[r.name])
        write_summary()
        tag = f"[{index[outcome.name]}/{len(entries)}] {outcome.name}"
        if outcome.status == "ok":
            say(f"{tag}: ok ({outcome.seconds:.1f} s) -> {outcome.output}")
        elif outcome.status == "skipped":
            say(f"{tag}: skipped: {outcome.error}")
        else:
            kept = f"; failed copy: {outcome.output}" if outcome.output else ""
            say(f"{tag}: FAILED ({outcome.seconds:.1f} s): {outcome.error}{kept}")

    with _executor(parallel) as pool:
        running: dict[concurrent.futures.Future, _NotebookJob] = {}
        while pending or running:
            for entry in list(pending):   # skip those whose listed needs failed or were skipped
                name = Path(entry.path).name
                blocked = [n for n in needs[name] if state.get(n) in ("failed", "skipped")] if entry.needs else []
                if blocked:
                    pending.remove(entry)
                    record(NotebookRun(name, _shown(cfg.notebook_path(entry), cfg.root), "skipped", 0.0, None,
                                       f"needs {', '.join(Path(n).stem for n in blocked)}, which did not succeed"))
            # a notebook starts once all of its needs have finished (listed ones succeeded: else skipped above);
            # several at once: the head of the longest chain first; one at a time: config order
            ready = [Path(e.path).name for e in pending if all(n in state for n in needs[Path(e.path).name])]
            ready = start_order(ready, needs) if parallel > 1 else ready
            for name in ready:
                if len(running) >= parallel or any(other.source.name in exclusive for other in running.values()):
                    break
                if name in exclusive and running:
                    break   # it waits for the others to finish, and nothing starts before it
                entry = next(e for e in pending if Path(e.path).name == name)
                pending.remove(entry)
                source = cfg.notebook_path(entry)
                tag = f"[{index[name]}/{len(entries)}]"
                say(f"{tag} {source.name} ..."
                    + (f" ({threads[name]} thread{'s' * (threads[name] != 1)})" if threads[name] else ""))
                job = _NotebookJob(source=source, output=results / source.name,
                                   parameters=notebook_parameters(cfg, entry, cli_overrides),
                                   kernel_name=kernel_name, root=cfg.root, threads=threads[name],
                                   progress_label=f"{tag} {source.stem}" if log else None,
                                   progress_tty=False if parallel > 1 else None,
                                   progress_interval=PARALLEL_PROGRESS_INTERVAL if parallel > 1 else 60.0)
                try:
                    running[pool.submit(_run_job, job)] = job
                except concurrent.futures.BrokenExecutor as exc:
                    record(_lost(job, exc))
            if not running:
                if pending:  # cannot happen: needs name earlier notebooks only (config validation)
                    raise RuntimeError(f"no notebook can start: {[Path(e.path).name for e in pending]}")
                break
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    record(future.result())
                except concurrent.futures.BrokenExecutor as exc:  # its process died (killed, out of memory)
                    record(_lost(job, exc))
    summary.finished = utc_now()
    summary.wall_seconds = round(time.perf_counter() - t_start, 1)
    summary.load_avg_end = load_average()
    write_summary()
    n_failed = sum(nb.status != "ok" for nb in summary.notebooks)
    say(f"{cfg.name}: {len(entries) - n_failed}/{len(entries)} notebooks ok; summary: {_shown(summary_path, cfg.root)}")
    return summary


def usable_cpus() -> int:
    """The CPUs this process may run on (the affinity mask where the OS has one, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class _NotebookJob:
    """One notebook execution as the runner hands it to :func:`_run_job` (picklable: it may go to a worker)."""

    source: Path
    output: Path
    parameters: dict[str, Any]
    kernel_name: str
    root: Path
    threads: int | None = None
    progress_label: str | None = None
    progress_tty: bool | None = None
    progress_interval: float = 60.0


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _run_job(job: _NotebookJob) -> NotebookRun:
    """Execute one notebook (:func:`execute_notebook`) with the load averages around it and, when ``job.threads``
    is set, its kernel limited to that many threads (the kernel inherits this process's environment, which is
    restored afterwards: a worker process runs several notebooks in turn)."""
    before = load_average()
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    if job.threads is not None:
        os.environ.update({var: str(job.threads) for var in _THREAD_VARS})
    try:
        outcome = execute_notebook(job.source, job.output, job.parameters, kernel_name=job.kernel_name,
                                   root=job.root, progress_label=job.progress_label,
                                   progress_interval=job.progress_interval, progress_tty=job.progress_tty)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    outcome.load_avg_before, outcome.load_avg_after = before, load_average()
    outcome.slurm_job_id = os.environ.get("SLURM_JOB_ID")
    outcome.threads = job.threads
    return outcome


def _partial_name(output: Path) -> tuple[str, str]:
    """Prefix and suffix of papermill's temporary output for ``output`` (:func:`execute_notebook` writes it, a dead
    worker's notebook is recovered from it: :func:`_lost`)."""
    return f".tmp-{output.stem}-", ".ipynb"


def _lost(job: _NotebookJob, exc: BaseException) -> NotebookRun:
    """The record of a notebook whose worker process died before it could report. What papermill had written of it
    (its temporary output, saved after every cell) is kept as ``<stem>.failed.ipynb``, as for a failing notebook."""
    failed = job.output.with_name(f"{job.output.stem}.failed.ipynb")
    prefix, suffix = _partial_name(job.output)
    partial = sorted(job.output.parent.glob(f"{prefix}*{suffix}"), key=lambda f: f.stat().st_mtime)
    saved = None
    if partial and partial[-1].stat().st_size > 0:
        _make_portable_quietly(partial[-1], job.root, source=job.source, output=failed)
        os.replace(partial.pop(), failed)
        saved = _shown(failed, job.root)
    for leftover in partial:
        leftover.unlink(missing_ok=True)
    return NotebookRun(job.source.name, _shown(job.source, job.root), "failed", 0.0, saved,
                       f"its process died ({type(exc).__name__}: {exc})", threads=job.threads)


class _InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted call at once in this process (``runner.parallel`` 1: no worker processes, so a plain
    run behaves as before: one kernel after another, Ctrl-C reaches it directly)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _executor(parallel: int) -> concurrent.futures.Executor:
    """Where notebooks run: in this process one at a time, or in ``parallel`` worker processes (spawned, so that
    no thread or lock state of this process is copied into them)."""
    if parallel <= 1:
        return _InlineExecutor()
    return concurrent.futures.ProcessPoolExecutor(max_workers=parallel,
                                                  mp_context=multiprocessing.get_context("spawn"))


def _merged_summary(path: Path, data: dict[str, Any], order: Sequence[str],
                    warn: Callable[[str], None]) -> dict[str, Any]:
    """``data`` (this run's summary) with the entries of ``path``'s notebooks that this run did not execute,
    in config order (``order``: file names); ``ok`` then covers all of them.

    The file is read again at every write, so an entry another job wrote meanwhile is kept too. An unreadable
    file is reported and replaced (a summary that cannot be read cannot be merged).
    """
    import json

    try:
        previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        old = list(previous.get("notebooks", []))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        warn(f"warning: {path.name} is unreadable ({type(exc).__name__}: {exc}); it is replaced, not merged")
        old = []
    notebooks = merge_by_notebook(old, data["notebooks"], "name", order)
    return {**data, "notebooks": notebooks, "ok": all(nb.get("status") == "ok" for nb in notebooks)}


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, Any], *,
                     kernel_name: str = "python3", root: Path | None = None, progress_label: str | None = None,
                     progress_interval: float = 60.0, progress_tty: bool | None = None) -> NotebookRun:
    """Execute ``source`` into ``output`` with papermill (kernel cwd = ``root``); never raises for
    a notebook error. With ``progress_label``, a status line on stderr while it runs (:mod:`r1lib.progress`:
    the cell, the elapsed time, the cell's last progress bar; in place on a terminal, else every
    ``progress_interval`` seconds; ``progress_tty=False``: new lines even on a terminal, as when several notebooks
    print their status at once).

    Papermill writes to a temporary file in ``output``'s folder, which replaces ``output`` only on
    success (a stale ``<stem>.failed.ipynb`` is then removed). On failure the partly executed notebook
    is saved as ``<stem>.failed.ipynb``, ``output`` is left untouched, and the error
    ("cell N (execution count M): ExcType: message") is returned in the result.
    """
    import papermill

    root = root or Path.cwd()
    output.parent.mkdir(parents=True, exist_ok=True)
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    prefix, suffix = _partial_name(output)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    start = time.perf_counter()
    error: str | None = None
    try:
        try:
            with contextlib.ExitStack() as stack:
                kw: dict[str, Any] = {}
                if progress_label is not None:
                    from r1lib.progress import NotebookProgress, register_engine

                    progress = stack.enter_context(NotebookProgress(progress_label, interval=progress_interval,
                                                                       tty=progress_tty))
                    kw = {"engine_name": register_engine(), "progress": progress, "stdout_file": progress,
                          "stderr_file": progress}
                # The kernel's own application log is limited to errors: every local kernel otherwise prints
                # ipykernel's warning that its localhost TCP sockets are unencrypted, once per notebook. What the
                # notebook's code warns or logs still lands in the notebook (the kernel captures its stderr).
                papermill.execute_notebook(str(source), str(tmp), parameters=dict(parameters),
                                           kernel_name=kernel_name, cwd=str(root), progress_bar=False,
                                           extra_arguments=["--IPKernelApp.log_level=ERROR"], **kw)
        except Exception as exc:  # noqa: BLE001 - one notebook's failure is reported, the run goes on
            error = _describe_error(exc)
        if error is None:
            _make_portable_quietly(tmp, root, source=source, output=output)
            os.replace(tmp, output)
            failed.unlink(missing_ok=True)  # a failure from an earlier run no longer applies
        elif tmp.stat().st_size > 0:
            _make_portable_quietly(tmp, root, source=source, output=failed)
            os.replace(tmp, failed)
    finally:
        tmp.unlink(missing_ok=True)  # only left over when nothing was written or on KeyboardInterrupt
    seconds = round(time.perf_counter() - start, 3)
    if error is None:
        return NotebookRun(source.name, _shown(source, root), "ok", seconds, _shown(output, root))
    saved = _shown(failed, root) if failed.exists() else None
    return NotebookRun(source.name, _shown(source, root), "failed", seconds, saved, error)


def _text_fields(value: Any, root: Path) -> Any:
    """A notebook text field (a string or a list of lines) with absolute paths inside ``root`` relativised."""
    if isinstance(value, str):
        return relativize_text(value, root)
    if isinstance(value, list):
        return [relativize_text(v, root) if isinstance(v, str) else v for v in value]
    return value


def make_notebook_portable(path: Path, root: Path, *, source: Path | None = None,
                           output: Path | None = None) -> None:
    """Rewrite an executed notebook in place so that it holds no absolute path inside ``root``.

    - papermill's metadata: ``input_path`` becomes ``source`` and ``output_path`` becomes ``output`` (the
      final name, not papermill's temporary file), relative to ``root``; ``parameters`` and the other
      recorded values are relativised;
    - the ``injected-parameters`` cell (``config_path = "<root>/experiments/x.yaml"``);
    - every cell output's text: streams, ``text/*`` and JSON display data, error values and tracebacks
      (printed paths, reprs of ``Path`` objects, library messages). Images are left alone.

    Paths outside ``root`` (``~/.cache``, ``/tmp``) are kept.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    pm = nb.metadata.get("papermill")
    if pm is not None:
        for key, value in list(pm.items()):
            if key == "input_path" and source is not None:
                pm[key] = portable_path(source, root)
            elif key == "output_path" and output is not None:
                pm[key] = portable_path(output, root)
            else:
                pm[key] = relativize_obj(value, root) if isinstance(value, (str, list, dict)) else value
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = _text_fields(cell.source, root)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = _text_fields(out["text"], root)
            if "evalue" in out:
                out["evalue"] = _text_fields(out["evalue"], root)
            if "traceback" in out:
                out["traceback"] = _text_fields(out["traceback"], root)
            for mime, value in (out.get("data") or {}).items():
                if mime.startswith("text/") or mime.endswith("+json") or mime == "application/json" \
                        or mime == "image/svg+xml":
                    out["data"][mime] = (relativize_obj(value, root) if isinstance(value, dict)
                                         else _text_fields(value, root))
    nbformat.write(nb, str(path))


def _make_portable_quietly(path: Path, root: Path, *, source: Path, output: Path) -> None:
    """:func:`make_notebook_portable`, reporting (not raising) a failure: the executed notebook is kept."""
    try:
        make_notebook_portable(path, root, source=source, output=output)
    except Exception as exc:  # noqa: BLE001 - never lose an executed notebook over its paths
        _stderr(f"warning: could not make {output.name} portable (absolute paths kept): {type(exc).__name__}: {exc}")
