"""Batched sampling behind a small back-end interface.

Everything that samples completions (evaluation, rejection sampling, RL rollouts, distillation data)
talks to a :class:`Sampler`: ``generate(prompts, params) -> [prompt][n] -> Completion``. On CPU there are
two back-ends with the same completion rules: :class:`HFSampler` (Hugging Face ``model.generate``) and
:class:`KVCacheSampler` (a hand-written KV-cache decode loop, several times faster for our tiny models;
``make_sampler(..., backend="kv")``). On GPUs the same calls can go through vLLM.

Stop strings
------------
The R1-Zero template ends the answer with ``</answer>`` (docs/paper.md §1.1), so the default stop
string is ``"</answer>"``. A completion that contains a stop string is cut right *after* its first
occurrence (the stop string is kept, so format rewards still see the closing tag) and gets
``finish_reason="stop"``. This is vLLM's ``include_stop_str_in_output=True`` behaviour, so both
back-ends produce the same texts.

How a vLLM sampler implements the same Protocol
-----------------------------------------------
vLLM has no CPU wheel (docs/dependencies.md §9), so it is an optional GPU extra
(``pip install -e .[gpu]``). :func:`make_sampler` with ``backend="vllm"`` builds a sampler on
``vllm.LLM`` whose ``generate`` maps our parameters one to one::

    SamplingParams field   vllm.SamplingParams field
    temperature            temperature      (0 means greedy in both)
    top_p                  top_p            (top_k stays -1: disabled, as in the paper's protocol)
    max_new_tokens         max_tokens
    n                      n                (vLLM samples the n completions of a prompt together)
    stop                   stop + include_stop_str_in_output=True
    seed                   seed             (a per-request seed)

and maps each ``RequestOutput.outputs[j]`` (a ``CompletionOutput``) to a :class:`Completion`:
``text``, ``list(token_ids)``, and ``finish_reason``: vLLM reports ``"length"`` or ``"stop"``, with
``stop_reason`` None for an EOS token and the matched string otherwise; we report ``"length"``,
``"eos"`` or ``"stop"``. That sampler is written against vLLM's documented API and is **untested on
CPU** (it cannot be installed here); the mapping itself is unit-tested with a stand-in module.
"""

from __future__ import annotations

import logging

import functools
import hashlib
import inspect
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

from r1lib.decode import fast_decoder_for

FinishReason = Literal["stop", "eos", "length"]


@dataclass
class SamplingParams:
    """Decoding settings shared by every back-end.

    ``temperature == 0`` means greedy decoding (then ``top_p`` and ``seed`` do not matter).
    ``stop`` is a tuple of strings; generation of a completion ends after the first one it produces.
    ``seed`` makes a call reproducible: the same prompts and params give the same completions.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    n: int = 1
    stop: tuple[str, ...] = ("</answer>",)
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):  # a single string is a common slip; a tuple of its characters is never meant
            self.stop = (self.stop,)
        self.stop = tuple(self.stop or ())
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"SamplingParams.stop must be non-empty strings, got {self.stop!r}")


@dataclass
class Completion:
    """One sampled completion (the text after the prompt).

    ``finish_reason``: ``"stop"`` (a stop string ended it; the text ends with that string),
    ``"eos"`` (the model emitted an end-of-sequence token; it is the last entry of ``token_ids``
    and is not part of ``text``) or ``"length"`` (``max_new_tokens`` reached: truncated).
    """

    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    # Per-token log-probs of ``token_ids`` under the temperature-scaled distribution *before* top-p
    # (the policy-gradient log-probs when rollouts use top-p 1.0); None when the back-end does not report
    # them. The RL engine uses them as the "old" log-probs and saves a forward pass.
    logprobs: list[float] | None = field(default=None, compare=False, repr=False)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@runtime_checkable
class Sampler(Protocol):
    """A back-end that samples ``params.n`` completions for each prompt."""

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """Return ``result[i][j]``: the j-th of ``params.n`` completions of ``prompts[i]``."""
        ...


def _find_stop(text: str, stop: Sequence[str]) -> int | None:
    """End index (exclusive) of the earliest stop string in ``text``, or None."""
    best: int | None = None
    for s in stop:
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best):
            best = i + len(s)
    return best


def end_of_turn_id(tokenizer: Any) -> int | None:
    """The special token that closes an assistant turn in the tokenizer's chat template, or None.

    A base checkpoint's EOS is often not its chat template's end of turn (Qwen2.5: EOS ``<|endoftext|>``, turns end
    with ``<|im_end|>``), so a chat-format policy must also stop there. Found by rendering a two-turn chat: the
    first token after the assistant's text, when it is a special token.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    from jinja2.exceptions import TemplateError

    marker = "r1libreply"
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "q"}, {"role": "assistant", "content": marker}],
                                             tokenize=False)
    except (TemplateError, ValueError, TypeError) as err:  # a template that rejects this chat: the EOS still stops
        logging.getLogger(__name__).debug("end_of_turn_id: chat template failed: %s", err)
        return None
    if not isinstance(text, str) or marker not in text:
        return None
    rest = text.split(marker, 1)[1]
    ids = tokenizer(rest, add_special_tokens=False)["input_ids"] if rest else []
    return int(ids[0]) if ids and ids[0] in set(tokenizer.all_special_ids) else None


