"""The synthetic pretraining corpus of the embedded base model, designed so that RL has a skill to amplify.

RL amplifies a behaviour the base model already has: reflection words are present before RL (oat-zero,
"There May Not be Aha Moment in R1-Zero-like Training"), and RL converges on one pretraining output style,
usually the most accurate one (Echo Chamber, arXiv 2504.07912). So the base model needs a **reliable**
step-by-step skill that it **rarely uses** under the R1-Zero template, and answering without steps must
genuinely fail. The corpus (proportions in :class:`r1lib.config.CorpusConfig`, measured by
:func:`corpus_stats`) is built that way:

* **tasks**: digit-level procedures (``r1lib.tasks.digits``: multi-digit addition, subtraction with
  borrows, ...), where every written step is a single-digit fact or a copy, and answers of at least four
  digits that cannot be guessed. Only the *train* split of the generators feeds the corpus.
* **three solution styles** (:data:`STYLES`), every document correct (no planted wrong answers by default:
  whether a style works is measured on the base model's own samples, not assumed):

  - ``direct``: the answer only. A 1M-parameter model cannot add 4-digit numbers in its head, so this
    style is nearly always wrong when the model samples it;
  - ``short``: column by column, each column's fact and the running result: ``6 + 6 + 0 = 12, so far 2.
    8 + 7 + 1 = 16, so far 62. ...`` The model must find the i-th digit from the right of both operands
    in the prompt (a long-range lookup), which it does unreliably;
  - ``careful``: the same, but each column first restates what is left of the operands (``Check 386 +
    7776: 6 + 6 + 0 = 12, so far 2. Check 38 + 777: 8 + 7 + 1 = 16, so far 62. ...``). Restating makes
    every lookup local (the last digit of the line just written), so this style is the reliable one, and
    it is also the self-checking one ("check" is one of the paper's reflection words).
* **style by frame**: under the R1-Zero template (frames ``r1_format`` and ``r1_loose``) most documents
  answer directly (``template_styles``); in plain Q/A documents the step-by-step styles dominate
  (``plain_styles``). So the base can solve the problems step by step but rarely does under the template:
  pass@1 is low, pass@k high, and the gap is a skill, not luck.
* **self-correction**: a share of the careful solutions (``self_correction``) contains one slip, caught
  and fixed on the spot: ``8 + 7 + 1 = 15. Wait, 8 + 7 + 1 = 16, so far 62.`` The behaviour behind the
  paper's "aha moment", frequent enough to survive sampling; whether RL amplifies it is measured.
* **layouts**: under the template some documents follow ``<think>…</think> <answer>…</answer>`` and some
  do not (no tags, a bare answer after the think block, a ``\\boxed{}`` only), so the format reward has
  something to teach.
* **language mixing**: a share of the step-by-step documents (``language_mix``) write their connectives in
  Chinese (``目前`` for "so far", ``所以答案是`` ...), for the language-consistency reward of R1's stage 2.
* **non-reasoning documents** (``general``): greetings, short instructions and facts about a synthetic world
  (``r1lib.tasks.general``), answered without a chain of thought, for the later SFT and preference stages.

The older tasks (``arithmetic``, ``linear``, ``word``, ``countdown``) can still be mixed in; their steps are
written in the same three styles (``careful`` restates the problem and ends with a check).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from r1lib.prompts import r1_zero_prompt
from r1lib.tasks.base import Example
from r1lib.tasks.digits import DIGIT_TASKS, procedures

if TYPE_CHECKING:
    from r1lib.config import CorpusConfig

STYLES = ("direct", "short", "careful")
FRAMES = ("r1_format", "r1_loose", "plain")
TEMPLATE_FRAMES = ("r1_format", "r1_loose")

# English connective -> Chinese connective, used by language-mixed documents.
ZH = {"so far": "目前", "So the answer is": "所以答案是", "The answer is": "答案是", "Wait": "等等",
      "First, we need to solve": "首先，我们要解", "Then": "然后"}

_DIRECT_OPENERS = ("I know this one.", "This is simple.", "Easy.", "Let me answer directly.")


@dataclass
class Document:
    text: str
    style: str          # one of STYLES, or "general" for a non-reasoning document
    frame: str          # one of FRAMES, or "chat" / "qa" for a non-reasoning document
    correct: bool
    language_mixed: bool
    self_corrected: bool
    task: str
    difficulty: int


def default_corpus_config() -> "CorpusConfig":
    from r1lib.config import CorpusConfig

    return CorpusConfig()


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = [k for k, w in weights.items() if w > 0]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _say(text: str, zh: bool) -> str:
    return ZH.get(text, text) if zh else text


def _slip(value: int, rng: random.Random) -> int:
    """A plausible slip: off by one (never negative, never the right value)."""
    return value + 1 if value == 0 or rng.random() < 0.5 else value - 1


def _digit_reasoning(ex: Example, style: str, zh: bool, slip: bool, rng: random.Random) -> str:
    """Column-by-column solution of a digit-procedure example (see the module docstring)."""
    procs = procedures(ex)
    n_cols = sum(len(p.columns) for p in procs)
    slip_at = rng.randrange(n_cols) if slip else -1
    so_far, wait = _say("so far", zh), _say("Wait", zh)
    parts, k = [], 0
    for p in procs:
        for c in p.columns:
            head = f"Check {c.a} {p.op} {c.b}: " if style == "careful" else ""
            if k == slip_at:
                parts.append(f"{head}{c.lhs} = {_slip(c.value, rng)}. {wait}, {c.lhs} = {c.value}, {so_far} {c.partial}.")
            else:
                parts.append(f"{head}{c.lhs} = {c.value}, {so_far} {c.partial}.")
            k += 1
    return " ".join(parts)


def _merge_steps(steps: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """Older tasks' 'short' style: fold a step into the next one when the next uses its result verbatim."""
    out: list[tuple[str, str]] = []
    for lhs, rhs in steps:
        if out and rng.random() < 0.7:
            plhs, prhs = out[-1]
            tokens = lhs.split(" ")
            if prhs in tokens:
                tokens[tokens.index(prhs)] = f"({plhs})" if any(op in plhs for op in "+-*/") else plhs
                out[-1] = (" ".join(tokens), rhs)
                continue
        out.append((lhs, rhs))
    return out


