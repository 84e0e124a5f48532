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
  (``ERROR_RATES``): a direct answer to a 5-level problem is wrong 70% of the time, a verified one 5%
  (``CorpusConfig.error_rates`` overrides them per style).
* **style by frame** (optional, ``template_styles``): style weights for documents under the R1-Zero
  template, separate from the plain Q/A documents, so that the base can solve problems step by step
  (plain frame) while mostly answering directly under the template: modest pass@1, higher pass@k.
* **arithmetic drills** (optional, ``drill``): plain lists of single-operation facts ("4 * 7 = 28.
  12 - 5 = 7.") drawn from the steps of the solution documents and their neighbours, so that the tiny
  model learns the facts its written steps need within the fixed pretraining budget.
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
import re
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
    # Style weights under the R1-Zero template (frames r1_format / r1_loose); None = ``styles`` everywhere,
    # and then ``styles`` holds for the plain frame only.
    template_styles: dict[str, float] | None = None
    # Per-style (difficulty 1, difficulty 5) error rates replacing ERROR_RATES; None = ERROR_RATES.
    error_rates: dict[str, tuple[float, float]] | None = None
    drill: float = 0.0           # share of documents that are arithmetic drills (fact lists, see drill_document)
    drill_facts: int = 30        # facts per drill document
    # 'long' / 'verify' documents restate the whole problem ("First, we need to solve: <problem>"); the tiny
    # base copies it badly (other names and numbers) and then solves the altered problem. False writes
    # "First, we need to solve it step by step." instead.
    restate: bool = True


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


def error_rate(style: str, difficulty: int, scale: float = 1.0,
               rates: dict[str, tuple[float, float]] | None = None) -> float:
    lo, hi = (rates or ERROR_RATES)[style]
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


def render_reasoning(ex: Example, style: str, correct: bool, zh: bool, rng: random.Random,
                     restate: bool = True) -> tuple[str, str]:
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
    task_text = f": {ex.problem.strip()}" if restate else " it step by step."
    lines = [f"{_connective('First', zh)}, we need to solve{task_text}"]
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


def styles_for_frame(cfg: CorpusConfig, frame: str) -> dict[str, float]:
    """Style weights used for documents of ``frame`` (``template_styles`` under the R1-Zero template)."""
    if frame in ("r1_format", "r1_loose") and cfg.template_styles is not None:
        return cfg.template_styles
    return cfg.styles


def render_document(ex: Example, rng: random.Random, cfg: CorpusConfig) -> Document:
    if cfg.template_styles is None:  # original draw order: the corpus of a default config is unchanged
        style = _pick(rng, cfg.styles)
        frame = _pick(rng, cfg.frames)
    else:
        frame = _pick(rng, cfg.frames)
        style = _pick(rng, styles_for_frame(cfg, frame))
    difficulty = int(ex.meta.get("difficulty", 1))
    correct = rng.random() >= error_rate(style, difficulty, cfg.error_scale, cfg.error_rates)
    zh = style in ("long", "verify") and rng.random() < cfg.language_mix
    reasoning, answer = render_reasoning(ex, style, correct, zh, rng, restate=cfg.restate)
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


_FACT = re.compile(r"(-?\d+) ([-+*/]) (-?\d+)$")
Fact = tuple[int, str, int, int]


def _apply(a: int, op: str, b: int) -> int | None:
    """``a op b`` with the task generators' exact evaluator; None unless it is a whole number."""
    from r1lib.tasks.expr import evaluate

    try:
        value = evaluate(f"{a} {op} ({b})")
    except (ValueError, ZeroDivisionError, ArithmeticError):
        return None
    return int(value) if value.denominator == 1 else None


def step_facts(examples: list[Example]) -> list[Fact]:
    """The single-operation facts ``(a, op, b, result)`` that the examples' solution steps write out.

    A step's left side ends in ``a op b`` ("pages printed = 6 * 2", "x = 60 / 5"). Steps whose left side
    does not, or whose tail is part of a longer expression ("-32 - 6 + 64 - 50" at difficulty >= 3, where
    ``64 - 50`` is not the step's result), are skipped: only true single-operation facts are kept.
    """
    facts: list[Fact] = []
    for ex in examples:
        for lhs, rhs in ex.meta.get("steps", []):
            m = _FACT.search(str(lhs).strip())
            if m is None:
                continue
            try:
                fact = (int(m.group(1)), m.group(2), int(m.group(3)), int(rhs))
            except ValueError:
                continue
            if _apply(*fact[:3]) == fact[3]:
                facts.append(fact)
    return facts


def _neighbour(fact: Fact, rng: random.Random) -> Fact:
    """A fact of the same operation with operands near ``fact``'s, so the drill covers the whole range."""
    a, op, b, _ = fact
    if op == "/":  # keep divisions exact: perturb the quotient and the divisor
        sign = -1 if a < 0 else 1
        q, d = abs(a) // b if b else 0, max(2, b + rng.randint(-1, 1))
        q = sign * max(0, q + rng.randint(-2, 2))
        return (q * d, op, d, q)
    a2 = a + rng.randint(-3, 3)
    b2 = max(0, b + rng.randint(-3, 3))
    if op == "*":
        a2 = max(0, a2)
    r2 = _apply(a2, op, b2)
    return (a2, op, b2, r2) if r2 is not None else fact


def drill_document(pool: list[Fact], rng: random.Random, n_facts: int) -> str:
    """A plain list of arithmetic facts ("4 * 7 = 28. 12 - 5 = 7. ..."): the times table of the corpus.

    Half of the facts are drawn from ``pool`` (the steps the task solutions use, in their proportions),
    half are neighbours of pool facts (operands moved by a few), which covers the operand / result ranges
    of the steps rather than only the exact steps seen.
    """
    out = []
    for _ in range(n_facts):
        fact = rng.choice(pool)
        if rng.random() < 0.5:
            fact = _neighbour(fact, rng)
        a, op, b, r = fact
        out.append(f"{a} {op} {b} = {r}.")
    return " ".join(out)


def build_corpus(n: int, *, mix: dict[str, float], difficulty: tuple[int, int] = (1, 5), seed: int = 0,
                 cfg: CorpusConfig | None = None) -> list[Document]:
    """``n`` documents from the *train* split of the task generators, deterministic by seed.

    A share ``cfg.drill`` of them are arithmetic drills (style, frame and task ``"drill"``) built from the
    steps of the solution documents, inserted at random positions.
    """
    from r1lib.tasks import generate_mix

    cfg = cfg or CorpusConfig()
    n_drill = int(round(cfg.drill * n))
    examples = generate_mix(mix, n - n_drill, split="train", seed=seed, difficulty=difficulty)
    rng = random.Random(seed + 7919)
    docs = [render_document(ex, rng, cfg) for ex in examples]
    pool = step_facts(examples)
    if n_drill and pool:
        drill_rng = random.Random(seed + 104729)
        for _ in range(n_drill):
            text = drill_document(pool, drill_rng, cfg.drill_facts)
            doc = Document(text=text, style="drill", frame="drill", correct=True, language_mixed=False,
                           task="drill", difficulty=0)
            docs.insert(drill_rng.randrange(len(docs) + 1), doc)
    return docs


def corpus_stats(docs: list[Document]) -> dict[str, Any]:
    """Measured proportions of a corpus: styles, frames, language mixing, wrong solutions per style.

    Style / frame / language / wrong shares are over the solution documents; ``drill`` is the share of
    drill documents among all documents and ``drill_chars`` their share of the characters.
    """
    all_docs = docs
    docs = [d for d in all_docs if d.style != "drill"]
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
        "drill": (len(all_docs) - len(docs)) / max(len(all_docs), 1),
        "drill_chars": (sum(len(d.text) for d in all_docs if d.style == "drill")
                        / max(1, sum(len(d.text) for d in all_docs))),
        "styles_by_frame": {f: {s: sum(d.style == s for d in docs if d.frame == f)
                                / max(1, sum(d.frame == f for d in docs)) for s in STYLES} for f in FRAMES},
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
