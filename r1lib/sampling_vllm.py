"""RL rollouts through vLLM, colocated in each training process or on a separate server (``rl.sampler: vllm``).

At scale most of an RL step is generation, and vLLM generates an order of magnitude faster than
``model.generate``. The engine (``r1lib.training.rl``) keeps its own loop; only the sampler changes:
:class:`VLLMRolloutSampler` is a :class:`r1lib.sampling.Sampler` (text prompts in, ``[prompt][n]``
:class:`~r1lib.sampling.Completion` out) on top of TRL's ``VLLMGeneration``.

Why TRL's ``VLLMGeneration`` and no weight sync of our own: it is the code GRPOTrainer runs, maintained
against each vLLM release (TRL pins vLLM 0.22-0.31). It gathers ZeRO-3 / FSDP parameters one at a time
and renames them for vLLM's ``load_weights``, drives ``trl vllm-serve`` through ``VLLMClient`` (an NCCL
group with the server for the weight broadcast), handles tensor parallelism and sleep mode. What it lacks
for r1lib is only the interface: it takes token ids and returns token ids, while r1lib's samplers
return texts cut after a stop string with a finish reason. This module adds that mapping.

The two modes (``rl.vllm.mode``; docs/scale_out.md has the commands):

- ``colocate``: a vLLM engine in every training process, on that process's GPU, taking
  ``gpu_memory_utilization`` of it. With ``enable_sleep_mode`` (our default) vLLM frees its weights and
  KV cache between rollouts (sleep level 2), so the optimizer step has the memory.
- ``server``: ``trl vllm-serve --model <init model>`` on GPUs of its own; every optimizer step's new
  weights are broadcast to it, the main process sends the prompts and shares the completions out.

Weights are pushed after every RL step's optimizer steps (:meth:`VLLMRolloutSampler.push_weights`, called
by the engine on all processes together, since gathering ZeRO-3 shards is a collective), before the first
generation (a resumed run's policy differs from the checkpoint vLLM loaded), and after an evaluation that only
the main process ran. The sampler itself never pushes: a push from inside ``generate`` would be a collective
entered by only the processes that generate.

DEVIATIONS from the CPU samplers, by design of vLLM:
- ``SamplingParams.seed`` is not passed: the G copies of a prompt are separate vLLM requests with one
  shared ``SamplingParams`` (TRL's colocate layout), and one seed would make them identical. Each process's
  engine is seeded once (TRL: by process index), so runs are reproducible only up to vLLM's kernels.
- The reported log-probs are vLLM's ``processed_logprobs`` (after temperature and top-p); with RL's
  top-p 1.0 these equal the engine's (temperature-scaled) old log-probs.

This module needs a CUDA GPU and vLLM (``pip install -e .[gpu]``); :func:`require_vllm` fails with a
clear message before any work on a machine without them. On CPU the mapping and the engine's calls are
tested with a stand-in for ``VLLMGeneration`` (tests/test_sampling_vllm.py).
"""

from __future__ import annotations

from typing import Any, Callable

from r1lib.sampling import Completion, FinishReason, SamplingParams


class VLLMUnavailableError(RuntimeError):
    """``rl.sampler: vllm`` on a machine that cannot run vLLM (no CUDA GPU, or vLLM not installed)."""


