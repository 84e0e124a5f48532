"""Answer extraction and answer equivalence, with hard time limits.

The paper grades math answers with a rule: the final answer is given "in a specified format (e.g.,
within a box)" and compared with the reference using SymPy (docs/paper.md §1.2, §5).
This module does the same with `math-verify` (which drives SymPy) behind a cheap exact fast path.

Public API
----------
- :func:`extract_answer` — the last ``<answer>...</answer>`` block, else the last ``\\boxed{}``.
- :func:`last_boxed` — the content of the last complete ``\\boxed{...}`` / ``\\fbox{...}``.
- :func:`normalize_answer` — the string normalisation of the fast path.
- :func:`exact_match` — normalised string equality or exact numeric (``Fraction``) equality; no SymPy.
  Used for the synthetic tasks and as step 2 of :func:`is_equivalent`.
- :func:`is_equivalent` — the one helper everything that grades uses.
- :func:`warm_up_worker` — start the grading subprocess ahead of time (see step 4b).

Design of :func:`is_equivalent` (never raises, bounded time on adversarial input)
---------------------------------------------------------------------------------
1. Anything that is not a string (``None``, junk objects) is not equivalent; ints/floats are str()-ed.
2. Fast path: :func:`exact_match`. If both sides are plain numbers or fractions the exact
   ``Fraction`` comparison is final (``"0.5" == "1/2" == "\\frac{1}{2}"``, but ``"0.333" != "1/3"``).
3. Pre-screen before SymPy: answers longer than :data:`MAX_ANSWER_CHARS` and answers whose evaluation
   could need a huge big-integer computation (power towers such as ``9**9**9**9`` or
   ``9^{9^{9^9}}``, ``10^{10^7}``, ``100000!``) are rejected (``False``). A big-int ``pow`` runs in C
   and cannot be interrupted by any signal, so it must never start; :func:`_magnitude_too_large`
   bounds the size of every number an expression would evaluate to.
4. math-verify (``parse`` + ``verify``) with its own ``signal.alarm`` timeouts disabled
   (``parsing_timeout=None, timeout_seconds=None``; its alarms work only in the main thread and only
   in whole seconds, docs/dependencies.md §8), under our own limit:

   a. main thread: a ``signal.setitimer(ITIMER_REAL, budget, 0.05)`` guard whose handler raises
      :class:`_Deadline` (a ``BaseException``, so the ``except Exception`` blocks inside math-verify
      and SymPy cannot swallow it; the 50 ms repeat re-raises if something does). The previous
      SIGALRM handler and timer are restored afterwards.
   b. any other thread (TRL thread pools, async reward functions): one persistent grading
      subprocess (:class:`_GradingWorker`, started lazily with ``subprocess.Popen`` and kept for the
      life of the process), fed JSON lines. The subprocess applies guard (a) in its own main thread;
      the caller waits at most ``budget + 0.25 s`` for the reply and otherwise kills the subprocess
      (a C-level hang) and starts a new one on the next call. Calls from several threads are
      serialised through it. A plain subprocess (not ``multiprocessing``'s spawn) is used on purpose:
      spawn re-imports the user's ``__main__`` script in the child, which re-runs unguarded
      top-level code of a training script. Starting the subprocess costs about 1-1.5 s once
      (interpreter + SymPy import); :func:`warm_up_worker` pays that up front.

   Any exception, timeout or unparsable side gives ``False``.

Timing: the fast path takes microseconds; math-verify typically 1-10 ms per pair, and never more than
:data:`DEFAULT_BUDGET_S` (0.8 s) before the guard fires (plus 0.25 s grace in the subprocess path).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, TypeVar

__all__ = [
    "MAX_ANSWER_CHARS",
    "DEFAULT_BUDGET_S",
    "extract_answer",
    "last_boxed",
    "normalize_answer",
    "exact_match",
    "is_equivalent",
    "warm_up_worker",
]

#: Answers longer than this (per side, after extraction) never reach SymPy; they can still match by
#: normalised string equality.
MAX_ANSWER_CHARS = 1_000
#: Wall-clock budget of one math-verify comparison (parse both sides + verify), in seconds.
DEFAULT_BUDGET_S = 0.8
#: Extra time the caller grants the grading subprocess beyond the budget before killing it.
_WORKER_GRACE_S = 0.25
#: Time allowed for the grading subprocess to start (interpreter + SymPy import), in seconds.
_WORKER_STARTUP_TIMEOUT_S = 60.0
#: Largest number (in bits) an answer may evaluate to before SymPy is allowed to see it.
_MAX_BITS = 65_536
#: Deepest bracket nesting the pre-screen accepts.
_MAX_NESTING = 60

T = TypeVar("T")

# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"

# One linear pass over the text. `\\` (a LaTeX line break) and `\{`/`\}` (literal set braces) are
# consumed first so they never count as grouping braces.
_BOX_TOKENS = re.compile(r"\\\\|\\[{}]|\\(?:boxed|fbox)\s*\{|\\boxed[ \t]+([^\s${}]+)|\{|\}")


def last_boxed(text: str | None) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``.

    Braces are matched with nesting; an unclosed (truncated) box is skipped, so the last *complete*
    box wins. ``\\boxed 5`` (space form) is also recognised. Runs in linear time.

    >>> last_boxed(r"so \\boxed{\\frac{1}{2}} and finally \\boxed{\\{1, 2\\}}.")
    '\\\\{1, 2\\\\}'
    >>> last_boxed(r"\\fbox{7} then \\boxed{8") is None
    False
    >>> last_boxed("no box") is None
    True
    """
    if not isinstance(text, str) or "\\" not in text:
        return None
    stack: list[int | None] = []  # content start of an open box, or None for a plain brace group
    best: tuple[int, str] | None = None  # (start position, content) of the latest-starting box
    for m in _BOX_TOKENS.finditer(text):
        tok = m.group(0)
        if tok in ("\\\\", "\\{", "\\}"):
            continue
        if m.group(1) is not None:  # \boxed 5
            if best is None or m.start() >= best[0]:
                best = (m.start(), m.group(1))
        elif tok == "{":
            stack.append(None)
        elif tok == "}":
            if stack:
                start = stack.pop()
                if start is not None and (best is None or start >= best[0]):
                    best = (start, text[start:m.start()])
        else:  # \boxed{ or \fbox{
            stack.append(m.end())
    return best[1] if best is not None else None


