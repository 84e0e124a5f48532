"""Metrics tracking: an append-only local JSONL log, mirrored to Weights & Biases (offline by default).

The JSONL file (``<run_dir>/metrics.jsonl``) is the source of truth: one JSON object per line,
``{"step": ..., "time": ..., **metrics}``, flushed line by line so a crash loses at most the line
being written. W&B is optional: it is imported lazily, and any W&B failure is a warning, never an
error (the local log keeps going).

Also home of the atomic file-writing helpers that the rest of r1lib uses
(:func:`atomic_write_text`, :func:`atomic_write_json`).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # heavy imports only for type checkers
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "METRICS_FILE",
    "Tracker",
    "read_metrics",
    "plot_metrics",
    "atomic_write_text",
    "atomic_write_json",
]

METRICS_FILE = "metrics.jsonl"
_RESERVED = ("step", "time")
WandbMode = Literal["offline", "online", "disabled"]


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, then os.replace.

    Readers see either the old file or the complete new one, never a partial write. Parent folders
    are created. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = None) -> Path:
    """Serialize ``obj`` as JSON (strict: no NaN/Infinity) and write it atomically.

    ``default`` is passed to ``json.dumps`` (e.g. ``str`` for dates, paths).
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False, default=default)
    return atomic_write_text(path, text + "\n")


# --------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------


def _to_float(key: str, value: Any) -> float:
    """Metric values must be real numbers (Python, numpy or 0-d torch scalars)."""
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric '{key}' must be a number, got {type(value).__name__}: {value!r:.60}") from None


class Tracker:
    """Log scalar metrics to ``<run_dir>/metrics.jsonl`` and (unless disabled) to W&B.

    Usage::

        with Tracker(run_dir, config=config_to_dict(cfg), wandb_mode=cfg.tracking.wandb_mode) as tr:
            tr.log({"loss": 1.23, "reward": 0.5}, step=10)

    A ``WANDB_MODE`` environment variable (offline / online / disabled) wins over ``wandb_mode``, so
    tests and CI can switch W&B off everywhere (the runner sets it from the config unless already set).
    """

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None, *,
                 wandb_mode: WandbMode = "offline", project: str = "r1lib", name: str | None = None) -> None:
        if wandb_mode not in ("offline", "online", "disabled"):
            raise ValueError(f"wandb_mode must be 'offline', 'online' or 'disabled', got {wandb_mode!r}")
        # The WANDB_MODE environment variable wins over the config (tests and CI set it to 'disabled').
        env_mode = os.environ.get("WANDB_MODE")
        if env_mode in ("offline", "online", "disabled"):
            wandb_mode = env_mode  # type: ignore[assignment]
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / METRICS_FILE
        self.wandb_mode: WandbMode = wandb_mode
        self._file = self.metrics_path.open("a", encoding="utf-8")
        self._wandb_run: Any = None
        if wandb_mode != "disabled":
            self._wandb_run = self._init_wandb(config, project, name or self.run_dir.name)

    def _init_wandb(self, config: Mapping[str, Any] | None, project: str, name: str) -> Any:
        """Start a W&B run; on any failure warn and carry on without W&B."""
        try:
            import wandb  # lazy: ~0.6 s import, and W&B is optional

            return wandb.init(mode=self.wandb_mode, dir=str(self.run_dir), project=project, name=name,
                              config=dict(config) if config is not None else None, reinit="create_new")
        except Exception as exc:  # noqa: BLE001 - W&B must never be fatal (any error in its stack)
            warnings.warn(f"wandb.init failed ({type(exc).__name__}: {exc}); logging to "
                          f"{self.metrics_path} only", RuntimeWarning, stacklevel=3)
            return None

    @property
    def wandb_run(self) -> Any:
        """The W&B run, or None (disabled or failed)."""
        return self._wandb_run

    def log(self, metrics: Mapping[str, Any], step: int) -> dict[str, Any]:
        """Append ``{"step", "time", **metrics}`` as one JSON line (flushed) and send it to W&B.

        Returns the record written. Keys 'step' and 'time' are reserved.
        """
        if self._file.closed:
            raise RuntimeError(f"Tracker for {self.run_dir} is finished; cannot log")
        clash = [k for k in metrics if k in _RESERVED]
        if clash:
            raise ValueError(f"metric names {clash} are reserved (used for the step and wall time)")
        values = {str(k): _to_float(str(k), v) for k, v in metrics.items()}
        record: dict[str, Any] = {"step": int(step), "time": time.time(), **values}
        # NaN/inf are written as JSON NaN/Infinity (Python's json reads them back); they are real events
        # (diverged loss) worth keeping in the log.
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._wandb_run is not None:
            try:
                self._wandb_run.log(values, step=int(step))
            except Exception as exc:  # noqa: BLE001 - W&B must never be fatal
                warnings.warn(f"wandb log failed ({type(exc).__name__}: {exc}); disabling W&B for this run",
                              RuntimeWarning, stacklevel=2)
                self._wandb_run = None
        return record

    def finish(self, exit_code: int = 0) -> None:
        """Close the log file and finish the W&B run. Safe to call twice."""
        if not self._file.closed:
            self._file.close()
        if self._wandb_run is not None:
            run, self._wandb_run = self._wandb_run, None
            try:
                run.finish(exit_code=exit_code)
            except Exception as exc:  # noqa: BLE001 - W&B must never be fatal
                warnings.warn(f"wandb finish failed ({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=2)

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


# --------------------------------------------------------------------------------------------
# Reading and plotting
# --------------------------------------------------------------------------------------------


def read_metrics(path: str | Path) -> "pd.DataFrame":
    """Read a metrics JSONL file (or a run folder holding ``metrics.jsonl``) into a DataFrame.

    Blank lines are skipped. A truncated *last* line (a crash mid-write) is dropped with a warning;
    a bad line anywhere else is an error naming the file and line. Rows are in file order; metrics
    logged at other steps are NaN.
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"metrics file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        except ValueError as exc:
            if i == last:
                warnings.warn(f"{path}:{i + 1}: dropping truncated last line ({exc})", RuntimeWarning, stacklevel=2)
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON object line: {exc}") from None
        records.append(record)
    if not records:
        return pd.DataFrame(columns=list(_RESERVED))
    return pd.DataFrame.from_records(records)


def plot_metrics(df: "pd.DataFrame", keys: str | Iterable[str], ax: "Axes | None" = None,
                 title: str | None = None) -> "Figure":
    """Plot each metric in ``keys`` against ``step`` (NaN rows skipped); returns the figure."""
    import matplotlib.pyplot as plt

    keys = [keys] if isinstance(keys, str) else list(keys)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise KeyError(f"metrics {missing} not in the data; available: {sorted(c for c in df.columns if c not in _RESERVED)}")
    if "step" not in df.columns:
        raise KeyError("the data has no 'step' column")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    for key in keys:
        series = df[["step", key]].dropna()
        ax.plot(series["step"], series[key], label=key, marker="." if len(series) < 30 else None)
    ax.set_xlabel("step")
    if len(keys) == 1:
        ax.set_ylabel(keys[0])
    else:
        ax.legend()
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig

