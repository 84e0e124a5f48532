"""Analysis of RL runs: curves from the metrics log, completions over training, "aha" moments, reports.

The paper's R1-Zero figures (paper_facts §6-7): held-out pass@1 and cons@16 over steps (Fig. 2), average
response length over steps (Fig. 3), reflection-word frequency over steps (v2 Fig. 9) and the "aha
moment" (Table 3: the model stops, re-evaluates an earlier step with "Wait, ..." and fixes it).

An *aha example* here is a completion that (1) gets the final answer right and (2) contains a
reflection word that *fixed an earlier step*: before the word, an arithmetic equation ``A op B = x`` that
is false; after it, the same left-hand side with the correct value. Equations are checked with the exact
evaluator of the task generators (``r1lib.tasks.expr.evaluate``), not with string heuristics.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from r1lib.text_stats import REFLECTION_WORDS

_EQ = re.compile(r"=\s*(-?\d+(?:\.\d+)?)")
_LHS_OK = re.compile(r"^[\d\s+\-*/().]+$")
_OP = re.compile(r"\d\s*[+\-*/]\s*[\d(]")
_REFLECT = re.compile(r"\b(" + "|".join(re.escape(w) for w in REFLECTION_WORDS) + r")\b", re.IGNORECASE)


def equations(text: str) -> list[dict[str, Any]]:
    """Arithmetic equations ``lhs = number`` in ``text`` with their position and truth.

    ``lhs`` is the run of digits, operators and brackets right before ``=``; equations whose left side
    is not pure arithmetic (``x = 4``, ``cost = 7``) are skipped.
    """
    from r1lib.tasks.expr import evaluate

    out = []
    for m in _EQ.finditer(text):
        head = text[: m.start()]
        lhs = re.split(r"[=:,;\n]|\.\s", head)[-1]  # the left side starts after the previous separator
        # drop leading words ("cards per friend 10 / 4" never happens: a word ends the run)
        words = re.split(r"[A-Za-z\u4e00-\u9fff$?']+", lhs)
        lhs = words[-1].strip()
        if not lhs or not _LHS_OK.match(lhs) or not _OP.search(lhs):
            continue
        try:
            value = evaluate(lhs)
            rhs = Fraction(m.group(1))
        except (ValueError, ZeroDivisionError, ArithmeticError):
            continue
        out.append({"start": head.rfind(lhs), "end": m.end(), "lhs": " ".join(lhs.split()),
                    "rhs": m.group(1), "correct": value == rhs})
    return out


def find_aha(text: str) -> dict[str, Any] | None:
    """The first reflection word that fixed an earlier wrong step, or None (see the module docstring).

    Returns ``{"word", "wrong", "fixed"}`` with the wrong and the corrected equation as strings.
    Correctness of the final answer is the caller's business (it needs the gold answer).
    """
    eqs = equations(text)
    for m in _REFLECT.finditer(text):
        pos = m.start()
        before = [e for e in eqs if e["end"] <= pos and not e["correct"]]
        for wrong in reversed(before):
            fixed = next((e for e in eqs if e["start"] >= m.end() and e["correct"] and e["lhs"] == wrong["lhs"]), None)
            if fixed is not None:
                return {"word": m.group(1).lower(), "wrong": f"{wrong['lhs']} = {wrong['rhs']}",
                        "fixed": f"{fixed['lhs']} = {fixed['rhs']}"}
    return None


def read_eval_samples(run_dir: str | Path) -> dict[int, list[dict[str, Any]]]:
    """``{step: [eval record, ...]}`` from ``<run_dir>/eval_samples/step_*.jsonl`` (see RLTrainer.evaluate)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for p in sorted(Path(run_dir, "eval_samples").glob("step_*.jsonl")):
        step = int(p.stem.split("_")[1])
        out[step] = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def aha_examples(samples: Mapping[int, Sequence[Mapping[str, Any]]], problems: Mapping[str, str] | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Correct completions with an aha moment, over all evaluation steps (earliest first)."""
    found = []
    for step in sorted(samples):
        for rec in samples[step]:
            for text, ok in zip(rec.get("completions", []), rec.get("correct", [])):
                if not ok:
                    continue
                aha = find_aha(text)
                if aha is not None:
                    found.append({"step": step, "id": rec["id"], "problem": (problems or {}).get(rec["id"]),
                                  "gold": rec.get("gold"), "completion": text, **aha})
                    if limit is not None and len(found) >= limit:
                        return found
    return found


def aha_rate_by_step(samples: Mapping[int, Sequence[Mapping[str, Any]]]) -> dict[int, float]:
    """Share of *all* completions at each evaluation step that are correct and contain an aha moment."""
    rates = {}
    for step, recs in sorted(samples.items()):
        n = sum(len(r.get("completions", [])) for r in recs)
        hits = sum(1 for r in recs for t, ok in zip(r.get("completions", []), r.get("correct", []))
                   if ok and find_aha(t) is not None)
        rates[step] = hits / n if n else 0.0
    return rates


def completions_at(samples: Mapping[int, Sequence[Mapping[str, Any]]], step: int, n: int = 3,
                   problem_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The first completion of the first ``n`` problems (or of ``problem_ids``) at one evaluation step."""
    recs = samples[step]
    if problem_ids is not None:
        wanted = list(problem_ids)
        recs = sorted((r for r in recs if r["id"] in wanted), key=lambda r: wanted.index(r["id"]))
    return [{"id": r["id"], "gold": r.get("gold"), "completion": r["completions"][0], "correct": r["correct"][0]}
            for r in list(recs)[:n]]


def eval_curve(metrics: Any, key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one metric from a metrics DataFrame (rows where it is logged)."""
    df = metrics[["step", key]].dropna()
    return df["step"].astype(int).tolist(), df[key].astype(float).tolist()


def r1_zero_report(metrics: Any, *, k: int, steps: int, train_seconds: float) -> dict[str, Any]:
    """The figures of ``results/r1_zero/metrics.json`` from the run's metrics DataFrame.

    ``base_*`` come from the evaluation at step 0 (the base model, same protocol), ``final_*`` from the
    last evaluation. Keys as the issue names them, plus the eval curves.
    """
    ev = metrics.dropna(subset=["eval/pass@1"]).sort_values("step")
    first, last = ev.iloc[0], ev.iloc[-1]
    report = {
        "base_pass_at_1": float(first["eval/pass@1"]), "final_pass_at_1": float(last["eval/pass@1"]),
        "base_cons_at_k": float(first[f"eval/cons@{k}"]), "final_cons_at_k": float(last[f"eval/cons@{k}"]), "k": k,
        "base_mean_length": float(first["eval/mean_length"]), "final_mean_length": float(last["eval/mean_length"]),
        "base_reflection_rate": float(first["eval/reflection_rate"]),
        "final_reflection_rate": float(last["eval/reflection_rate"]),
        "base_format_rate": float(first["eval/format_rate"]), "final_format_rate": float(last["eval/format_rate"]),
        "steps": int(steps), "train_seconds": float(train_seconds),
        "eval_steps": ev["step"].astype(int).tolist(),
        "eval_pass_at_1": ev["eval/pass@1"].astype(float).tolist(),
        f"eval_cons_at_{k}": ev[f"eval/cons@{k}"].astype(float).tolist(),
    }
    report["targets"] = {
        "pass_at_1_gain_ge_30_points": report["final_pass_at_1"] - report["base_pass_at_1"] >= 0.30,
        "format_rate_ge_95": report["final_format_rate"] >= 0.95,
        "mean_length_up": report["final_mean_length"] > report["base_mean_length"],
        "reflection_rate_up": report["final_reflection_rate"] > report["base_reflection_rate"],
    }
    return report
