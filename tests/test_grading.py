"""Answer extraction and equivalence (r1lib.grading): hand-written cases, adversarial inputs, threads."""

from __future__ import annotations

import doctest
import os
import signal
import threading
import time

import pytest

from r1lib import grading
from r1lib.grading import exact_match, extract_answer, is_equivalent, last_boxed, normalize_answer

# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    (r"\boxed{5}", "5"),
    (r"so \boxed{\frac{1}{2}}.", r"\frac{1}{2}"),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"\boxed{1} then \boxed{2}", "2"),
    (r"\boxed{a^{b^{c}}}", "a^{b^{c}}"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),                        # escaped braces are not groups
    (r"\fbox{7}", "7"),
    (r"\boxed 5$", "5"),                                     # space form
    (r"\boxed{1} and a truncated \boxed{2", "1"),             # last *complete* box
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    ("no box at all", None),
    ("", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize("completion, expected", [
    (" <think>2+2</think> <answer>4</answer>", "4"),
    ("<answer> $4$. </answer>", "4"),
    ("<answer>1</answer> wait <answer>2</answer> <answer>3</answer>", "3"),          # last block
    (r"<answer>The answer is \boxed{\frac{3}{4}}.</answer>", r"\frac{3}{4}"),         # boxed inside answer
    (r"reasoning \boxed{7} more <answer>8</answer>", "8"),                            # answer tag wins
    (r"The final answer is $\boxed{x^2+1}$.", "x^2+1"),                               # boxed fallback
    (r"\boxed{1} <answer>unclosed", "1"),                                            # unclosed tag ignored
    ("<answer>   </answer>", None),                                                   # empty answer
    ("<answer>\\(\\sqrt{2}\\)</answer>", r"\sqrt{2}"),
    ("nothing", None),
    (None, None),
    (12, None),
])
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_extract_answer_nested_braces_deep():
    depth = 5000
    text = r"\boxed{" + "{" * depth + "x" + "}" * depth + "}"
    assert extract_answer(text) == "{" * depth + "x" + "}" * depth


# --------------------------------------------------------------------------------------------
# Normalisation and equivalence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, norm", [
    ("1,234", "1234"),
    (r"10,\!080", "10080"),
    (r"11,\! 111,\! 111,\! 100", "11111111100"),
    (r"\$32,\!348", "32348"),
    ("5.0", "5"),
    ("007", "7"),
    ("-0.50", "-0.5"),
    (r"x = 5", "5"),
    (r"\dfrac{1}{2}", r"\frac{1}{2}"),
    (r"\frac43", r"\frac{4}{3}"),
    (r"\frac{270}7", r"\frac{270}{7}"),
    (r"90^\circ", "90"),
    (r"\text{(C)}", "(C)"),
    (r"\left( 1, 2 \right)", "(1,2)"),
    ("1, 2", "1,2"),                     # a list: commas stay
    ("50\\%", "50"),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_list_is_not_a_thousands_number():
    assert not exact_match("1, 234", "1234")
    assert exact_match("1,234", "1234")


EQUIVALENT = [
    # (pred, gold)
    ("0.5", r"\frac{1}{2}"),
    ("1/2", "0.5"),
    (r"\frac12", r"\frac{1}{2}"),
    ("1,234", "1234"),
    (r"10080", r"10,\!080"),
    ("5.0", "5"),
    ("-3", "-3.00"),
    (r"-\frac{3}{4}", "-0.75"),
    ("2", "x=2"),
    ("x = 2", "2"),
    (r"\dfrac{\sqrt{3}}{2}", r"\frac{\sqrt{3}}{2}"),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),            # needs SymPy
    ("(x+1)^2", "x^2+2x+1"),                                    # needs SymPy
    (r"(-\infty, 0]", r"(-\infty, 0]"),
    (r"[-2,7]", r"x \in [-2,7]"),                               # interval, needs SymPy
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
    (r"\begin{pmatrix} -2 \\ -14 \\ -7 \end{pmatrix}", r"\begin{pmatrix}-2\\-14\\-7\end{pmatrix}"),
    (r"\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}", r"\begin{pmatrix} 1/5 \\ -18/5 \end{pmatrix}"),
    ("90", r"90^\circ"),
    (r"\$18.90", "18.9"),
    ("137.5", r"137 \frac{1}{2}"),
    ("2,1", "1,2"),                                             # set of solutions
    (r"\text{Evelyn}", "Evelyn"),
    ("y=2x+3", "y = 2x + 3"),
]