def postprocess_completion(ids: Sequence[int], tokenizer: Any, *, eos_token_ids: Sequence[int],
                           stop: Sequence[str]) -> Completion:
    """Turn the generated token ids of one row (prompt removed, maybe padded) into a :class:`Completion`.

    - The row ends at the first EOS token (kept in ``token_ids``); anything after it is padding.
    - If the decoded text contains a stop string, the text is cut right after the first one and
      ``token_ids`` is cut after the token that completes it (found by binary search over decoded
      prefixes; with byte-level BPE that token may carry a few characters past the stop string, which
      the text drops). Padding after a stop string (transformers' ``stop_strings``) goes with the cut.
    - Otherwise the completion ran to ``max_new_tokens``: ``"length"``.
    """
    ids = [int(i) for i in ids]
    eos = set(int(e) for e in eos_token_ids)
    finish: FinishReason = "length"
    for pos, tok in enumerate(ids):
        if tok in eos:
            ids, finish = ids[: pos + 1], "eos"
            break
    text = tokenizer.decode(ids, skip_special_tokens=True)
    end = _find_stop(text, stop)
    if end is None:
        return Completion(text=text, token_ids=ids, finish_reason=finish)
    # Smallest m such that the first m tokens already decode to text containing a stop string
    # (monotone in m, so a binary search; decoding is the only exact way with byte-level tokens).
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if _find_stop(tokenizer.decode(ids[:mid], skip_special_tokens=True), stop) is not None:
            hi = mid
        else:
            lo = mid + 1
    return Completion(text=text[:end], token_ids=ids[:lo], finish_reason="stop")


