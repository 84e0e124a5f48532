"""Analysis of RL runs: curves from the metrics log, completions over training, "aha" moments, reports.

The paper's R1-Zero figures (docs/paper.md §6-7): held-out pass@1 and cons@16 over steps (Fig. 2), average
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


def read_self_corrections(run_dir: str | Path) -> list[dict[str, Any]]:
    """The training rollouts that fixed a wrong step (``<run_dir>/self_corrections.jsonl``, written by the RL
    engine), earliest first."""
    path = Path(run_dir) / "self_corrections.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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


def style_by_step(samples: Mapping[int, Sequence[Mapping[str, Any]]]) -> dict[int, dict[str, float]]:
    """``{step: {style: share}}`` of the kept completions at each evaluation step (``r1lib.corpus.classify_style``)."""
    from r1lib.corpus import style_distribution

    return {step: style_distribution([t for r in recs for t in r.get("completions", [])])
            for step, recs in sorted(samples.items())}


def r1_zero_report(metrics: Any, *, k: int, steps: int, train_seconds: float,
                   samples: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
                   harder: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The figures of ``results/r1_zero/metrics.json`` from the run's metrics DataFrame.

    ``base_*`` come from the evaluation at step 0 (the base model, same protocol), ``final_*`` from the
    last evaluation, plus the eval curves. ``samples`` (:func:`read_eval_samples`) adds the style shares and
    the aha counts of the first and last evaluation; ``harder`` (``{"base": pass@1, "final": pass@1}``) the
    harder split. The training rollouts' self-correction rates (``rollout_*_start`` / ``_end``: the first and
    last sixth of the run) come from the metrics log. ``targets`` are the R1-Zero checks: pass@1 +50 points, format >= 95%, cons@k >= pass@1,
    length >= 2 x and reflection rate >= 3 x the base's.
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
    if samples:
        first_step, last_step = min(samples), max(samples)
        styles = style_by_step(samples)
        report["base_style_share"], report["final_style_share"] = styles[first_step], styles[last_step]
        first, last = aha_count(samples[first_step]), aha_count(samples[last_step])
        report["base_aha_count"], report["final_aha_count"] = first["count"], last["count"]
        report["base_correction_attempts"], report["final_correction_attempts"] = first["attempts"], last["attempts"]
        report["eval_samples_per_step"] = last["n"]
    rollouts = metrics.dropna(subset=["aha_rate"]).sort_values("step") if "aha_rate" in metrics else None
    if rollouts is not None and len(rollouts):
        w = max(1, len(rollouts) // 6)  # the first and the last sixth of the run (10 of 60 steps)
        for key in ("aha_rate", "self_correction_rate", "correction_attempt_rate", "style/careful"):
            if key in rollouts:
                name = key.replace("style/", "") + ("_share" if key.startswith("style/") else "")
                report[f"rollout_{name}_start"] = float(rollouts[key].iloc[:w].mean())
                report[f"rollout_{name}_end"] = float(rollouts[key].iloc[-w:].mean())
    if harder:
        report["harder_base_pass_at_1"] = float(harder["base"])
        report["harder_final_pass_at_1"] = float(harder["final"])
    report["targets"] = {
        "pass_at_1_gain_ge_50_points": report["final_pass_at_1"] - report["base_pass_at_1"] >= 0.50,
        "format_rate_ge_95": report["final_format_rate"] >= 0.95,
        "cons_at_k_ge_pass_at_1": report["final_cons_at_k"] >= report["final_pass_at_1"],
        "mean_length_ge_2x": report["final_mean_length"] >= 2 * report["base_mean_length"],
        "reflection_rate_ge_3x": report["final_reflection_rate"] >= 3 * report["base_reflection_rate"],
    }
    return report


def style_table(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per corpus style (``r1lib.corpus.classify_style``) of the kept completions of evaluation records:
    ``share`` of all completions, ``accuracy`` within the style, ``mean_length`` (tokens), ``n`` (None for a
    style never sampled).

    The records must keep every sample (``evaluate(..., keep_completions=k)``).
    """
    from r1lib.corpus import STYLES, classify_style

    rows: dict[str, list[tuple[bool, int]]] = {s: [] for s in STYLES}
    for rec in records:
        texts = rec.get("completions", [])
        for text, ok, n in zip(texts, rec.get("correct", []), rec.get("lengths", [])):
            rows[classify_style(text)].append((bool(ok), int(n)))
    total = sum(len(v) for v in rows.values())
    return {s: {"share": len(v) / total if total else 0.0,
                "accuracy": sum(ok for ok, _ in v) / len(v) if v else None,
                "mean_length": sum(n for _, n in v) / len(v) if v else None,
                "n": len(v)} for s, v in rows.items()}


