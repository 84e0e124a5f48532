"""Rule-based rewards (r1lib.rewards) on hand-written completions, plus adversarial inputs."""

from __future__ import annotations

import doctest
import importlib.util
import time

import pytest

from r1lib import rewards
from r1lib.rewards import (
    REWARD_FUNCTIONS,
    accuracy_reward,
    build_reward_functions,
    combined_reward,
    format_reward,
    language_consistency_reward,
    make_overlong_penalty,
    r1_zero_rule_reward,
)
from r1lib.tasks.base import Example

GSM = Example(id="g", task="gsm8k", problem="?", answer="1234")
MATH = Example(id="m", task="math500", problem="?", answer=r"\frac{\sqrt{3}}{2}")
ARITH = Example(id="a", task="arithmetic", problem="Compute 7 * 6.", answer="42")
LINEAR = Example(id="l", task="linear", problem="Solve for x: 4x = 3.", answer="3/4")
COUNTDOWN = Example(id="c", task="countdown", problem="?", answer="98", meta={"nums": [44, 19, 35], "target": 98})

HAS_COUNTDOWN = (importlib.util.find_spec("r1lib.tasks.countdown") is not None
                 and hasattr(importlib.import_module("r1lib.tasks.countdown"), "check_countdown"))


def wrap(answer: str, think: str = "reasoning") -> str:
    return f" <think>{think}</think> <answer>{answer}</answer>"


# --------------------------------------------------------------------------------------------
# accuracy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("completion, example, expected", [
    (wrap("1234"), GSM, 1.0),
    (wrap("1,234"), GSM, 1.0),
    (wrap("$1234$."), GSM, 1.0),
    (wrap("1235"), GSM, 0.0),
    (" <think>1234</think>", GSM, 0.0),                          # no answer at all
    ("The answer is \\boxed{1234}.", GSM, 1.0),                  # boxed fallback
    (wrap("1"), GSM, 0.0),
    ("<answer>1234</answer> no, <answer>1233</answer>", GSM, 0.0),  # the LAST answer counts
    (wrap(r"\dfrac{\sqrt{3}}{2}"), MATH, 1.0),
    (wrap(r"\frac{3}{2\sqrt{3}}"), MATH, 1.0),                   # needs SymPy
    (wrap(r"\frac{\sqrt{2}}{2}"), MATH, 0.0),
    (wrap("42"), ARITH, 1.0),
    (wrap("42.0"), ARITH, 1.0),
    (wrap("41"), ARITH, 0.0),
    (wrap("0.75"), LINEAR, 1.0),
    (wrap("x = 3/4"), LINEAR, 1.0),
    (wrap(r"\frac{3}{4}"), LINEAR, 1.0),
    (wrap("0.7500001"), LINEAR, 0.0),
])
def test_accuracy_reward(completion, example, expected):
    assert accuracy_reward(completion, example) == expected