class HFSampler:
    """Sampling with Hugging Face ``model.generate`` (the CPU back-end).

    Prompts are repeated ``n`` times, grouped by token length (less padding) into left-padded
    batches of ``batch_size`` rows, and generated with the KV cache. ``temperature == 0`` is greedy.
    ``top_k`` is disabled (transformers would otherwise apply its default top_k=50): the paper's
    protocol is temperature plus top-p only (docs/paper.md §5).

    Stop strings are enforced by post-processing (:func:`postprocess_completion`) and, when
    ``hf_stop_strings`` is True, also by transformers' ``stop_strings`` criterion so that finished
    rows stop early instead of running to ``max_new_tokens``.

    Determinism: with ``params.seed`` set, ``torch.manual_seed(seed)`` is called at the start of
    every ``generate`` call, so the same prompts and params give the same completions.

    ``num_threads``: if set, torch's intra-op thread count during ``generate`` (restored after).
    Tiny models are overhead-bound: on a 2-core machine that is busy with other work, one thread
    generated 4-10x faster than two in our measurements (OpenMP threads wait for a busy core).
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 64, *, hf_stop_strings: bool = True,
                 add_special_tokens: bool = True, num_threads: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        self.num_threads = num_threads
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        # Called with the number of completions after each batch (a progress bar's update; r1lib.evaluation).
        self.on_batch: Any = None
        self.hf_stop_strings = hf_stop_strings
        self.add_special_tokens = add_special_tokens
        self.eos_token_ids = self._eos_ids(model, tokenizer)
        if not self.eos_token_ids:
            raise ValueError("HFSampler: neither the tokenizer nor the model's generation_config defines an EOS token")
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_ids[0]

    @staticmethod
    def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
        ids: list[int] = []
        gen_cfg = getattr(model, "generation_config", None)  # optional on models that never generate
        candidates: list[Any] = [getattr(gen_cfg, "eos_token_id", None), tokenizer.eos_token_id,
                                 end_of_turn_id(tokenizer)]
        for c in candidates:
            for i in (c if isinstance(c, (list, tuple)) else [c]):
                if i is not None and int(i) not in ids:
                    ids.append(int(i))
        return ids

    def _generation_config(self, params: SamplingParams):
        from transformers import GenerationConfig

        # Every field that matters is set explicitly: unset (None) fields would be filled from the
        # checkpoint's generation_config.json (e.g. a repetition penalty) and transformers' defaults.
        kw: dict[str, Any] = dict(max_new_tokens=params.max_new_tokens, eos_token_id=self.eos_token_ids,
                                  pad_token_id=self.pad_token_id, use_cache=True, num_beams=1,
                                  repetition_penalty=1.0, num_return_sequences=1)
        if params.temperature == 0:
            kw.update(do_sample=False)
        else:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        if self.hf_stop_strings and params.stop:
            kw.update(stop_strings=list(params.stop))
        return GenerationConfig(**kw)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        import torch

        if isinstance(prompts, str):
            raise TypeError("HFSampler.generate takes a list of prompts, got a single string")
        out: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        if not prompts:
            return []
        gen_cfg = self._generation_config(params)
        lengths = [len(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=self.add_special_tokens)["input_ids"]]
        # (prompt index, sample index) rows, longest prompts first, so a batch holds similar lengths.
        rows = [(i, j) for i in sorted(range(len(prompts)), key=lambda i: (-lengths[i], i)) for j in range(params.n)]
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        old_threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        try:
            with torch.inference_mode():
                for start in range(0, len(rows), self.batch_size):
                    batch = rows[start: start + self.batch_size]
                    enc = self.tokenizer([prompts[i] for i, _ in batch], return_tensors="pt", padding=True,
                                         padding_side="left", add_special_tokens=self.add_special_tokens)
                    enc = {k: v.to(device) for k, v in enc.items()}
                    gen = self.model.generate(**enc, generation_config=gen_cfg,
                                              tokenizer=self.tokenizer if gen_cfg.stop_strings else None)
                    new = gen[:, enc["input_ids"].shape[1]:].tolist()
                    for (i, j), ids in zip(batch, new):
                        out[i][j] = postprocess_completion(ids, self.tokenizer, eos_token_ids=self.eos_token_ids,
                                                           stop=params.stop)
                    if self.on_batch is not None:
                        self.on_batch(len(batch))
        finally:
            if self.num_threads is not None:
                torch.set_num_threads(old_threads)
            if was_training:
                self.model.train()
        return [[c for c in row if c is not None] for row in out]


# ---------------------------------------------------------------------------------------------------------------
# KVCacheSampler: a hand-written decode loop (the fast CPU back-end)
# ---------------------------------------------------------------------------------------------------------------

_KV_ATTENTION = "r1lib_sdpa_gqa"  # name under which the decode attention is registered with transformers
MIN_SHARED_PREFIX = 16  # shortest common prompt prefix (tokens) prefilled once for all rows (shared_prefix_kv)
_NUCLEUS_TOPK = 32  # top-p sampling (rng="per_row") looks for the nucleus among this many top tokens first
# Keyword arguments the attention function may receive without changing the maths of plain causal attention
# (anything else, e.g. a sliding window or a position bias, goes to transformers' own sdpa function).
_KV_ATTENTION_SAFE_KWARGS = frozenset({"position_ids", "use_cache", "cache_position", "is_causal", "output_attentions"})


def _kv_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                  scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers' ``sdpa`` attention with grouped-query attention done inside SDPA for one-token decode steps.

    transformers' ``sdpa_attention_forward`` copies the whole key/value cache every step to repeat the
    key/value heads (``repeat_kv``) whenever a mask is given; ``enable_gqa=True`` reads the cache in place.
    Prefill (several query tokens) and any non-plain case are delegated unchanged, and for the decode step
    the result is bit-identical to the ``repeat_kv`` path (checked in tests/test_sampling_kv.py via greedy
    equality with HFSampler).
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plain = (query.shape[2] == 1 and not dropout and key.shape[-1] == value.shape[-1]
             and all(k in _KV_ATTENTION_SAFE_KWARGS or v is None for k, v in kwargs.items())
             and not kwargs.get("output_attentions"))
    if not plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    gqa = query.shape[1] != key.shape[1]
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                                           enable_gqa=gqa)
    return out.transpose(1, 2).contiguous(), None


def _register_kv_attention() -> None:
    """Register :func:`_kv_attention` (and sdpa's mask builder) under ``_KV_ATTENTION``; idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(_KV_ATTENTION, _kv_attention)
    AttentionMaskInterface.register(_KV_ATTENTION, sdpa_mask)


@functools.lru_cache(maxsize=None)
def _buffer_layer_class() -> type:
    """A transformers ``DynamicLayer`` that writes into a preallocated buffer instead of ``torch.cat``-ing.

    ``DynamicLayer.update`` concatenates the whole cache with the new token every step (quadratic copying);
    this layer allocates ``capacity`` positions once and returns views of the filled part. Built lazily so
    that importing r1lib.sampling does not import transformers.
    """
    from transformers.cache_utils import DynamicLayer

    class _BufferLayer(DynamicLayer):
        def __init__(self, capacity: int) -> None:
            super().__init__()
            self.capacity = capacity
            self.length = 0

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            self.dtype, self.device = key_states.dtype, key_states.device
            b, h, _, d = key_states.shape
            self._kbuf = key_states.new_empty(b, h, self.capacity, d)
            self._vbuf = value_states.new_empty(b, value_states.shape[1], self.capacity, value_states.shape[-1])
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:
                raise RuntimeError(f"KV buffer overflow: {end} > capacity {self.capacity}")
            self._kbuf[:, :, self.length:end] = key_states
            self._vbuf[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = self._kbuf[:, :, :end], self._vbuf[:, :, :end]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices: Any) -> None:
            if self.is_initialized:  # copy only the filled columns (the rest is written later)
                self._kbuf, self._vbuf = (self._select_filled(buf, indices) for buf in (self._kbuf, self._vbuf))
                self.keys, self.values = self._kbuf[:, :, :self.length], self._vbuf[:, :, :self.length]

        def _select_filled(self, buf: Any, indices: Any) -> Any:
            out = buf.new_empty(len(indices), *buf.shape[1:])
            out[:, :, :self.length] = buf[:, :, :self.length].index_select(0, indices)
            return out

        def crop(self, tokens_to_remove: int) -> None:  # not used by the sampler; kept consistent
            raise NotImplementedError("the sampler's KV buffer does not support crop")

    return _BufferLayer


def shared_prefix_kv(model: Any, config: Any, input_ids: Any, mask: Any, *, logits_to_keep: bool = True
                     ) -> tuple[list[tuple[Any, Any]] | None, int]:
    """Run the token prefix that all left-padded rows of ``input_ids`` share through ``model`` once.

    Returns ``(per-layer (keys, values) of shape [rows, kv_heads, k, dim], k)``, placed in the padded layout: row b
    (``pad_b`` padding columns) gets the prefix's first ``k - pad_b`` keys/values in its columns ``pad_b..k-1`` (a
    token's keys/values depend only on the tokens before it and its position, the same in every row); the columns
    before ``pad_b`` are padding and masked. The caller then runs columns ``k..`` on top, which recomputes the rest
    of the prefix for padded rows. ``(None, 0)`` for a single row or fewer than ``MIN_SHARED_PREFIX`` shared tokens
    (too few to pay for the extra forward); every row keeps at least one token for the second pass. Used by the
    KV-cache sampler's prefill and, with gradients, by the RL engine's scoring passes (``rl.share_prefix``).
    """
    import torch
    from transformers import DynamicCache

    rows, plen = input_ids.shape
    if rows < 2:
        return None, 0
    lengths = mask.sum(1)
    pad = plen - lengths
    ref = input_ids[int(pad.argmin())]
    # common token prefix: compare every row's tokens (shifted by its padding) with the longest row's
    k = int(lengths.min()) - 1
    for b in range(rows):
        diff = (input_ids[b, int(pad[b]):int(pad[b]) + k] != ref[:k]).nonzero()
        if len(diff):
            k = int(diff[0])
    if k < MIN_SHARED_PREFIX:
        return None, 0
    prefix = DynamicCache(config=config)
    positions = torch.arange(k, device=input_ids.device).unsqueeze(0)
    model(input_ids=ref[:k].unsqueeze(0), position_ids=positions, past_key_values=prefix, use_cache=True,
          **({"logits_to_keep": 1} if logits_to_keep else {}))
    index = (torch.arange(k, device=input_ids.device).unsqueeze(0) - pad.unsqueeze(1)).clamp(min=0)  # [rows, k]
    # [heads, rows, k, dim] -> [rows, heads, k, dim]
    return [(layer.keys[0][:, index].transpose(0, 1), layer.values[0][:, index].transpose(0, 1))
            for layer in prefix.layers], k


def _row_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """A 63-bit seed for completion (prompt_index, sample_index) of a call with base ``seed``."""
    digest = hashlib.blake2b(f"{seed}:{prompt_index}:{sample_index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class KVCacheSampler:
    """Fast CPU sampling: a hand-written decode loop over the model's forward with a preallocated KV cache.

    Same :class:`Sampler` interface and the same completion rules as :class:`HFSampler` (stop strings cut
    by :func:`postprocess_completion`, EOS kept in ``token_ids``, ``"length"`` when truncated, temperature 0
    greedy, top-p nucleus, no top-k, rows sorted by prompt length and cut into ``batch_size`` batches).

    Why hand-written
    ----------------
    For our ~1M-parameter models a decode step costs far more in overhead and memory traffic than in
    arithmetic, and ``model.generate`` adds to that: the per-step logits processors, transformers'
    ``stop_strings`` criterion, 2D-to-4D mask building, ``DynamicCache`` growing by ``torch.cat`` (every
    step copies the whole cache) and sdpa's ``repeat_kv`` (another full copy of the cache per layer and step
    for grouped-query attention). This loop instead

    - prefills left-padded prompts once (``attention_mask`` + ``position_ids`` as ``generate`` builds them):
      each distinct prompt once (its n samples copy its cache rows), and the token prefix common to all
      prompts of a batch (the R1-Zero template) once for all of them (``share_prefix``),
    - keeps keys/values in a buffer allocated once per batch (a ``DynamicLayer`` subclass, so any
      transformers causal LM with a standard cache works: Llama, Qwen2, ...),
    - passes the decode mask as a ready 4D view and runs decode attention with SDPA's ``enable_gqa``
      (bit-identical to the ``repeat_kv`` path; see :func:`_kv_attention`),
    - samples vectorised over the batch, detects EOS and stop strings incrementally (a per-token string
      table picks candidate tokens, a decode of the row's tail confirms), and stops when all rows are done,
    - drops finished rows from the batch (``compact``), so that a few long completions do not keep the
      whole batch running (``generate`` steps every row until the longest one ends),
    - runs the decode steps of Llama / Qwen2 models through :class:`r1lib.decode.FastDecoder` (the same maths in a
      few dozen tensor ops per step instead of transformers' module tree; ``fast_decode=False`` or any other
      architecture: the model's forward). Logits agree with the forward to float rounding, so seeded completions
      are the same (tests/test_decode.py). Not with ``rng="hf"``, whose point is bit-identical logits.

    Measured on the default base model (benchmarks/bench_sampler.py -> results/benchmarks/sampler.json; the 2-core
    CPU machine, quiet; batch_size 64, T=1, R1-Zero prompts, 64 prompts x 1 and 8 prompts x 8 samples, 128 and 256
    new tokens, median of 3 alternating runs): HFSampler 3.0-4.5 s per call (700-990 tokens/s) with one torch
    thread; KVCacheSampler 0.61-0.93 s (4,500-5,000 tokens/s), 4.0-6.5x faster (3.8-5.8x with two threads), of
    which the fast decoder gives 1.20-1.48x over the same loop through the model's forward (``kv_forward``, the
    same completions in every setting). With ``rng="hf"`` (completions equal to HFSampler's, checked in every
    setting) 2.3-4.1x (2.3-3.1x with two threads), 2.9-4.1x with ``share_prefix=True`` (still equal). Without
    compaction the default loop is 1.7-1.8x slower. At T=0.6 / top-p 0.95 (evaluation): 5.8x (``rng="hf"``: 3.1x,
    as it must repeat transformers' full-vocabulary sort and draws).

    Stop strings are matched in the decoded completion (``skip_special_tokens=True``), the rule that
    :func:`postprocess_completion` applies. transformers' ``stop_strings`` criterion, used by HFSampler,
    also matches across the prompt/completion boundary and inside special tokens' text (``"e"`` in
    ``<|end|>``); HFSampler then ends the row early, and post-processing, which finds no stop string in the
    completion, reports ``"length"`` with pad ids in ``token_ids``. KVCacheSampler does not copy that; with
    ``"</answer>"`` and the R1-Zero prompt (ending in ``"Assistant:"``) neither case can occur.

    Randomness (``rng``)
    --------------------
    - ``"per_row"`` (default): completion ``(i, j)`` (prompt i, sample j) draws its uniforms from its own
      generator seeded from ``(params.seed, i, j)`` (``params.seed=None``: a base seed drawn from torch's
      global RNG, so ``torch.manual_seed`` still makes runs reproducible). Tokens are drawn by inverse-CDF
      sampling (one uniform per row and step instead of ``torch.multinomial``'s one exponential per vocabulary
      entry). A completion then does not depend on ``batch_size``, on row compaction or on the other prompts
      of the call (up to floating-point differences between batch shapes). The global RNG is not reseeded.
    - ``"hf"``: the same random stream as :class:`HFSampler` (``torch.manual_seed(params.seed)``, then what
      ``torch.multinomial`` draws for the whole batch every step, also after rows were compacted away), so
      sampled completions equal HFSampler's token for token (tested). For checks and comparisons; by
      default it prefills whole prompts (no ``share_prefix``) so that the logits are bit-identical too.

    The model may be in train mode or wrapped (``.module`` of DDP/DeepSpeed is unwrapped): generation runs
    in ``eval()`` under ``torch.inference_mode`` and the previous mode is restored. ``num_threads``: torch's
    intra-op threads during ``generate`` (restored after), as in :class:`HFSampler`.

    ``compact``: drop finished rows once at least this fraction of the current batch is finished
    (``None`` or ``0``: never). ``share_prefix``: prefill the prompts' common token prefix once (at least
    ``MIN_SHARED_PREFIX`` tokens; logits then agree with a full prefill to float rounding, not bit for bit);
    ``None``: on with ``rng="per_row"``, off with ``rng="hf"``. ``fast_decode``: decode steps through
    :class:`r1lib.decode.FastDecoder` where the architecture allows it (``rng="per_row"`` only).
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 64, *, num_threads: int | None = None,
                 add_special_tokens: bool = True, rng: Literal["per_row", "hf"] = "per_row",
                 compact: float | None = 0.05, share_prefix: bool | None = None, fast_decode: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
        if rng not in ("per_row", "hf"):
            raise ValueError(f"rng must be 'per_row' or 'hf', got {rng!r}")
        if compact is not None and not 0 <= compact <= 1:
            raise ValueError(f"compact must be in [0, 1] or None, got {compact}")
        while hasattr(model, "module") and hasattr(model.module, "forward"):  # DDP / DeepSpeed engine wrappers
            model = model.module
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        # Called with the number of completions after each batch (a progress bar's update; r1lib.evaluation).
        self.on_batch: Any = None
        self.num_threads = num_threads
        self.add_special_tokens = add_special_tokens
        self.rng = rng
        self.compact = compact or None
        self.share_prefix = rng == "per_row" if share_prefix is None else share_prefix
        self.fast_decode = fast_decode
        self.eos_token_ids = HFSampler._eos_ids(model, tokenizer)
        if not self.eos_token_ids:
            raise ValueError("KVCacheSampler: neither the tokenizer nor the model's generation_config defines an EOS token")
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_ids[0]
        self._token_strings: list[str] | None = None
        self._candidates: dict[tuple[str, ...], Any] = {}
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT model forwards kwargs
        self._accepts_logits_to_keep = "logits_to_keep" in inspect.signature(inner.forward).parameters

    # ------------------------------------------------------------------ stop strings

    def _stop_candidates(self, stop: tuple[str, ...], vocab: int) -> Any:
        """Bool tensor over token ids: may this token complete one of ``stop``? (None: check every token.)

        A token that completes a stop string contains that string's last character in its own decoded
        text, unless the character is split across tokens (then its text has U+FFFD, which also counts)
        or the tokenizer moves whitespace between tokens (stop strings ending in whitespace: no filter).
        """
        import torch

        if any(s[-1].isspace() for s in stop):
            return None
        if stop not in self._candidates:
            if self._token_strings is None:
                n = len(self.tokenizer)
                self._token_strings = self.tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=True)
            last = {s[-1] for s in stop} | {"\ufffd"}
            flags = [any(c in t for c in last) for t in self._token_strings]
            flags += [True] * max(0, vocab - len(flags))  # ids the tokenizer does not know: always check
            self._candidates[stop] = torch.tensor(flags, dtype=torch.bool)
        return self._candidates[stop]

    def _hits_stop(self, ids: list[int], stop: tuple[str, ...]) -> bool:
        """Exact check that the decoded completion ``ids`` contains a stop string (tail first, cheap)."""
        k = max(len(s.encode()) for s in stop) + 2
        tail = self.tokenizer.decode(ids[-k:], skip_special_tokens=True)
        if _find_stop(tail, stop) is None and len(ids) > k:
            return False
        return _find_stop(self.tokenizer.decode(ids, skip_special_tokens=True), stop) is not None

    # ------------------------------------------------------------------ prefill

    def _prefill(self, input_ids: Any, mask2d: Any, position: Any, capacity: int) -> tuple[Any, Any, bool, int]:
        """Run the prompts (left-padded ``input_ids``) through the model into a new cache of ``capacity`` positions.

        Returns ``(cache, last-position logits, fast, shared)``: ``fast`` when every cache layer is a
        preallocated buffer (plain full-attention models; sliding-window layers etc. keep transformers'
        own cache), ``shared`` the number of prompt columns filled from a shared prefix (0: none).
        """
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.model.config)
        fast = bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)
        if fast:
            layer_cls = _buffer_layer_class()
            cache.layers = [layer_cls(capacity) for _ in cache.layers]
        kw: dict[str, Any] = {"logits_to_keep": 1} if self._accepts_logits_to_keep else {}
        shared = self._seed_shared_prefix(cache, input_ids, mask2d) if fast and self.share_prefix else 0
        logits = self.model(input_ids=input_ids[:, shared:], attention_mask=mask2d, position_ids=position[:, shared:],
                            past_key_values=cache, use_cache=True, **kw).logits[:, -1]
        return cache, logits, fast, shared

    def _seed_shared_prefix(self, cache: Any, input_ids: Any, mask2d: Any) -> int:
        """Prefill the token prefix that all rows share once (:func:`shared_prefix_kv`) into ``cache``'s layers;
        returns the number k of left-padded columns now in ``cache`` (0: nothing shared, cache untouched)."""
        rows_kv, k = shared_prefix_kv(self.model, self.model.config, input_ids, mask2d,
                                      logits_to_keep=self._accepts_logits_to_keep)
        for layer, (keys, values) in zip(cache.layers, rows_kv or ()):
            layer.update(keys, values)
        return k

    # ------------------------------------------------------------------ sampling

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        import torch

        if isinstance(prompts, str):
            raise TypeError("KVCacheSampler.generate takes a list of prompts, got a single string")
        if not prompts:
            return []
        lengths = [len(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=self.add_special_tokens)["input_ids"]]
        rows = [(i, j) for i in sorted(range(len(prompts)), key=lambda i: (-lengths[i], i)) for j in range(params.n)]
        out: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        model = self.model
        was_training = model.training
        model.eval()
        config = model.config
        # Our decode attention replaces sdpa only for models that dispatch through transformers' AttentionInterface.
        old_attn = getattr(config, "_attn_implementation", None)
        switch = old_attn == "sdpa" and bool(getattr(model, "_supports_attention_backend", False))
        old_threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        if self.rng == "hf" and params.seed is not None:  # exactly as HFSampler does
            torch.manual_seed(params.seed)
        base_seed = params.seed
        if params.temperature > 0 and self.rng == "per_row" and base_seed is None:
            base_seed = int(torch.randint(0, 2**62, (1,)).item())
        try:
            if switch:
                _register_kv_attention()
                config._attn_implementation = _KV_ATTENTION
            with torch.inference_mode():
                # the hand-written decode step (r1lib.decode), built from the current weights on every call
                decoder = fast_decoder_for(model) if self.fast_decode and self.rng == "per_row" else None
                for start in range(0, len(rows), self.batch_size):
                    batch = rows[start: start + self.batch_size]
                    ids_rows, lp_rows = self._generate_batch([prompts[i] for i, _ in batch], batch, params, base_seed,
                                                             decoder)
                    for (i, j), ids, lps in zip(batch, ids_rows, lp_rows):
                        c = postprocess_completion(ids, self.tokenizer, eos_token_ids=self.eos_token_ids,
                                                   stop=params.stop)
                        if params.temperature > 0:
                            c.logprobs = lps[: c.num_tokens]
                        out[i][j] = c
                    if self.on_batch is not None:
                        self.on_batch(len(batch))
        finally:
            if switch:
                config._attn_implementation = old_attn
            if self.num_threads is not None:
                torch.set_num_threads(old_threads)
            if was_training:
                model.train()
        return [[c for c in row if c is not None] for row in out]

    def _generate_batch(self, texts: list[str], batch: list[tuple[int, int]], params: SamplingParams,
                        base_seed: int | None, decoder: Any = None) -> tuple[list[list[int]], list[list[float]]]:
        """Generated token ids (no padding; cut at EOS or at the token completing a stop string) per row,
        and their log-probs under the temperature-scaled distribution (before top-p; empty when greedy)."""
        import torch

        model, device = self.model, next(self.model.parameters()).device
        # The n samples of a prompt are adjacent rows: prefill each distinct prompt once, then copy its cache rows.
        starts = [b == 0 or batch[b][0] != batch[b - 1][0] for b in range(len(batch))]
        firsts = [b for b, first in enumerate(starts) if first]
        expand = torch.tensor(list(itertools.accumulate(map(int, starts))), device=device) - 1  # row -> distinct prompt
        enc = self.tokenizer([texts[b] for b in firsts], return_tensors="pt", padding=True, padding_side="left",
                             add_special_tokens=self.add_special_tokens)
        input_ids = enc["input_ids"].to(device)
        mask2d = enc["attention_mask"].to(device)
        rows, plen = len(batch), input_ids.shape[1]
        max_new = params.max_new_tokens
        capacity = plen + max_new

        position = (mask2d.long().cumsum(-1) - 1).masked_fill(mask2d == 0, 0)  # as generate() builds them
        cache, logits, fast, _ = self._prefill(input_ids, mask2d, position, capacity)
        padded = bool((mask2d == 0).any())
        mask_4d = fast and model.config._attn_implementation == _KV_ATTENTION  # our attention takes sdpa's bool mask
        if len(firsts) < rows:
            cache.batch_select_indices(expand)
            logits, mask2d, position = logits[expand], mask2d[expand], position[expand]
        mask_buf = torch.zeros(rows, capacity, dtype=torch.bool, device=device)
        mask_buf[:, :plen] = mask2d.bool()
        position = position[:, -1:]

        sampling = params.temperature > 0
        uniforms = None
        if sampling and self.rng == "per_row":
            gens = [torch.Generator().manual_seed(_row_seed(base_seed, i, j)) for i, j in batch]
            uniforms = torch.stack([torch.rand(max_new, generator=g, dtype=torch.float64) for g in gens]).to(device)
        candidates = self._stop_candidates(params.stop, logits.shape[-1]) if params.stop else None
        if candidates is not None:
            candidates = candidates.to(device)
        eos = torch.tensor(self.eos_token_ids, device=device)
        pad = torch.tensor(self.pad_token_id, device=device)

        decoder = decoder if fast else None  # the decoder writes into the preallocated buffer layers only
        caches = None
        generated: list[list[int]] = [[] for _ in range(rows)]
        logprobs: list[list[float]] = [[] for _ in range(rows)]
        alive = list(range(rows))          # batch position -> row
        alive_t = torch.arange(rows, device=device)
        done = [False] * len(alive)        # per batch position
        n_done = 0
        length = plen
        for step in range(max_new):
            scores = logits.float()
            if not sampling:
                tokens = scores.argmax(-1)
            else:
                if params.temperature != 1.0:
                    scores = scores / params.temperature
                if uniforms is None:
                    # rng == "hf": transformers' top-p op for op, then torch.multinomial(probs, 1) of the full
                    # batch, which is argmax(probs / q) with q ~ Exp(1) drawn for every entry (aten's multinomial
                    # for one sample); drawing q for all `rows` keeps the global RNG stream identical to HF's
                    # after finished rows were dropped.
                    if params.top_p < 1.0:
                        scores = _top_p_filter(scores, params.top_p)
                    probs = torch.softmax(scores, dim=-1)
                    q = torch.empty((rows, probs.shape[-1]), dtype=probs.dtype, device=device).exponential_()
                    tokens = (probs / (q if len(alive) == rows else q[alive_t])).argmax(-1)
                else:
                    tokens = _sample_inverse_cdf(torch.softmax(scores, dim=-1), uniforms[alive_t, step], params.top_p)
            token_list = tokens.tolist()
            lp_list = (torch.log_softmax(logits.float() / params.temperature, dim=-1)
                       .gather(-1, tokens[:, None]).squeeze(-1).tolist() if sampling else None)
            is_eos = torch.isin(tokens, eos).tolist()
            check = candidates[tokens].tolist() if candidates is not None else [bool(params.stop)] * len(token_list)
            for b, (tok, e, c) in enumerate(zip(token_list, is_eos, check)):
                if done[b]:
                    continue
                ids = generated[alive[b]]
                ids.append(tok)
                if lp_list is not None:
                    logprobs[alive[b]].append(lp_list[b])
                if e or (c and self._hits_stop(ids, params.stop)):
                    done[b] = True
                    n_done += 1
            if n_done == len(alive) or step == max_new - 1:
                break
            if self.compact is not None and n_done and n_done >= self.compact * len(alive):
                keep = [b for b in range(len(alive)) if not done[b]]
                index = torch.tensor(keep, device=device)
                if decoder is not None:  # the decoder wrote columns the cache layers have not counted
                    for layer in cache.layers:
                        layer.length = length
                cache.batch_select_indices(index)
                caches = None
                mask_buf, position, tokens, alive_t = mask_buf[index], position[index], tokens[index], alive_t[index]
                alive = [alive[b] for b in keep]
                done, n_done = [False] * len(alive), 0
            elif n_done:
                # finished rows are fed the pad token, as generate() does
                tokens = torch.where(torch.tensor(done, device=device), pad, tokens)
            mask_buf[:, length] = True
            length += 1
            position = position + 1
            if decoder is not None:
                if caches is None:  # (re)collected after the cache rows were selected
                    caches = [(layer._kbuf, layer._vbuf) for layer in cache.layers]
                logits = decoder.step(tokens, position[:, 0], caches, length - 1, mask_buf if padded else None)
                continue
            step_mask = (mask_buf[:, None, None, :length] if mask_4d else mask_buf[:, :length]) if padded else None
            logits = model(input_ids=tokens[:, None], attention_mask=step_mask, position_ids=position,
                           past_key_values=cache, use_cache=True).logits[:, -1]
        return generated, logprobs


def _sample_inverse_cdf(probs: Any, u: Any, top_p: float = 1.0) -> Any:
    """One token per row of ``probs`` [rows, vocab], restricted to the top-p nucleus, by inverse-CDF sampling
    with the uniforms ``u`` [rows] in [0, 1).

    The nucleus is transformers' (``TopPLogitsWarper``): a token is kept when the probability mass of the
    tokens ranked above it is below ``top_p`` (so the most probable token always is). Instead of sorting
    the whole vocabulary every step (a few ms for 64 rows x 1,024 tokens, the largest sampling cost), the
    nucleus is looked for among the ``_NUCLEUS_TOPK`` most probable tokens; only rows whose top tokens hold
    less than ``top_p`` of the mass (the nucleus may reach past them) are sorted in full.
    """
    import torch

    if top_p >= 1.0:
        return _inverse_cdf(probs, u)
    ranked, index = probs.topk(min(_NUCLEUS_TOPK, probs.shape[-1]), dim=-1)  # descending
    wide = ranked.sum(-1) < top_p
    tokens = index.gather(1, _inverse_cdf(_nucleus(ranked, top_p), u).unsqueeze(1)).squeeze(1)
    if bool(wide.any()):
        rows = wide.nonzero().squeeze(1)
        ranked, index = probs[rows].sort(dim=-1, descending=True)
        tokens[rows] = index.gather(1, _inverse_cdf(_nucleus(ranked, top_p), u[rows]).unsqueeze(1)).squeeze(1)
    return tokens


def _nucleus(ranked: Any, top_p: float) -> Any:
    """Zero the probabilities (sorted descending per row) of the tokens outside the top-p nucleus."""
    return ranked.masked_fill(ranked.cumsum(-1) - ranked >= top_p, 0.0)


def _inverse_cdf(weights: Any, u: Any) -> Any:
    """Per row, the first index whose cumulative weight exceeds ``u`` times the row's total (a token of
    positive weight: the target is kept strictly below the total, in float64)."""
    import torch

    cdf = weights.double().cumsum(-1)
    total = cdf[:, -1:]
    target = torch.minimum(u.double().unsqueeze(1) * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, target, right=True).squeeze(1)


def _top_p_filter(scores: Any, top_p: float) -> Any:
    """transformers' ``TopPLogitsWarper`` (min_tokens_to_keep=1), op for op, so both back-ends agree exactly."""
    sorted_logits, sorted_indices = scores.sort(descending=False)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = 0
    remove = remove.scatter(1, sorted_indices, remove)
    return scores.masked_fill(remove, -float("inf"))


class _VLLMSampler:
    """vLLM back-end (see the module docstring for the parameter mapping). UNTESTED ON CPU: vLLM has
    no CPU build; only the mapping is tested, with a stand-in ``vllm`` module."""

    def __init__(self, model: str, **llm_kwargs: Any) -> None:
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(model=model, **llm_kwargs)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        sp = self._vllm.SamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                       max_tokens=params.max_new_tokens, stop=list(params.stop),
                                       include_stop_str_in_output=True, seed=params.seed)
        results = self.llm.generate(list(prompts), sp, use_tqdm=False)
        out: list[list[Completion]] = []
        for r in results:
            row = []
            for c in r.outputs:
                if c.finish_reason == "length":
                    reason: FinishReason = "length"
                elif c.stop_reason is None:
                    reason = "eos"
                else:
                    reason = "stop"
                row.append(Completion(text=c.text, token_ids=list(c.token_ids), finish_reason=reason))
            out.append(row)
        return out


