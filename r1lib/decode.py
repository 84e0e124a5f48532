"""A hand-written one-token decode step for Llama / Qwen2 models: the KV-cache sampler's inner loop.

Why hand-written
----------------
For the default ~1M-parameter model a decode step of 64 rows is ~140 MFLOP, under a millisecond of this CPU's
matmul peak, yet most of a step through transformers' ``LlamaForCausalLM.forward`` goes to Python (module calls,
output dataclasses, mask and cache bookkeeping), not arithmetic. The sampler's loop is 1.20-1.48x faster with this
step than through the forward (results/benchmarks/sampler.json, ``kv`` against ``kv_forward``).
:class:`FastDecoder` does the same maths in ~25 tensor ops per layer, reading the model's own parameters (for
models up to ``FUSE_MAX_PARAMS`` the q/k/v and gate/up weights are fused into one matmul each: copies, rebuilt by
:meth:`FastDecoder.refresh` since RL changes the weights between calls). Prefill still goes through the model's
forward (one call per batch, where transformers' overhead does not matter); the decoder then writes into the same
preallocated key/value buffers (``r1lib.sampling``'s buffer cache layers). What is left of a step's time:
``benchmarks/bench_peak_share.py`` (``rollouts.anatomy``).

What it covers: ``model_type`` ``llama`` or ``qwen2`` (q/k/v biases), default RoPE, SiLU MLP, full attention, no
sliding window, plain (non-PEFT, non-quantised) ``*ForCausalLM`` with tied or untied head, fp32/bf16/fp16.
:func:`fast_decoder_for` returns None for anything else, and the sampler keeps using the model's forward.

Numerics: the same operations as transformers' modelling code in the same dtype, in a different order (fused
matmuls, ``F.rms_norm``), so logits agree to float rounding (tests/test_decode.py: max |diff| < 1e-4 on the
default model, greedy completions equal to :class:`r1lib.sampling.HFSampler`'s).
"""

from __future__ import annotations

from typing import Any

_SUPPORTED = {"llama": False, "qwen2": True}  # model_type -> q/k/v projections carry a bias
FUSE_MAX_PARAMS = 50_000_000  # FastDecoder.refresh fuses q/k/v and gate/up (copies) only up to this model size


def fast_decoder_for(model: Any) -> "FastDecoder | None":
    """A :class:`FastDecoder` for ``model`` when its architecture is covered (module docstring), else None."""
    config = getattr(model, "config", None)
    kind = getattr(config, "model_type", None)
    if kind not in _SUPPORTED or type(model).__name__ not in ("LlamaForCausalLM", "Qwen2ForCausalLM"):
        return None
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        return None
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "mlp_bias", False):
        return None
    if kind == "llama" and getattr(config, "attention_bias", False):
        return None
    if getattr(config, "use_sliding_window", False) or any(
            t != "full_attention" for t in (getattr(config, "layer_types", None) or [])):
        return None
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "rotary_emb"):
        return None
    attn = inner.layers[0].self_attn
    if not all(hasattr(attn, name) for name in ("q_proj", "k_proj", "v_proj", "o_proj")):
        return None
    if any(type(p).__name__ != "Parameter" and type(p).__name__ != "Tensor" for p in model.parameters()):
        return None  # quantised or otherwise wrapped weights
    return FastDecoder(model)