def test_synthetic_tasks_never_use_sympy(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("math-verify must not be called for synthetic tasks")

    monkeypatch.setattr("r1lib.grading._mv_equivalent_unguarded", boom)
    monkeypatch.setattr(rewards, "is_equivalent", boom)
    # (x+1)^2 vs x^2+2x+1 is equal for SymPy; exact grading says no, without calling it
    poly = Example(id="p", task="arithmetic", problem="?", answer="x^2+2x+1")
    assert accuracy_reward(wrap("(x+1)^2"), poly) == 0.0
    assert accuracy_reward(wrap("42"), ARITH) == 1.0


@pytest.mark.skipif(not HAS_COUNTDOWN, reason="r1lib.tasks.countdown.check_countdown not written yet")
@pytest.mark.parametrize("answer, expected", [
    ("44 + 19 + 35", 1.0),
    ("35 + 44 + 19", 1.0),
    ("44 + 19 + 35 = 98", 1.0),
    ("44 + 19 - 35", 0.0),          # wrong value
    ("44 + 54", 0.0),               # wrong numbers
    ("44 + 19 + 35 + 0", 0.0),      # extra number
    ("98", 0.0),
    ("__import__('os')", 0.0),
])
def test_accuracy_reward_countdown(answer, expected):
    assert accuracy_reward(wrap(answer), COUNTDOWN) == expected


def test_accuracy_reward_broken_example_scores_zero():
    assert accuracy_reward(wrap("5"), None) == 0.0
    assert accuracy_reward(wrap("5"), Example(id="x", task="countdown", problem="?", answer="5")) == 0.0


# --------------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("completion, expected", [
    ("<think>a</think><answer>b</answer>", 1.0),
    (" <think> reasoning </think> <answer> 4 </answer>", 1.0),            # leading space after "Assistant:"
    ("\n<think>\nmulti\nline\n</think>\n\n<answer>\n4\n</answer>\n", 1.0),
    ("<think>a</think> <answer>b</answer><|end|>", 1.0),                   # end token
    ("<think>a</think> <answer>b</answer></s>  ", 1.0),
    ("<think>a</think><think>b</think><answer>c</answer>", 0.0),           # two think blocks
    ("<think>a</think><answer>b</answer><answer>c</answer>", 0.0),         # two answer blocks
    ("<answer>b</answer><think>a</think>", 0.0),                           # answer before think
    ("<think>a</think><answer>b</answer> and more", 0.0),                  # text after the answer
    ("<think>a</think><answer>b</answer><|end|> more", 0.0),
    ("<think>a</think> so <answer>b</answer>", 0.0),                       # text between
    ("Sure! <think>a</think><answer>b</answer>", 0.0),                     # text before
    ("<think>a<answer>b</answer>", 0.0),                                   # missing </think>
    ("<think>a</think><answer>b", 0.0),                                    # missing </answer>
    ("<think></think><answer>b</answer>", 0.0),                            # empty think
    ("<think>a</think><answer>  </answer>", 0.0),                          # empty answer
    ("<think>a <answer>x</answer></think><answer>b</answer>", 0.0),       # nested tags
    ("<think>a</think>", 0.0),
    ("", 0.0),
    ("<THINK>a</THINK><ANSWER>b</ANSWER>", 0.0),                           # tags are case-sensitive
])
def test_format_reward(completion, expected):
    assert format_reward(completion, None) == expected


# --------------------------------------------------------------------------------------------
# language consistency
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("completion, target, expected", [
    ("<think>We add the two numbers</think><answer>5</answer>", "en", 1.0),
    ("<think>We add 两个 numbers</think><answer>5</answer>", "en", 3 / 5),     # 3 latin + 2 CJK characters
    ("<think>我们把两个数相加</think><answer>5</answer>", "en", 0.0),
    ("<think>我们把两个数相加</think><answer>5</answer>", "zh", 1.0),
    ("<think>我们 add</think>", "zh", 2 / 3),
    ("<think>Let x = 3, so 2x = 6 and \\frac{6}{2} = 3</think><answer>3</answer>", "en", 1.0),
    ("<think>Итак, x = 3 so</think>", "en", 2 / 3),                           # Cyrillic word is not English
    ("<think>2 + 2 = 4</think><answer>4</answer>", "en", 1.0),                # no words: nothing off-language
    ("No tags here, but 一 word", "en", 5 / 6),                               # no think block: whole text
    ("<think>English only</think><answer>答案</answer>", "en", 1.0),          # only the CoT counts
    ("", "en", 0.0),
    ("   ", "en", 0.0),
])
def test_language_consistency_reward(completion, target, expected):
    assert language_consistency_reward(completion, None, target_lang=target) == pytest.approx(expected)


def test_language_consistency_rejects_unknown_target():
    with pytest.raises(ValueError, match="target_lang"):
        language_consistency_reward("<think>a</think>", None, target_lang="klingon")
    with pytest.raises(ValueError, match="target_lang"):
        build_reward_functions({"language_consistency": {"weight": 1.0, "target_lang": "klingon"}})


