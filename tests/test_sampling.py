"""Tests of r1lib.sampling: SamplingParams, the stop-string/EOS post-processing, HFSampler on the
random nano model of the ``tiny_model_dir`` fixture, and make_sampler / the vLLM parameter mapping."""

from __future__ import annotations

import sys
import types

import pytest

from r1lib.prompts import r1_zero_prompt
from r1lib.sampling import (
    Completion,
    HFSampler,
    Sampler,
    SamplingParams,
    make_sampler,
    postprocess_completion,
)


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    from r1lib.models import load_model

    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def sampler(model_and_tok):
    model, tok = model_and_tok
    return HFSampler(model, tok, batch_size=4, num_threads=1)


PROMPTS = [r1_zero_prompt("Compute 3 + 4."), r1_zero_prompt("Compute 12 + 17."), r1_zero_prompt("Compute 5 + 6.")]


# ---------------------------------------------------------------- SamplingParams / Completion


def test_sampling_params_defaults_and_validation():
    p = SamplingParams()
    assert (p.temperature, p.top_p, p.max_new_tokens, p.n, p.stop, p.seed) == (1.0, 1.0, 256, 1, ("</answer>",), None)
    assert SamplingParams(stop="</answer>").stop == ("</answer>",)  # a bare string is one stop string
    assert SamplingParams(stop=None).stop == ()
    for bad in (dict(temperature=-0.1), dict(top_p=0.0), dict(top_p=1.5), dict(max_new_tokens=0), dict(n=0),
                dict(stop=("",))):
        with pytest.raises(ValueError):
            SamplingParams(**bad)


def test_completion_num_tokens():
    assert Completion("ab", [5, 6, 7], "length").num_tokens == 3


# ---------------------------------------------------------------- post-processing


def test_postprocess_cuts_after_first_stop_string(model_and_tok):
    _, tok = model_and_tok
    text = " <think> 3 + 4 = 7 </think> <answer> 7 </answer> <answer> 8 </answer> trailing"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    c = postprocess_completion(ids, tok, eos_token_ids=[tok.eos_token_id], stop=("</answer>",))
    assert c.finish_reason == "stop"
    assert c.text == " <think> 3 + 4 = 7 </think> <answer> 7 </answer>"
    # token_ids end with the token that completes the first stop string, not one token later
    assert c.token_ids == ids[: len(c.token_ids)]
    assert "</answer>" in tok.decode(c.token_ids)
    assert "</answer>" not in tok.decode(c.token_ids[:-1])


def test_postprocess_earliest_of_several_stop_strings(model_and_tok):
    _, tok = model_and_tok
    ids = tok("abc STOP2 def STOP1", add_special_tokens=False)["input_ids"]
    c = postprocess_completion(ids, tok, eos_token_ids=[tok.eos_token_id], stop=("STOP1", "STOP2"))
    assert (c.text, c.finish_reason) == ("abc STOP2", "stop")


def test_postprocess_eos_and_padding(model_and_tok):
    _, tok = model_and_tok
    body = tok(" <answer> 7", add_special_tokens=False)["input_ids"]
    ids = body + [tok.eos_token_id] + [tok.pad_token_id] * 3
    c = postprocess_completion(ids, tok, eos_token_ids=[tok.eos_token_id], stop=("</answer>",))
    assert c.finish_reason == "eos"
    assert c.token_ids == body + [tok.eos_token_id]
    assert c.text == " <answer> 7"  # the EOS token is not part of the text
    # no EOS, no stop string: truncated at max_new_tokens
    c2 = postprocess_completion(body, tok, eos_token_ids=[tok.eos_token_id], stop=("</answer>",))
    assert (c2.finish_reason, c2.token_ids, c2.text) == ("length", body, " <answer> 7")
    # a stop string before EOS wins, and padding after it (transformers' stop_strings) is dropped
    ids3 = tok(" <answer> 7 </answer>", add_special_tokens=False)["input_ids"]
    c3 = postprocess_completion(ids3 + [tok.pad_token_id] * 4, tok, eos_token_ids=[tok.eos_token_id],
                                stop=("</answer>",))
    assert (c3.finish_reason, c3.token_ids, c3.text) == ("stop", ids3, " <answer> 7 </answer>")


# ---------------------------------------------------------------- HFSampler


def test_hf_sampler_shapes_and_lengths(sampler, model_and_tok):
    _, tok = model_and_tok
    assert isinstance(sampler, Sampler)
    out = sampler.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=10, n=3, stop=(), seed=0))
    assert len(out) == 3 and all(len(row) == 3 for row in out)
    for row in out:
        for c in row:
            assert isinstance(c, Completion)
            assert 1 <= c.num_tokens <= 10
            if c.finish_reason == "length":
                assert c.num_tokens == 10 and tok.eos_token_id not in c.token_ids
            else:
                assert c.finish_reason == "eos" and c.token_ids[-1] == tok.eos_token_id
            assert c.text == tok.decode(c.token_ids, skip_special_tokens=True)
    assert sampler.generate([], SamplingParams()) == []


def test_hf_sampler_is_deterministic_given_seed(sampler):
    params = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12, n=2, stop=(), seed=123)
    a = sampler.generate(PROMPTS, params)
    b = sampler.generate(PROMPTS, params)
    assert a == b
    c = sampler.generate(PROMPTS, SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=12, n=2, stop=(), seed=7))
    assert [x.token_ids for row in a for x in row] != [x.token_ids for row in c for x in row]
    # the n samples of one prompt differ (they are independent draws, not copies)
    assert a[0][0].token_ids != a[0][1].token_ids