def _clean_answer(ans: str) -> str:
    """Strip whitespace, surrounding ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` and a trailing period."""
    prev = None
    s = ans
    while s != prev:
        prev = s
        s = s.strip()
        if s.endswith(".") and not s.endswith(".."):
            s = s[:-1].rstrip()
        if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
            s = s[1:-1]
        elif (s.startswith("\\(") and s.endswith("\\)")) or (s.startswith("\\[") and s.endswith("\\]")):
            s = s[2:-2]
    return s


def extract_answer(completion: str | None) -> str | None:
    """The final answer of a completion, or ``None`` when it has none.

    The content of the LAST complete ``<answer>...</answer>`` block if there is one (if that content
    holds a ``\\boxed{}``, the boxed content), else the content of the last ``\\boxed{}``/``\\fbox{}``.
    The result is stripped of whitespace, surrounding ``$...$`` and a trailing period; an empty answer
    gives ``None``.

    >>> extract_answer("<think>2+2</think> <answer> $4$. </answer>")
    '4'
    >>> extract_answer("<answer>1</answer> no wait <answer>The answer is \\\\boxed{2}</answer>")
    '2'
    >>> extract_answer("Thus the answer is \\\\boxed{\\\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> extract_answer("<answer>unclosed") is None
    True
    """
    if not isinstance(completion, str):
        return None
    close = completion.rfind(_ANSWER_CLOSE)
    content: str | None = None
    if close != -1:
        open_ = completion.rfind(_ANSWER_OPEN, 0, close)
        if open_ != -1:
            content = completion[open_ + len(_ANSWER_OPEN):close]
            boxed = last_boxed(content)
            if boxed is not None:
                content = boxed
    if content is None:
        content = last_boxed(completion)
    if content is None:
        return None
    cleaned = _clean_answer(content)
    return cleaned or None


# --------------------------------------------------------------------------------------------
# Normalisation and the exact fast path
# --------------------------------------------------------------------------------------------

