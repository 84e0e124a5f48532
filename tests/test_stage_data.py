"""The SFT-stage data builders of the R1 pipeline (r1lib/stage_data.py): each filter on crafted traces, the rewrite
into the readable format, the demonstrations, the 3 : 1 mixing and the per-reason counts of a sample-and-filter
pass (with a scripted sampler, so the counts are known exactly)."""

from __future__ import annotations

import pytest

from r1lib.rewards import accuracy_reward, readable_format_reward
from r1lib.sampling import Completion
from r1lib.stage_data import (REASONS, demonstrations, has_repetition, mix_rows, readable, rejection_reason,
                              rewrite_readable, row_table, sample_and_filter)
from r1lib.tasks.base import Example

EX = Example(id="t0", task="addition", problem="Compute 386 + 7776.", answer="8162")
GOOD_R1_ZERO = ("<think> Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. Check 38 + 777: 8 + 7 + 1 = 16, so far 62. "
                "Check 3 + 77: 3 + 7 + 1 = 11, so far 162. Check 0 + 7: 0 + 7 + 1 = 8, so far 8162. </think> "
                "<answer> 8162 </answer>")
GOOD_READABLE = readable("Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. Check 38 + 777: 8 + 7 + 1 = 16, so far 62. "
                         "Check 3 + 77: 3 + 7 + 1 = 11, so far 162. Check 0 + 7: 0 + 7 + 1 = 8, so far 8162.", "8162")


def test_reasons_are_the_documented_ones_in_order():
    assert REASONS == ("wrong", "format", "language", "repetition", "overlong")


@pytest.mark.parametrize("text,readable_format,reason", [
    (GOOD_R1_ZERO, False, None),
    (GOOD_READABLE, True, None),
    (GOOD_R1_ZERO.replace("<answer> 8162", "<answer> 8152"), False, "wrong"),      # wrong answer
    ("<answer> 8162 </answer>", False, "format"),                                   # no reasoning block
    (GOOD_R1_ZERO, True, "format"),                                                 # R1-Zero tags where R1's format is asked
    ("<think> 6 + 6 = 12 </think> The answer is \\boxed{8162}.", False, "format"),  # R1's format, R1-Zero's asked
    (GOOD_R1_ZERO.replace("so far 62.", "所以 so far 62."), False, "language"),     # a Chinese connective in the CoT
    (GOOD_READABLE.replace("so far 162.", "so far 162. 因此 so far 162."), True, "language"),
    ("<think> Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. "
     "</think> <answer> 8162 </answer>", False, "repetition"),
])
def test_each_filter_on_crafted_traces(text, readable_format, reason):
    assert rejection_reason(text, EX, readable_format=readable_format) == reason


def test_wrong_is_checked_first_and_overlong_last():
    # a wrong, badly formatted, mixed-language, repetitive trace is dropped as "wrong" (one reason per trace)
    bad = "因此 so far 2. 因此 so far 2. 因此 so far 2. 7"
    assert rejection_reason(bad, EX) == "wrong"
    # a correct, clean trace cut at the length cap is "overlong"; the same text that stopped normally is kept
    assert rejection_reason(_c(GOOD_R1_ZERO, "length"), EX) == "overlong"
    assert rejection_reason(_c(GOOD_R1_ZERO, "stop"), EX) is None


def test_repetition_needs_a_sentence_of_three_words():
    assert not has_repetition("Yes. Yes. Yes.")                  # short sentences may repeat
    assert has_repetition("We carry the one. We carry the one.")
    assert not has_repetition(None)


def test_rewrite_into_the_readable_format():
    out = rewrite_readable(GOOD_R1_ZERO, EX)
    assert out.startswith("<think> Check 386 + 7776") and out.endswith("</think> The answer is \\boxed{8162}.")
    assert readable_format_reward(out, EX) == 1.0 and accuracy_reward(out, EX) == 1.0
    assert "<answer>" not in out
    assert rewrite_readable(GOOD_READABLE, EX) == GOOD_READABLE   # already readable: unchanged