def test_hf_sampler_greedy_ignores_seed_and_keeps_prompt_order(sampler):
    # Prompts of different token lengths: the sampler batches rows longest-first and must map the
    # results back to the input order. (The random nano model's greedy continuation depends on the
    # prompt's last token, so these three prompts give three different continuations.)
    prompts = ["think", "1 2 3 4", "<answer>"]
    g = SamplingParams(temperature=0.0, max_new_tokens=6, n=2, stop=(), seed=1)
    batched = sampler.generate(prompts, g)
    assert batched == sampler.generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=6, n=2, stop=(), seed=99))
    singles = [sampler.generate([p], g)[0] for p in prompts]
    assert [[c.token_ids for c in row] for row in batched] == [[c.token_ids for c in row] for row in singles]
    assert all(row[0] == row[1] for row in batched)  # greedy: the n copies are identical
    assert len({tuple(row[0].token_ids) for row in batched}) == 3


def test_hf_sampler_cuts_at_stop_string(model_and_tok):
    model, tok = model_and_tok
    s = HFSampler(model, tok, batch_size=8)
    base = SamplingParams(temperature=1.0, max_new_tokens=24, n=1, stop=(), seed=3)
    full = s.generate([PROMPTS[0]], base)[0][0]
    text = full.text
    # a stop string taken from the middle of the unstopped sample: two printable ASCII characters
    pos = next((i for i in range(2, len(text) - 2) if text[i:i + 2].isascii() and text[i:i + 2].isprintable()), None)
    assert pos is not None, f"no ASCII pair in {text!r}"
    stop = text[pos:pos + 2]
    end = text.index(stop) + len(stop)
    cut = s.generate([PROMPTS[0]], SamplingParams(temperature=1.0, max_new_tokens=24, n=1, stop=(stop,), seed=3))[0][0]
    assert cut.finish_reason == "stop"
    assert cut.text == text[:end]
    assert cut.token_ids == full.token_ids[: cut.num_tokens] and len(cut.text) < len(text)
    # the same cut without transformers' stop_strings (post-processing only)
    s2 = HFSampler(model, tok, batch_size=8, hf_stop_strings=False)
    cut2 = s2.generate([PROMPTS[0]], SamplingParams(temperature=1.0, max_new_tokens=24, n=1, stop=(stop,), seed=3))[0][0]
    assert cut2 == cut


def test_hf_sampler_restores_train_mode_and_threads(model_and_tok):
    import torch

    model, tok = model_and_tok
    threads = torch.get_num_threads()
    model.train()
    try:
        HFSampler(model, tok, num_threads=1).generate([PROMPTS[0]], SamplingParams(max_new_tokens=2, stop=(), seed=0))
        assert model.training
        assert torch.get_num_threads() == threads
    finally:
        model.eval()
    with pytest.raises(ValueError, match="num_threads"):
        HFSampler(model, tok, num_threads=0)
    with pytest.raises(ValueError, match="batch_size"):
        HFSampler(model, tok, batch_size=0)


# ---------------------------------------------------------------- make_sampler / vLLM mapping


def test_make_sampler_hf(tiny_model_dir, model_and_tok):
    model, tok = model_and_tok
    s = make_sampler(str(tiny_model_dir), device="cpu", batch_size=3)
    assert isinstance(s, HFSampler) and s.batch_size == 3
    assert isinstance(make_sampler(model, tok), HFSampler)
    with pytest.raises(ValueError, match="tokenizer"):
        make_sampler(model)
    with pytest.raises(ValueError, match="unknown sampler backend"):
        make_sampler(model, tok, backend="tgi")


def test_make_sampler_vllm_missing_is_clear(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -e \.\[gpu\]"):
        make_sampler("some/model", backend="vllm")


def test_vllm_sampler_mapping_with_stand_in_module(monkeypatch):
    """The vLLM back-end's parameter and finish-reason mapping, against a stand-in ``vllm`` module."""
    calls = {}
    fake = types.ModuleType("vllm")

    class FakeSamplingParams:
        def __init__(self, **kw):
            calls["sampling"] = kw

    class FakeLLM:
        def __init__(self, model, **kw):
            calls["llm"] = (model, kw)

        def generate(self, prompts, sp, use_tqdm=True):
            outs = [types.SimpleNamespace(text="a</answer>", token_ids=(1, 2), finish_reason="stop", stop_reason="</answer>"),
                    types.SimpleNamespace(text="b", token_ids=[3, 9], finish_reason="stop", stop_reason=None),
                    types.SimpleNamespace(text="ccc", token_ids=[4, 4, 4], finish_reason="length", stop_reason=None)]
            return [types.SimpleNamespace(outputs=outs) for _ in prompts]

    fake.LLM, fake.SamplingParams = FakeLLM, FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", fake)
    s = make_sampler("runs/x/base_model", backend="vllm", gpu_memory_utilization=0.5)
    assert calls["llm"] == ("runs/x/base_model", {"gpu_memory_utilization": 0.5})
    out = s.generate(["p1", "p2"], SamplingParams(temperature=0.6, top_p=0.95, max_new_tokens=64, n=3, seed=5))
    assert calls["sampling"] == dict(n=3, temperature=0.6, top_p=0.95, max_tokens=64, stop=["</answer>"],
                                     include_stop_str_in_output=True, seed=5)
    assert len(out) == 2
    assert [c.finish_reason for c in out[0]] == ["stop", "eos", "length"]
    assert out[0][0] == Completion("a</answer>", [1, 2], "stop")
    with pytest.raises(ValueError, match="path"):
        make_sampler(object(), backend="vllm")
