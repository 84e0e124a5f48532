"""r1lib.decode.FastDecoder (the KV-cache sampler's hand-written decode step) against the model's own forward."""

from __future__ import annotations

import pytest
import torch

from r1lib.decode import FastDecoder, fast_decoder_for
from r1lib.prompts import r1_zero_prompt
from r1lib.sampling import KVCacheSampler, SamplingParams

PROMPTS = ["1 2 3 4 5 6 7 8", r1_zero_prompt("Compute 3 + 4."), r1_zero_prompt("Compute 12 + 17."), "<answer> 5 6 7 8 9"]


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    from r1lib.models import load_model

    model, tok = load_model(tiny_model_dir, device="cpu")
    return model.eval(), tok


def _qwen2(tok, **extra):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False, **extra)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # random non-zero biases, so that a decoder ignoring them would fail
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("arch, fuse", [("llama", True), ("qwen2", True), ("llama", False), ("qwen2", False)])
def test_decode_steps_match_a_full_forward(model_and_tok, arch, fuse, monkeypatch):
    """Prefill the first tokens of left-padded rows (the sampler's buffer cache), decode the rest with the
    FastDecoder one token at a time: every step's logits equal the full forward's at that position. ``fuse``:
    fused q/k/v and gate/up weights (small models) or the model's own tensors (above ``FUSE_MAX_PARAMS``)."""
    import r1lib.decode as decode

    model, tok = model_and_tok
    if arch == "qwen2":
        model = _qwen2(tok)
    if not fuse:
        monkeypatch.setattr(decode, "FUSE_MAX_PARAMS", 0)
    decoder = fast_decoder_for(model)
    assert isinstance(decoder, FastDecoder)
    assert isinstance(decoder._layers[0][1], list) is not fuse
    sampler = KVCacheSampler(model, tok, share_prefix=False)
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    position = (mask.cumsum(-1) - 1).clamp(min=0)
    k = 4                                                  # tokens decoded one by one
    plen = ids.shape[1] - k
    assert int(mask[:, :plen].sum(1).min()) >= 1           # every row has a token in the prefill
    with torch.inference_mode():
        full = model(input_ids=ids, attention_mask=mask, position_ids=position).logits   # [B, L, vocab]
        cache, logits, fast, _ = sampler._prefill(ids[:, :plen], mask[:, :plen], position[:, :plen], ids.shape[1])
        assert fast
        torch.testing.assert_close(logits, full[:, plen - 1], atol=1e-4, rtol=1e-4)
        caches = [(layer._kbuf, layer._vbuf) for layer in cache.layers]
        mask_buf = mask.bool()
        for j in range(k):
            col = plen + j
            got = decoder.step(ids[:, col], position[:, col], caches, col, mask_buf)
            assert got.shape == full[:, col].shape
            assert float((got - full[:, col]).abs().max()) < 1e-4, f"step {j}"


def test_unsupported_models_keep_the_forward(model_and_tok):
    model, tok = model_and_tok
    sliding = _qwen2(tok, use_sliding_window=True, sliding_window=6,
                     layer_types=["sliding_attention", "full_attention"], max_window_layers=1)
    assert fast_decoder_for(sliding) is None
    assert fast_decoder_for(model.model) is None            # not a *ForCausalLM
    from transformers import GPT2Config, GPT2LMHeadModel

    assert fast_decoder_for(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))) is None


def test_refresh_reads_new_weights(model_and_tok):
    """RL changes the weights between generate calls: refresh() must see them (the sampler rebuilds per call)."""
    import copy

    model, tok = model_and_tok
    model = copy.deepcopy(model)
    decoder = fast_decoder_for(model)
    caches = [(torch.zeros(2, model.config.num_key_value_heads, 8, decoder.head_dim),) * 2
              for _ in model.model.layers]
    caches = [(torch.zeros_like(a), torch.zeros_like(b)) for a, b in caches]
    tokens, pos = torch.tensor([3, 4]), torch.tensor([0, 0])
    with torch.inference_mode():
        before = decoder.step(tokens, pos, caches, 0, None)
    with torch.no_grad():
        model.model.layers[0].mlp.gate_proj.weight.mul_(3.0)   # fused into gate_up: a copy
    with torch.inference_mode():
        assert torch.equal(decoder.step(tokens, pos, caches, 0, None), before)   # the fused copies are stale
        decoder.refresh()
        assert not torch.allclose(decoder.step(tokens, pos, caches, 0, None), before)


@pytest.mark.parametrize("temperature, top_p", [(0.0, 1.0), (1.0, 1.0), (0.6, 0.95)])
def test_sampler_with_and_without_the_fast_decoder(model_and_tok, temperature, top_p):
    """The same completions (greedy and seeded sampling: the logits differ by float rounding only) and log-probs."""
    model, tok = model_and_tok
    params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=24, n=3, stop=(), seed=5)
    fast = KVCacheSampler(model, tok, batch_size=5).generate(PROMPTS, params)
    slow = KVCacheSampler(model, tok, batch_size=5, fast_decode=False).generate(PROMPTS, params)
    pairs = [(a, b) for ra, rb in zip(fast, slow) for a, b in zip(ra, rb)]
    assert len(pairs) == len(PROMPTS) * 3
    assert all(a.token_ids == b.token_ids and a.finish_reason == b.finish_reason for a, b in pairs)
    assert len({tuple(a.token_ids) for a, _ in pairs}) > (1 if temperature == 0 else 4)   # not a degenerate check
    if temperature > 0:
        diff = max(abs(x - y) for a, b in pairs for x, y in zip(a.logprobs, b.logprobs))
        assert diff < 1e-4
