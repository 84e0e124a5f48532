"""Batched sampling behind a small back-end interface.

Everything that samples completions (evaluation, rejection sampling, distillation data) talks to a
:class:`Sampler`: ``generate(prompts, params) -> [prompt][n] -> Completion``. On CPU the back-end is
:class:`HFSampler` (Hugging Face ``model.generate``); on GPUs the same calls can go through vLLM.

Stop strings
------------
The R1-Zero template ends the answer with ``</answer>`` (paper_facts.md §1.1), so the default stop
string is ``"</answer>"``. A completion that contains a stop string is cut right *after* its first
occurrence (the stop string is kept, so format rewards still see the closing tag) and gets
``finish_reason="stop"``. This is vLLM's ``include_stop_str_in_output=True`` behaviour, so both
back-ends produce the same texts.

How a vLLM sampler implements the same Protocol
-----------------------------------------------
vLLM has no CPU wheel (../shared/notes/stack.md §9), so it is an optional GPU extra
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

import os
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

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
    protocol is temperature plus top-p only (paper_facts.md §5).

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
        candidates: list[Any] = [getattr(gen_cfg, "eos_token_id", None), tokenizer.eos_token_id]
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
        finally:
            if self.num_threads is not None:
                torch.set_num_threads(old_threads)
            if was_training:
                self.model.train()
        return [[c for c in row if c is not None] for row in out]


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
    - ``backend="vllm"``: ``model_or_path`` must be a path or hub id; ``kw`` goes to ``vllm.LLM``
      (e.g. ``gpu_memory_utilization``, ``dtype``, ``seed``). Requires the ``gpu`` extra.
    """
    if backend == "hf":
        if isinstance(model_or_path, (str, os.PathLike)):
            from r1lib.models import load_model

            load_kw = {k: kw.pop(k) for k in ("dtype", "device") if k in kw}
            model, tok = load_model(model_or_path, **load_kw)
            return HFSampler(model, tokenizer if tokenizer is not None else tok, **kw)
        if tokenizer is None:
            raise ValueError("make_sampler(backend='hf') with a model object needs tokenizer=")
        return HFSampler(model_or_path, tokenizer, **kw)
    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            raise ImportError("backend='vllm' needs vLLM, which has no CPU build; on a GPU machine "
                              "install the gpu extra: pip install -e .[gpu]") from err
        if not isinstance(model_or_path, (str, os.PathLike)):
            raise ValueError("make_sampler(backend='vllm') takes a checkpoint path or hub id, not a model object")
        return _VLLMSampler(str(model_or_path), **kw)
    raise ValueError(f"unknown sampler backend {backend!r}; choose 'hf' or 'vllm'")
