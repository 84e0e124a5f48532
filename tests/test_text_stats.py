"""Reflection words, word segmentation and language mixing (r1lib.text_stats)."""

from __future__ import annotations

import doctest
import time

import pytest

from r1lib import text_stats
from r1lib.text_stats import (
    REFLECTION_WORDS,
    has_reflection,
    language_mix,
    reflection_rate,
    reflection_word_counts,
    script_counts,
    think_block,
    words,
)


def test_reflection_words_are_the_papers_ten():
    assert REFLECTION_WORDS == ("wait", "mistake", "however", "but", "retry", "error", "verify",
                                "wrong", "evaluate", "check")


def test_reflection_word_counts_whole_word_case_insensitive():
    text = ("Wait, wait. WAIT! However, but... I made a mistake; let me re-check and Verify. "
            "Butter, checking, errors, awaited and evaluated do not count. Retry: wrong error.")
    counts = reflection_word_counts(text)
    assert counts == {"wait": 3, "mistake": 1, "however": 1, "but": 1, "retry": 1, "error": 1,
                      "verify": 1, "wrong": 1, "evaluate": 0, "check": 1}


def test_reflection_word_counts_empty_and_junk():
    assert reflection_word_counts("") == dict.fromkeys(REFLECTION_WORDS, 0)
    assert reflection_word_counts(None) == dict.fromkeys(REFLECTION_WORDS, 0)


def test_has_reflection_and_rate():
    texts = ["Let me check.", "2 + 2 = 4", "wait", "Butter and checks", "But why?"]
    assert [has_reflection(t) for t in texts] == [True, False, True, False, True]
    assert reflection_rate(texts) == pytest.approx(3 / 5)
    assert reflection_rate([]) == 0.0
    assert reflection_rate(t for t in ["wait", "no"]) == 0.5


@pytest.mark.parametrize("text, expected", [
    ("<think>abc</think><answer>1</answer>", "abc"),
    (" <think> a </think> <think> b </think>", " a "),          # the first block
    ("<think>truncated reasoning", "truncated reasoning"),      # unclosed: the rest
    ("prompt had the open tag</think><answer>1</answer>", "prompt had the open tag"),
    ("<answer>1</answer>", None),
    ("", None),
    (None, None),
])
def test_think_block(text, expected):
    assert think_block(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Hello, world!", ["Hello", "world"]),
    ("x = 3, so 2x = 6", ["x", "so", "x"]),                       # numbers are not words
    ("don't stop", ["don", "t", "stop"]),
    ("所以答案", ["所", "以", "答", "案"]),                           # one word per CJK character
    ("答案is 5", ["答", "案", "is"]),
    ("café naïve", ["café", "naïve"]),
    ("привет мир", ["привет", "мир"]),
    (r"\frac{1}{2} + \sqrt{3} <think>", []),                      # LaTeX commands and tags are markup
    ("π r^2 and θ", ["r", "and"]),                                # Greek letters are math symbols
    ("ひらがな", ["ひ", "ら", "が", "な"]),
    ("123 + 456 = 579 !!!", []),
    ("", []),
])
def test_words(text, expected):
    assert words(text) == expected


def test_script_counts():
    assert script_counts("Hello 世界 мир and 你") == {"latin": 2, "cjk": 3, "cyrillic": 1}


@pytest.mark.parametrize("text, target, expected", [
    ("<think>Add them up</think><answer>5</answer>", "en", False),
    ("<think>Add 他们 up</think><answer>5</answer>", "en", True),
    ("<think>Add them</think><answer>五</answer>", "en", False),   # only the CoT is looked at
    ("<think>我们相加</think>", "zh", False),
    ("<think>我们 add</think>", "zh", True),
    ("<think>Area is π r^2 = 12.5</think>", "en", False),
    ("no think block, 但是 mixed", "en", True),
    ("", "en", False),
])
def test_language_mix(text, target, expected):
    assert language_mix(text, target) is expected


def test_language_mix_unknown_target():
    with pytest.raises(ValueError, match="target_lang"):
        language_mix("abc", "xx")


def test_large_inputs_are_fast():
    big = ("Wait, 我们 check the answer: x = 42. " * 5_000)[:100_000]
    start = time.perf_counter()
    assert reflection_word_counts(big)["wait"] > 1000
    assert len(words(big)) > 10_000
    assert language_mix(big)
    assert time.perf_counter() - start < 1.0


def test_docstring_examples():
    assert doctest.testmod(text_stats).failed == 0
