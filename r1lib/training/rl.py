"""The r1lib RL engine: rollout -> reward -> advantage -> policy loss -> update, one loop for GRPO,
Dr. GRPO, RLOO and PPO.

Why our own loop and not TRL's GRPOTrainer: the GRPO-vs-PPO ablation needs both algorithms on one
engine, and TRL >= 1.13 has no PPO (docs/dependencies.md §4). accelerate does the device and
process placement (DDP, DeepSpeed ZeRO-2/3), checkpoint I/O and gradient sync; TRL's peer check is a
test (tests/test_trl_equivalence.py: same loss and gradients to 1e-5).

One step (``RLTrainer._step``), docs/paper.md §2.1-2.2, with our deviations marked ``DEVIATION``:

1. take ``batch_size / G`` prompts (each process its share; a prompt's G samples stay on one process);
2. sample G completions each at the rollout temperature (paper 1.0) with the current policy;
   the cap ``max_new_tokens`` follows a step schedule (paper: 32,768 -> 65,536 at 8,200/10,400);
3. score them with the rule rewards (accuracy + format, same weight);
4. advantages: GRPO ``(r - mean) / std`` per group, Dr. GRPO ``r - mean``, RLOO leave-one-out, or PPO
   GAE with a critic (``r1lib.algorithms``);
5. log-probs of the sampling policy (``old``) and of the reference model, without gradients;
6. split the batch at random into ``mini_batches`` and take one optimizer step on each (one inner
   epoch): clipped surrogate + beta * k3 KL, aggregated per ``loss_aggregation``;
7. every ``ref_reset_every`` steps (paper 400 of 10,400, scaled) the reference is hard-reset to the policy.

Determinism and resume: the prompts of step ``s`` and the sampling seed are functions of ``(seed, s,
rank)``, not of a running RNG, so a run resumed from a checkpoint replays exactly the steps an
uninterrupted run would have taken (tested: kill -9 mid-run, resume, identical final metrics).

Several processes (``accelerate launch``, ``r1lib.launch``): DDP, DeepSpeed ZeRO-2 and ZeRO-3. Under ZeRO-3 the
policy's parameters are sharded: every sampling call (rollouts, and the evaluation, which only the main process
runs but every process enters) gathers them once (TRL's ``unwrap_model_for_generation``, made safe for unequal
generations by ``r1lib.launch.unwrap_for_generation``); the reference model is sharded too (TRL's
``prepare_deepspeed``), and its reset, the checkpoints' reference copy and the final ``policy/`` gather what
they copy (``r1lib.launch.gathered_parameters``). PPO's critic is a DeepSpeed engine of its own under DeepSpeed
(``r1lib.algorithms.ppo.deepspeed_critic``). Tested with 2 CPU processes: ZeRO-2 GRPO and PPO, ZeRO-3 GRPO,
each resumed from a checkpoint to the same result as without the interruption (tests/test_rl_distributed.py).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from r1lib.algorithms.advantages import compute_advantages, zero_spread_fraction
from r1lib.algorithms.losses import entropy_from_logits, policy_loss, token_logprobs
from r1lib.algorithms.schedules import length_schedule, scaled_ref_reset_every, step_value
from r1lib.rollouts import EmptyBatchError, RolloutBatch, collect_rollouts, rollout_stats
from r1lib.tasks.base import Example

CKPT_PREFIX = "step_"
TRAINER_STATE = "trainer_state.pt"
CRITIC_DIR = "critic"  # PPO under DeepSpeed: the critic engine's checkpoint (tag) inside a step folder
SELF_CORRECTIONS = "self_corrections.jsonl"


class TrainingError(RuntimeError):
    """Training stopped on purpose (NaN loss, empty batch, bad data); the message names the step and
    the last good checkpoint, which is left untouched."""


@dataclass
class RLResult:
    out_dir: Path
    policy_path: Path
    metrics_path: Path
    steps: int
    train_seconds: float
    final_eval: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)


def _seed_for(*parts: object) -> int:
    """A stable 31-bit seed from any parts (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as generation computed them."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def sequence_logprobs(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                      completion_ids: torch.Tensor, completion_mask: torch.Tensor, *, temperature: float = 1.0,
                      with_entropy: bool = False, share_prefix: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs of the completion tokens under ``model``: ``(B, T)`` (and entropies ``(B, T)``).

    ``input_ids = cat(prompt_ids, completion_ids)``; only the last ``T + 1`` positions' logits are
    computed (``logits_to_keep``) since only completion tokens are scored.

    ``share_prefix``: the token prefix all rows' prompts share (the R1-Zero template: ~85 of a ~100-token prompt)
    goes through the model once, and its keys/values (with their gradient) serve every row
    (:func:`_shared_prefix_cache`); the same log-probs and gradients to float rounding (tests/test_rl_prefix.py),
    far fewer tokens. The idea of shared-prefix GRPO forwards (e.g. "Prefix Grouper", arXiv 2506.05433), here
    for the prefix common to the whole batch. Falls back to one pass when the prefix is shorter than
    ``r1lib.sampling.MIN_SHARED_PREFIX`` or the model's cache is not a plain one.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    t = completion_ids.size(1)
    position_ids = _position_ids(attention_mask)
    cache, k = _shared_prefix_cache(model, prompt_ids, prompt_mask) if share_prefix else (None, 0)
    if cache is None:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                       logits_to_keep=t + 1, use_cache=False).logits
    else:  # columns k.. on top of the shared prefix's keys/values (padded rows recompute their prefix's tail)
        logits = model(input_ids=input_ids[:, k:], attention_mask=attention_mask, position_ids=position_ids[:, k:],
                       past_key_values=cache, logits_to_keep=t + 1, use_cache=True).logits
    logits = logits[:, :-1, :]  # (B, T, V): position j predicts token j
    logp = token_logprobs(logits, completion_ids, temperature)
    ent = entropy_from_logits(logits.detach(), temperature) if with_entropy else None
    return logp, ent


