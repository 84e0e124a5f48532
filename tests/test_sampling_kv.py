"""Tests of r1lib.sampling.KVCacheSampler (the hand-written KV-cache decode loop) against HFSampler.

Everything runs on the random nano model of the ``tiny_model_dir`` fixture. The strongest checks compare
with HFSampler (Hugging Face ``generate``) token for token: greedy decoding, and sampling with
``rng="hf"`` (the same random stream as HFSampler), with and without batch compaction.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from r1lib.prompts import r1_zero_prompt
from r1lib.sampling import Completion, HFSampler, KVCacheSampler, Sampler, SamplingParams, make_sampler

# Prompts of different token lengths (so batches are left-padded), two of them sharing the long template.
PROMPTS = ["think", "1 2 3 4", "<answer>", r1_zero_prompt("Compute 3 + 4."), r1_zero_prompt("Compute 12 + 17.")]


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    from r1lib.models import load_model

    model, tok = load_model(tiny_model_dir, device="cpu")
    assert model.config._attn_implementation == "sdpa"  # the path KVCacheSampler speeds up
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query attention
    return model, tok


@pytest.fixture(scope="module")
def hf(model_and_tok):
    model, tok = model_and_tok
    return HFSampler(model, tok, batch_size=4, num_threads=1)


@pytest.fixture(scope="module")
def kv(model_and_tok):
    model, tok = model_and_tok
    return KVCacheSampler(model, tok, batch_size=4, num_threads=1)


def count_forwards(model, monkeypatch=None):
    """Count ``model.forward`` calls with a forward hook; returns (a one-element counter list, the hook handle).
    With ``monkeypatch``, the hand-written decode steps (r1lib.decode.FastDecoder.step) count as forwards too."""
    calls = [0]

    def hook(*_):
        calls[0] += 1

    if monkeypatch is not None:
        from r1lib.decode import FastDecoder

        step = FastDecoder.step

        def counted(self, *a, **kw):
            calls[0] += 1
            return step(self, *a, **kw)

        monkeypatch.setattr(FastDecoder, "step", counted)
    return calls, model.register_forward_hook(hook)


# ---------------------------------------------------------------- equality with HFSampler


def test_greedy_equals_hf(hf, kv):
    assert isinstance(kv, Sampler)
    for params in (SamplingParams(temperature=0.0, max_new_tokens=12, n=2, stop=()),
                   SamplingParams(temperature=0.0, max_new_tokens=7, n=1)):
        expected = hf.generate(PROMPTS, params)
        got = kv.generate(PROMPTS, params)
        assert got == expected  # texts, token_ids and finish reasons
        assert len(got) == len(PROMPTS) and all(len(row) == params.n for row in got)
        assert all(c.finish_reason == "length" and c.num_tokens == params.max_new_tokens for row in got for c in row)
    # the random model continues the five prompts differently, so the comparison is not vacuous
    assert len({tuple(row[0].token_ids) for row in got}) >= 4


@pytest.mark.parametrize("compact", [None, 0.25, 1.0])
@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.9)])
def test_sampling_with_hf_rng_equals_hf(model_and_tok, hf, compact, temperature, top_p):
    """rng='hf' draws HF's random stream: sampled completions equal HFSampler's, also after compaction."""
    model, tok = model_and_tok
    kv = KVCacheSampler(model, tok, batch_size=4, num_threads=1, rng="hf", compact=compact)
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=10, n=3, stop=(), seed=5)
    expected = hf.generate(PROMPTS, params)
    assert kv.generate(PROMPTS, params) == expected
    assert len({tuple(c.token_ids) for row in expected for c in row}) > 10  # real sampling, not copies


def test_hf_rng_equals_hf_with_stop_and_eos(model_and_tok):
    """Rows that stop early (stop string / EOS) end a batch at the same step as HF, so later batches agree too.

    The stop strings occur in no special token's text: transformers' stop_strings criterion (HFSampler) also
    matches inside special tokens such as <|system|>, which the decoded completion does not contain.
    """
    model, tok = model_and_tok
    params = SamplingParams(temperature=1.0, max_new_tokens=16, n=4, stop=("1", "w", "7"), seed=11)
    hf = HFSampler(model, tok, batch_size=3, num_threads=1)
    kv = KVCacheSampler(model, tok, batch_size=3, num_threads=1, rng="hf", compact=0.1)
    pre = hf.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=16, n=4, stop=(), seed=11))
    counts = torch.bincount(torch.tensor([t for row in pre for c in row for t in c.token_ids[1:]]))
    hf.eos_token_ids = kv.eos_token_ids = [int(counts.argmax())]  # a frequent token as EOS: rows also end by EOS
    expected = hf.generate(PROMPTS, params)
    assert kv.generate(PROMPTS, params) == expected
    reasons = {c.finish_reason for row in expected for c in row}
    assert {"stop", "eos"} <= reasons


# Prompts sharing the R1-Zero template (a long common token prefix), of different lengths.
TEMPLATED = [r1_zero_prompt("Compute 3 + 4."), r1_zero_prompt("Compute 12 + 17 + 5 + 100 - 3 * 6 + 41."),
             r1_zero_prompt("What is 2?")]
# ... plus a prompt that is only the template's first words: its padding reaches past the shared prefix.
WITH_SHORT = TEMPLATED + ["A conversation between User and Assistant."]


@pytest.mark.parametrize("prompts", [TEMPLATED, WITH_SHORT], ids=["padding-within-prefix", "padding-past-prefix"])
def test_shared_prefix_prefill_matches_full_prefill(model_and_tok, prompts):
    """The prefix shared by all prompts is prefilled once; logits and cache match a full prefill."""
    model, tok = model_and_tok
    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    position = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    lengths = mask.sum(1).tolist()
    common = next((k for k in range(min(lengths)) if len({tuple(tok(p)["input_ids"][:k + 1]) for p in prompts}) > 1),
                  min(lengths))  # length of the common token prefix
    pads = [max(lengths) - n for n in lengths]
    assert common >= 16 and sorted(pads)[1] > 0  # several rows padded
    shared_s = KVCacheSampler(model, tok)
    full_s = KVCacheSampler(model, tok, share_prefix=False)
    with torch.inference_mode():
        cache_a, logits_a, fast_a, shared = shared_s._prefill(ids, mask, position, capacity=ids.shape[1] + 4)
        cache_b, logits_b, fast_b, none = full_s._prefill(ids, mask, position, capacity=ids.shape[1] + 4)
    assert fast_a and fast_b and none == 0
    assert shared == min(common, min(lengths) - 1)  # every row keeps one token for the second pass
    assert (max(pads) > shared) == (prompts is WITH_SHORT)  # the short prompt's row is padding up to `shared`
    torch.testing.assert_close(logits_a, logits_b, rtol=1e-4, atol=1e-5)
    real = mask.bool()[:, None, :, None]  # padding columns hold arbitrary (masked) values
    for layer_a, layer_b in zip(cache_a.layers, cache_b.layers):
        assert layer_a.get_seq_length() == layer_b.get_seq_length() == ids.shape[1]
        torch.testing.assert_close(torch.where(real, layer_a.keys, 0), torch.where(real, layer_b.keys, 0),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(torch.where(real, layer_a.values, 0), torch.where(real, layer_b.values, 0),
                                   rtol=1e-4, atol=1e-5)


def test_shared_prefix_generation(model_and_tok):
    model, tok = model_and_tok
    shared_s = KVCacheSampler(model, tok, num_threads=1)
    full_s = KVCacheSampler(model, tok, num_threads=1, share_prefix=False)
    calls, handle = count_forwards(model)
    try:
        shared_s.generate(TEMPLATED, SamplingParams(max_new_tokens=1, stop=(), seed=0))
        assert calls[0] == 2  # the shared prefix, then the rest of the prompts
        calls[0] = 0
        full_s.generate(TEMPLATED, SamplingParams(max_new_tokens=1, stop=(), seed=0))
        assert calls[0] == 1
    finally:
        handle.remove()
    greedy = SamplingParams(temperature=0.0, max_new_tokens=10, n=2, stop=())
    assert shared_s.generate(WITH_SHORT, greedy) == full_s.generate(WITH_SHORT, greedy)
    assert shared_s.generate(WITH_SHORT, greedy) == HFSampler(model, tok).generate(WITH_SHORT, greedy)
    sampled = SamplingParams(temperature=1.0, max_new_tokens=10, n=2, stop=(), seed=1)
    assert shared_s.generate(WITH_SHORT, sampled) == full_s.generate(WITH_SHORT, sampled)
    assert not KVCacheSampler(model, tok, rng="hf").share_prefix  # exact HF parity: one full prefill
    assert KVCacheSampler(model, tok, rng="hf", share_prefix=True).share_prefix


# ---------------------------------------------------------------- stop strings and EOS


def test_stop_string_cut_and_early_exit(model_and_tok, hf, kv, monkeypatch):
    model, tok = model_and_tok
    prompt = [PROMPTS[3]]
    full = kv.generate(prompt, SamplingParams(temperature=1.0, max_new_tokens=24, stop=(), seed=3))[0][0]
    text = full.text
    # a stop string taken from the middle of the unstopped output: two printable ASCII characters whose first
    # occurrence in prompt + completion lies inside the completion (HF's criterion also matches across the
    # prompt/completion boundary; KVCacheSampler, like postprocess_completion, looks at the completion only)
    pos = next((i for i in range(3, len(text) - 2) if text[i:i + 2].isascii() and text[i:i + 2].isprintable()
                and (prompt[0] + text).find(text[i:i + 2]) >= len(prompt[0])), None)
    assert pos is not None, f"no ASCII pair in {text!r}"
    stop = text[pos:pos + 2]
    end = text.index(stop) + len(stop)
    params = SamplingParams(temperature=1.0, max_new_tokens=24, stop=("never-produced", stop), seed=3)
    calls, handle = count_forwards(model, monkeypatch)
    try:
        cut = kv.generate(prompt, params)[0][0]
    finally:
        handle.remove()
    assert cut.finish_reason == "stop"
    assert cut.text == text[:end] and len(cut.text) < len(text)
    assert cut.token_ids == full.token_ids[: cut.num_tokens]
    assert stop in tok.decode(cut.token_ids) and stop not in tok.decode(cut.token_ids[:-1])
    # generation stopped at the token completing the stop string: one forward per generated token
    assert calls[0] == cut.num_tokens < 24
    hf_rng = KVCacheSampler(model, tok, batch_size=4, num_threads=1, rng="hf")
    assert hf_rng.generate(prompt, params) == hf.generate(prompt, params)


def test_eos_kept_and_row_stops(model_and_tok, kv, monkeypatch):
    model, tok = model_and_tok
    prompt = [PROMPTS[4]]
    full = kv.generate(prompt, SamplingParams(temperature=0.0, max_new_tokens=20, stop=()))[0][0]
    k = 5
    eos = full.token_ids[k]
    first = full.token_ids.index(eos)  # the token may already occur earlier
    sampler = KVCacheSampler(model, tok, batch_size=4, num_threads=1)
    sampler.eos_token_ids = [eos]
    calls, handle = count_forwards(model, monkeypatch)
    try:
        c = sampler.generate(prompt, SamplingParams(temperature=0.0, max_new_tokens=20, stop=()))[0][0]
    finally:
        handle.remove()
    assert c.finish_reason == "eos"
    assert c.token_ids == full.token_ids[: first + 1] and c.token_ids[-1] == eos
    assert calls[0] == first + 1


def test_finished_rows_and_lengths_mixed_in_one_batch(model_and_tok):
    """Rows of one batch finish at different steps (EOS, stop, length); each gets its own correct ending."""
    model, tok = model_and_tok
    params = SamplingParams(temperature=1.0, max_new_tokens=12, n=6, stop=("e",), seed=3)
    kv = KVCacheSampler(model, tok, batch_size=32, num_threads=1)
    out = kv.generate(PROMPTS, params)
    reasons = [c.finish_reason for row in out for c in row]
    assert {"stop", "length"} <= set(reasons)
    for row in out:
        for c in row:
            assert c.text == tok.decode(c.token_ids, skip_special_tokens=True)[: len(c.text)]
            if c.finish_reason == "stop":
                assert c.text.endswith("e") and "e" not in tok.decode(c.token_ids[:-1], skip_special_tokens=True)
            elif c.finish_reason == "eos":
                assert c.token_ids[-1] == tok.eos_token_id and "e" not in c.text
            else:
                assert c.finish_reason == "length" and c.num_tokens == 12 and "e" not in c.text


# ---------------------------------------------------------------- randomness


def test_seed_determinism_and_independent_samples(kv):
    params = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=10, n=3, stop=(), seed=123)
    a = kv.generate(PROMPTS, params)
    assert kv.generate(PROMPTS, params) == a
    b = kv.generate(PROMPTS, SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=10, n=3, stop=(), seed=7))
    assert [c.token_ids for row in a for c in row] != [c.token_ids for row in b for c in row]
    assert a[0][0].token_ids != a[0][1].token_ids  # the n samples are independent draws
    # seed=None: drawn from torch's global RNG, so torch.manual_seed reproduces the call
    unseeded = SamplingParams(temperature=1.0, max_new_tokens=10, n=2, stop=())
    torch.manual_seed(0)
    c1 = kv.generate(PROMPTS, unseeded)
    torch.manual_seed(0)
    assert kv.generate(PROMPTS, unseeded) == c1


def test_per_row_samples_do_not_depend_on_batching(model_and_tok, kv):
    """With rng='per_row' completion (i, j) has its own random stream: batch size, compaction and the other
    prompts of the call do not change it."""
    model, tok = model_and_tok
    params = SamplingParams(temperature=1.0, max_new_tokens=10, n=3, stop=(), seed=9)
    ref = kv.generate(PROMPTS, params)
    for sampler in (KVCacheSampler(model, tok, batch_size=2, num_threads=1),  # batch_size < rows
                    KVCacheSampler(model, tok, batch_size=64, num_threads=1, compact=None),
                    KVCacheSampler(model, tok, batch_size=5, num_threads=1, compact=0.01)):
        assert sampler.generate(PROMPTS, params) == ref
    assert kv.generate(PROMPTS[:2], params) == ref[:2]


def test_tiny_top_p_is_greedy(kv):
    greedy = kv.generate(PROMPTS, SamplingParams(temperature=0.0, max_new_tokens=10, n=1, stop=()))
    nucleus = kv.generate(PROMPTS, SamplingParams(temperature=1.0, top_p=1e-6, max_new_tokens=10, n=2, stop=(),
                                                  seed=4))
    assert [[c.token_ids for c in row] for row in nucleus] == [[row[0].token_ids] * 2 for row in greedy]


def chi_square_threshold(df: int, z: float = 3.09) -> float:
    """Upper (1 - 0.001) quantile of chi-square(df), Wilson-Hilferty approximation (z = 3.09)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi_square(counts: torch.Tensor, probs: torch.Tensor, total: int) -> tuple[float, int]:
    """Pearson's statistic over the tokens with expected count >= 5 (the rest pooled into one bin)."""
    expected = probs * total
    big = expected >= 5
    obs = torch.cat([counts[big], counts[~big].sum().unsqueeze(0)]).double()
    exp = torch.cat([expected[big], expected[~big].sum().unsqueeze(0)]).double()
    keep = exp > 0
    return float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum()), int(keep.sum()) - 1