_TEXT_WRAP = re.compile(r"\\(?:text|textbf|textrm|textit|mbox|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_LEFT_RIGHT = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
_SPACES = re.compile(r"\\[!,;: ]|\\quad|\\qquad|~|\s+")
_DIGIT_GAP = re.compile(r"(?<=\d)\s+(?=\d)")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|°")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_ASSIGN = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?=(?!=)(.+)")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_SLASH_FRACTION = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))/([-+]?(?:\d+(?:\.\d*)?|\.\d+))")
_LATEX_FRACTION = re.compile(r"([-+]?)\\frac\{([-+]?(?:\d+(?:\.\d*)?|\.\d+))\}\{([-+]?(?:\d+(?:\.\d*)?|\.\d+))\}")


def normalize_answer(ans: str | None) -> str:
    """Canonical string form of an answer for the exact fast path (no SymPy).

    Removes spaces, ``$``, ``\\$``, ``\\text{}``/``\\mbox{}`` wrappers, ``\\left``/``\\right``,
    ``^\\circ``, ``\\%``, thousands separators (``1,234``, ``10,\\!080``), trailing ``.0``, leading zeros;
    ``\\dfrac``/``\\tfrac`` become ``\\frac``, ``\\frac43`` becomes ``\\frac{4}{3}``, ``x = 5`` becomes ``5``.
    Percent signs are dropped too (a lenient choice, not in the paper: "50\\%" matches "50").
    Whitespace between two digits is kept (``"3 5"`` is not ``"35"``). Non-strings give ``""``.

    >>> normalize_answer(r" \\$10,\\!080.00 ")
    '10080'
    >>> normalize_answer(r"x = \\dfrac 59")
    '\\\\frac{5}{9}'
    >>> normalize_answer(r"\\left( 3, \\frac{\\pi}{2} \\right)")
    '(3,\\\\frac{\\\\pi}{2})'
    """
    if not isinstance(ans, str):
        return ""
    s = ans.strip()
    s = s.replace("<answer>", "").replace("</answer>", "")
    s = s.replace("\u2212", "-").replace("\\displaystyle", "")
    s = s.replace("\\$", "").replace("$", "")
    for _ in range(3):  # nested wrappers, bounded
        s = _TEXT_WRAP.sub(r"\1", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _LEFT_RIGHT.sub("", s)
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    # thousands separators: only when the whole answer is one such number ("1, 2" stays a list)
    t = re.sub(r",\\!\s*|\{,\}", ",", s).strip()
    if _THOUSANDS.fullmatch(t):
        s = t.replace(",", "")
    s = _DIGIT_GAP.sub("\u2423", s)  # "3 5" must not become "35"
    s = _SPACES.sub("", s).replace("\u2423", " ")
    # \frac43, \frac{270}7, \frac4{3}, \sqrt2
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac(\d)\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", s)
    m = _ASSIGN.fullmatch(s)
    if m:
        s = m.group(1)
    s = _strip_outer_braces(s)
    s = s.rstrip(".")
    if _PLAIN_NUMBER.fullmatch(s):
        s = _canonical_number(s)
    return s


def _strip_outer_braces(s: str) -> str:
    """``"{{5}}" -> "5"`` but ``"{a}{b}"`` unchanged; one linear pass (safe on 10k nested braces)."""
    if not s.startswith("{"):
        return s
    match: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(s):
        if ch == "{":
            stack.append(i)
        elif ch == "}":
            if not stack:
                return s
            match[stack.pop()] = i
    if stack:
        return s
    n, k = len(s), 0
    while k < n - 1 - k and s[k] == "{" and match.get(k) == n - 1 - k:
        k += 1
    return s[k:n - k]


_NUMBER_PARTS = re.compile(r"([-+]?)(\d*)(?:\.(\d*))?")


def _canonical_number(s: str) -> str:
    """``"007" -> "7"``, ``"5.50" -> "5.5"``, ``"3.0" -> "3"``, ``"+3" -> "3"``, ``"-0" -> "0"``."""
    m = _NUMBER_PARTS.fullmatch(s)
    if m is None:
        return s
    sign, int_part, frac = m.group(1), m.group(2).lstrip("0") or "0", (m.group(3) or "").rstrip("0")
    body = f"{int_part}.{frac}" if frac else int_part
    return body if sign != "-" or body == "0" else "-" + body


def _as_fraction(s: str) -> Fraction | None:
    """Exact value of a plain number / fraction in normalised form, else ``None``."""
    if len(s) > 200:
        return None
    try:
        if _PLAIN_NUMBER.fullmatch(s):
            return Fraction(s)
        m = _SLASH_FRACTION.fullmatch(s)
        if m:
            den = Fraction(m.group(2))
            return Fraction(m.group(1)) / den if den != 0 else None
        m = _LATEX_FRACTION.fullmatch(s)
        if m:
            den = Fraction(m.group(3))
            if den == 0:
                return None
            val = Fraction(m.group(2)) / den
            return -val if m.group(1) == "-" else val
        if s.startswith("-") and len(s) > 1 and s[1] != "-":
            inner = _as_fraction(s[1:])
            return -inner if inner is not None else None
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def _exact_verdict(pred: str, gold: str) -> bool | None:
    """``True``/``False`` when the fast path can decide, ``None`` when SymPy is needed."""
    p, g = normalize_answer(pred), normalize_answer(gold)
    if p == g:
        return bool(p)
    fp, fg = _as_fraction(p), _as_fraction(g)
    if fp is not None and fg is not None:
        return fp == fg
    return None


def exact_match(pred: str | None, gold: str | None) -> bool:
    """Normalised string equality or exact numeric equality; never uses SymPy, never raises.

    >>> exact_match("1,234", "1234"), exact_match("0.5", "\\\\frac{1}{2}"), exact_match("0.333", "1/3")
    (True, True, False)
    """
    try:
        p, g = _coerce(pred), _coerce(gold)
        if p is None or g is None:
            return False
        return bool(_exact_verdict(p, g))
    except Exception:  # noqa: BLE001 - a grader must never raise; any failure means "not equal"
        return False


def _coerce(x: Any) -> str | None:
    if isinstance(x, str):
        return x
    if isinstance(x, (int, float, Fraction)) and not isinstance(x, bool):
        return str(x)
    return None


# --------------------------------------------------------------------------------------------
# Pre-screen: bound the size of every number an expression could evaluate to
# --------------------------------------------------------------------------------------------

_PS_TOKEN = re.compile(
    r"\s+|(\d+(?:\.\d*)?|\.\d+)|(\\[A-Za-z]+|[A-Za-z]+)|(\*\*|\\\\|[-+*/^_!(){}\[\],=&|<>;:])|(.)",
    re.DOTALL,
)
_BIG_FUNCTIONS = frozenset({"\\binom", "\\dbinom", "\\tbinom", "\\choose", "\\Gamma", "\\gamma",
                            "binom", "factorial", "gamma", "Gamma", "\\prod", "\\sum"})
_INF = float("inf")


class _TooLarge(Exception):
    """Raised inside the pre-screen parser when a number would exceed :data:`_MAX_BITS`."""


class _MagnitudeParser:
    """Tiny recursive-descent parser computing an upper bound of log2|value| of every subterm.

    It understands just enough of LaTeX/plain math (numbers, + - * / ^ ** _ !, brackets, commands
    with brace arguments, implicit multiplication) to bound big-integer work; anything else is a
    separator. Symbols count as magnitude 2 (they are never evaluated, but numeric parts are).
    """

    def __init__(self, text: str) -> None:
        toks: list[tuple[str, str]] = []
        for m in _PS_TOKEN.finditer(text.replace("\\left", "").replace("\\right", "")):
            if m.group(1) is not None:
                toks.append(("num", m.group(1)))
            elif m.group(2) is not None:
                toks.append(("id", m.group(2)))
            elif m.group(3) is not None:
                toks.append(("op", "^" if m.group(3) == "**" else m.group(3)))
        self.toks = toks
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def check(self, bits: float) -> float:
        if bits > _MAX_BITS:
            raise _TooLarge
        return bits

    def parse_all(self) -> None:
        while self.i < len(self.toks):
            start = self.i
            self.expr()
            if self.i == start:  # stray closing bracket or separator
                self.i += 1

    def expr(self) -> float:
        bits = self.term()
        while (t := self.peek()) is not None and t[0] == "op" and t[1] in "+-,=&|<>;:\\\\":
            self.i += 1
            bits = self.check(max(bits, self.term()) + 1)
        return bits

    def term(self) -> float:
        bits = self.factor()
        while (t := self.peek()) is not None:
            if t[0] == "op" and t[1] in "*/":
                self.i += 1
            elif not (t[0] in ("num", "id") or (t[0] == "op" and t[1] in "({[")):
                break
            bits = self.check(bits + self.factor())
        return bits

    def factor(self) -> float:
        bits = self.unary()
        while (t := self.peek()) is not None and t[0] == "op" and t[1] in "^_!":
            self.i += 1
            if t[1] == "!":
                bits = self.check(_factorial_bits(bits))
            elif t[1] == "_":
                bits = self.check(max(bits, self.unary()))
            else:
                exp_bits = self.factor()  # right-associative
                bits = self.check(bits * 2.0 ** exp_bits if exp_bits < 1024 else _INF)
        return bits

    def unary(self) -> float:
        while (t := self.peek()) is not None and t[0] == "op" and t[1] in "+-":
            self.i += 1
        return self.primary()

    def primary(self) -> float:
        t = self.peek()
        if t is None:
            return 1.0
        kind, val = t
        if kind == "num":
            self.i += 1
            int_digits = val.split(".")[0].lstrip("0")
            if len(int_digits) > 300:
                return self.check(len(int_digits) * math.log2(10))
            return self.check(math.log2(max(int(int_digits or "0"), 2)))
        if kind == "id":
            self.i += 1
            bits = 1.0
            args = []
            while (n := self.peek()) is not None and n == ("op", "{"):
                args.append(self.group())
            if args:
                bits = self.check(sum(args))
            if val in _BIG_FUNCTIONS and args:
                bits = self.check(_factorial_bits(max(args)))
            return bits
        if kind == "op" and val in "({[":
            return self.group()
        return 1.0

    def group(self) -> float:
        closing = {"(": ")", "{": "}", "[": "]"}[self.toks[self.i][1]]
        self.i += 1
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise _TooLarge
        bits = 1.0
        while (t := self.peek()) is not None and t != ("op", closing):
            if t[0] == "op" and t[1] in ")}]":  # mismatched bracket: treat as the end
                break
            start = self.i
            bits = max(bits, self.expr())
            if self.i == start:
                self.i += 1
        if self.peek() is not None and self.peek() == ("op", closing):
            self.i += 1
        self.depth -= 1
        return bits


def _factorial_bits(arg_bits: float) -> float:
    """Upper bound of log2(n!) for n < 2**arg_bits (n! <= n**n)."""
    if arg_bits > 40:
        return _INF
    n = 2.0 ** arg_bits
    return n * arg_bits


def _magnitude_too_large(text: str) -> bool:
    """True when ``text`` could make SymPy build a number above :data:`_MAX_BITS` bits (or nests
    brackets deeper than :data:`_MAX_NESTING`), e.g. ``9**9**9**9``, ``9^{9^{9^{9}}}``, ``10^{10^7}``.

    >>> _magnitude_too_large("9^{9^{9^{9}}}"), _magnitude_too_large("2^{2010} + \\\\frac{x^2}{3}")
    (True, False)
    """
    try:
        _MagnitudeParser(text).parse_all()
    except (_TooLarge, RecursionError, OverflowError):
        return True
    return False


# --------------------------------------------------------------------------------------------
# math-verify core (runs in-process, no timeouts of its own)
# --------------------------------------------------------------------------------------------


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that its timeouts are disabled; here that is the intended design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


@lru_cache(maxsize=1)
def _math_verify() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Import math-verify once and warm it up (the first parse builds the LaTeX grammar, ~0.1 s)."""
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutDisabledWarning())
    from math_verify import parse, verify

    # One pair per common answer type: their first comparison loads lazy SymPy machinery (0.1-0.4 s),
    # which would otherwise eat into the budget of the first real comparisons.
    for gold, pred in _WARM_UP_PAIRS:
        verify(parse(gold, parsing_timeout=None), parse(pred, parsing_timeout=None), timeout_seconds=None)
    return parse, verify


_WARM_UP_PAIRS = (
    ("$\\frac{1}{\\sqrt{2}}$", "$\\frac{\\sqrt{2}}{2}$"),
    ("$x \\in [-2,7]$", "$(1,3)$"),
    ("$y = 2x+3$", "$(x+1)^2$"),
    ("$90^\\circ$", "$\\pi/2$"),
    ("$\\begin{pmatrix}1\\\\2\\end{pmatrix}$", "$\\{1,2\\}$"),
)


def _mv_input(ans: str) -> str:
    """Prepare an answer for ``math_verify.parse``: drop ``<answer>`` tags and ``\\$``, and wrap bare
    LaTeX in ``$...$`` (bare ``\\sqrt{3}`` parses to nothing, docs/dependencies.md §8)."""
    s = ans.replace("<answer>", " ").replace("</answer>", " ").replace("\\$", "").replace("\\!", "")
    s = s.strip()
    if "$" in s or "\\(" in s or "\\[" in s or "\\boxed" in s:
        return s
    return f"${s}$"


def _mv_equivalent_unguarded(pred: str, gold: str) -> bool:
    """math-verify on prepared strings, without any time limit (call only under a guard)."""
    parse, verify = _math_verify()
    gold_parsed = parse(_mv_input(gold), parsing_timeout=None)
    pred_parsed = parse(_mv_input(pred), parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


# --------------------------------------------------------------------------------------------
# Time limits
# --------------------------------------------------------------------------------------------


class _Deadline(BaseException):
    """Raised by the SIGALRM handler. A BaseException so library ``except Exception`` blocks let it pass."""


class _Unavailable(Exception):
    """The signal guard cannot be used here (not the main thread, or no ``setitimer``)."""


def _call_with_deadline(fn: Callable[[], T], budget_s: float, on_timeout: T) -> T:
    """Run ``fn()`` in the main thread, interrupting it after ``budget_s`` seconds.

    Uses ``setitimer(ITIMER_REAL)`` with a 50 ms repeat, so an interruption swallowed by some
    ``except BaseException`` is re-raised. The previous SIGALRM handler and real-time timer are
    restored (a previous timer that would have expired meanwhile fires right after). Raises
    :class:`_Unavailable` where signals cannot be used.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        raise _Unavailable
    state = {"active": True, "restored": False}

    def handler(signum: int, frame: object) -> None:
        if state["active"]:
            raise _Deadline

    started = time.monotonic()
    try:
        old_handler = signal.signal(signal.SIGALRM, handler)
    except ValueError as exc:  # e.g. a sub-interpreter
        raise _Unavailable from exc
    old_timer = (0.0, 0.0)

    def restore() -> None:
        state["active"] = False
        if state["restored"]:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        if old_timer[0] > 0:
            remaining = old_timer[0] - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 1e-6), old_timer[1])
        state["restored"] = True

    # Every line after the handler is installed is inside the try, so a _Deadline can never escape.
    try:
        try:
            old_timer = signal.setitimer(signal.ITIMER_REAL, budget_s, 0.05)
            return fn()
        finally:
            restore()
    except _Deadline:
        restore()
        return on_timeout