class FastDecoder:
    """One-token decode over a model's weights and the sampler's key/value buffers.

    ``step(tokens [B], positions [B], caches, length, mask [B, >= length+1] bool | None) -> logits [B, vocab]``:
    writes the new keys/values at column ``length`` of every layer's buffers (``[B, kv_heads, capacity, dim]``)
    and attends over columns ``0..length``. Call :meth:`refresh` after the weights changed (the sampler does it
    at the start of every ``generate``).
    """

    def __init__(self, model: Any) -> None:
        config = model.config
        self.model = model
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.eps = config.rms_norm_eps
        self.scale = self.head_dim ** -0.5
        self.bias = _SUPPORTED[config.model_type]
        rotary = model.model.rotary_emb
        self.inv_freq = rotary.inv_freq
        self.rope_scaling = float(getattr(rotary, "attention_scaling", 1.0))
        self._cos: Any = None
        self._layers: list[tuple[Any, ...]] = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read the weights, fusing q/k/v and gate/up into one matmul each (a copy of ~60% of the weights: done
        only for models up to ``FUSE_MAX_PARAMS``; larger ones keep their own tensors and run the separate matmuls)."""
        import torch

        fuse = sum(p.numel() for p in self.model.parameters()) <= FUSE_MAX_PARAMS
        cat = (lambda ts: torch.cat(ts)) if fuse else (lambda ts: list(ts))
        layers = []
        for layer in self.model.model.layers:
            a, m = layer.self_attn, layer.mlp
            qkv = cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
            qkv_b = cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]) if self.bias else None
            gate_up = cat([m.gate_proj.weight, m.up_proj.weight])
            layers.append((layer.input_layernorm.weight, qkv, qkv_b, a.o_proj.weight,
                           layer.post_attention_layernorm.weight, gate_up, m.down_proj.weight))
        self._layers = layers
        self._embed = self.model.model.embed_tokens.weight
        self._norm = self.model.model.norm.weight
        self._head = self.model.lm_head.weight

    def _rope_table(self, capacity: int, device: Any, dtype: Any) -> tuple[Any, Any]:
        """cos/sin [capacity, head_dim] as transformers' rotary embedding computes them (float32, then dtype)."""
        import torch

        if self._cos is None or self._cos.shape[0] < capacity or self._cos.dtype != dtype:
            pos = torch.arange(capacity, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.inv_freq.to(device=device, dtype=torch.float32))
            emb = torch.cat((freqs, freqs), dim=-1)
            self._cos = (emb.cos() * self.rope_scaling).to(dtype)
            self._sin = (emb.sin() * self.rope_scaling).to(dtype)
        return self._cos, self._sin

    def step(self, tokens: Any, positions: Any, caches: list[tuple[Any, Any]], length: int, mask: Any) -> Any:
        import torch
        import torch.nn.functional as F

        rows = tokens.shape[0]
        h, kvh, d = self.heads, self.kv_heads, self.head_dim
        cos_t, sin_t = self._rope_table(caches[0][0].shape[2], tokens.device, self._embed.dtype)
        cos, sin = cos_t[positions].unsqueeze(1), sin_t[positions].unsqueeze(1)       # [B, 1, d]
        half = d // 2
        attn_mask = None if mask is None else mask[:, None, None, :length + 1]        # [B, 1, 1, T] bool
        x = self._embed[tokens]                                                        # [B, hidden]
        for (ln1, qkv_w, qkv_b, o_w, ln2, gu_w, down_w), (kbuf, vbuf) in zip(self._layers, caches):
            y = F.rms_norm(x, (x.shape[-1],), ln1, self.eps)
            if isinstance(qkv_w, list):                                                # unfused (large models)
                qkv = torch.cat([F.linear(y, w, None if qkv_b is None else b)
                                 for w, b in zip(qkv_w, qkv_b or (None,) * 3)], dim=-1)
            else:
                qkv = F.linear(y, qkv_w, qkv_b)                                        # [B, (h + 2 kvh) d]
            q, k, v = qkv.view(rows, h + 2 * kvh, d).split((h, kvh, kvh), dim=1)     # [B, heads, d]
            qk = torch.cat((q, k), dim=1)                                              # rotary on q and k at once
            rot = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos + rot * sin
            kbuf[:, :, length] = qk[:, h:]
            vbuf[:, :, length] = v
            # grouped-query attention as kv_heads x (h / kv_heads) queries: query head i reads kv head i // group,
            # as transformers' repeat_kv; on CPU faster than SDPA's enable_gqa for one decode token
            out = F.scaled_dot_product_attention(qk[:, :h].reshape(rows, kvh, h // kvh, d), kbuf[:, :, :length + 1],
                                                 vbuf[:, :, :length + 1], attn_mask=attn_mask, scale=self.scale)
            x = x + F.linear(out.view(rows, h * d), o_w)
            y = F.rms_norm(x, (x.shape[-1],), ln2, self.eps)
            if isinstance(gu_w, list):
                gate, up = (F.linear(y, w) for w in gu_w)
            else:
                gate, up = F.linear(y, gu_w).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, down_w)
        return F.linear(F.rms_norm(x, (x.shape[-1],), self._norm, self.eps), self._head)