def _shared_prefix_cache(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor
                         ) -> tuple[Any, int]:
    """A cache holding, for every row, the keys/values (with gradients) of the token prefix all left-padded prompts
    share, and its length k (``r1lib.sampling.shared_prefix_kv``, the KV-cache sampler's placement); ``(None, 0)``
    when nothing long enough is shared or the model's cache is not made of plain layers (sliding windows, ...)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    from r1lib.sampling import shared_prefix_kv

    inner = model
    while hasattr(inner, "module") and hasattr(inner.module, "forward"):  # DDP / DeepSpeed wrappers
        inner = inner.module
    cache = DynamicCache(config=inner.config)
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None, 0
    rows_kv, k = shared_prefix_kv(model, inner.config, prompt_ids, prompt_mask)
    if rows_kv is None:
        return None, 0
    for i, (keys, values) in enumerate(rows_kv):
        cache.update(keys, values, i)
    return cache, k


class DataStream:
    """Prompts for step ``s``: a fixed per-epoch permutation of the training set, read in order.

    ``position(s)`` = index of the first prompt of step ``s`` in the endless stream (saved in checkpoints).
    """

    def __init__(self, examples: Sequence[Example], prompts_per_step: int, seed: int) -> None:
        if not examples:
            raise TrainingError("the training set is empty: no prompts to train on (check tasks.n_train)")
        self.examples = list(examples)
        self.per_step = prompts_per_step
        self.seed = seed
        self._perms: dict[int, list[int]] = {}

    def _perm(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(_seed_for("data", self.seed, epoch))
            self._perms[epoch] = torch.randperm(len(self.examples), generator=g).tolist()
        return self._perms[epoch]

    def position(self, step: int) -> int:
        return step * self.per_step

    def batch(self, step: int, rank: int = 0, world: int = 1) -> list[Example]:
        local = self.per_step // world
        start = self.position(step) + rank * local
        n = len(self.examples)
        return [self.examples[self._perm(i // n)[i % n]] for i in range(start, start + local)]


class RLTrainer:
    """Train a policy with the configured algorithm. See the module docstring for one step.

    ``cfg`` is an :class:`r1lib.config.ExperimentConfig` (``cfg.rl`` holds every knob, ``cfg.eval`` the
    held-out protocol). ``init_model`` is a Hugging Face folder or hub id (the tiny base model or e.g.
    Qwen2.5). Outputs go to ``out_dir``: ``metrics.jsonl``, ``checkpoints/``, ``eval_samples/``,
    ``policy/`` (the final model as a Hugging Face folder).
    """

    def __init__(self, cfg: Any, *, init_model: str | os.PathLike, out_dir: str | os.PathLike,
                 train_examples: Sequence[Example] | None = None, eval_examples: Sequence[Example] | None = None,
                 accelerator: Any = None, progress: bool | str = False,
                 initial_eval: dict[str, float] | None = None, vllm_factory: Callable[..., Any] | None = None) -> None:
        from accelerate import Accelerator

        from r1lib.evaluation import held_out, train_problems
        from r1lib.launch import is_partitioned
        from r1lib.models import load_model
        from r1lib.prompts import PromptFormat
        from r1lib.rewards import build_reward_functions

        self.cfg = cfg
        self.rl = cfg.rl
        self._vllm_factory = vllm_factory
        if self.rl.sampler == "vllm":  # before any work: no model loaded, no folder written
            from r1lib.sampling_vllm import VLLMUnavailableError, require_vllm

            try:
                require_vllm("rl.sampler")
            except VLLMUnavailableError as err:
                raise TrainingError(str(err)) from None
        # The step-0 evaluation of the initial model, when the caller already has it (ablations evaluate
        # the same base model once for all arms and seeds): logged instead of evaluating again.
        self.initial_eval = dict(initial_eval) if initial_eval else None
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.acc = accelerator if accelerator is not None else Accelerator()
        self.world = self.acc.num_processes
        self.rank = self.acc.process_index
        G = self.rl.num_generations
        prompts_per_step = self.rl.batch_size // G
        if prompts_per_step % self.world:
            raise TrainingError(f"rl.batch_size / rl.num_generations = {prompts_per_step} prompts per step must be "
                                f"divisible by the number of processes ({self.world})")
        local_rows = self.rl.batch_size // self.world
        if local_rows % self.rl.mini_batches:
            raise TrainingError(f"each process holds {local_rows} completions per step, not divisible by "
                                f"rl.mini_batches={self.rl.mini_batches}")
        self.mb_rows = local_rows // self.rl.mini_batches

        try:
            self.reward_fns = build_reward_functions(self.rl.rewards)
        except ValueError as err:
            raise TrainingError(f"rl.rewards: {err}") from None
        if train_examples is None:
            train_examples = train_problems(cfg)
        if eval_examples is None:
            eval_examples = held_out(cfg, "test")
        self.eval_examples = list(eval_examples)[: self.rl.eval_limit] if self.rl.eval_limit else list(eval_examples)
        self.data = DataStream(train_examples, prompts_per_step, cfg.seed)

        model, self.tokenizer = load_model(init_model, dtype=cfg.model.dtype, device=str(self.acc.device))
        try:
            self.prompt_format = PromptFormat(self.rl.prompt_format, self.tokenizer)
        except ValueError as err:
            raise TrainingError(f"rl.prompt_format: {err}") from None
        model.config.use_cache = False
        if self.rl.gradient_checkpointing:  # active in train mode only: the samplers generate in eval mode, with a cache
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # shared prompt prefix in the scoring passes (sequence_logprobs); it needs the cache that checkpointing disables
        self.share_prefix = self.rl.share_prefix and not self.rl.gradient_checkpointing
        self.ref = None
        if self.rl.beta > 0 or (self.rl.algorithm == "ppo" and self.rl.kl_in == "reward"):
            # DEVIATION (none from the paper): the reference starts as the initial policy and is reset
            # every ref_reset_every steps (paper: 400 of 10,400).
            if is_partitioned(model):
                # ZeRO-3: transformers loaded the policy already partitioned (deepspeed.zero.Init; accelerate sets
                # its DeepSpeed config for transformers whatever zero3_init_flag says), so a deep copy would copy
                # empty shards. Load the initial weights once more, as TRL loads its ZeRO-3 reference.
                ref, _ = load_model(init_model, dtype=cfg.model.dtype, device=str(self.acc.device))
            else:
                ref = copy.deepcopy(model)
            self.ref = ref.eval().requires_grad_(False)
        self.ref_reset_every = self.rl.ref_reset_every or scaled_ref_reset_every(self.rl.steps)
        self.schedule = length_schedule(self.rl.max_new_tokens, self.rl.max_new_tokens_schedule, self.rl.steps)

        self.critic = None
        ds = getattr(self.acc.state, "deepspeed_plugin", None)
        params: list[dict[str, Any]] = [{"params": [p for p in model.parameters() if p.requires_grad],
                                         "lr": self.rl.lr}]
        critic_lr = self.rl.critic_lr or 10 * self.rl.lr
        if self.rl.algorithm == "ppo":
            from r1lib.algorithms.ppo import build_critic

            self.critic = build_critic(self.rl, model, init_model, self.tokenizer).to(self.acc.device)
            if ds is None:  # one optimizer for both; under DeepSpeed the critic gets an engine of its own (below)
                params.append({"params": [p for p in self.critic.parameters() if p.requires_grad], "lr": critic_lr})
        optimizer = torch.optim.AdamW(params, lr=self.rl.lr, weight_decay=self.rl.weight_decay)
        if ds is not None:  # DeepSpeed needs a micro-batch size even without a dataloader (TRL does the same)
            if self.rl.micro_batches > 1:  # DeepSpeed's engine owns gradient accumulation (a fixed count per step)
                raise TrainingError("rl.micro_batches > 1 is not supported under DeepSpeed; use 1 (or DDP)")
            ds.deepspeed_config["train_micro_batch_size_per_gpu"] = self.mb_rows
            ds.deepspeed_config["gradient_accumulation_steps"] = 1
            # rl.max_grad_norm: None means no clipping (0 for DeepSpeed), not accelerate's "auto" default of 1.0
            ds.deepspeed_config["gradient_clipping"] = self.rl.max_grad_norm or 0.0
        if self.critic is not None and ds is None:
            self.model, self.critic, self.optimizer = self.acc.prepare(model, self.critic, optimizer)
        else:
            self.model, self.optimizer = self.acc.prepare(model, optimizer)
        self._critic_engine = None  # the critic's own DeepSpeed engine (PPO under DeepSpeed)
        if self.critic is not None and ds is not None:
            from r1lib.algorithms.ppo import deepspeed_critic

            self.critic = self._critic_engine = deepspeed_critic(self.critic, self.acc, lr=critic_lr,
                                                                 weight_decay=self.rl.weight_decay)
        # ZeRO-3 (the policy's parameters are sharded): the reference is sharded the same way, as TRL prepares it
        # (``prepare_deepspeed``: an inference-only DeepSpeed engine, no optimizer); generation gathers the
        # policy's weights once per call (_generation_weights), and the reference reset, checkpoints and final
        # save gather what they copy.
        # Under ZeRO-1/2 the reference stays a plain copy on every process (TRL would wrap it in a stage-0
        # engine, which changes nothing on one device).
        self.zero3 = ds is not None and ds.zero_stage == 3
        if self.zero3 and self.ref is not None:
            from trl.models import prepare_deepspeed

            self.ref = prepare_deepspeed(self.ref, self.acc)
        self.step = 0
        self.train_seconds = 0.0
        self._sampler = None

    # -- helpers ---------------------------------------------------------------------------

    @property
    def policy(self) -> torch.nn.Module:
        """The bare policy module (no DDP/DeepSpeed wrapper): for generation and saving."""
        return self.acc.unwrap_model(self.model)

    @contextlib.contextmanager
    def _generation_weights(self) -> Iterator[None]:
        """Around every call of the in-process samplers (rollouts, evaluation), on every process together.

        Under ZeRO-3 each forward pass all-gathers the parameters layer by layer, a collective: generations of
        different lengths per process, or on the main process only (evaluation), issue unmatched gathers and hang.
        TRL's ``unwrap_model_for_generation`` gathers the whole policy once and removes DeepSpeed's forward hooks
        for the block (the memory of one full copy per process, as TRL's GRPOTrainer); ``r1lib.launch.
        unwrap_for_generation`` also detaches the one hook TRL leaves, which would still hang. vLLM holds its own
        copy of the weights (pushed after each step), so nothing is gathered for it.
        """
        if not self.zero3 or self.rl.sampler == "vllm":
            yield
            return
        from r1lib.launch import unwrap_for_generation

        with unwrap_for_generation(self.model, self.acc):
            yield

    def _reset_ref(self) -> None:
        """Hard-reset the reference to the current policy (paper: every 400 steps). Under ZeRO-3 both are sharded:
        the policy is gathered read-only, the reference gathered for writing (rank 0's copy is broadcast and
        re-sharded on exit, ``r1lib.launch.gathered_parameters``); a collective, as every step is."""
        from r1lib.launch import gathered_parameters

        ref = self.acc.unwrap_model(self.ref)
        with gathered_parameters(self.policy.parameters()), \
                gathered_parameters(ref.parameters(), modifier_rank=0), torch.no_grad():
            ref.load_state_dict(self.policy.state_dict())

    def sampler(self):
        if self._sampler is None:
            from r1lib.sampling import make_sampler

            backend = self.rl.sampler
            # rollouts are one batch; held-out evaluation runs in batches of sampling.batch_size rows (or more)
            kw: dict[str, Any] = {"num_threads": self.rl.num_threads,
                                  "batch_size": max(self.rl.batch_size, self.cfg.sampling.batch_size),
                                  "add_special_tokens": self.prompt_format.add_special_tokens}
            if backend == "vllm":  # TRL's vLLM integration, colocated or a server (rl.vllm)
                from r1lib.sampling_vllm import VLLMRolloutSampler

                self._sampler = VLLMRolloutSampler(self.policy, self.acc, self.tokenizer, self.rl.vllm,
                                                   add_special_tokens=self.prompt_format.add_special_tokens,
                                                   factory=self._vllm_factory)
            else:
                self._sampler = make_sampler(self.policy, self.tokenizer, backend=backend, **kw)
        return self._sampler

    def max_new_tokens(self, step: int) -> int:
        return step_value(self.schedule, step)

    def _log(self, tracker: Any, metrics: dict[str, float], step: int) -> None:
        if tracker is not None:
            tracker.log(metrics, step=step)

    # -- checkpoints -----------------------------------------------------------------------

    @property
    def ckpt_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        d = self.ckpt_dir
        if not d.is_dir():
            return None
        done = sorted(p for p in d.iterdir() if p.name.startswith(CKPT_PREFIX) and (p / TRAINER_STATE).exists())
        return done[-1] if done else None

    def save_checkpoint(self) -> Path:
        """accelerate's ``save_state`` (policy, optimizer, critic, every process's RNG; DeepSpeed-aware)
        plus the reference model and our counters, into a temp folder renamed when complete (atomic).

        Under DeepSpeed PPO's critic engine writes its own checkpoint to ``critic/`` (DeepSpeed's layout). The
        reference is stored whole in ``trainer_state.pt`` (gathered under ZeRO-3 by every process)."""
        from r1lib.launch import full_state_dict

        final = self.ckpt_dir / f"{CKPT_PREFIX}{self.step:08d}"
        tmp = self.ckpt_dir / f".tmp-{CKPT_PREFIX}{self.step:08d}"
        if self.acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.acc.wait_for_everyone()
        self.acc.save_state(str(tmp), safe_serialization=False)
        if self._critic_engine is not None:  # a collective: every process writes its ZeRO shards
            self._critic_engine.save_checkpoint(str(tmp), tag=CRITIC_DIR, save_latest=False)
        ref_state = None
        if self.ref is not None and (self.zero3 or self.acc.is_main_process):
            ref_state = full_state_dict(self.acc.unwrap_model(self.ref))
        # Every process writes its own files (RNG state, ZeRO shards); the folder is renamed only after all did.
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            torch.save({"step": self.step, "data_position": self.data.position(self.step),
                        "train_seconds": self.train_seconds, "ref": ref_state,
                        "config": self.cfg.model_dump(mode="json")}, tmp / TRAINER_STATE)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            kept = sorted(p for p in self.ckpt_dir.iterdir() if p.name.startswith(CKPT_PREFIX))
            for old in kept[: -self.rl.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    def load_checkpoint(self, path: Path) -> None:
        """Restore what :meth:`save_checkpoint` wrote; every process calls it (DeepSpeed loads are collective)."""
        from r1lib.launch import load_full_state_dict

        if self._critic_engine is not None and not (path / CRITIC_DIR).is_dir():
            raise TrainingError(f"checkpoint {path} has no {CRITIC_DIR}/ (the PPO critic's DeepSpeed engine): it was "
                                f"written by a run without DeepSpeed; resume with the same kind of launch")
        try:
            self.acc.load_state(str(path))
            if self._critic_engine is not None:
                self._critic_engine.load_checkpoint(str(path), tag=CRITIC_DIR)
            state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError, EOFError, KeyError) as err:
            raise TrainingError(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); delete it to "
                                f"resume from the previous one") from None
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        if self.ref is not None and state.get("ref") is not None:
            load_full_state_dict(self.acc.unwrap_model(self.ref), state["ref"])

    # -- one step --------------------------------------------------------------------------

    @staticmethod
    def _length_chunks(batch: RolloutBatch, rows: torch.Tensor, n: int) -> list[torch.Tensor]:
        """``rows`` as ``n`` chunks of near-equal size after sorting them by prompt + completion length, so that each
        chunk's padding (``RolloutBatch.select`` trims to its longest row) is small; ``n = 1``: ``[rows]`` as given."""
        if n <= 1:
            return [rows]
        lengths = batch.prompt_mask[rows].sum(-1) + batch.completion_mask[rows].sum(-1)
        return [c for c in torch.tensor_split(rows[torch.argsort(lengths, stable=True)], n) if len(c)]

    def _sync_gradients(self, *, last: bool) -> Any:
        """DDP all-reduces the gradients in every backward pass; of a mini-batch's micro-batches only the last needs
        it (accelerate's ``no_sync`` for the others; every process has the same number of passes)."""
        if last or self.world == 1:
            return contextlib.nullcontext()
        return self.acc.no_sync(self.model)

    @torch.no_grad()
    def _score_batch(self, model: torch.nn.Module, batch: RolloutBatch, *, entropy: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probs (and entropies) of the whole rollout, in mini-batch-sized chunks (``rl.micro_batches`` > 1:
        micro-batch-sized, length-sorted chunks); right-padded (B, T)."""
        B, T = batch.completion_ids.shape
        logps = torch.zeros(B, T)
        ents = torch.zeros(B, T) if entropy else None
        if self.rl.micro_batches > 1:
            size = -(-self.mb_rows // self.rl.micro_batches)
            chunks = self._length_chunks(batch, torch.arange(B), -(-B // size))
        else:
            chunks = [torch.arange(s, min(B, s + self.mb_rows)) for s in range(0, B, self.mb_rows)]
        for rows in chunks:
            t = batch.select(rows)
            lp, en = sequence_logprobs(model, *(t[k].to(self.acc.device) for k in
                                                ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")),
                                       temperature=self.rl.temperature, with_entropy=entropy,
                                       share_prefix=self.share_prefix)
            logps[rows, : lp.size(1)] = lp.float().cpu()
            if ents is not None and en is not None:
                ents[rows, : en.size(1)] = en.float().cpu()
        return logps, ents

    @staticmethod
    def _sampler_logprobs(batch: RolloutBatch) -> torch.Tensor | None:
        """(B, T) per-token log-probs reported by the sampler, or None if it did not report them."""
        lps = [getattr(c, "logprobs", None) for c in batch.completions]
        if any(lp is None or len(lp) != c.num_tokens for lp, c in zip(lps, batch.completions)):
            return None
        out = torch.zeros(batch.completion_ids.shape)
        for i, lp in enumerate(lps):
            out[i, : len(lp)] = torch.tensor(lp, dtype=torch.float)
        return out

    def _record_self_corrections(self, batch: RolloutBatch, step: int) -> None:
        """Append the rollouts that fix a wrong step after a reflection word (``r1lib.analysis.find_aha``) to
        ``self_corrections.jsonl``: the "aha" candidates of training, sampled at the rollout temperature."""
        from r1lib.analysis import find_aha

        rows = []
        for c, ex, acc in zip(batch.completions, batch.examples, batch.reward_parts.get("accuracy", [])):
            aha = find_aha(c.text)
            if aha is not None:
                rows.append({"step": step, "id": ex.id, "problem": ex.problem, "gold": ex.answer,
                             "correct": bool(float(acc) >= 0.5), "completion": c.text, **aha})
        if rows:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / SELF_CORRECTIONS, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def _step(self) -> dict[str, float]:
        rl, step = self.rl, self.step
        t0 = time.perf_counter()
        reset_now = self.ref is not None and step > 0 and step % self.ref_reset_every == 0
        if reset_now:
            self._reset_ref()  # hard reset (paper: every 400 steps)
        max_new = self.max_new_tokens(step)
        examples = self.data.batch(step, self.rank, self.world)
        with self._generation_weights():
            batch = collect_rollouts(self.sampler(), self.tokenizer, examples, group_size=rl.num_generations,
                                     max_new_tokens=max_new, temperature=rl.temperature, reward_fns=self.reward_fns,
                                     seed=_seed_for("rollout", self.cfg.seed, step, self.rank),
                                     prompt_format=self.prompt_format)
        if self.acc.is_main_process:
            self._record_self_corrections(batch, step + 1)
        B = len(batch)
        # Log-probs of the sampling policy ("old"). With one mini-batch the policy has not moved yet, so
        # they equal the current ones and the training forward provides them (as TRL does); samplers that
        # return per-token log-probs (vLLM, the KV sampler) spare the extra forward pass too.
        old_logp = None if rl.mini_batches == 1 else self._sampler_logprobs(batch)
        if old_logp is None and rl.mini_batches > 1:
            old_logp = self._score_batch(self.policy, batch)[0]
        ref_logp = None
        if self.ref is not None:
            if reset_now and old_logp is not None:
                ref_logp = old_logp.clone()  # the reference was reset to the very policy that sampled
            else:
                ref_logp = self._score_batch(self.ref, batch)[0]
        mask = batch.completion_mask.float()

        if rl.algorithm == "ppo":
            from r1lib.algorithms.ppo import ppo_advantages

            if old_logp is None:  # PPO's KL-in-reward needs the old log-probs before the update
                old_logp = self._sampler_logprobs(batch)
                old_logp = old_logp if old_logp is not None else self._score_batch(self.policy, batch)[0]

            adv, returns, old_values, ppo_stats = ppo_advantages(self, batch, old_logp, ref_logp)
        else:
            adv = compute_advantages(rl.algorithm, batch.rewards, rl.num_generations)  # (B,)
            returns = old_values = None
            ppo_stats = {}

        # One inner epoch over a random split into mini-batches (paper: 16 mini-batches, 1 epoch).
        entropy = torch.zeros(B, batch.completion_ids.size(1))
        g = torch.Generator().manual_seed(_seed_for("minibatch", self.cfg.seed, step, self.rank))
        order = torch.randperm(B, generator=g)
        sums: dict[str, float] = {}
        on_policy = old_logp is None  # one mini-batch: old = current (a gradient-free copy of each pass's log-probs)
        if on_policy:
            old_logp = torch.zeros(B, batch.completion_ids.size(1))
        dev = self.acc.device
        kl_in_loss = rl.algorithm != "ppo" or rl.kl_in == "loss"
        for i in range(rl.mini_batches):
            rows = order[i * self.mb_rows:(i + 1) * self.mb_rows]
            # rl.micro_batches > 1: the mini-batch in length-sorted passes, their gradients accumulated, each loss
            # and metric weighted by its share of the mini-batch (rows, or tokens for the token means), so the
            # update is the one-pass update up to float rounding. One pass: weight 1, nothing multiplied.
            chunks = self._length_chunks(batch, rows, rl.micro_batches)
            n_rows, n_tok = len(rows), float(batch.completion_mask[rows].sum().clamp(min=1))
            for j, chunk in enumerate(chunks):
                t = batch.select(chunk)
                T = t["completion_ids"].size(1)
                w_rows = len(chunk) / n_rows
                w_tok = float(t["completion_mask"].sum().clamp(min=1)) / n_tok
                w_loss = w_tok if rl.loss_aggregation == "token" else w_rows
                with self._sync_gradients(last=j == len(chunks) - 1):
                    logp, ent = sequence_logprobs(self.model, t["prompt_ids"].to(dev), t["prompt_mask"].to(dev),
                                                  t["completion_ids"].to(dev), t["completion_mask"].to(dev),
                                                  temperature=rl.temperature, with_entropy=True,
                                                  share_prefix=self.share_prefix)
                    entropy[chunk, :T] = ent.float().cpu()
                    if on_policy:
                        old_logp[chunk, :T] = logp.detach().float().cpu()
                    out = policy_loss(logp, old_logp[chunk, :T].to(dev),
                                      (adv[chunk, :T] if adv.dim() == 2 else adv[chunk]).to(dev),
                                      t["completion_mask"].to(dev), epsilon=rl.epsilon,
                                      beta=rl.beta if kl_in_loss else 0.0,
                                      ref_logp=ref_logp[chunk, :T].to(dev) if ref_logp is not None else None,
                                      aggregation=rl.loss_aggregation, max_tokens=max_new)
                    loss = out.loss if len(chunks) == 1 else out.loss * w_loss
                    v_loss = None
                    if self.critic is not None:
                        from r1lib.algorithms.ppo import critic_loss

                        v_loss = critic_loss(self, t, chunk, returns, old_values)  # a token mean over the chunk
                        if len(chunks) > 1:
                            v_loss = v_loss * w_tok
                        loss = loss + rl.vf_coef * v_loss
                        sums["value_loss"] = sums.get("value_loss", 0.0) + float(v_loss.detach()) / rl.mini_batches
                    if not torch.isfinite(loss):
                        last = self.latest_checkpoint()
                        raise TrainingError(f"step {step + 1}, mini-batch {i}: the loss is {float(loss.detach())} "
                                            f"(NaN/inf); stopping without an update. Last good checkpoint: "
                                            f"{last or 'none yet'}")
                    if self._critic_engine is None:
                        self.acc.backward(loss)
                    else:
                        # Two DeepSpeed engines: accelerate's backward is the policy engine's (its backward and
                        # step), the critic engine runs its own. The two graphs share nothing, so the gradients
                        # are those of the sum.
                        self.acc.backward(out.loss)
                        self._critic_engine.backward(rl.vf_coef * v_loss)
                        self._critic_engine.step()
                for k, v, w in (("loss", out.loss, w_loss), ("surrogate", out.surrogate, w_loss), ("kl", out.kl, w_tok),
                                ("clip_fraction", out.clip_fraction, w_tok)):
                    v = float(v.detach()) if len(chunks) == 1 else float(v.detach()) * w
                    sums[k] = sums.get(k, 0.0) + v / rl.mini_batches
            grad_norm = critic_norm = None
            if rl.max_grad_norm and getattr(self.acc.state, "deepspeed_plugin", None) is None:
                # Policy and critic are clipped separately: a large critic gradient must not shrink the policy step.
                grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), rl.max_grad_norm)
                if self.critic is not None:
                    critic_norm = self.acc.clip_grad_norm_(self.critic.parameters(), rl.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if grad_norm is not None:
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + float(grad_norm) / rl.mini_batches
            if critic_norm is not None:
                sums["critic_grad_norm"] = sums.get("critic_grad_norm", 0.0) + float(critic_norm) / rl.mini_batches

        if hasattr(self._sampler, "push_weights"):
            # vLLM rollouts (r1lib.sampling_vllm): the step's new weights go to vLLM now, on every process at
            # once (gathering ZeRO-3 shards is collective); the CPU samplers read the policy's own tensors.
            self._sampler.push_weights()
        step_time = time.perf_counter() - t0
        gen_tokens = float(mask.sum())
        metrics = rollout_stats(batch)
        metrics.update(sums)
        metrics.update(ppo_stats)
        metrics.update({
            "entropy": float((entropy * mask).sum() / mask.sum().clamp(min=1)),
            "zero_spread_groups": zero_spread_fraction(batch.rewards, rl.num_generations),
            "max_new_tokens": float(max_new),
            "step_time": step_time,
            "gen_time": batch.gen_seconds,
            "tokens_per_s": gen_tokens * self.world / step_time,
            "lr": self.optimizer.param_groups[0]["lr"],
        })
        return self._reduce(metrics)

    def _reduce(self, metrics: dict[str, float]) -> dict[str, float]:
        """Average the per-process metrics (max for maxima). Local batches have equal sizes, so means are
        exact; reported stds are the mean of per-process stds (an approximation with > 1 process)."""
        if self.world == 1:
            return metrics
        keys = sorted(metrics)
        vals = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=self.acc.device)
        gathered = self.acc.gather(vals.unsqueeze(0)).view(self.world, -1).cpu()
        out = {}
        for j, k in enumerate(keys):
            col = gathered[:, j]
            out[k] = float(col.max() if k.endswith("/max") else (col.sum() if k == "tokens_per_s" else col.mean()))
        out["tokens_per_s"] = metrics["tokens_per_s"]  # already scaled by world size
        return out

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, step: int, *, write: bool = True) -> dict[str, float]:
        """Held-out pass@1 / cons@k with the paper's protocol (T 0.6, top-p 0.95, cfg.eval), main process (see
        ``_eval_and_log`` for when every process runs it; ``write``: save the samples, the main process's job)."""
        from r1lib.evaluation import evaluate

        ev = self.cfg.eval
        res = evaluate(self.sampler(), self.eval_examples, k=self.rl.eval_k, temperature=ev.temperature,
                       top_p=ev.top_p, max_new_tokens=ev.max_new_tokens, seed=_seed_for("eval", self.cfg.seed),
                       keep_completions=self.rl.eval_k, ks=(1, self.rl.eval_k), prompt_format=self.prompt_format)
        self._eval_records = res.records  # for the held-out completions table (_eval_and_log)
        if write:
            samples = self.out_dir / "eval_samples"
            samples.mkdir(parents=True, exist_ok=True)
            with open(samples / f"step_{step:08d}.jsonl", "w", encoding="utf-8") as f:
                for r in res.records:
                    f.write(json.dumps(r) + "\n")
        keys = ("pass@1", f"pass@{self.rl.eval_k}", f"cons@{self.rl.eval_k}", "format_rate", "mean_length",
                "max_length", "truncated_fraction", "reflection_rate", "language_mix_rate", "language_consistency")
        return {f"eval/{k}": float(res.summary[k]) for k in keys if k in res.summary}

    # -- the loop --------------------------------------------------------------------------

    def train(self, *, resume: bool = True, stop_after: int | None = None,
              on_step: Callable[[int, dict[str, float]], None] | None = None) -> RLResult:
        """Run to ``rl.steps`` (or stop after ``stop_after`` more steps), resuming from the newest
        checkpoint in ``out_dir/checkpoints`` when ``resume``. Returns an :class:`RLResult`."""
        from r1lib.config import config_to_dict
        from r1lib.models import save_model
        from r1lib.tracking import Tracker, stage_job_type

        rl = self.rl
        last = self.latest_checkpoint() if resume else None
        if last is not None:
            self.load_checkpoint(last)
        elif self.acc.is_main_process:
            for name in ("metrics.jsonl", SELF_CORRECTIONS):  # a fresh run: no stale logs
                (self.out_dir / name).unlink(missing_ok=True)
        if self.acc.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.jsonl", SELF_CORRECTIONS):
                _truncate_log(self.out_dir / name, self.step)
        tracker = (Tracker(self.out_dir, config=config_to_dict(self.cfg), wandb_mode=self.cfg.tracking.wandb_mode,
                           project=self.cfg.tracking.project, name=f"{self.cfg.name}-{self.out_dir.name}",
                           group=self.cfg.tracking.group or self.cfg.name,
                           job_type=stage_job_type(self.out_dir, self.cfg.runs_path))
                   if self.acc.is_main_process else None)
        history: list[dict[str, Any]] = []
        final_eval: dict[str, float] = {}
        # progress="bar": one tqdm bar (a notebook); True: a line per step (the CLI's logs, several processes)
        from tqdm.auto import tqdm

        self._bar = tqdm(total=rl.steps, initial=self.step, desc=f"{rl.algorithm} steps", unit="step",
                         disable=not (self.progress == "bar" and self.acc.is_main_process))
        try:
            if rl.sampler == "vllm":
                # vLLM starts on every process together (TRL's set-up ends in a barrier) and gets the policy's
                # weights (a resumed run's differ from the checkpoint vLLM loaded) before any generation
                self.sampler().push_weights()
            if self.step == 0:
                final_eval = self._eval_and_log(tracker, 0)
            end = rl.steps if stop_after is None else min(rl.steps, self.step + stop_after)
            while self.step < end:
                t0 = time.perf_counter()
                try:
                    metrics = self._step()
                except EmptyBatchError as err:
                    raise TrainingError(f"step {self.step + 1}: {err}. Last good checkpoint: "
                                        f"{self.latest_checkpoint() or 'none yet'}") from None
                self.step += 1
                self.train_seconds += time.perf_counter() - t0
                metrics["train_seconds"] = self.train_seconds
                self._log(tracker, metrics, self.step)
                history.append({"step": self.step, **metrics})
                if self.progress == "bar":
                    self._bar.set_postfix(reward=f"{metrics['reward/mean']:.3f}",
                                          acc=f"{metrics.get('accuracy', float('nan')):.3f}",
                                          len=f"{metrics['length/mean']:.0f}", refresh=False)
                    self._bar.update(1)
                elif self.progress and self.acc.is_main_process:
                    print(f"step {self.step:4d}/{rl.steps}  reward {metrics['reward/mean']:.3f}  acc "
                          f"{metrics.get('accuracy', float('nan')):.3f}  len {metrics['length/mean']:.1f}  "
                          f"kl {metrics.get('kl', 0):.4f}  {metrics['step_time']:.2f}s", flush=True)
                if on_step is not None:
                    on_step(self.step, metrics)
                cap_changes = self.step < rl.steps and self.max_new_tokens(self.step) != self.max_new_tokens(self.step - 1)
                if self.step % rl.eval_every == 0 or self.step == rl.steps or cap_changes:
                    # also right before the length cap changes (the paper's expansion at step 8,200): the point
                    # that a length-expansion ablation compares against
                    final_eval = self._eval_and_log(tracker, self.step)
                if self.step % rl.checkpoint_every == 0 or self.step == rl.steps:
                    self.save_checkpoint()
        finally:
            self._bar.close()
            if tracker is not None:
                tracker.finish()
        policy_path = self.out_dir / "policy"
        if self.step == rl.steps:
            from r1lib.launch import gathered_parameters

            # Every process: under ZeRO-3 the shards are gathered (a collective) and the main process writes the
            # whole model with save_model (atomic). Like accelerate's get_state_dict, one full copy per process,
            # the memory that every rollout's gather needs too.
            with gathered_parameters(self.policy.parameters()):
                if self.acc.is_main_process:
                    save_model(self.policy, self.tokenizer, policy_path)
        self.acc.wait_for_everyone()
        return RLResult(out_dir=self.out_dir, policy_path=policy_path, metrics_path=self.out_dir / "metrics.jsonl",
                        steps=self.step, train_seconds=self.train_seconds, final_eval=final_eval, history=history)

    def _eval_and_log(self, tracker: Any, step: int) -> dict[str, float]:
        ev: dict[str, float] = {}
        if step == 0 and self.initial_eval is not None:
            self._log(tracker, self.initial_eval, 0)
            return dict(self.initial_eval)
        t0 = time.perf_counter()
        # vLLM as a server, or tensor-parallel, gathers the prompts of all processes (TRL's VLLMGeneration), so there
        # every process evaluates the same questions and only the main process keeps the result (the server then
        # generates each question once per process: a cost of evaluation only, rollouts are not duplicated).
        every_process = self.rl.sampler == "vllm" and self.world > 1 and (
            self.rl.vllm.mode == "server" or self.rl.vllm.tensor_parallel_size > 1)
        with self._generation_weights():  # every process enters: under ZeRO-3 gathering the policy is a collective
            if self.acc.is_main_process or every_process:
                ev = self.evaluate(step, write=self.acc.is_main_process)
                if not self.acc.is_main_process:
                    ev = {}
        if self.rl.sampler == "vllm" and self.world > 1 and not every_process:
            # Colocated vLLM with sleep mode re-pushes weights inside its next generate call after sleeping, and only
            # the main process generated here: push on every process now, so that no process enters a (ZeRO-3,
            # collective) weight push alone at the next rollout.
            self._sampler.push_weights()
        if self.acc.is_main_process:
            ev["eval/seconds"] = time.perf_counter() - t0
            self._log(tracker, ev, step)
            if tracker is not None:  # a W&B Table + <out_dir>/tables/eval_completions.jsonl (r1lib.tracking)
                from r1lib.tracking import completion_rows

                tracker.log_table("eval/completions", completion_rows(
                    step, [ex.problem for ex in self.eval_examples], getattr(self, "_eval_records", [])), step)
            if self.progress:
                line = (f"eval @ {step}: pass@1 {ev['eval/pass@1']:.3f}  format {ev['eval/format_rate']:.3f}  "
                        f"len {ev['eval/mean_length']:.1f}  ({ev['eval/seconds']:.1f}s)")
                bar = getattr(self, "_bar", None)
                if bar is not None and not bar.disable:
                    bar.write(line)      # above the bar, which stays at the bottom
                else:
                    print(line, flush=True)
        self.acc.wait_for_everyone()
        return ev


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint we resume from), atomically."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(k + "\n" for k in keep), encoding="utf-8")
    os.replace(tmp, path)


def train_rl(cfg: Any, *, init_model: str | os.PathLike, out_dir: str | os.PathLike, resume: bool = True,
             progress: bool | str = "bar", **kw: Any) -> RLResult:
    """Build an :class:`RLTrainer` and run it (the notebooks' entry point). ``progress``: ``"bar"`` (a progress bar
    with reward, accuracy and length; the held-out checks as lines), True (a line per step), False (silent)."""
    return RLTrainer(cfg, init_model=init_model, out_dir=out_dir, progress=progress, **kw).train(resume=resume)