# --------------------------------------------------------------------------------------------
# overlong penalty
# --------------------------------------------------------------------------------------------


def test_overlong_penalty_shape():
    pen = make_overlong_penalty(max_len=100, buffer=20)
    text = lambda n: " ".join(["tok"] * n)  # noqa: E731
    assert pen(text(0), None) == 0.0
    assert pen(text(80), None) == 0.0
    assert pen(text(81), None) == pytest.approx(-1 / 20)
    assert pen(text(90), None) == pytest.approx(-0.5)
    assert pen(text(100), None) == -1.0
    assert pen(text(5000), None) == -1.0


def test_overlong_penalty_custom_length_and_errors():
    pen = make_overlong_penalty(max_len=10, buffer=10, length_fn=len)  # characters
    assert pen("a" * 5, None) == pytest.approx(-0.5)
    broken = make_overlong_penalty(10, 5, length_fn=lambda s: 1 // 0)
    assert broken("abc", None) == 0.0
    for bad in [(0, 0), (10, 0), (10, 11), (10.0, 5)]:
        with pytest.raises(ValueError, match="max_len"):
            make_overlong_penalty(*bad)


# --------------------------------------------------------------------------------------------
# registry and combination
# --------------------------------------------------------------------------------------------


def test_registry_names():
    assert set(REWARD_FUNCTIONS) == {"accuracy", "format", "readable_format", "language_consistency"}


@pytest.mark.parametrize("text, task, expected", [
    ("<think> 3 + 4 = 7 </think> The answer is \\boxed{7}.", "addition", 1.0),
    ("<think> 3 + 4 = 7 </think> The answer is \\boxed{7}.<|end|>", "addition", 1.0),
    ("<think> 3 + 4 = 7 </think> The answer is 7.", "addition", 0.0),                     # no boxed answer
    ("<think> 3 + 4 = 7 </think> \\boxed{7} or \\boxed{8}", "addition", 0.0),            # two answers
    ("<think>  </think> The answer is \\boxed{7}.", "addition", 0.0),                     # empty reasoning
    ("<think> a </think> <answer> 7 </answer>", "addition", 0.0),                          # R1-Zero tags
    ("The answer is \\boxed{7}.", "addition", 0.0),                                       # no think block
    ("Hello! How can I help?", "general", 1.0),                                          # simple query: no CoT
    ("<think> hi </think> Hello!", "general", 0.0),
    ("   ", "general", 0.0),
])
def test_readable_format_reward(text, task, expected):
    from r1lib.rewards import readable_format_reward

    assert readable_format_reward(text, Example(id="x", task=task, problem="p", answer="7")) == expected


def test_accuracy_without_general_prompts():
    from r1lib.tasks import generate

    general = generate("general", 1, seed=0)[0]
    fn = build_reward_functions({"accuracy": {"weight": 1.0, "general": False}})[0][1]
    assert accuracy_reward(general.answer, general) == 1.0 and fn(general.answer, general) == 0.0
    ex = Example(id="x", task="addition", problem="Compute 3 + 4.", answer="7")
    assert fn("<think> 3 + 4 = 7 </think> The answer is \\boxed{7}.", ex) == 1.0


def test_build_and_combine():
    funcs = build_reward_functions({"accuracy": 1.0, "format": 0.5,
                                    "language_consistency": {"weight": 0.1, "target_lang": "en"},
                                    "overlong_penalty": {"weight": 2.0, "max_len": 10, "buffer": 5}})
    assert [(n, w) for n, _, w in funcs] == [("accuracy", 1.0), ("format", 0.5),
                                             ("language_consistency", 0.1), ("overlong_penalty", 2.0)]
    completion = "<think>one two three 四 five six</think> <answer>42</answer>"  # 7 whitespace tokens
    total, parts = combined_reward(completion, ARITH, funcs)
    assert parts == pytest.approx({"accuracy": 1.0, "format": 1.0, "language_consistency": 5 / 6,
                                   "overlong_penalty": -0.4})
    assert total == pytest.approx(1.0 + 0.5 + 0.1 * 5 / 6 + 2.0 * -0.4)


def test_r1_zero_rule_reward_is_accuracy_plus_format():
    assert r1_zero_rule_reward(wrap("42"), ARITH) == 2.0
    assert r1_zero_rule_reward(wrap("41"), ARITH) == 1.0
    assert r1_zero_rule_reward("\\boxed{42}", ARITH) == 1.0
    assert r1_zero_rule_reward("no", ARITH) == 0.0
    funcs = build_reward_functions({"accuracy": 1.0, "format": 1.0})
    assert combined_reward(wrap("42"), ARITH, funcs)[0] == r1_zero_rule_reward(wrap("42"), ARITH)


@pytest.mark.parametrize("spec, message", [
    ({}, "non-empty"),
    ({"acuracy": 1.0}, "unknown reward 'acuracy'"),
    ({"accuracy": "high"}, "weight must be a number"),
    ({"format": {"weight": 1.0, "strict": True}}, "takes no options"),
    ({"accuracy": {"weight": 1.0, "strict": True}}, "bad options"),
    ({"overlong_penalty": 1.0}, "bad options"),
    ({"overlong_penalty": {"max_len": 10}}, "bad options"),
])
def test_build_reward_functions_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        build_reward_functions(spec)


# --------------------------------------------------------------------------------------------
# adversarial completions: every reward returns a float within 1 s and never raises
# --------------------------------------------------------------------------------------------

ADVERSARIAL = [
    "x" * 100_000,
    "<think>" + "wait " * 20_000 + "</think><answer>5</answer>",
    "9**9**9**9",
    "<answer>9**9**9**9</answer>",
    r"\boxed{9^{9^{9^{9}}}}",
    r"<think>a</think><answer>\boxed{9^{9^{9^{9}}}}</answer>",
    r"\boxed{" + "{" * 10_000 + "}" * 10_000 + "}",
    "{" * 10_000,
    "<answer>1</answer>" * 5_000,
    "<think>" * 5_000 + "</think>" * 5_000,
    "<think>😀 مرحبا \u202e שלום 🤖</think><answer>😀</answer>",
    "\ud800\x00\x01",
    "",
    "None",
    "<answer>" + "(" * 300 + "1" + ")" * 300 + "</answer>",
]
EXAMPLES = [GSM, MATH, ARITH, COUNTDOWN, Example(id="j", task="aime24", problem="?", answer="9**9**9**9")]


@pytest.mark.parametrize("completion", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_rewards_adversarial(completion):
    fns = [*REWARD_FUNCTIONS.values(), make_overlong_penalty(512, 128), r1_zero_rule_reward]
    for example in EXAMPLES:
        for fn in fns:
            start = time.perf_counter()
            value = fn(completion, example)
            elapsed = time.perf_counter() - start
            assert isinstance(value, float)
            assert elapsed <= 1.0, f"{getattr(fn, '__name__', fn)} took {elapsed:.2f} s on {completion[:40]!r}"


def test_rewards_on_non_strings():
    for junk in (None, 42, b"<answer>5</answer>", ["<answer>5</answer>"]):
        for fn in REWARD_FUNCTIONS.values():
            assert fn(junk, GSM) == 0.0


def test_docstring_examples():
    assert doctest.testmod(rewards).failed == 0


def test_prompt_format_names_its_format_rule(tiny_model_dir):
    """Evaluation grades a chat-format checkpoint with R1's readable format, a template one with R1-Zero's tags."""
    from transformers import AutoTokenizer

    from r1lib.prompts import PromptFormat
    from r1lib.rewards import format_reward, readable_format_reward, summary_of

    assert PromptFormat("r1_zero").format_reward is format_reward
    assert PromptFormat("chat", AutoTokenizer.from_pretrained(tiny_model_dir)).format_reward is readable_format_reward
    assert summary_of("no reasoning at all ") == "no reasoning at all"
