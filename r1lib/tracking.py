"""Metrics tracking: an append-only local JSONL log, mirrored to Weights & Biases (offline by default).

The JSONL file (``<run_dir>/metrics.jsonl``) is the source of truth: one JSON object per line,
``{"step": ..., "time": ..., **metrics}``, flushed line by line so a crash loses at most the line
being written. W&B is optional: it is imported lazily, and any W&B failure is a warning, never an
error (the local log keeps going).

W&B runs are grouped the way the W&B UI filters them: ``group`` = the experiment name, ``job_type`` = the stage
(``pretrain``, ``r1_zero``, ``ablation_grpo_vs_ppo``, ``sft_cold_start``, ``distill_nano``...; see
:func:`stage_job_type`), so one experiment's runs sit together and one stage's runs across experiments can be
compared. Tables (held-out completions at each evaluation) go to W&B as ``wandb.Table`` and, again as the source of
truth, to ``<run_dir>/tables/<key>.jsonl`` (:meth:`Tracker.log_table`), which the HTML report
(:mod:`r1lib.report`) reads without W&B. :func:`read_offline_run` reads back what an offline run recorded (group,
job type, config, logged keys) before ``wandb sync`` (docs/tracking.md).

Also home of the atomic file-writing helpers that the rest of r1lib uses
(:func:`atomic_write_text`, :func:`atomic_write_json`).
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # heavy imports only for type checkers
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "METRICS_FILE",
    "TABLES_DIR",
    "Tracker",
    "completion_rows",
    "experiment_of",
    "read_metrics",
    "read_offline_run",
    "read_table",
    "stage_job_type",
    "table_path",
    "wandb_grouping",
    "plot_metrics",
    "atomic_write_text",
    "atomic_write_json",
]

METRICS_FILE = "metrics.jsonl"
TABLES_DIR = "tables"
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

    ``group`` and ``job_type`` (default None: not sent, as before) go to ``wandb.init``; r1lib passes the
    experiment name (or ``tracking.group``) and the stage (:func:`stage_job_type`), so W&B shows one experiment's
    runs together and one stage's runs across experiments. :meth:`log_table` logs a table (W&B + local JSONL).
    """

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None, *,
                 wandb_mode: WandbMode = "offline", project: str = "r1lib", name: str | None = None,
                 group: str | None = None, job_type: str | None = None) -> None:
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
        self.group, self.job_type = group, job_type
        self._file = self.metrics_path.open("a", encoding="utf-8")
        self._wandb_run: Any = None
        if wandb_mode != "disabled":
            self._wandb_run = self._init_wandb(config, project, name or self.run_dir.name)

    def _init_wandb(self, config: Mapping[str, Any] | None, project: str, name: str) -> Any:
        """Start a W&B run; on any failure warn and carry on without W&B."""
        try:
            import wandb  # lazy: ~0.6 s import, and W&B is optional

            # group / job_type only when set: None keeps wandb's own defaults (and its WANDB_RUN_GROUP /
            # WANDB_JOB_TYPE environment variables) exactly as before these parameters existed.
            extra = {k: v for k, v in (("group", self.group), ("job_type", self.job_type)) if v}
            return wandb.init(mode=self.wandb_mode, dir=str(self.run_dir), project=project, name=name,
                              config=dict(config) if config is not None else None, reinit="create_new", **extra)
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

    def log_table(self, key: str, rows: Sequence[Mapping[str, Any]], step: int) -> Path:
        """Log ``rows`` (dicts, one per table row) as the table ``key`` at ``step``: to W&B as a ``wandb.Table``
        (columns: the rows' keys in first-seen order, ``step`` first) and to ``<run_dir>/tables/<key>.jsonl``,
        one ``{"step": step, **row}`` line per row. Returns the JSONL path.

        The JSONL file keeps every step's rows, so the HTML report can show the table without W&B; rows already
        there at ``step`` or later are dropped first, so a run resumed from a checkpoint (which logs those steps
        again) leaves no duplicates. Values must be JSON-serialisable (str, numbers, bools, None).
        """
        if self._file.closed:
            raise RuntimeError(f"Tracker for {self.run_dir} is finished; cannot log a table")
        records = [{"step": int(step), **{str(k): v for k, v in row.items() if k != "step"}} for row in rows]
        path = table_path(self.run_dir, key)
        kept = [r for r in read_table(path) if int(r.get("step", -1)) < int(step)] if path.exists() else []
        # A table is small (one row per held-out problem and evaluation), so a rewrite per call is cheap and keeps
        # the file whole (atomic) even if the process dies mid-write.
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept + records))
        if self._wandb_run is not None and records:
            columns = list(dict.fromkeys(k for r in records for k in r))
            try:
                import wandb

                table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in records])
                self._wandb_run.log({key: table}, step=int(step))
            except Exception as exc:  # noqa: BLE001 - W&B must never be fatal
                warnings.warn(f"wandb table log failed ({type(exc).__name__}: {exc}); disabling W&B for this run",
                              RuntimeWarning, stacklevel=2)
                self._wandb_run = None
        return path

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
# Tables, stages
# --------------------------------------------------------------------------------------------