def _step_reasoning(ex: Example, style: str, zh: bool, slip: bool, rng: random.Random) -> str:
    """Solution of an older task (arithmetic, linear, word, countdown) from its ``meta['steps']``."""
    steps = [(str(a), str(b)) for a, b in ex.meta.get("steps", [])] or [(ex.problem, ex.answer)]
    if style == "short":
        return " ".join(f"{lhs} = {rhs}." for lhs, rhs in _merge_steps(steps, rng))
    lines = [f"{_say('First, we need to solve', zh)}: {ex.problem.strip()}"]
    slip_at = rng.randrange(len(steps)) if slip else -1
    for k, (lhs, rhs) in enumerate(steps):
        lead = f"{_say('Then', zh)}, " if k else ""
        try:
            bad = str(_slip(int(rhs), rng)) if k == slip_at else None
        except ValueError:
            bad = None
        if bad is not None:
            lines.append(f"{lead}{lhs} = {bad}. {_say('Wait', zh)}, {lhs} = {rhs}.")
        else:
            lines.append(f"{lead}{lhs} = {rhs}.")
    lines.append(f"Check: {steps[-1][0]} = {steps[-1][1]}. Correct.")
    return " ".join(lines)


def final_answer(ex: Example) -> str:
    """The string a solution ends with: the answer, or Countdown's equation (it is graded on the equation)."""
    if ex.task == "countdown" and "solution_expr" in ex.meta:
        return str(ex.meta["solution_expr"])
    return ex.answer