def make_sampler(model_or_path: Any, tokenizer: Any = None, backend: str = "hf", **kw: Any) -> Sampler:
    """Build a :class:`Sampler`.

    - ``backend="hf"``: ``model_or_path`` is a model object (then ``tokenizer`` is required) or a
      checkpoint folder (loaded with :func:`r1lib.models.load_model`; ``dtype`` and ``device`` in
      ``kw`` go to the loader, the rest to :class:`HFSampler`, e.g. ``batch_size``).
    - ``backend="kv"``: the same, with :class:`KVCacheSampler` (the fast hand-written decode loop; extra
      options ``rng`` and ``compact``).
    - ``backend="vllm"``: ``model_or_path`` must be a path or hub id; ``kw`` goes to ``vllm.LLM``
      (e.g. ``gpu_memory_utilization``, ``dtype``, ``seed``). Requires the ``gpu`` extra.
    """
    if backend in ("hf", "kv"):
        cls: type = HFSampler if backend == "hf" else KVCacheSampler
        if isinstance(model_or_path, (str, os.PathLike)):
            from r1lib.models import load_model

            load_kw = {k: kw.pop(k) for k in ("dtype", "device") if k in kw}
            model, tok = load_model(model_or_path, **load_kw)
            return cls(model, tokenizer if tokenizer is not None else tok, **kw)
        if tokenizer is None:
            raise ValueError(f"make_sampler(backend={backend!r}) with a model object needs tokenizer=")
        return cls(model_or_path, tokenizer, **kw)
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            raise ImportError("backend='vllm' needs vLLM, which has no CPU build; on a GPU machine "
                              "install the gpu extra: pip install -e .[gpu]") from err
        if not isinstance(model_or_path, (str, os.PathLike)):
            raise ValueError("make_sampler(backend='vllm') takes a checkpoint path or hub id, not a model object")
        return _VLLMSampler(str(model_or_path), **kw)
    raise ValueError(f"unknown sampler backend {backend!r}; choose 'hf', 'kv' or 'vllm'")
