"""A safe, exact arithmetic expression evaluator (no ``eval``).

Grammar (recursive descent)::

    expr   := term (('+' | '-') term)*
    term   := unary (('*' | '/') unary)*
    unary  := ('+' | '-') unary | atom
    atom   := NUMBER | '(' expr ')'
    NUMBER := [0-9]+ ('.' [0-9]+)?

- ``×`` is read as ``*``, ``÷`` as ``/`` and the unicode minus ``−`` as ``-``. Any other character
  (letters, ``**``, ``^``, ``%``, non-ASCII digits such as ``²`` or ``٣``) is a syntax error.
- ``=`` suffix forms: only the text **before the first** ``=`` is evaluated, so ``"44+19+35 = 98"``
  evaluates ``44+19+35``; whatever follows the ``=`` is ignored (it is typically a claimed result,
  which callers such as :func:`r1lib.tasks.countdown.check_countdown` compare themselves).
- Results are exact :class:`fractions.Fraction` values; ``1/3*3`` is exactly 1.
- Limits guard against resource abuse: :data:`MAX_LENGTH` characters of input,
  :data:`MAX_DEPTH` nested parentheses / unary signs, :data:`MAX_DIGITS` digits per literal, and
  every intermediate numerator/denominator below ``10**MAX_RESULT_DIGITS``.

Why hand-written: Python's ``eval``/``ast`` evaluate code (``9**9**9**9`` hangs, ``__import__`` runs),
``ast.literal_eval`` does not do arithmetic, and a full CAS (sympy) is slow and far larger than the
six-token grammar needed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

MAX_LENGTH = 200
"""Longest accepted input (characters, the whole string including any ``= ...`` suffix)."""
MAX_DEPTH = 32
"""Deepest nesting of parentheses and unary signs."""
MAX_DIGITS = 18
"""Most digits in one numeric literal (integer and fractional parts together)."""
MAX_RESULT_DIGITS = 60
"""Any intermediate numerator or denominator must stay below ``10**MAX_RESULT_DIGITS``."""

_TRANSLATE = {"×": "*", "÷": "/", "−": "-"}
_OPS = "+-*/()"
_VALUE_LIMIT = 10**MAX_RESULT_DIGITS


class ExpressionError(ValueError):
    """Raised for any expression that cannot be evaluated: bad syntax, a limit exceeded, or
    division by zero. The message says what and where (0-based character position)."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "num" or one of "+-*/()"
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = _TRANSLATE.get(text[i], text[i])
        if ch in " \t\n\r":
            i += 1
        elif ch in _OPS:
            tokens.append(_Token(ch, ch, i))
            i += 1
        elif "0" <= ch <= "9":
            start = i
            while i < n and "0" <= text[i] <= "9":
                i += 1
            if i < n and text[i] == ".":
                i += 1
                frac_start = i
                while i < n and "0" <= text[i] <= "9":
                    i += 1
                if i == frac_start:
                    raise ExpressionError(f"malformed number {text[start:i]!r} at position {start}")
            literal = text[start:i]
            if sum(c.isdigit() for c in literal) > MAX_DIGITS:
                raise ExpressionError(f"number at position {start} has more than {MAX_DIGITS} digits")
            tokens.append(_Token("num", literal, start))
        else:
            raise ExpressionError(f"unexpected character {text[i]!r} at position {i}")
    return tokens


def _check_size(value: Fraction, pos: int) -> Fraction:
    if abs(value.numerator) >= _VALUE_LIMIT or value.denominator >= _VALUE_LIMIT:
        raise ExpressionError(f"intermediate value too large (more than {MAX_RESULT_DIGITS} digits) "
                              f"near position {pos}")
    return value