def render_reasoning(ex: Example, style: str, *, zh: bool = False, slip: bool = False,
                     rng: random.Random | None = None) -> str:
    """The reasoning text of one solution of ``ex`` in ``style`` (the answer is added by the frame)."""
    rng = rng or random.Random(0)
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; styles: {STYLES}")
    if style == "direct":
        return rng.choice(_DIRECT_OPENERS)
    if ex.task in DIGIT_TASKS:
        return _digit_reasoning(ex, style, zh, slip and style == "careful", rng)
    return _step_reasoning(ex, style, zh, slip and style == "careful", rng)


def _wrong(answer: str, rng: random.Random) -> str:
    try:
        return str(int(answer) + rng.choice([-10, -1, 1, 10]))
    except ValueError:
        return answer + "1"


def frame_text(prompt: str, reasoning: str, answer: str, frame: str, rng: random.Random, zh: bool = False) -> str:
    """Put a solution into a layout: the R1-Zero template with tags, the template without them, or Q/A."""
    if frame == "r1_format":
        return f"{r1_zero_prompt(prompt)} <think> {reasoning} </think> <answer> {answer} </answer>"
    if frame == "r1_loose":
        variant = rng.randrange(3)
        if variant == 0:     # no tags at all
            return f"{r1_zero_prompt(prompt)} {reasoning} {_say('The answer is', zh)} {answer}."
        if variant == 1:     # a think block, then a bare answer
            return f"{r1_zero_prompt(prompt)} <think> {reasoning} </think> {answer}"
        return f"{r1_zero_prompt(prompt)} {reasoning} The final answer is \\boxed{{{answer}}}."
    if frame == "plain":
        head = rng.choice(["Question: {p}\nAnswer:", "Problem: {p}\nSolution:", "Q: {p}\nA:"]).format(p=prompt.strip())
        return f"{head} {reasoning} {_say('So the answer is', zh)} \\boxed{{{answer}}}."
    raise ValueError(f"unknown frame {frame!r}; frames: {FRAMES}")


def render_document(ex: Example, rng: random.Random, cfg: "CorpusConfig | None" = None) -> Document:
    """One pretraining document for a reasoning example: frame, then style by frame, then the text."""
    cfg = cfg or default_corpus_config()
    frame = _pick(rng, cfg.frames)
    style = _pick(rng, cfg.template_styles if frame in TEMPLATE_FRAMES else cfg.plain_styles)
    zh = style != "direct" and rng.random() < cfg.language_mix
    slip = style == "careful" and rng.random() < cfg.self_correction
    correct = rng.random() >= cfg.wrong_answers
    answer = final_answer(ex) if correct else _wrong(final_answer(ex), rng)
    reasoning = render_reasoning(ex, style, zh=zh, slip=slip, rng=rng)
    return Document(text=frame_text(ex.problem, reasoning, answer, frame, rng, zh), style=style, frame=frame,
                    correct=correct, language_mixed=zh, self_corrected=slip, task=ex.task,
                    difficulty=int(ex.meta.get("difficulty", 1)))


def render_general(ex: Example, rng: random.Random) -> Document:
    """A non-reasoning document: the prompt and its reference response, no chain of thought.

    Three layouts: the tokenizer's chat format (``<|user|>…<|end|><|assistant|>…``, the format the SFT stages
    use), ``User: … Assistant: …`` and ``Question: … Answer: …``.
    """
    layout = rng.choice(["chat", "user", "qa"])
    if layout == "chat":
        text = f"<|user|>{ex.problem}<|end|><|assistant|>{ex.answer}"
    elif layout == "user":
        text = f"User: {ex.problem}\nAssistant: {ex.answer}"
    else:
        text = f"Question: {ex.problem}\nAnswer: {ex.answer}"
    return Document(text=text, style="general", frame=layout, correct=True, language_mixed=False,
                    self_corrected=False, task=ex.task, difficulty=int(ex.meta.get("difficulty", 1)))