NOT_EQUIVALENT = [
    ("0.333", r"\frac{1}{3}"),            # exact numbers: no rounding
    ("3", "4"),
    ("-3", "3"),
    ("1235", "1,234"),
    (r"\frac{1}{2}", r"\frac{1}{3}"),
    ("(x+1)^3", "x^2+2x+1"),
    (r"(2,4]", r"(2,4)"),                 # interval endpoints matter
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix} 1 \\ 3 \end{pmatrix}"),
    (r"-1,2", "1,-2"),
    ("5", r"\frac{270}7\text{ degrees}"),
    ("3 5", "35"),                        # spaces between digits are kept
    ("12", "1,2"),                        # a list of two numbers, not a thousands separator
    ("", "5"),
    ("5", ""),
]


@pytest.mark.parametrize("pred, gold", EQUIVALENT)
def test_is_equivalent_true(pred, gold):
    assert is_equivalent(pred, gold) is True


@pytest.mark.parametrize("pred, gold", NOT_EQUIVALENT)
def test_is_equivalent_false(pred, gold):
    assert is_equivalent(pred, gold) is False


def test_exact_match_never_uses_sympy():
    assert exact_match("0.5", r"\frac{1}{2}")
    assert exact_match("x = -7", "-7")
    assert not exact_match(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")  # true, but only SymPy knows
    assert not exact_match(None, "1") and not exact_match("1", None)


def test_non_string_inputs():
    assert is_equivalent(5, "5") is True
    assert is_equivalent(None, "5") is False
    assert is_equivalent("5", None) is False
    assert is_equivalent(object(), "5") is False
    assert is_equivalent(["5"], "5") is False


# --------------------------------------------------------------------------------------------
# Adversarial inputs: never raise, at most 1 s each (a correctness guard, not a benchmark)
# --------------------------------------------------------------------------------------------

ADVERSARIAL = [
    "x" * 100_000,
    "9" * 100_000,
    "9**9**9**9",
    r"\boxed{9^{9^{9^{9}}}}",
    r"9^{9^{9^{9}}}",
    r"10^{10^{7}}",
    "2**2**2**2**2**2",
    "100000!",
    r"\binom{100000}{50000}",
    r"\prod_{k=1}^{1000000} k",
    "1e999999999",
    "{" * 10_000 + "}" * 10_000,
    "{" * 10_000,
    r"\boxed{" * 10_000,
    "(" * 400 + "1" + ")" * 400,
    "<answer>1</answer>" * 2_000,
    "😀🤖" * 1000,
    "\u202eمرحبا\u202c שלום",
    "\ud800\udfff",
    "\x00\x01\x02",
    "",
    "   ",
    r"\frac{1}{0}",
    r"\sqrt{-1}^{\infty}",
    "None",
    "nan",
    "inf",
]


@pytest.mark.parametrize("junk", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_is_equivalent_adversarial(junk):
    for pred, gold in ((junk, "5"), ("5", junk), (junk, junk)):
        start = time.perf_counter()
        result = is_equivalent(pred, gold)
        elapsed = time.perf_counter() - start
        assert isinstance(result, bool)
        assert elapsed <= 1.0, f"is_equivalent took {elapsed:.2f} s on {pred[:40]!r} vs {gold[:40]!r}"
    assert is_equivalent(junk, "5") is False or junk.strip() == "5"


@pytest.mark.parametrize("junk", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_extract_answer_adversarial(junk):
    start = time.perf_counter()
    out = extract_answer(junk)
    assert out is None or isinstance(out, str)
    assert last_boxed(junk) is None or isinstance(last_boxed(junk), str)
    assert time.perf_counter() - start <= 1.0


def test_prescreen_rejects_huge_numbers_but_not_normal_answers():
    for text in ("9**9**9**9", r"9^{9^{9^{9}}}", r"10^{10^{7}}", "100000!", r"(10!)!", r"x^{9^{9^9}}",
                 "{" * 100 + "1" + "}" * 100):
        assert grading._magnitude_too_large(text), text
    for text in (r"2^{2010}", r"x^5 - x^4 + x^3", r"\frac{20000}{\pi}", "10!", r"3^{100} + 1",
                 r"\begin{pmatrix} 16/49 \\ 48/49 \end{pmatrix}", r"\left[ \frac{\pi^2}{8}, \frac{5 \pi^2}{4} \right]"):
        assert not grading._magnitude_too_large(text), text


# --------------------------------------------------------------------------------------------
# Time limits: the main-thread signal guard and the subprocess used from other threads
# --------------------------------------------------------------------------------------------


def test_deadline_interrupts_python_loop_and_restores_handler():
    def spin() -> str:
        while True:
            pass

    before = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    assert grading._call_with_deadline(spin, 0.1, "timed out") == "timed out"
    assert time.perf_counter() - start < 0.6
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert grading._call_with_deadline(lambda: 42, 0.5, None) == 42


def test_deadline_keeps_an_outer_timer():
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        assert grading._call_with_deadline(lambda: "done", 0.5, None) == "done"
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < remaining <= 30.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired


def _in_thread(pred: str, gold: str) -> tuple[bool | None, float]:
    out: list[tuple[bool, float]] = []

    def target() -> None:
        start = time.perf_counter()
        out.append((is_equivalent(pred, gold), time.perf_counter() - start))

    t = threading.Thread(target=target)
    t.start()
    t.join(timeout=10)
    return out[0] if out else (None, float("inf"))


def test_is_equivalent_from_a_thread():
    grading.warm_up_worker()  # the one-off subprocess start (~1-2 s) is not part of the limit
    for pred, gold, expected in [
        (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", True),   # LaTeX, needs SymPy (subprocess)
        (r"x^2+2x+1", r"(x+1)^3", False),
        (r"\boxed{9^{9^{9^{9}}}}", "5", False),                 # adversarial, rejected by the pre-screen
        ("(" * 12 + "1" + ")" * 12, "2", False),                # slow ANTLR parse, stopped by the guard
        ("0.5", r"\frac{1}{2}", True),                           # fast path, no subprocess
    ]:
        result, elapsed = _in_thread(pred, gold)
        assert result is expected, (pred, gold, result)
        assert elapsed <= 1.5, f"{pred[:30]!r}: {elapsed:.2f} s in a thread"


def test_worker_is_killed_and_replaced_when_it_does_not_answer():
    """A hang the signal guard cannot stop (e.g. big-int work in C) looks like a silent subprocess:
    simulated here by stopping it (SIGSTOP). The caller gives up after budget + grace, kills the
    subprocess, and the next call gets a fresh one."""
    grading.warm_up_worker()
    proc = grading._WORKER._proc
    assert proc is not None and proc.poll() is None
    os.kill(proc.pid, signal.SIGSTOP)
    start = time.perf_counter()
    result, _ = _in_thread(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")
    assert result is False                       # no answer in time counts as "not equivalent"
    assert time.perf_counter() - start <= grading.DEFAULT_BUDGET_S + 0.6
    assert proc.poll() is not None               # killed and reaped
    grading.warm_up_worker()
    assert grading._WORKER._proc is not proc
    result, elapsed = _in_thread(r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")
    assert result is True and elapsed <= 1.5


def test_docstring_examples():
    assert doctest.testmod(grading).failed == 0