def nucleus_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Hand-written target distribution: softmax(logits / T), then keep a token iff the mass of the
    more probable tokens is below top_p, renormalised."""
    p = torch.softmax(logits.double() / temperature, -1)
    order = p.argsort(descending=True)
    before = torch.cumsum(p[order], 0) - p[order]
    keep = torch.zeros_like(p, dtype=torch.bool)
    keep[order] = before < top_p
    p = torch.where(keep, p, torch.zeros_like(p))
    return p / p.sum()


@pytest.mark.parametrize("top_p", [1.0, 0.9, 0.5, 1e-6])
def test_inverse_cdf_nucleus_sampler(top_p):
    """The per_row draw: over a fine grid of uniforms, each token's share equals its nucleus probability.
    Rows mix peaked distributions (nucleus among the top tokens) and flat ones (full sort fallback)."""
    from r1lib.sampling import _NUCLEUS_TOPK, _sample_inverse_cdf

    gen = torch.Generator().manual_seed(0)
    vocab, grid = 300, 5000
    scales = torch.tensor([0.1, 1.0, 4.0, 12.0])  # flat ... peaked
    logits = torch.randn(len(scales), vocab, generator=gen) * scales[:, None]
    logits[:, 7] = logits[:, 8]  # a tie
    probs = torch.softmax(logits, -1)
    u = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    # every row against every grid point, in one call: row r of grid point g is row g * rows + r
    tokens = _sample_inverse_cdf(probs.repeat(grid, 1), u.repeat_interleave(len(scales)), top_p).view(grid, -1)
    top_mass = probs.topk(_NUCLEUS_TOPK, -1).values.sum(-1)
    if 0.01 < top_p < 1.0:
        assert bool((top_mass < top_p).any()) and bool((top_mass >= top_p).any())  # both code paths ran
    for r in range(len(scales)):
        share = torch.bincount(tokens[:, r], minlength=vocab).double() / grid
        target = nucleus_probs(logits[r], 1.0, top_p)
        assert share[target == 0].sum() == 0
        assert (share - target).abs().max() < 2 / grid + 1e-9


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.7, 0.8), (1.0, 0.3)])
def test_first_token_distribution(model_and_tok, temperature, top_p):
    model, tok = model_and_tok
    peaky = copy.deepcopy(model)  # sharper logits than the random model's near-uniform ones
    with torch.no_grad():
        peaky.model.norm.weight.mul_(4.0)
    prompt = PROMPTS[3]
    with torch.no_grad():
        logits = peaky(**tok([prompt], return_tensors="pt")).logits[0, -1]
    total = 3000
    sampler = KVCacheSampler(peaky, tok, batch_size=total, num_threads=1)
    out = sampler.generate([prompt], SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=1,
                                                    n=total, stop=(), seed=0))
    first = torch.tensor([c.token_ids[0] for c in out[0]])
    counts = torch.bincount(first, minlength=logits.shape[-1])
    target = nucleus_probs(logits, temperature, top_p)
    assert counts[target == 0].sum() == 0  # nothing outside the nucleus
    stat, df = chi_square(counts, target, total)
    assert stat < chi_square_threshold(df), (stat, df)
    # the check has power: the same samples are rejected against the other setting's distribution
    other = nucleus_probs(logits, 1.0 if temperature != 1.0 else 0.7, 1.0)
    bad, bad_df = chi_square(counts, other, total)
    assert bad > chi_square_threshold(bad_df), (bad, bad_df)


def test_logprobs_match_a_teacher_forced_forward(model_and_tok):
    """Completion.logprobs (sampling only) are the log-probs of the sampled tokens under softmax(logits / T)."""
    model, tok = model_and_tok
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=8, n=2, stop=(), seed=6)
    for rng in ("per_row", "hf"):
        out = KVCacheSampler(model, tok, batch_size=4, rng=rng).generate(PROMPTS[:3], params)
        for prompt, row in zip(PROMPTS[:3], out):
            for c in row:
                ids = torch.tensor([tok(prompt)["input_ids"] + c.token_ids])
                with torch.no_grad():
                    logits = model(ids).logits[0, -len(c.token_ids) - 1:-1] / params.temperature
                expected = torch.log_softmax(logits, -1).gather(1, torch.tensor(c.token_ids)[:, None]).squeeze(1)
                assert c.logprobs is not None and len(c.logprobs) == c.num_tokens
                torch.testing.assert_close(torch.tensor(c.logprobs), expected, rtol=1e-4, atol=1e-4)
    greedy = KVCacheSampler(model, tok).generate(PROMPTS[:1], SamplingParams(temperature=0.0, max_new_tokens=3))
    assert greedy[0][0].logprobs is None


# ---------------------------------------------------------------- API, modes, wrappers, other models


def test_empty_and_invalid(model_and_tok, kv):
    model, tok = model_and_tok
    assert kv.generate([], SamplingParams()) == []
    with pytest.raises(TypeError):
        kv.generate("a prompt", SamplingParams())
    for bad in (dict(batch_size=0), dict(num_threads=0), dict(rng="numpy"), dict(compact=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            KVCacheSampler(model, tok, **bad)


def test_restores_train_mode_threads_and_attention(model_and_tok):
    model, tok = model_and_tok
    threads = torch.get_num_threads()
    model.train()
    try:
        out = KVCacheSampler(model, tok, num_threads=1).generate(PROMPTS[:2], SamplingParams(max_new_tokens=3, seed=0))
        assert model.training
        assert torch.get_num_threads() == threads
        assert model.config._attn_implementation == "sdpa"
        assert all(isinstance(c, Completion) for row in out for c in row)
    finally:
        model.eval()


def test_wrapped_model_and_outer_inference_mode(model_and_tok, kv):
    model, tok = model_and_tok

    class Wrapper(torch.nn.Module):  # like DistributedDataParallel / a DeepSpeed engine: the model is `.module`
        def __init__(self, module):
            super().__init__()
            self.module = module

    wrapped = KVCacheSampler(Wrapper(model), tok, batch_size=4, num_threads=1)
    assert wrapped.model is model
    params = SamplingParams(temperature=0.0, max_new_tokens=6, stop=())
    with torch.inference_mode():
        assert wrapped.generate(PROMPTS, params) == kv.generate(PROMPTS, params)


def test_eager_attention_model(model_and_tok):
    """A model on transformers' eager attention keeps it (2D masks, no sdpa switch) and still matches HF."""
    model, tok = model_and_tok
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    params = SamplingParams(temperature=0.0, max_new_tokens=8, n=1, stop=())
    assert (KVCacheSampler(eager, tok, batch_size=4).generate(PROMPTS, params)
            == HFSampler(eager, tok, batch_size=4).generate(PROMPTS, params))
    assert eager.config._attn_implementation == "eager"


