"""Run an experiment's notebooks in order with papermill.

For each notebook listed in the config, papermill executes it with two injected parameters:

- ``config_path``: the absolute path of the experiment YAML;
- ``overrides``: the notebook entry's overrides with the run's overrides (CLI ``--set``) merged over them.

The notebook then calls ``r1lib.config.load_config(config_path, overrides)`` itself. Executed copies go to
``<results_dir>/<notebook file name>``; papermill writes to a temporary file in that folder, which replaces
the copy only when the notebook succeeded. A failing notebook is saved as ``<stem>.failed.ipynb`` (the last
good copy is kept), the error is reported and the run goes on with the next notebook. A summary of the run
is written (atomically) to ``<results_dir>/run_summary.json`` after every notebook.
"""

from __future__ import annotations

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
from r1lib.tracking import atomic_write_json

__all__ = [
    "SUMMARY_FILE",
    "NotebookRun",
    "RunSummary",
    "prepare_environment",
    "select_notebooks",
    "notebook_parameters",
    "execute_notebook",
    "run_experiment",
]

SUMMARY_FILE = "run_summary.json"
RESOLVED_CONFIG_FILE = "config.yaml"
Status = Literal["ok", "failed"]


@dataclass
class NotebookRun:
    """Outcome of one notebook."""

    name: str
    source: str
    status: Status
    seconds: float
    output: str | None
    error: str | None = None


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

    @property
    def ok(self) -> bool:
        return all(nb.status == "ok" for nb in self.notebooks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _shown(path: Path, root: Path) -> str:
    """Path relative to the repository root when inside it (summaries stay portable), else absolute."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


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
                   log: Callable[[str], None] | None = _stderr) -> RunSummary:
    """Validate the config, then execute its notebooks in order (see the module docstring).

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
                         results_dir=_shown(results, cfg.root), overrides=cli_overrides, started=_now())
    summary_path = results / SUMMARY_FILE
    for i, entry in enumerate(entries, 1):
        source = cfg.notebook_path(entry)
        output = results / source.name
        say(f"[{i}/{len(entries)}] {source.name} ...")
        outcome = execute_notebook(source, output, notebook_parameters(cfg, entry, cli_overrides),
                                   kernel_name=kernel_name, root=cfg.root)
        summary.notebooks.append(outcome)
        atomic_write_json(summary_path, summary.to_dict(), default=str)
        if outcome.status == "ok":
            say(f"[{i}/{len(entries)}] {source.name}: ok ({outcome.seconds:.1f} s) -> {outcome.output}")
        else:
            kept = f"; failed copy: {outcome.output}" if outcome.output else ""
            say(f"[{i}/{len(entries)}] {source.name}: FAILED ({outcome.seconds:.1f} s): {outcome.error}{kept}")
    summary.finished = _now()
    atomic_write_json(summary_path, summary.to_dict(), default=str)
    n_failed = sum(nb.status != "ok" for nb in summary.notebooks)
    say(f"{cfg.name}: {len(entries) - n_failed}/{len(entries)} notebooks ok; summary: {_shown(summary_path, cfg.root)}")
    return summary


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, Any], *,
                     kernel_name: str = "python3", root: Path | None = None) -> NotebookRun:
    """Execute ``source`` into ``output`` with papermill (kernel cwd = ``root``); never raises for
    a notebook error.

    Papermill writes to a temporary file in ``output``'s folder, which replaces ``output`` only on
    success (a stale ``<stem>.failed.ipynb`` is then removed). On failure the partly executed notebook
    is saved as ``<stem>.failed.ipynb``, ``output`` is left untouched, and the error
    ("cell N (execution count M): ExcType: message") is returned in the result.
    """
    import papermill

    root = root or Path.cwd()
    output.parent.mkdir(parents=True, exist_ok=True)
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".tmp-{output.stem}-", suffix=".ipynb")
    os.close(fd)
    tmp = Path(tmp_name)
    start = time.perf_counter()
    error: str | None = None
    try:
        try:
            papermill.execute_notebook(str(source), str(tmp), parameters=dict(parameters),
                                       kernel_name=kernel_name, cwd=str(root), progress_bar=False)
        except Exception as exc:  # noqa: BLE001 - one notebook's failure is reported, the run goes on
            error = _describe_error(exc)
        if error is None:
            os.replace(tmp, output)
            failed.unlink(missing_ok=True)  # a failure from an earlier run no longer applies
        elif tmp.stat().st_size > 0:
            os.replace(tmp, failed)
    finally:
        tmp.unlink(missing_ok=True)  # only left over when nothing was written or on KeyboardInterrupt
    seconds = round(time.perf_counter() - start, 3)
    if error is None:
        return NotebookRun(source.name, _shown(source, root), "ok", seconds, _shown(output, root))
    saved = _shown(failed, root) if failed.exists() else None
    return NotebookRun(source.name, _shown(source, root), "failed", seconds, saved, error)