class _Parser:
    """Recursive-descent parser that evaluates while parsing."""

    def __init__(self, tokens: list[_Token], end_pos: int) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0
        self.end_pos = end_pos

    def _peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _where(self) -> str:
        tok = self._peek()
        return f"position {tok.pos}" if tok else f"end of input (position {self.end_pos})"

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nesting deeper than {MAX_DEPTH} at {self._where()}")

    def parse(self) -> Fraction:
        if not self.tokens:
            raise ExpressionError("empty expression")
        value = self._expr()
        tok = self._peek()
        if tok is not None:
            raise ExpressionError(f"unexpected {tok.text!r} at position {tok.pos}")
        return value

    def _expr(self) -> Fraction:
        value = self._term()
        while (tok := self._peek()) is not None and tok.kind in "+-":
            self.i += 1
            rhs = self._term()
            value = _check_size(value + rhs if tok.kind == "+" else value - rhs, tok.pos)
        return value

    def _term(self) -> Fraction:
        value = self._unary()
        while (tok := self._peek()) is not None and tok.kind in "*/":
            self.i += 1
            rhs = self._unary()
            if tok.kind == "*":
                value = _check_size(value * rhs, tok.pos)
            else:
                if rhs == 0:
                    raise ExpressionError(f"division by zero at position {tok.pos}")
                value = _check_size(value / rhs, tok.pos)
        return value

    def _unary(self) -> Fraction:
        tok = self._peek()
        if tok is not None and tok.kind in "+-":
            self.i += 1
            self._enter()
            value = self._unary()
            self.depth -= 1
            return -value if tok.kind == "-" else value
        return self._atom()

    def _atom(self) -> Fraction:
        tok = self._peek()
        if tok is None:
            raise ExpressionError(f"expected a number or '(' at {self._where()}")
        if tok.kind == "num":
            self.i += 1
            text = tok.text
            return Fraction(text) if "." in text else Fraction(int(text))
        if tok.kind == "(":
            self.i += 1
            self._enter()
            value = self._expr()
            close = self._peek()
            if close is None or close.kind != ")":
                raise ExpressionError(f"expected ')' to close '(' at position {tok.pos}, found "
                                      f"{close.text if close else 'end of input'!r}")
            self.i += 1
            self.depth -= 1
            return value
        raise ExpressionError(f"expected a number or '(' at position {tok.pos}, found {tok.text!r}")


def _prepare(expr: str) -> tuple[list[_Token], int]:
    if not isinstance(expr, str):
        raise ExpressionError(f"expression must be a str, got {type(expr).__name__}")
    if len(expr) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters ({len(expr)})")
    head = expr.split("=", 1)[0]
    return _tokenize(head), len(head)


def evaluate(expr: str) -> Fraction:
    """Evaluate an arithmetic expression exactly.

    >>> evaluate("(12 + 7) * 3 - 5")
    Fraction(52, 1)
    >>> evaluate("44+19+35 = 98")   # only the part before '=' is evaluated
    Fraction(98, 1)

    Raises :class:`ExpressionError` on bad syntax, a limit exceeded, or division by zero.
    """
    tokens, end = _prepare(expr)
    return _Parser(tokens, end).parse()


def numbers_used(expr: str) -> list[int]:
    """The integer literals of ``expr`` (the part before any ``=``), in order of appearance.

    Signs are operators, not part of literals: ``"-3 + 5"`` uses ``[3, 5]``. The expression must be
    valid (it is parsed first); a decimal literal such as ``2.5`` raises :class:`ExpressionError`
    because Countdown-style checks only deal with whole numbers.
    """
    tokens, end = _prepare(expr)
    _Parser(tokens, end).parse()
    out: list[int] = []
    for tok in tokens:
        if tok.kind == "num":
            if "." in tok.text:
                raise ExpressionError(f"non-integer literal {tok.text!r} at position {tok.pos}")
            out.append(int(tok.text))
    return out


def format_number(value: Fraction | int) -> str:
    """Render an exact value as the answer string used by tasks: ``"5"``, ``"-3"``, or ``"7/2"``."""
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


# --- rendering helpers shared by the generators ------------------------------------------------------


def operand(value: Fraction | int) -> str:
    """A value as the operand of a binary operator: negatives in parentheses (``3 - (-7)``)."""
    text = format_number(value)
    return f"({text})" if text.startswith("-") else text


def render_terms(terms: list[int]) -> str:
    """A signed sum without double signs: ``[13, -12, 5]`` -> ``"13 - 12 + 5"``; zeros dropped."""
    kept = [t for t in terms if t != 0]
    if not kept:
        return "0"
    out = str(kept[0])
    for t in kept[1:]:
        out += f" + {t}" if t > 0 else f" - {-t}"
    return out


def render_steps(steps: list[tuple[str, str]]) -> str:
    """The plain step-by-step solution: one ``"lhs = rhs"`` line per step."""
    return "\n".join(f"{lhs} = {rhs}" for lhs, rhs in steps)


def check_difficulty(difficulty: int) -> int:
    """Validate a generator difficulty level (an int from 1 to 5) and return it."""
    if isinstance(difficulty, bool) or not isinstance(difficulty, int) or not 1 <= difficulty <= 5:
        raise ValueError(f"difficulty must be an int from 1 to 5, got {difficulty!r}")
    return difficulty
