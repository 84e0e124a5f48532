"""Benchmark loaders: GSM8K, MATH-500, AIME 2024, AMC 2023, MATH and Countdown, as lists of ``Example``.

:func:`load_benchmark` resolves ``name_or_path`` in this order:

a. an existing local ``.jsonl`` file;
b. a known short name (:data:`LOCAL_FILES`: ``gsm8k``, ``math500``, ``aime24``, ``amc23``, ``math``,
   ``countdown``): the split's file is looked up in each of the data directories of :func:`data_dirs`,
   first found wins: ``data_dir`` if given, then ``$R1LIB_DATA_DIR`` if set, then the files shipped with the
   package (:data:`SHIPPED_DATA_DIR`, ``r1lib/data/benchmarks``: the test splits of GSM8K, MATH-500, AIME 2024
   and AMC 2023, see ``SOURCES.md`` there). A split found in none of them (GSM8K train, MATH, Countdown) comes
   from the dataset hub (:data:`HUB_SOURCES`);
c. a hub dataset id (``owner/name``) via ``datasets.load_dataset``, with a field mapping for the
   known ids in :data:`HUB_SOURCES` and a generic one (``problem``/``question``, ``answer``) else;
d. a list of any of the above: their rows concatenated in order (a training mix such as GSM8K + MATH).

Local JSONL row schema (the shipped files; a data directory's files in the same layout): ``id`` (str or
int), ``problem`` (non-empty str) and ``answer`` (str, int or float; coerced to a string, integral floats
without ``.0``) are required; ``solution`` (str or null) is optional; every other field goes to
``Example.meta``. Countdown rows must also carry ``nums`` (list of int) and ``target`` (int).
A malformed row raises :class:`BenchmarkError` with ``"<path>:<line>: ..."``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from r1lib.tasks.base import Example
from r1lib.tasks.countdown import countdown_problem


log = logging.getLogger(__name__)


class BenchmarkError(Exception):
    """A benchmark could not be found or read; the message names what was tried / the bad line."""


LOCAL_FILES: dict[str, dict[str, str]] = {
    "gsm8k": {"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"},
    "math500": {"test": "math500/test.jsonl"},
    "aime24": {"test": "aime24/test.jsonl"},
    "amc23": {"test": "amc23/test.jsonl"},
    # MATH (Hendrycks et al. 2021), 7,500 train / 5,000 test; MATH-500 is a subset of its test split. Not shipped:
    # a data directory's copy if there is one, else the hub (HUB_SOURCES).
    "math": {"train": "math/train.jsonl", "test": "math/test.jsonl"},
    # "d1_cd3": the 256 three-number problems of d1 (diffu-GRPO), see SOURCES.md.
    "countdown": {"test": "countdown/tinyzero_test.jsonl", "train": "countdown/train_first10240.jsonl",
                  "d1_cd3": "countdown/d1_cd3_test.jsonl"},
}
"""Short name -> split -> file path relative to a data directory."""

SHIPPED_DATA_DIR: Path = Path(__file__).resolve().parents[1] / "data" / "benchmarks"
"""The benchmark files shipped as package data (``r1lib/data/benchmarks``; provenance, licences and checksums in
its ``SOURCES.md``). Found next to this module both in a clone and in an installed wheel (package data)."""

DATA_DIR_ENV = "R1LIB_DATA_DIR"
"""Environment variable naming an extra data directory, searched before the shipped files."""

ALIASES = {"math-500": "math500", "math_500": "math500", "aime2024": "aime24", "aime_2024": "aime24",
           "amc2023": "amc23", "amc_2023": "amc23", "hendrycks_math": "math", "competition_math": "math"}

_REQUIRED = ("id", "problem", "answer")
_TINYZERO_TEST_ROWS = (327680, 328704)  # TinyZero's countdown.py: train = rows [0, 327680), test = next 1024


def data_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories searched for a short name's file, in order: ``data_dir`` (if given), ``$R1LIB_DATA_DIR``
    (if set), then :data:`SHIPPED_DATA_DIR`. A set missing from the first is looked up in the next, so a directory
    with extra sets (e.g. Countdown) does not hide the shipped ones."""
    dirs = [Path(data_dir).expanduser()] if data_dir is not None else []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    dirs.append(SHIPPED_DATA_DIR)
    return list(dict.fromkeys(dirs))  # the same directory twice is searched once