@pytest.mark.parametrize("sliding", [False, True])
def test_qwen2_model(model_and_tok, sliding):
    """Another architecture (Qwen2: q/k/v biases), also with sliding-window layers (the generic cache path)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    _, tok = model_and_tok
    extra = dict(use_sliding_window=True, sliding_window=6, layer_types=["sliding_attention", "full_attention"],
                 max_window_layers=1) if sliding else {}
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      **extra)
    torch.manual_seed(0)
    qwen = Qwen2ForCausalLM(cfg).eval()
    params = SamplingParams(temperature=0.0, max_new_tokens=10, n=1, stop=())
    expected = HFSampler(qwen, tok, batch_size=8).generate(PROMPTS, params)
    assert KVCacheSampler(qwen, tok, batch_size=8).generate(PROMPTS, params) == expected
    sampled = SamplingParams(temperature=1.0, max_new_tokens=10, n=2, stop=(), seed=2)
    assert (KVCacheSampler(qwen, tok, batch_size=8, rng="hf").generate(PROMPTS, sampled)
            == HFSampler(qwen, tok, batch_size=8).generate(PROMPTS, sampled))


def test_make_sampler_kv(tiny_model_dir, model_and_tok):
    model, tok = model_and_tok
    s = make_sampler(str(tiny_model_dir), backend="kv", device="cpu", batch_size=3, compact=None)
    assert isinstance(s, KVCacheSampler) and s.batch_size == 3 and s.compact is None
    assert isinstance(make_sampler(model, tok, backend="kv", rng="hf"), KVCacheSampler)
    assert isinstance(make_sampler(model, tok), HFSampler)  # "hf" stays the default
    with pytest.raises(ValueError, match="tokenizer"):
        make_sampler(model, backend="kv")


def test_kv_sampler_logprobs_match_a_full_forward(tiny_model_dir):
    """The log-probs the sampler reports are the engine's "old" log-probs: they must equal a full forward."""
    import torch

    from r1lib.models import load_model
    from r1lib.sampling import KVCacheSampler, SamplingParams
    from r1lib.training.rl import sequence_logprobs
    from r1lib.rollouts import pad_rows

    model, tok = load_model(tiny_model_dir)
    prompts = ["Compute 3 + 4.", "Compute 12 + 15. Think first."]
    out = KVCacheSampler(model, tok, batch_size=8).generate(
        prompts, SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=12, n=2, seed=3, stop=()))
    comps = [c for row in out for c in row]
    assert all(c.logprobs is not None and len(c.logprobs) == c.num_tokens for c in comps)
    p_ids = tok(prompts)["input_ids"]
    prompt_ids, prompt_mask = pad_rows([p_ids[i] for i in range(2) for _ in range(2)], tok.pad_token_id, left=True)
    comp_ids, comp_mask = pad_rows([c.token_ids for c in comps], tok.pad_token_id, left=False)
    with torch.no_grad():
        ref, _ = sequence_logprobs(model, prompt_ids, prompt_mask, comp_ids, comp_mask, temperature=0.7)
    got = torch.zeros_like(ref)
    for i, c in enumerate(comps):
        got[i, : c.num_tokens] = torch.tensor(c.logprobs)
    assert torch.allclose(got * comp_mask, ref * comp_mask, atol=1e-4)
    greedy = KVCacheSampler(model, tok).generate(prompts[:1], SamplingParams(temperature=0, max_new_tokens=4, stop=()))
    assert greedy[0][0].logprobs is None