def step_fact_accuracy(texts: Iterable[str]) -> dict[str, float]:
    """Share of the arithmetic equations written in ``texts`` that are true (:func:`equations`), and their count.

    The base model's written steps are single-digit facts (``8 + 7 + 1 = 16``): if they are mostly wrong
    the step-by-step styles cannot work, whatever RL does.
    """
    n = ok = 0
    for text in texts:
        for eq in equations(text):
            n += 1
            ok += eq["correct"]
    return {"accuracy": ok / n if n else None, "n": n}


_CORRECTION_CUE = re.compile(r"\bwait\b|等等", re.IGNORECASE)


def correction_attempt(text: str) -> bool:
    """Whether ``text`` announces a correction ("Wait", the corpus's cue), whether or not anything is fixed."""
    return isinstance(text, str) and _CORRECTION_CUE.search(text) is not None


def aha_count(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Self-corrections in the kept completions of evaluation records:

    - ``attempts``: completions that announce a correction ("Wait", :func:`correction_attempt`);
    - ``with_slip``: completions with a real fix (:func:`find_aha`: a wrong step, the cue, the same step right);
    - ``count`` / ``rate``: real fixes in a correct answer, the paper's "aha" (rate over all completions).

    Attempts without a real fix are superficial reflection: the cue is imitated, nothing is checked.
    """
    n = hits = slips = attempts = 0
    for rec in records:
        for text, ok in zip(rec.get("completions", []), rec.get("correct", [])):
            n += 1
            attempts += correction_attempt(text)
            if find_aha(text) is not None:
                slips += 1
                hits += bool(ok)
    return {"count": hits, "rate": hits / n if n else 0.0, "with_slip": slips, "attempts": attempts, "n": n}


def behaviour_report(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the sampled solutions of an evaluation do: ``styles`` (:func:`style_table`), ``facts``
    (:func:`step_fact_accuracy` of every equation written) and ``aha`` (:func:`aha_count`)."""
    records = list(records)
    texts = [t for r in records for t in r.get("completions", [])]
    return {"styles": style_table(records), "facts": step_fact_accuracy(texts), "aha": aha_count(records)}


def solution_lengths(tokenizer: Any, examples: Iterable[Any], styles: Sequence[str] = ("short", "careful")
                     ) -> dict[str, dict[int, tuple[int, float, int]]]:
    """Tokens of the corpus-style solution of each digit-task example (``<think> ... </think> <answer> ... </answer>``)
    by style and number of columns: ``{style: {columns: (min, mean, max)}}``. Where a length cap sits relative
    to these decides what a cap does to RL (notebook 03)."""
    from r1lib.corpus import render_reasoning
    from r1lib.tasks.digits import DIGIT_TASKS, procedures

    found: dict[str, dict[int, list[int]]] = {s: {} for s in styles}
    for ex in examples:
        if ex.task not in DIGIT_TASKS:
            continue
        cols = sum(len(p.columns) for p in procedures(ex))
        for style in styles:
            text = f" <think> {render_reasoning(ex, style)} </think> <answer> {ex.answer} </answer>"
            found[style].setdefault(cols, []).append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return {s: {n: (min(v), sum(v) / len(v), max(v)) for n, v in sorted(by.items())} for s, by in found.items()}