def _guarded_mv(pred: str, gold: str, budget_s: float) -> bool:
    """math-verify under the main-thread signal guard; exceptions and timeouts give False.

    The one-off import and warm-up of math-verify happen before the clock starts.
    """
    if threading.current_thread() is not threading.main_thread():
        raise _Unavailable
    _math_verify()

    def run() -> bool:
        try:
            return _mv_equivalent_unguarded(pred, gold)
        except Exception:  # noqa: BLE001 - SymPy/ANTLR can raise anything on junk input
            return False

    return _call_with_deadline(run, budget_s, False)


class _GradingWorker:
    """One persistent grading subprocess, for calls made outside the main thread.

    Protocol: one JSON object per line on stdin (``{"pred", "gold", "budget"}``), one JSON object per
    line on stdout (``{"ok": bool}``); the first line the subprocess writes is ``{"ready": true}``.
    The process-wide instance is :data:`_WORKER`; it is created empty and starts the subprocess on
    first use. After a fork the child starts its own subprocess.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid: int | None = None
        self._buf = b""

    def _alive(self) -> bool:
        return (self._proc is not None and self._owner_pid == os.getpid()
                and self._proc.poll() is None)

    def _start(self) -> None:
        pkg_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from r1lib.grading import _worker_main; _worker_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            cwd=pkg_root,
        )
        self._owner_pid = os.getpid()
        self._buf = b""
        reply = self._read_line(time.monotonic() + _WORKER_STARTUP_TIMEOUT_S)
        if reply is None or not json.loads(reply).get("ready"):
            self._kill()
            raise RuntimeError("r1lib.grading: the grading subprocess did not start")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and self._owner_pid == os.getpid():
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()

    def _read_line(self, deadline: float) -> bytes | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the subprocess died
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def ensure_started(self) -> None:
        with self._lock:
            if not self._alive():
                if self._owner_pid == os.getpid():
                    self._kill()
                self._start()

    def equivalent(self, pred: str, gold: str, budget_s: float) -> bool:
        """Ask the subprocess; kill it if it does not answer within ``budget_s + grace``."""
        with self._lock:
            if not self._alive():
                if self._owner_pid == os.getpid():
                    self._kill()
                self._start()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"pred": pred, "gold": gold, "budget": budget_s}).encode()
                                       + b"\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                return False
            line = self._read_line(time.monotonic() + budget_s + _WORKER_GRACE_S)
            if line is None:  # stuck in C (or dead): kill; the next call starts a fresh one
                self._kill()
                return False
            return bool(json.loads(line).get("ok", False))

    def close(self) -> None:
        with self._lock:
            self._kill()


_WORKER = _GradingWorker()
atexit.register(_WORKER.close)


def _worker_main() -> None:
    """Entry point of the grading subprocess (see :class:`_GradingWorker`)."""
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything SymPy/math-verify prints must not corrupt the protocol
    sys.stdout = sys.stderr
    _math_verify()
    proto.write(b'{"ready": true}\n')
    for raw in sys.stdin.buffer:
        try:
            req = json.loads(raw)
            ok = _guarded_mv(str(req["pred"]), str(req["gold"]), float(req["budget"]))
        except Exception:  # noqa: BLE001 - a malformed request is answered "not equal"
            ok = False
        proto.write(json.dumps({"ok": ok}).encode() + b"\n")


def warm_up_worker() -> None:
    """Start the grading subprocess now (about 1-1.5 s) instead of on the first threaded call."""
    _WORKER.ensure_started()


# --------------------------------------------------------------------------------------------
# The public comparison
# --------------------------------------------------------------------------------------------


def is_equivalent(pred: str | None, gold: str | None, *, budget_s: float = DEFAULT_BUDGET_S) -> bool:
    """Whether the predicted answer ``pred`` equals the reference ``gold``. Never raises.

    See the module docstring for the steps and time limits.

    >>> is_equivalent("0.5", "\\\\frac{1}{2}"), is_equivalent("10,080", "10,\\\\!080")
    (True, True)
    >>> is_equivalent("\\\\frac{\\\\sqrt{2}}{2}", "\\\\frac{1}{\\\\sqrt{2}}"), is_equivalent("3", "4")
    (True, False)
    >>> is_equivalent("9**9**9**9", "5"), is_equivalent(None, "5")
    (False, False)
    """
    try:
        p, g = _coerce(pred), _coerce(gold)
        if p is None or g is None:
            return False
        verdict = _exact_verdict(p, g) if len(p) <= 100_000 and len(g) <= 100_000 else None
        if verdict is not None:
            return verdict
        p, g = p.strip(), g.strip()
        if not p or not g or len(p) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
            return False
        if _magnitude_too_large(p) or _magnitude_too_large(g):
            return False
        try:
            return _guarded_mv(p, g, budget_s)
        except _Unavailable:
            return _WORKER.equivalent(p, g, budget_s)
    except Exception:  # noqa: BLE001 - a grader must never raise; any failure means "not equal"
        return False