def build_corpus(n: int, *, mix: dict[str, float], difficulty: tuple[int, int] = (1, 2), seed: int = 0,
                 cfg: "CorpusConfig | None" = None) -> list[Document]:
    """``n`` documents from the *train* split of the task generators, deterministic by seed.

    A share ``cfg.general`` of them are non-reasoning documents (``r1lib.tasks.general``), shuffled in.
    """
    from r1lib.tasks import generate, generate_mix

    cfg = cfg or default_corpus_config()
    n_general = int(round(cfg.general * n))
    examples = generate_mix(mix, n - n_general, split="train", seed=seed, difficulty=difficulty)
    rng = random.Random(seed + 7919)
    docs = [render_document(ex, rng, cfg) for ex in examples]
    if n_general:
        general_rng = random.Random(seed + 104729)
        for ex in generate("general", n_general, split="train", seed=seed, difficulty=(1, 5)):
            docs.insert(general_rng.randrange(len(docs) + 1), render_general(ex, general_rng))
    return docs


def corpus_stats(docs: list[Document]) -> dict[str, Any]:
    """Measured proportions of a corpus: styles (overall and per frame), layouts, language mixing,
    self-corrections, tasks, wrong answers. Shares are over the reasoning documents, except ``general``
    (the share of non-reasoning documents among all)."""
    reasoning = [d for d in docs if d.style != "general"]
    n = max(len(reasoning), 1)
    by_style = Counter(d.style for d in reasoning)
    careful = max(1, by_style["careful"])
    template = [d for d in reasoning if d.frame in TEMPLATE_FRAMES]
    plain = [d for d in reasoning if d.frame == "plain"]

    def shares(sub: list[Document]) -> dict[str, float]:
        return {s: sum(d.style == s for d in sub) / max(1, len(sub)) for s in STYLES}

    return {
        "n_documents": len(docs),
        "n_reasoning": len(reasoning),
        "styles": {s: by_style[s] / n for s in STYLES},
        "styles_under_template": shares(template),
        "styles_plain": shares(plain),
        "frames": {f: sum(d.frame == f for d in reasoning) / n for f in FRAMES},
        "language_mixed": sum(d.language_mixed for d in reasoning) / n,
        "self_corrected_careful": sum(d.self_corrected for d in reasoning) / careful,
        "wrong": sum(not d.correct for d in reasoning) / n,
        "tasks": {t: c / n for t, c in sorted(Counter(d.task for d in reasoning).items())},
        "general": (len(docs) - len(reasoning)) / max(len(docs), 1),
        "general_kinds": dict(sorted(Counter(d.frame for d in docs if d.style == "general").items())),
        "mean_chars": sum(len(d.text) for d in docs) / max(len(docs), 1),
    }


_CAREFUL = re.compile(r"\b(check|verify)\b|检查", re.IGNORECASE)


def classify_style(completion: str) -> str:
    """Which corpus style a (sampled) solution resembles: 'careful', 'short' or 'direct'.

    Mirrors the renderers: a check (``Check 38 + 777:`` or the final ``Check:``) marks 'careful', any written
    step ``lhs = rhs`` marks 'short', anything else is 'direct'. Used to show which pretraining style RL
    amplifies.
    """
    if not isinstance(completion, str):
        return "direct"
    if _CAREFUL.search(completion):
        return "careful"
    if " = " in completion:
        return "short"
    return "direct"


def style_distribution(completions: list[str]) -> dict[str, float]:
    """Share of each style among completions (see :func:`classify_style`)."""
    counts = Counter(classify_style(c) for c in completions)
    n = max(len(completions), 1)
    return {s: counts[s] / n for s in STYLES}


def style_samples(docs: list[Document], frame: str = "r1_format") -> dict[str, str]:
    """One example document per style (first found, under ``frame``), plus a self-corrected, a
    language-mixed and a non-reasoning one, for showing the corpus."""
    out: dict[str, str] = {}
    for d in docs:
        if d.frame == frame and d.style not in out and not d.language_mixed and not d.self_corrected:
            out[d.style] = d.text
    for key, pred in (("careful + self-correction", lambda d: d.self_corrected and not d.language_mixed),
                      ("language_mixed", lambda d: d.language_mixed),
                      ("general", lambda d: d.style == "general")):
        found = next((d.text for d in docs if pred(d)), None)
        if found:
            out[key] = found
    return out