# --- row validation -----------------------------------------------------------------------------------


def _answer_str(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BenchmarkError(f"{where}: field 'answer' must be a string or number, got {type(value).__name__}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise BenchmarkError(f"{where}: field 'answer' is not a finite number: {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def row_to_example(row: Any, task: str, where: str) -> Example:
    """Validate one row (a dict in the local schema) and build the ``Example``.

    ``where`` prefixes every error message, e.g. ``"data/x.jsonl:3"``.
    """
    if not isinstance(row, dict):
        raise BenchmarkError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for name in _REQUIRED:
        if name not in row:
            raise BenchmarkError(f"{where}: missing required field {name!r}")
    rid = row["id"]
    if isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise BenchmarkError(f"{where}: field 'id' must be a string or integer, got {type(rid).__name__}")
    problem = row["problem"]
    if not isinstance(problem, str) or not problem.strip():
        raise BenchmarkError(f"{where}: field 'problem' must be a non-empty string")
    answer = _answer_str(row["answer"], where)
    solution = row.get("solution")
    if solution is not None and not isinstance(solution, str):
        raise BenchmarkError(f"{where}: field 'solution' must be a string or null, got {type(solution).__name__}")
    meta = {k: v for k, v in row.items() if k not in ("id", "problem", "answer", "solution")}
    if task == "countdown":
        nums, target = meta.get("nums"), meta.get("target")
        if not isinstance(nums, list) or not nums or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in nums):
            raise BenchmarkError(f"{where}: countdown row needs 'nums', a non-empty list of integers")
        if isinstance(target, bool) or not isinstance(target, int):
            raise BenchmarkError(f"{where}: countdown row needs 'target', an integer")
    return Example(id=str(rid), task=task, problem=problem, answer=answer, solution=solution, meta=meta)


def load_jsonl(path: Path, task: str, limit: int | None = None) -> list[Example]:
    """Read a local JSONL benchmark file (blank lines are skipped). Errors name ``path:line``."""
    out: list[Example] = []
    try:
        handle = path.open("rb")
    except OSError as err:
        raise BenchmarkError(f"{path}: cannot open: {err.strerror or err}") from err
    with handle:
        for lineno, raw in enumerate(handle, 1):
            if limit is not None and len(out) >= limit:
                break
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise BenchmarkError(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start})") from err
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise BenchmarkError(f"{where}: invalid JSON: {err.msg} (column {err.colno})") from err
            out.append(row_to_example(row, task, where))
    return out


# --- hub sources --------------------------------------------------------------------------------------

Converter = Callable[[dict[str, Any], int, str], "dict[str, Any] | None"]
"""``(hub row, index, our split) -> row in the local schema``, or None for a row that has no usable reference
answer (skipped, counted and logged by :func:`_load_hub`)."""


def _gsm8k(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    solution, sep, final = str(row["answer"]).rpartition("####")
    if not sep:
        raise BenchmarkError(f"gsm8k hub row {i}: answer has no '####' final answer")
    # Same conversion as the staged file (SOURCES.md): thousands commas removed.
    return {"id": f"gsm8k-{split}-{i:04d}", "problem": row["question"], "answer": final.strip().replace(",", ""),
            "solution": solution.strip()}


def _math500(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    return {"id": row.get("unique_id", f"math500-{i}"), "problem": row["problem"], "answer": row["answer"],
            "solution": row.get("solution"), "subject": row.get("subject"), "level": row.get("level")}


def _math_lighteval(row: dict[str, Any], i: int, split: str) -> dict[str, Any] | None:
    """DigitalLearningGmbH/MATH-lighteval (problem, level, type, solution): MATH has no answer field; its reference
    answer is the solution's last ``\\boxed{}``, as in MATH-500's own conversion (SOURCES.md)."""
    from r1lib.grading import last_boxed  # lazy: only this hub set needs it

    answer = last_boxed(row["solution"])
    if answer is None or not answer.strip():
        return None
    return {"id": f"math-{split}-{i:04d}", "problem": row["problem"], "answer": answer.strip(),
            "solution": row["solution"], "level": row.get("level"), "subject": row.get("type")}


def _strip_zeros(answer: Any) -> Any:
    text = str(answer).strip()
    return str(int(text)) if text.isdigit() else answer


def _aime_h4(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    match = re.search(r"(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d+)", str(row.get("url", "")))
    rid = f"{match[1]}-{match[2]}-{match[3]}" if match else f"aime24-{row.get('id', i)}"
    return {"id": rid, "problem": row["problem"], "answer": _strip_zeros(row["answer"]),
            "answer_original": row["answer"], "solution": row.get("solution"), "url": row.get("url")}


def _aime_maxwell(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    return {"id": row.get("ID", f"aime24-{i}"), "problem": row["Problem"], "answer": _strip_zeros(row["Answer"]),
            "answer_original": row["Answer"], "solution": row.get("Solution")}


def _amc23(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    return {"id": f"amc23-{row.get('id', i)}", "problem": row["question"], "answer": row["answer"],
            "answer_original": row["answer"], "url": row.get("url")}


def _countdown(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    nums, target = [int(n) for n in row["nums"]], int(row["target"])
    rid = f"countdown-tinyzero-test-{i:04d}" if split == "test" else f"countdown-hfrow-{i:06d}"
    return {"id": rid, "problem": countdown_problem(nums, target), "answer": str(target),
            "target": target, "nums": nums}


def _generic(row: dict[str, Any], i: int, split: str) -> dict[str, Any]:
    def pick(*names: str) -> Any:
        return next((row[n] for n in names if n in row), None)
    out = {"id": pick("id", "ID", "unique_id"), "problem": pick("problem", "question", "Problem", "Question"),
           "answer": pick("answer", "Answer"), "solution": pick("solution", "Solution")}
    if out["id"] is None:
        out["id"] = i
    return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class HubSource:
    """How to fetch one benchmark from the dataset hub and map its fields to the local schema."""

    path: str
    config: str | None
    splits: dict[str, str]  # our split -> hub split
    convert: Converter
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # our split -> [start, stop) rows


HUB_SOURCES: dict[str, list[HubSource]] = {
    "gsm8k": [HubSource("openai/gsm8k", "main", {"test": "test", "train": "train"}, _gsm8k)],
    "math500": [HubSource("HuggingFaceH4/MATH-500", None, {"test": "test"}, _math500)],
    "aime24": [HubSource("HuggingFaceH4/aime_2024", None, {"test": "train"}, _aime_h4),
               HubSource("Maxwell-Jia/AIME_2024", None, {"test": "train"}, _aime_maxwell)],
    "amc23": [HubSource("math-ai/amc23", None, {"test": "test"}, _amc23)],
    # The whole of MATH in one config (EleutherAI/hendrycks_math splits it into one config per subject).
    "math": [HubSource("DigitalLearningGmbH/MATH-lighteval", "default", {"train": "train", "test": "test"},
                       _math_lighteval)],
    "countdown": [HubSource("Jiayi-Pan/Countdown-Tasks-3to4", None, {"test": "train", "train": "train"},
                            _countdown, rows={"test": _TINYZERO_TEST_ROWS, "train": (0, _TINYZERO_TEST_ROWS[0])})],
}
"""Short name -> hub datasets to try, in order."""


def _take(ds: Any, start: int, stop: int | None) -> Iterable[tuple[int, dict[str, Any]]]:
    """Rows ``[start, stop)`` of a hub dataset (or any sequence), with their indices relative to start."""
    length = len(ds)
    stop = length if stop is None else min(stop, length)
    if hasattr(ds, "select"):
        ds = ds.select(range(start, stop)) if start < stop else ds.select([])
        return enumerate(ds)
    return enumerate(list(ds)[start:stop])


def _load_hub(source: HubSource, short: str, split: str, limit: int | None) -> list[Example]:
    try:
        import datasets  # imported lazily: slow, and only needed off the local files
    except ImportError as err:
        raise BenchmarkError(f"the 'datasets' package is not installed ({err})") from err
    ds = datasets.load_dataset(source.path, source.config, split=source.splits[split])
    start, stop = source.rows.get(split, (0, None))
    if limit is not None:
        stop = start + limit if stop is None else min(stop, start + limit)
    out, skipped = [], []
    for i, row in _take(ds, start, stop):
        where = f"{source.path}[{source.splits[split]}] row {start + i}"
        try:
            converted = source.convert(dict(row), i, split)
        except (KeyError, TypeError, ValueError) as err:
            raise BenchmarkError(f"{where}: unexpected fields ({type(err).__name__}: {err})") from err
        if converted is None:
            skipped.append(start + i)
            continue
        out.append(row_to_example(converted, short, where))
    if skipped:
        log.warning("%s[%s]: skipped %d rows without a reference answer (rows %s)", source.path,
                    source.splits[split], len(skipped), skipped[:10])
    return out


# --- entry point --------------------------------------------------------------------------------------


def _task_for_path(path: Path) -> str:
    """The short name for a file: its directory's name when that is a known benchmark, else its stem."""
    parent = path.parent.name.lower()
    parent = ALIASES.get(parent, parent)
    return parent if parent in LOCAL_FILES else path.stem


def load_benchmark(name_or_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *, split: str = "test",
                   limit: int | None = None, data_dir: str | os.PathLike[str] | None = None) -> list[Example]:
    """Load a benchmark as ``Example`` objects (``Example.task`` = the short name).

    ``split`` picks the file for a short name (``"test"``; also ``"train"`` for gsm8k, math and countdown,
    ``"d1_cd3"`` for countdown); it is ignored for a path. ``limit`` keeps the first rows. A list or tuple of
    names/paths gives their rows concatenated in order (``limit`` then applies to the whole); each row keeps its
    own set's ``task``. See the module docstring for the resolution order. Raises :class:`BenchmarkError`.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise BenchmarkError(f"limit must be None or an int >= 0, got {limit!r}")
    if isinstance(name_or_path, (list, tuple)):
        if not name_or_path:
            raise BenchmarkError("an empty list of benchmarks: name at least one")
        rows: list[Example] = []
        for item in name_or_path:
            if limit is not None and len(rows) >= limit:
                break
            rows += _load_one(item, split, None if limit is None else limit - len(rows), data_dir)
        return rows
    return _load_one(name_or_path, split, limit, data_dir)


def _load_one(name_or_path: Any, split: str, limit: int | None,
              data_dir: str | os.PathLike[str] | None) -> list[Example]:
    """:func:`load_benchmark` for one name, path or hub id."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise BenchmarkError(f"a benchmark is a name, a .jsonl path or a hub id (a string), got "
                             f"{type(name_or_path).__name__}: {name_or_path!r}")
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix != ".jsonl":
            raise BenchmarkError(f"{path}: only .jsonl files are supported")
        return load_jsonl(path, _task_for_path(path), limit)
    if text.endswith(".jsonl"):
        raise BenchmarkError(f"{path}: file not found")

    short = ALIASES.get(text.lower(), text.lower())
    hub_by_id = {src.path.lower(): (name, src) for name, srcs in HUB_SOURCES.items() for src in srcs}
    tried: list[str] = []
    if short in LOCAL_FILES:
        splits = sorted(set(LOCAL_FILES[short]) | {s for src in HUB_SOURCES.get(short, []) for s in src.splits})
        if split not in splits:
            raise BenchmarkError(f"benchmark {short!r} has no split {split!r}; available: {splits}")
        if split in LOCAL_FILES[short]:
            for base in data_dirs(data_dir):
                local = base / LOCAL_FILES[short][split]
                if local.is_file():
                    return load_jsonl(local, short, limit)
                tried.append(f"local file {local} (not found)")
        sources = [src for src in HUB_SOURCES.get(short, []) if split in src.splits]
    elif "/" in text and text.lower() in hub_by_id:
        short, source = hub_by_id[text.lower()]
        if split not in source.splits:
            raise BenchmarkError(f"hub dataset {text!r} has no split {split!r}; available: {sorted(source.splits)}")
        sources = [source]
    elif "/" in text and not text.startswith((".", "/", "~")):
        short = text.rsplit("/", 1)[-1].lower()
        sources = [HubSource(text, None, {split: split}, _generic)]
    else:
        raise BenchmarkError(f"{text!r} is not an existing .jsonl file, not a known benchmark "
                             f"({', '.join(sorted(LOCAL_FILES))}) and not a hub dataset id (owner/name)")

    for source in sources:
        try:
            return _load_hub(source, short, split, limit)
        except BenchmarkError:
            raise
        # datasets/huggingface_hub raise many exception types when offline or when a dataset is
        # missing (ConnectionError, FileNotFoundError, DatasetNotFoundError, ValueError, ...).
        except Exception as err:  # noqa: BLE001 - reported with everything tried, never swallowed
            tried.append(f"hub {source.path!r} split {source.splits[split]!r} "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
    raise BenchmarkError(f"could not load benchmark {text!r} (split {split!r}); tried: " + "; ".join(tried))
