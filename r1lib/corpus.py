"""The synthetic pretraining corpus of the embedded base model, designed so that RL has something to find.

Public evidence says RL amplifies behaviours a base model already has: reflection words are present
before RL (oat-zero, "There May Not be Aha Moment in R1-Zero-like Training"), and RL amplifies one of
the pretraining styles (Echo Chamber, arXiv 2504.07912). With a base model whose every training document
we wrote, r1lib can show *where* R1-Zero's behaviours come from. So the corpus mixes, in documented and
measured proportions (``CorpusConfig``):

* **solution styles**: ``direct`` (the answer only), ``short`` (steps, with pairs of steps merged into
  one mental jump), ``long`` (every step written out, with a restatement of the problem), ``verify``
  (every step, a deliberately planted slip caught with "Wait, let me check ..." and corrected, and a final
  check). The longer, self-checking styles are more often correct on harder problems, as in reality
  (``ERROR_RATES``): a direct answer to a 5-level problem is wrong 70% of the time, a verified one 5%.
* **language mixing**: a share of the long / verify solutions use Chinese connectives (所以, 然后, 等等…), so
  the language-consistency reward of R1's stage 2 has something to fix.
* **layouts**: under the R1-Zero template some documents follow ``<think>…</think> <answer>…</answer>``,
  some do not (no tags, a bare answer after the think block, a ``\\boxed{}`` only), and some documents use
  other layouts without the template at all. So the format is only sometimes followed under the template.
* **wrong solutions** at a known, per-style rate (the final result slips); the achieved rate is measured
  and reported by :func:`corpus_stats`.

Only the *train* split of the task generators feeds the corpus; evaluation uses the disjoint test split.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from r1lib.prompts import r1_zero_prompt
from r1lib.tasks.base import Example

STYLES = ("direct", "short", "long", "verify")
FRAMES = ("r1_format", "r1_loose", "plain")

# Probability that a corpus solution of a style is wrong, at difficulty 1 and at difficulty 5 (linear in
# between). Longer, self-checking styles are more reliable on hard problems.
ERROR_RATES: dict[str, tuple[float, float]] = {
    "direct": (0.25, 0.70),
    "short": (0.15, 0.45),
    "long": (0.05, 0.15),
    "verify": (0.02, 0.05),
}

# English connective -> Chinese connective, used by language-mixed documents.
ZH = {
    "So": "所以", "Then": "然后", "Therefore": "因此", "First": "首先", "Next": "接下来",
    "Wait, let me check": "等等，让我检查一下", "The answer is": "答案是", "Check": "检查",
}


@dataclass
class CorpusConfig:
    """Proportions of the pretraining corpus (normalised when used)."""

    styles: dict[str, float] = field(default_factory=lambda: {"direct": 0.35, "short": 0.25, "long": 0.25, "verify": 0.15})
    frames: dict[str, float] = field(default_factory=lambda: {"r1_format": 0.20, "r1_loose": 0.40, "plain": 0.40})
    language_mix: float = 0.12   # share of 'long' / 'verify' documents written with Chinese connectives
    error_scale: float = 1.0     # multiplies ERROR_RATES (0 = no wrong solutions)


@dataclass
class Document:
    text: str
    style: str
    frame: str
    correct: bool
    language_mixed: bool
    task: str
    difficulty: int


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def error_rate(style: str, difficulty: int, scale: float = 1.0) -> float:
    lo, hi = ERROR_RATES[style]
    t = (min(max(difficulty, 1), 5) - 1) / 4
    return min(1.0, scale * (lo + t * (hi - lo)))


def _wrong_number(rng: random.Random, value: str) -> str:
    """A plausible slip: off by a small amount, never equal to the right value."""
    try:
        v = int(value)
    except ValueError:
        return value + "1"
    delta = rng.choice([-10, -2, -1, 1, 2, 10])
    return str(v + delta)


def _wrong_expression(expr: str, rng: random.Random) -> str:
    """A countdown slip: one operator swapped for another."""
    ops = [i for i, ch in enumerate(expr) if ch in "+-*/" and 0 < i < len(expr) - 1 and expr[i - 1] == " "]
    if not ops:
        return expr + " + 1"
    i = rng.choice(ops)
    return expr[:i] + rng.choice([o for o in "+-*/" if o != expr[i]]) + expr[i + 1:]


def _merge_steps(steps: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """'short' style: fold a step into the next one when the next step uses its result verbatim."""
    out: list[tuple[str, str]] = []
    for lhs, rhs in steps:
        if out and rng.random() < 0.7:
            plhs, prhs = out[-1]
            tokens = lhs.split(" ")
            if prhs in tokens:
                i = tokens.index(prhs)
                tokens[i] = f"({plhs})" if any(op in plhs for op in "+-*/") else plhs
                out[-1] = (" ".join(tokens), rhs)
                continue
        out.append((lhs, rhs))
    return out


def _connective(word: str, zh: bool) -> str:
    return ZH.get(word, word) if zh else word


def render_reasoning(ex: Example, style: str, correct: bool, zh: bool, rng: random.Random) -> tuple[str, str]:
    """Return (reasoning text, final answer) of one solution in the given style."""
    steps = [(str(a), str(b)) for a, b in ex.meta.get("steps", [])] or [(ex.problem, ex.answer)]
    answer = ex.answer
    if not correct:
        answer = _wrong_number(rng, answer)
        steps = steps[:-1] + [(steps[-1][0], answer)]
    if ex.task == "countdown" and "solution_expr" in ex.meta:
        # Countdown is graded on the equation, not the target: the final answer is the expression.
        answer = ex.meta["solution_expr"] if correct else _wrong_expression(ex.meta["solution_expr"], rng)
    if style == "direct":
        return rng.choice(["This is simple.", "I know this one.", "Easy.", "Let me answer directly."]), answer
    if style == "short":
        steps = _merge_steps(steps, rng)
        return " ".join(f"{lhs} = {rhs}." for lhs, rhs in steps), answer
    lines = [f"{_connective('First', zh)}, we need to solve: {ex.problem.strip()}"]
    slip_at = rng.randrange(len(steps)) if style == "verify" else -1
    for k, (lhs, rhs) in enumerate(steps):
        lead = _connective("Then", zh) if k else ""
        if k == slip_at:
            bad = _wrong_number(rng, rhs)
            lines.append(f"{lead + ', ' if lead else ''}{lhs} = {bad}.")
            phrase = rng.choice(["Wait, let me check", "Wait, let me check", "Hmm, that is wrong. Let me verify",
                                 "But wait, that is a mistake. Let me check"])
            phrase = _connective(phrase, zh)
            lines.append(f"{phrase}: {lhs} = {rhs}, not {bad}.")
        else:
            lines.append(f"{lead + ', ' if lead else ''}{lhs} = {rhs}.")
    if style == "verify":
        lines.append(f"{_connective('Check', zh)}: {steps[-1][0]} = {steps[-1][1]}. Correct.")
    lines.append(f"{_connective('So', zh)} the result is {answer}.")
    return " ".join(lines), answer


def render_document(ex: Example, rng: random.Random, cfg: CorpusConfig) -> Document:
    style = _pick(rng, cfg.styles)
    frame = _pick(rng, cfg.frames)
    difficulty = int(ex.meta.get("difficulty", 1))
    correct = rng.random() >= error_rate(style, difficulty, cfg.error_scale)
    zh = style in ("long", "verify") and rng.random() < cfg.language_mix
    reasoning, answer = render_reasoning(ex, style, correct, zh, rng)
    if frame == "r1_format":
        text = f"{r1_zero_prompt(ex.problem)} <think> {reasoning} </think> <answer> {answer} </answer>"
    elif frame == "r1_loose":
        variant = rng.randrange(3)
        if variant == 0:     # no tags at all
            text = f"{r1_zero_prompt(ex.problem)} {reasoning} {_connective('The answer is', zh)} {answer}."
        elif variant == 1:   # a think block, then a bare answer
            text = f"{r1_zero_prompt(ex.problem)} <think> {reasoning} </think> {answer}"
        else:                # boxed answer, no answer tags
            text = f"{r1_zero_prompt(ex.problem)} {reasoning} The final answer is \\boxed{{{answer}}}."
    else:
        head = rng.choice(["Question: {p}\nAnswer:", "Problem: {p}\nSolution:", "Q: {p}\nA:"]).format(p=ex.problem.strip())
        text = f"{head} {reasoning} So the answer is \\boxed{{{answer}}}."
    return Document(text=text, style=style, frame=frame, correct=correct, language_mixed=zh, task=ex.task,
                    difficulty=difficulty)


def build_corpus(n: int, *, mix: dict[str, float], difficulty: tuple[int, int] = (1, 5), seed: int = 0,
                 cfg: CorpusConfig | None = None) -> list[Document]:
    """``n`` documents from the *train* split of the task generators, deterministic by seed."""
    from r1lib.tasks import generate_mix

    cfg = cfg or CorpusConfig()
    examples = generate_mix(mix, n, split="train", seed=seed, difficulty=difficulty)
    rng = random.Random(seed + 7919)
    return [render_document(ex, rng, cfg) for ex in examples]


def corpus_stats(docs: list[Document]) -> dict[str, Any]:
    """Measured proportions of a corpus: styles, frames, language mixing, wrong solutions per style."""
    n = max(len(docs), 1)
    by_style = Counter(d.style for d in docs)
    stats: dict[str, Any] = {
        "n_documents": len(docs),
        "styles": {s: by_style[s] / n for s in STYLES},
        "frames": {f: sum(d.frame == f for d in docs) / n for f in FRAMES},
        "language_mixed": sum(d.language_mixed for d in docs) / n,
        "wrong": sum(not d.correct for d in docs) / n,
        "wrong_by_style": {s: (sum(not d.correct for d in docs if d.style == s) / by_style[s]) if by_style[s] else 0.0
                           for s in STYLES},
        "tasks": {t: c / n for t, c in Counter(d.task for d in docs).items()},
        "mean_chars": sum(len(d.text) for d in docs) / n,
    }
    return stats


def config_dict(cfg: CorpusConfig) -> dict[str, Any]:
    return asdict(cfg)


def classify_style(completion: str) -> str:
    """Which corpus style a (sampled) solution resembles: 'verify', 'long', 'short' or 'direct'.

    Used to show which pretraining style RL amplifies. Rules mirror ``render_reasoning``: a reflection
    phrase marks 'verify'; the restated problem marks 'long'; any written step 'lhs = rhs' marks 'short'.
    """
    low = completion.lower()
    if any(w in low for w in ("wait", "let me check", "let me verify", "等等", "mistake")):
        return "verify"
    if "we need to solve" in low or "首先" in completion:
        return "long"
    if " = " in completion:
        return "short"
    return "direct"


def style_distribution(completions: list[str]) -> dict[str, float]:
    """Share of each style among completions (see :func:`classify_style`)."""
    counts = Counter(classify_style(c) for c in completions)
    n = max(len(completions), 1)
    return {s: counts[s] / n for s in STYLES}


def style_samples(docs: list[Document], frame: str = "r1_format") -> dict[str, str]:
    """One example document per style (first found), for showing the corpus."""
    out: dict[str, str] = {}
    for d in docs:
        if d.frame == frame and d.style not in out and not d.language_mixed:
            out[d.style] = d.text
    mixed = next((d.text for d in docs if d.language_mixed), None)
    if mixed:
        out["language_mixed"] = mixed
    return out