def table_path(run_dir: str | Path, key: str) -> Path:
    """The JSONL file of table ``key`` in ``run_dir``: ``tables/<key>.jsonl`` with '/' (W&B's section separator)
    and other characters unsafe in file names replaced by '_' (``eval/completions`` -> ``eval_completions.jsonl``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._")
    if not safe:
        raise ValueError(f"table key {key!r} has no usable characters for a file name")
    return Path(run_dir) / TABLES_DIR / f"{safe}.jsonl"


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Read a table JSONL file written by :meth:`Tracker.log_table` (blank lines skipped; a bad line is an error
    naming the file and line)."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{i}: not a JSON line: {exc}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def completion_rows(step: int, prompts: Sequence[str], records: Sequence[Mapping[str, Any]],
                    per_prompt: int = 1) -> list[dict[str, Any]]:
    """Rows of the held-out completions table from :func:`r1lib.evaluation.evaluate`'s per-example records:
    ``step, id, prompt, completion, answer, gold, correct, length`` for the first ``per_prompt`` kept samples of
    each problem. ``prompts[i]`` is the problem text of ``records[i]`` (records carry ids, not the text).

    One sample per problem by default: the table shows what the policy writes at each evaluation without
    multiplying its size by k (pass@1 / cons@k over all k are in the scalar metrics).
    """
    if not records:  # nothing kept (an evaluation that returns no records): an empty table, not an error
        return []
    if len(prompts) != len(records):
        raise ValueError(f"completion_rows: {len(prompts)} prompts for {len(records)} records")
    rows: list[dict[str, Any]] = []
    for prompt, rec in zip(prompts, records):
        texts = list(rec.get("completions") or [])
        for j in range(min(per_prompt, len(texts))):
            rows.append({
                "step": int(step), "id": rec.get("id"), "prompt": str(prompt), "completion": texts[j],
                "answer": _item(rec.get("answers"), j), "gold": rec.get("gold"),
                "correct": bool(_item(rec.get("correct"), j)), "length": _item(rec.get("lengths"), j),
            })
    return rows


def _item(values: Any, j: int) -> Any:
    return values[j] if isinstance(values, (list, tuple)) and j < len(values) else None


# Stage folders under runs_dir -> W&B job types. The layout is the notebooks' (runs/<name>/<folder>/...); a folder
# not listed keeps its own name, so a new stage is grouped sensibly without touching this table.
_PIPELINE_JOBS = {"dev1": "sft_cold_start", "dev2": "reasoning_rl", "dev2_no_lc": "reasoning_rl_no_lc",
                  "reward_model": "reward_model", "dev3": "rejection_sft", "r1": "rl_all_scenarios"}


def stage_job_type(run_dir: str | Path, runs_root: str | Path | None = None) -> str | None:
    """The W&B ``job_type`` (the stage) of a run folder, from where it lies under the experiment's ``runs_dir``.

    ``runs_root`` None: the folder after the last ``runs`` component of the path is taken as the experiment's
    runs folder (the default ``runs_dir: runs/{name}``). Examples, relative to it: ``base_model_train`` ->
    ``pretrain``; ``students/nano/base_model_train`` -> ``pretrain_nano``; ``r1_zero`` -> ``r1_zero``;
    ``ablation_grpo_vs_ppo/PPO_lambda1.0_seed0`` -> ``ablation_grpo_vs_ppo``; ``r1_pipeline/dev1`` ->
    ``sft_cold_start`` (dev2 ``reasoning_rl``, reward_model, dev3 ``rejection_sft``, r1/* ``rl_all_scenarios``);
    ``distillation/students/nano/sft_seed0`` -> ``distill_nano``; ``.../nano/rl/rl_seed0`` -> ``rl_nano``;
    ``.../nano/distilled_rl`` -> ``distill_rl_nano``; anything else -> its first folder. None when the folder is not
    under the runs root (then no job type is sent, as before).
    """
    parts = _parts_under(Path(run_dir), runs_root)
    if not parts:
        return None
    head = parts[0]
    if head.endswith("_train"):
        return "pretrain"
    if head == "students" and len(parts) >= 3 and parts[-1].endswith("_train"):
        return f"pretrain_{parts[1]}"
    if head == "r1_pipeline" and len(parts) >= 2:
        return _PIPELINE_JOBS.get(parts[1], f"r1_pipeline_{parts[1]}")
    if head == "distillation" and len(parts) >= 4 and parts[1] == "students":
        student, what = parts[2], parts[3]
        if what.startswith("sft"):
            return f"distill_{student}"
        if what == "distilled_rl":
            return f"distill_rl_{student}"
        return f"{what}_{student}"
    return head


def experiment_of(run_dir: str | Path) -> str | None:
    """The experiment name a run folder belongs to when ``runs_dir`` is ``runs/{name}``: the folder after the last
    ``runs`` component (None if there is none). Used where no config is at hand (the SFT and reward-model stages);
    an experiment that shares another's ``runs_dir`` (experiments/r1_pipeline.yaml) is grouped under that one."""
    parts = Path(run_dir).resolve().parts
    idx = [i for i, part in enumerate(parts) if part == "runs"]
    return parts[idx[-1] + 1] if idx and idx[-1] + 1 < len(parts) else None


def wandb_grouping(run_dir: str | Path, runs_root: str | Path | None = None,
                   group: str | None = None) -> dict[str, str]:
    """``{"group": ..., "job_type": ...}`` for ``wandb.init`` (keys left out when unknown): ``group`` (default:
    :func:`experiment_of`) and :func:`stage_job_type`."""
    out = {"group": group or experiment_of(run_dir), "job_type": stage_job_type(run_dir, runs_root)}
    return {k: v for k, v in out.items() if v}


def _parts_under(run_dir: Path, runs_root: str | Path | None) -> tuple[str, ...]:
    run_dir = run_dir.resolve()
    if runs_root is not None:
        try:
            return run_dir.relative_to(Path(runs_root).resolve()).parts
        except ValueError:
            return ()
    parts = run_dir.parts
    idx = [i for i, part in enumerate(parts) if part == "runs"]
    return parts[idx[-1] + 2:] if idx else ()


# --------------------------------------------------------------------------------------------
# Reading an offline W&B run
# --------------------------------------------------------------------------------------------

_WANDB_HEADER = b":W&B"
_BLOCK = 32768  # the transaction log's block size (LevelDB log format)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _wandb_records(path: Path) -> Iterator[bytes]:
    """The serialized records of a ``.wandb`` transaction log.

    Written by hand because wandb >= 0.2x writes these files from its Go core and no longer ships the Python
    reader (``wandb.sdk.internal.datastore``). The format is LevelDB's log: a 7-byte file header (``:W&B``, magic,
    version), then 32 KiB blocks of records, each ``crc32 (4) | length (2, LE) | type (1) | data``; a record too
    long for its block is split into FIRST / MIDDLE / LAST pieces; fewer than 7 bytes left in a block are padding.
    Checksums are not verified (this is for reading back one's own logs; a torn tail ends the scan).
    """
    data = path.read_bytes()
    if not data.startswith(_WANDB_HEADER):
        raise ValueError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length:
            break  # torn last record (the process was killed)
        pos += 7 + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        else:
            raise ValueError(f"{path}: unknown record type {kind} at byte {pos - 7 - length}")


def read_offline_run(path: str | Path, wait: float = 0.0) -> dict[str, Any]:
    """What an offline W&B run recorded, read from its ``.wandb`` file (``path``: the file, its
    ``offline-run-*`` folder, or a folder holding ``wandb/`` — then the newest run in it).

    Returns ``{"file", "id", "project", "name", "group", "job_type", "config", "history", "summary", "complete"}``:
    ``config`` the run's config (top-level keys, JSON-decoded), ``history`` one dict per logged step (a table is a
    dict with ``"_type": "table-file"``, ``nrows``, ``path``...), ``summary`` the last value of each key,
    ``complete`` whether the run's exit record was read (it finished and all of it is on disk). Use it to check a
    run before ``wandb sync``.

    ``wait``: seconds to wait for ``complete``. wandb-core writes the log asynchronously, so right after
    ``run.finish()`` returns the last block may still be in its buffer (seen with wandb 0.31: a 65,536-byte file
    that grew to 74,719 bytes a moment later); tests read with a wait.
    """
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("run-*.wandb")) or sorted(path.glob("wandb/offline-run-*/run-*.wandb")) \
            or sorted(path.glob("offline-run-*/run-*.wandb"))
        if not candidates:
            raise FileNotFoundError(f"no .wandb file in {path} (nor in {path}/wandb/offline-run-*/)")
        path = max(candidates, key=lambda p: p.stat().st_mtime)
    deadline = time.monotonic() + wait
    while True:
        out = _read_run_file(path)
        if out["complete"] or time.monotonic() >= deadline:
            return out
        time.sleep(0.1)


def _read_run_file(path: Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb  # the record schema; part of the wandb package

    out: dict[str, Any] = {"file": str(path), "id": None, "project": None, "name": None, "group": None,
                           "job_type": None, "config": {}, "history": [], "summary": {}, "complete": False}
    for raw in _wandb_records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(id=run.run_id, project=run.project, name=run.display_name, group=run.run_group or None,
                       job_type=run.job_type or None)
            out["config"].update({u.key: json.loads(u.value_json) for u in run.config.update})
        elif kind == "config":
            out["config"].update({u.key: json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:
                keys = [item.key] if item.key else list(item.nested_key)
                node = row
                for k in keys[:-1]:  # a table arrives as nested items: {key: {"_type": "table-file", ...}}
                    node = node.setdefault(k, {})
                node[keys[-1]] = json.loads(item.value_json)
            out["history"].append(row)
            out["summary"].update(row)
        elif kind == "exit":
            out["complete"] = True
    out["config"].pop("_wandb", None)
    return out


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