def require_vllm(field: str = "rl.sampler") -> None:
    """Raise :class:`VLLMUnavailableError` unless a CUDA GPU and vLLM are present (checked before any work)."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise VLLMUnavailableError(
            f"{field}='vllm' needs a CUDA GPU, and this machine has none (torch.cuda.is_available() is False). "
            f"Use {field}: kv (or hf) on CPU; vLLM is for GPU runs (docs/scale_out.md).")
    if importlib.util.find_spec("vllm") is None:
        raise VLLMUnavailableError(
            f"{field}='vllm' needs vLLM, which is not installed: pip install -e .[gpu] "
            "(vLLM 0.31 with torch 2.13.0 and transformers<5.18, the versions TRL 1.16 supports).")


def _default_factory(**kwargs: Any) -> Any:
    from trl.generation.vllm_generation import VLLMGeneration

    return VLLMGeneration(**kwargs)


class VLLMRolloutSampler:
    """A :class:`r1lib.sampling.Sampler` that generates with TRL's ``VLLMGeneration``.

    ``model``: the bare policy module (its ``name_or_path`` is what a colocated vLLM loads first; the
    weights are pushed before the first generation anyway). ``settings``: ``rl.vllm``
    (:class:`r1lib.config.VLLMConfig`). ``factory`` builds the ``VLLMGeneration`` (tests pass a stand-in).
    """

    def __init__(self, model: Any, accelerator: Any, tokenizer: Any, settings: Any, *,
                 add_special_tokens: bool = False, factory: Callable[..., Any] | None = None) -> None:
        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.settings = settings
        self.generation = (factory or _default_factory)(
            model=model, accelerator=accelerator, processing_class=tokenizer, mode=settings.mode,
            server_base_url=settings.server_base_url, server_host=settings.server_host,
            server_port=settings.server_port, server_timeout=settings.server_timeout,
            group_port=settings.group_port, tensor_parallel_size=settings.tensor_parallel_size,
            gpu_memory_utilization=settings.gpu_memory_utilization, max_model_length=settings.max_model_length,
            enable_sleep_mode=settings.enable_sleep_mode, logprobs=0)
        self.pushes = 0
        eos = tokenizer.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}

    def push_weights(self) -> None:
        """Send the policy's current weights to vLLM (every process calls it: ZeRO-3 gathers are collective)."""
        self.generation.sync_weights()
        self.pushes += 1

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        if not prompts:
            return []
        gen = self.generation
        gen.temperature = params.temperature
        gen.top_p = params.top_p
        gen.top_k = 0  # disabled, as in the paper's protocol and the CPU samplers
        gen.max_completion_length = params.max_new_tokens
        gen.generation_kwargs = {"stop": list(params.stop), "include_stop_str_in_output": True}
        ids = self.tokenizer(list(prompts), add_special_tokens=self.add_special_tokens)["input_ids"]
        rows = [list(p) for p in ids for _ in range(params.n)]  # TRL's layout: G consecutive copies of a prompt
        _, completion_ids, logprobs, _ = gen.generate(rows, None, params.n)
        if len(completion_ids) != len(rows):
            raise RuntimeError(f"vLLM returned {len(completion_ids)} completions for {len(rows)} requests")
        out: list[list[Completion]] = []
        for i, token_ids in enumerate(completion_ids):
            lps = [lp[0] for lp in logprobs[i]] if logprobs is not None else None
            if lps is not None and any(lp is None for lp in lps):
                lps = None  # TRL reports a NaN log-prob as None: the engine then scores the rollout itself
            if i % params.n == 0:
                out.append([])
            out[-1].append(self._completion(list(token_ids), lps, params))
        return out

    def _completion(self, token_ids: list[int], logprobs: list[float] | None, params: SamplingParams) -> Completion:
        """r1lib's completion rules (r1lib.sampling): text cut right after the first stop string; an EOS token
        stays the last id and is not part of the text; otherwise the cap was reached."""
        reason: FinishReason
        if token_ids and token_ids[-1] in self._eos_ids:
            text = self.tokenizer.decode(token_ids[:-1], skip_special_tokens=False)
            reason = "eos"
        else:
            text = self.tokenizer.decode(token_ids, skip_special_tokens=False)
            reason = "length"
        hits = [(text.find(s), s) for s in params.stop if s and s in text]
        if hits:
            pos, stop = min(hits)
            text, reason = text[: pos + len(stop)], "stop"
        return Completion(text=text, token_ids=token_ids, finish_reason=reason, logprobs=logprobs)
