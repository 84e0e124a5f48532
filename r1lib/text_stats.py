"""Text statistics of completions: reflection words, word segmentation, language mixing.

- Reflection words: the ten words three human experts chose to track reflective behaviour of
  R1-Zero during training (paper v2 Supplementary C.2, Fig. 9; docs/paper.md §7).
  Their count "rises 5- to 7-fold compared to the start of training".
- Word segmentation, shared with the language-consistency reward (docs/paper.md §1.3, §10): the paper
  does not say how "target language words" are segmented. Here (our choice):

  * a word is a maximal run of letters of one script; each CJK character (Han, kana, Hangul) is one
    word on its own (Chinese and Japanese have no spaces);
  * numbers, punctuation and symbols are not words;
  * LaTeX commands (``\\frac``, ``\\sqrt``) and tags (``<think>``) are markup, not words;
  * Greek letters are treated as math symbols (``π``, ``θ``), not words;
  * the "language" of a word is its script: ``"latin"`` for English (so French would also count as
    English: a script-level approximation of the paper's language-level definition), ``"cjk"`` for
    Chinese; other scripts get their Unicode name (``"cyrillic"``, ``"arabic"``, ...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "REFLECTION_WORDS",
    "LANGUAGE_SCRIPTS",
    "reflection_word_counts",
    "has_reflection",
    "reflection_rate",
    "think_block",
    "words",
    "word_script",
    "script_counts",
    "target_script",
    "language_mix",
]

#: Paper v2 C.2 (docs/paper.md §7), in the paper's order.
REFLECTION_WORDS: tuple[str, ...] = ("wait", "mistake", "however", "but", "retry", "error", "verify",
                                     "wrong", "evaluate", "check")

#: Target language -> script used to count its words (see the module docstring).
LANGUAGE_SCRIPTS: dict[str, str] = {"en": "latin", "zh": "cjk"}

_REFLECTION_RE = re.compile(r"\b(" + "|".join(REFLECTION_WORDS) + r")\b", re.IGNORECASE)
_MARKUP_RE = re.compile(r"\\[A-Za-z]+|</?[A-Za-z]+>|<\|[^|>]*\|>")
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")
_CJK_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "BOPOMOFO")


def reflection_word_counts(text: str) -> dict[str, int]:
    """Whole-word, case-insensitive count of each reflection word (all ten keys present).

    >>> c = reflection_word_counts("Wait, wait. But butter is no mistake... wait")
    >>> c["wait"], c["but"], c["mistake"], c["check"]
    (3, 1, 1, 0)
    """
    counts = dict.fromkeys(REFLECTION_WORDS, 0)
    if not isinstance(text, str):
        return counts
    for m in _REFLECTION_RE.finditer(text):
        counts[m.group(1).lower()] += 1
    return counts


def has_reflection(text: str) -> bool:
    """Whether ``text`` contains at least one reflection word.

    >>> has_reflection("Let me verify this."), has_reflection("Butter.")
    (True, False)
    """
    return isinstance(text, str) and _REFLECTION_RE.search(text) is not None


def reflection_rate(texts: Iterable[str]) -> float:
    """Share of ``texts`` with at least one reflection word; ``0.0`` for no texts.

    >>> reflection_rate(["wait", "ok", "Check it", "fine"])
    0.5
    """
    items = list(texts)
    if not items:
        return 0.0
    return sum(has_reflection(t) for t in items) / len(items)


def think_block(text: str) -> str | None:
    """The reasoning inside the first ``<think>...</think>`` block, or ``None`` without one.

    A truncated block (``<think>`` without ``</think>``) gives everything after ``<think>``; a
    completion whose ``<think>`` was part of the prompt (only ``</think>``) gives everything before it.

    >>> think_block(" <think> 2+2=4 </think> <answer>4</answer>")
    ' 2+2=4 '
    >>> think_block("no tags") is None
    True
    """
    if not isinstance(text, str):
        return None
    start = text.find("<think>")
    if start != -1:
        body_start = start + len("<think>")
        end = text.find("</think>", body_start)
        return text[body_start:end] if end != -1 else text[body_start:]
    end = text.find("</think>")
    return text[:end] if end != -1 else None


@lru_cache(maxsize=4096)
def _char_script(ch: str) -> str:
    """Script of one letter, from its Unicode name (``unicodedata`` has no script property)."""
    if ch.isascii():
        return "latin"
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0]
    if first in _CJK_SCRIPTS:
        return "cjk"
    if first == "LATIN":
        return "latin"
    return first.lower() or "unknown"


def _segment(text: str) -> list[tuple[str, str]]:
    """``(word, script)`` pairs following the module's segmentation rules."""
    if not isinstance(text, str):
        return []
    out: list[tuple[str, str]] = []
    for run in _LETTER_RUN_RE.findall(_MARKUP_RE.sub(" ", text)):
        if run.isascii():
            out.append((run, "latin"))
            continue
        current, current_script = [], ""
        for ch in run:
            script = _char_script(ch)
            if script == "cjk" or script != current_script:
                if current and current_script not in ("greek", "cjk"):
                    out.append(("".join(current), current_script))
                current, current_script = [], script
            if script == "cjk":
                out.append((ch, "cjk"))
            else:
                current.append(ch)
        if current and current_script not in ("greek", "cjk"):
            out.append(("".join(current), current_script))
    return out


def words(text: str) -> list[str]:
    """Words of ``text``: latin (and other alphabetic) letter runs, one word per CJK character.

    >>> words("Let x = 3, so 2x is 6. 所以答案是6 \\\\frac{1}{2} π")
    ['Let', 'x', 'so', 'x', 'is', '所', '以', '答', '案', '是']
    """
    return [w for w, _ in _segment(text)]


def word_script(word: str) -> str:
    """Script of a word from :func:`words`: ``"latin"``, ``"cjk"``, or a Unicode script name.

    >>> word_script("hello"), word_script("好"), word_script("привет")
    ('latin', 'cjk', 'cyrillic')
    """
    return _char_script(word[0]) if word else "unknown"


def script_counts(text: str) -> dict[str, int]:
    """Number of words per script.

    >>> script_counts("Hello 世界 мир")
    {'latin': 1, 'cjk': 2, 'cyrillic': 1}
    """
    counts: dict[str, int] = {}
    for _, script in _segment(text):
        counts[script] = counts.get(script, 0) + 1
    return counts


def target_script(target_lang: str) -> str:
    """Script counted for ``target_lang`` (``"en"``, ``"zh"``, or a script name such as ``"latin"``)."""
    if target_lang in LANGUAGE_SCRIPTS:
        return LANGUAGE_SCRIPTS[target_lang]
    if target_lang in LANGUAGE_SCRIPTS.values() or target_lang in ("cyrillic", "arabic", "hebrew"):
        return target_lang
    raise ValueError(f"target_lang={target_lang!r}: expected one of {sorted(LANGUAGE_SCRIPTS)} "
                     f"or a script name such as 'latin', 'cjk', 'cyrillic'")


def language_mix(text: str, target_lang: str = "en") -> bool:
    """Whether the CoT (the think block, else the whole text) has words of a non-target script.

    >>> language_mix("<think>First, 我们 add them</think><answer>5</answer>")
    True
    >>> language_mix("<think>First we add them: π r^2</think>")
    False
    """
    script = target_script(target_lang)
    cot = think_block(text)
    cot = text if cot is None else cot
    return any(s != script for _, s in _segment(cot))