def test_demonstrations_are_correct_readable_careful_traces():
    from r1lib.tasks import generate_mix

    examples = generate_mix({"addition": 1.0, "subtraction": 1.0}, 20, split="train", seed=3, difficulty=(1, 2))
    rows = demonstrations(examples, seed=0)
    assert len(rows) == 20 and all(r["source"] == "template" for r in rows)
    for ex, row in zip(examples, rows):
        user, assistant = row["messages"]
        assert user == {"role": "user", "content": ex.problem}
        assert rejection_reason(assistant["content"], ex, readable_format=True) is None
        assert "Check" in assistant["content"]   # the self-checking style


def test_mix_rows_keeps_every_row_once_and_is_deterministic():
    reasoning = [{"messages": [{"role": "user", "content": f"q{i}"}], "source": "sampled", "task": "addition"}
                 for i in range(9)]
    general = [{"messages": [{"role": "user", "content": f"g{i}"}]} for i in range(3)]   # 3 : 1
    a, b = mix_rows(reasoning, general, seed=1), mix_rows(reasoning, general, seed=1)
    assert a == b and len(a) == 12
    assert row_table(a) == {"general": 3, "sampled": 9}
    assert sorted(r["messages"][0]["content"] for r in a) == sorted([f"q{i}" for i in range(9)] +
                                                                   [f"g{i}" for i in range(3)])


def _c(text, finish_reason):
    return Completion(text=text, token_ids=[], finish_reason=finish_reason)


class ScriptedSampler:
    """Returns fixed completions per prompt (in order), whatever the sampling parameters."""

    def __init__(self, script):
        self.script, self.prompts = script, []

    def generate(self, prompts, params):
        self.prompts = list(prompts)
        assert params.n == len(self.script[0])
        return [self.script[i] for i in range(len(prompts))]


class R1ZeroFormat:
    stop = ["</answer>"]

    def __call__(self, problem):
        return f"User: {problem} Assistant:"


def test_sample_and_filter_counts_every_reason_and_dedupes():
    ex2 = Example(id="t1", task="addition", problem="Compute 10 + 2000.", answer="2010")
    script = [
        [_c(GOOD_R1_ZERO, "stop"), _c(GOOD_R1_ZERO, "stop"),              # kept twice, one distinct
         _c(GOOD_R1_ZERO.replace("8162 <", "9 <"), "stop"), _c(GOOD_R1_ZERO, "length")],
        [_c("<answer> 2010 </answer>", "stop"),                                      # format
         _c("<think> 所以 0 + 0 = 0 </think> <answer> 2010 </answer>", "stop"),      # language
         _c("<think> We add the ones. We add the ones. </think> <answer> 2010 </answer>", "stop"),
         _c("<think> 0 + 0 = 0, so far 0. </think> <answer> 2010 </answer>", "stop")],  # kept
    ]
    sampler = ScriptedSampler(script)
    rows, stats = sample_and_filter(sampler, [EX, ex2], n=4, temperature=1.0, max_new_tokens=64,
                                    prompt_format=R1ZeroFormat(), seed=0, readable_format=False, max_per_prompt=2)
    assert sampler.prompts == ["User: Compute 386 + 7776. Assistant:", "User: Compute 10 + 2000. Assistant:"]
    d = stats.to_dict()
    assert d["sampled"] == 8 and d["kept"] == 3 and d["prompts"] == 2 and d["prompts_kept"] == 2
    assert d["dropped"] == {"wrong": 1, "format": 1, "language": 1, "repetition": 1, "overlong": 1}
    assert d["keep_rate"] == pytest.approx(3 / 8)
    assert len(rows) == 2   # the two identical traces of the first prompt become one row
    for row, ex in zip(rows, (EX, ex2)):
        assert row["source"] == "sampled" and row["messages"][0]["content"] == ex.problem
        assert readable_format_reward(row["messages"][1]["content"], ex) == 1.0
