"""The one typed, validated configuration system: experiments are YAML files in ``experiments/``.

An experiment file is parsed with PyYAML, dotted-key overrides are applied to the raw mapping,
and the result is validated by the pydantic v2 models below (every model forbids unknown keys).
All checking happens in :func:`load_config`, before any work starts; every problem is raised as a
:class:`ConfigError` whose message names the file and the field, e.g.::

    experiments/x.yaml: field 'rl.batch_size': Input should be greater than 0 (got -4)

Defaults are sized for a 2-core CPU. Where a default deviates from the paper, the field
description says so and cites ``docs/paper.md`` (sections given as "§N").

Override syntax (CLI ``--set``, notebook entries, :func:`load_config`'s ``overrides``)::

    {"rl.batch_size": 8}          # a dict of dotted keys to values
    ["rl.batch_size=8"]           # "key=value" strings; the value is parsed with yaml.safe_load
    {"rl": {"batch_size": 8}}     # a mapping given for a section is merged into it, key by key

A dotted key must name a field of the schema (sub-keys of dict-valued fields such as
``tasks.mix.word`` are free); anything else is an error with a did-you-mean suggestion.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from r1lib.tracking import atomic_write_text

__all__ = [
    "ConfigError",
    "TASK_NAMES",
    "MODEL_PRESETS",
    "NotebookEntry",
    "TasksConfig",
    "ModelConfig",
    "PretrainConfig",
    "CorpusConfig",
    "SamplingConfig",
    "EvalConfig",
    "RLConfig",
    "PipelineConfig",
    "DistillConfig",
    "TrackingConfig",
    "SlurmConfig",
    "ExperimentConfig",
    "load_config",
    "parse_overrides",
    "apply_overrides",
    "config_to_dict",
    "save_config",
    "find_project_root",
]

TASK_NAMES: tuple[str, ...] = ("addition", "subtraction", "multiply", "chain", "arithmetic", "linear", "countdown",
                               "word", "general")
"""Procedural task generators that ``tasks.mix`` may weight (see ``r1lib.tasks``)."""

MODEL_PRESETS: tuple[str, ...] = ("nano", "tiny", "small", "medium")
"""Model size presets defined in ``r1lib.models``."""

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_ROOT_MARKERS = ("pyproject.toml", ".git")


class ConfigError(Exception):
    """An invalid experiment configuration; the message names the file and the field."""


class _Strict(BaseModel):
    """Base of every config model: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


_SLURM_TIME_RE = re.compile(r"^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2}|UNLIMITED|INFINITE)$")
_SLURM_MEM_RE = re.compile(r"^\d+[KMGT]?$")
_SLURM_PARTITION_RE = re.compile(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$")
# Options r1lib sets itself on every job (r1lib.slurm): the chain of dependencies and the log path.
_SLURM_MANAGED = ("--dependency", "-d", "--kill-on-invalid-dep", "--output", "-o", "--error", "-e", "--parsable")


class LaunchConfig(_Strict):
    """How notebook 01 runs its RL training (``r1lib.launch.run_rl``): in the notebook's own process (the default: one
    CPU or one GPU), or as ``accelerate launch`` processes (several GPUs: DDP or DeepSpeed ZeRO-2/3) that the notebook
    starts and waits for, e.g. inside a Slurm job holding 8 GPUs."""

    accelerate_config: str | None = Field(
        default=None, description="An accelerate config file (experiments/accelerate/*.yaml, relative to the project "
        "root); None: train in the notebook's process.")
    num_processes: PositiveInt | None = Field(
        default=None, description="Processes to launch (None: the accelerate config's num_processes).")


class RunnerConfig(_Strict):
    """How ``python -m r1lib run`` executes the notebooks on one machine (``r1lib.runner``)."""

    parallel: PositiveInt = Field(
        default=1, description="Notebooks run at the same time (each in its own process and kernel) when their "
        "`needs` allow it. A notebook that can overlap with another gets cpus // parallel torch threads "
        "(OMP_NUM_THREADS); one that never overlaps (everything else needs it, or it needs everything) keeps all "
        "cores, as does an `exclusive` one. Among the notebooks ready to start, the one with the most notebooks "
        "depending on it (directly or not) goes first. 1, or no two notebooks that may overlap: one after another in "
        "config order, in the runner's process.")


class SlurmConfig(_Strict):
    """Resources of the Slurm jobs of ``python -m r1lib run CONFIG --executor slurm`` (``r1lib.slurm``).

    The top-level ``slurm`` section holds the defaults of every notebook's job; a notebook entry's own ``slurm``
    sets the fields it names over them (None = inherit; ``extra`` and ``setup`` are appended). Null everywhere
    means the cluster's default. Each job is one task on one node: a stage that trains on several GPUs starts
    its processes itself with ``accelerate launch``, so the job only has to hold the GPUs."""

    partition: str | None = Field(default=None, description="sbatch --partition (comma-separated list allowed).")
    gpus_per_node: NonNegativeInt | None = Field(default=None, description="sbatch --gpus-per-node (0: none).")
    cpus: PositiveInt | None = Field(default=None, description="sbatch --cpus-per-task.")
    time: str | None = Field(default=None, description="sbatch --time: 'minutes', 'HH:MM:SS', 'D-HH:MM', ...")
    mem: str | None = Field(default=None, description="sbatch --mem: memory per node, e.g. '64G' (unit K/M/G/T, "
                            "default M).")
    extra: list[str] = Field(default_factory=list, description="More sbatch options, one per item, written as "
                             "'#SBATCH <item>' lines, e.g. ['--account=myproj', '--qos=high', '--exclusive'].")
    setup: list[str] = Field(default_factory=list, description="Shell lines the job runs before r1lib, e.g. "
                             "['module load cuda/12.4', 'source .venv/bin/activate'].")

    @field_validator("partition")
    @classmethod
    def _check_partition(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_PARTITION_RE.match(value):
            raise PydanticCustomError("slurm_partition", "a partition name (or names separated by commas) "
                                      "without spaces is expected")
        return value

    @field_validator("time")
    @classmethod
    def _check_time(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_TIME_RE.match(value):
            raise PydanticCustomError("slurm_time", "a Slurm time limit is expected: 'minutes', 'MM:SS', "
                                      "'HH:MM:SS', 'D-HH', 'D-HH:MM', 'D-HH:MM:SS' or 'UNLIMITED'")
        return value

    @field_validator("mem")
    @classmethod
    def _check_mem(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_MEM_RE.match(value):
            raise PydanticCustomError("slurm_mem", "a memory size such as '64G' or '8000M' is expected")
        return value

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.startswith("-") or "\n" in item:
                raise PydanticCustomError("slurm_extra", "each item is one sbatch option such as "
                                          "'--account=myproj' (got '{item}')", {"item": item})
            if item.split("=", 1)[0].split(" ", 1)[0] in _SLURM_MANAGED:
                raise PydanticCustomError("slurm_extra", "'{item}': r1lib sets the dependency, kill-on-invalid-dep "
                                          "and log options itself", {"item": item})
        return value


class NotebookEntry(_Strict):
    """One notebook the runner executes. In YAML a plain string is accepted as ``{path: ...}``."""

    path: str = Field(
        min_length=1,
        description="Notebook file, relative to the repository root (or to the config file's "
        "folder, tried second), or absolute. It must exist when the config is loaded.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted-key overrides given to this notebook only (CLI --set wins over them). "
        "They are validated against the schema when the config is loaded.",
    )
    slurm: SlurmConfig | None = Field(
        default=None, description="This notebook's Slurm job resources over the top-level `slurm` section, e.g. "
        "{gpus_per_node: 8, time: '24:00:00'} (only with --executor slurm).")
    needs: list[str] | None = Field(
        default=None, description="The notebooks listed before this one whose outputs it reads (file name or stem, "
        "e.g. [00_base_model]); it starts once they succeeded and is skipped if one failed. None: it starts after "
        "every notebook listed before it has finished, whatever their outcome (plain order). With `runner.parallel` "
        "> 1, notebooks whose needs are met run at the same time.")
    exclusive: bool = Field(
        default=False, description="With `runner.parallel` > 1: run this notebook alone, with every core (it starts "
        "when no other notebook runs, and none starts beside it). For a notebook that would otherwise spend most of "
        "its time on one core with the other idle, e.g. the last one of the longest chain.")

    @model_serializer(mode="wrap")
    def _without_unset_slurm(self, handler: Any) -> Any:
        """A notebook without Slurm settings or needs is written as before (path and overrides): resolved configs
        stay short, and results saved before these fields existed compare equal."""
        data = handler(self)
        if isinstance(data, dict):
            for key, unset in (("slurm", None), ("needs", None), ("exclusive", False)):
                if getattr(self, key) is unset:
                    data.pop(key, None)
        return data

    @field_validator("path")
    @classmethod
    def _must_exist(cls, value: str, info: ValidationInfo) -> str:
        """The notebook file must exist (searched in the dirs given in the validation context)."""
        if _resolve_existing(value, _search_dirs(info)) is None:
            dirs = ", ".join(str(d) for d in _search_dirs(info))
            raise PydanticCustomError(
                "notebook_missing", "notebook file not found: '{path}' (looked in {dirs})",
                {"path": value, "dirs": dirs},
            )
        return value


class TasksConfig(_Strict):
    """Procedurally generated training/test problems (``r1lib.tasks``)."""

    mix: dict[str, float] = Field(
        description=f"Sampling weight of each task generator; keys in {list(TASK_NAMES)}, weights > 0. "
        "The paper trains on math, code, STEM and logic prompts (docs/paper.md §3); at tiny scale we use "
        "synthetic, exactly verifiable tasks instead.",
    )
    difficulty: tuple[int, int] = Field(
        default=(1, 3),
        description="Inclusive (low, high) difficulty range, both within 1..5 and low <= high.",
    )
    n_train: PositiveInt = Field(description="Number of training problems generated.")
    n_test: PositiveInt = Field(description="Number of held-out test problems generated.")
    n_harder: NonNegativeInt = Field(
        default=0, description="Held-out problems of a *harder* split: the same tasks one difficulty level above "
        "the top of `difficulty` (one more digit for the digit tasks), never seen in pretraining or RL. Shows "
        "whether a learned procedure generalises. 0 = off.")

    train_from: str | list[str] | None = Field(
        default=None, description="Real-scale training problems instead of the generators: a benchmark name "
        "(e.g. 'gsm8k'), a hub dataset id or a local .jsonl file (r1lib.tasks.load_benchmark, split 'train'; the "
        "first `n_train` rows), or a list of them, whose rows are pooled (e.g. [gsm8k, math]; `n_train` rows drawn "
        "from the pool when it has more). Null: the generators of `mix`.")
    test_from: str | None = Field(
        default=None, description="Real-scale held-out problems (split 'test', the first `n_test` rows), e.g. "
        "'math500'; null: the generators of `mix`. With it the harder split is off.")

    def harder_difficulty(self) -> tuple[int, int] | None:
        """The level range of the harder split, or None when the top level is already 5, it is off, or the
        held-out problems come from a file (`test_from`)."""
        top = self.difficulty[1]
        return (top + 1, top + 1) if self.n_harder and top < 5 and self.test_from is None else None

    @field_validator("mix")
    @classmethod
    def _check_mix(cls, mix: dict[str, float]) -> dict[str, float]:
        """Known task names only, positive weights, at least one task."""
        if not mix:
            raise PydanticCustomError("mix_empty", "at least one task is needed, choose from {names}",
                                      {"names": ", ".join(TASK_NAMES)})
        for task, weight in mix.items():
            if task not in TASK_NAMES:
                raise PydanticCustomError(
                    "unknown_task", "unknown task '{task}'{hint}; known tasks: {names}",
                    {"task": task, "hint": _did_you_mean(task, TASK_NAMES), "names": ", ".join(TASK_NAMES)},
                )
            if not weight > 0:
                raise PydanticCustomError("bad_weight", "weight of task '{task}' must be > 0 (got {w})",
                                          {"task": task, "w": weight})
        return mix

    @field_validator("train_from")
    @classmethod
    def _check_train_from(cls, value: str | list[str] | None) -> str | list[str] | None:
        """Non-empty names; a list names at least one source and none twice (a source listed twice would be
        drawn twice as often: say so instead of silently weighting it)."""
        names = value if isinstance(value, list) else [] if value is None else [value]
        if isinstance(value, list) and not value:
            raise PydanticCustomError("train_from_empty", "an empty list: name at least one source (e.g. [gsm8k, "
                                      "math]) or use null for the generators of tasks.mix")
        for name in names:
            if not name.strip():
                raise PydanticCustomError("train_from_blank", "a source name is empty")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise PydanticCustomError("train_from_duplicate", "source(s) listed twice: {dupes}",
                                      {"dupes": ", ".join(dupes)})
        return value

    @field_validator("difficulty")
    @classmethod
    def _check_difficulty(cls, value: tuple[int, int]) -> tuple[int, int]:
        """Both ends within 1..5, low <= high."""
        low, high = value
        if not (1 <= low <= 5 and 1 <= high <= 5):
            raise PydanticCustomError("difficulty_range", "both ends must be within 1..5 (got {v})",
                                      {"v": list(value)})
        if low > high:
            raise PydanticCustomError("difficulty_order", "low must be <= high (got {v})", {"v": list(value)})
        return value


class ModelConfig(_Strict):
    """Which policy model to start from (``r1lib.models``)."""

    preset: Literal["nano", "tiny", "small", "medium"] | None = Field(
        default="tiny",
        description="Size preset of the from-scratch 'V3-Base' analogue. The paper starts from "
        "DeepSeek-V3-Base, a 671B MoE (docs/paper.md §3); a CPU can only pretrain a tiny model.",
    )
    path: str | None = Field(
        default=None,
        description="HF checkpoint folder or hub id; when set it overrides `preset`.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="Parameter dtype; float32 on CPU.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="'auto' picks cuda when available, else cpu.")

    @model_validator(mode="after")
    def _preset_or_path(self) -> "ModelConfig":
        """At least one of preset and path must be given."""
        if self.preset is None and self.path is None:
            raise PydanticCustomError("model_source", "set model.preset or model.path (both are null)")
        return self


class PretrainConfig(_Strict):
    """Pretraining of the tiny base model on the synthetic corpus (stands in for V3-Base)."""

    steps: PositiveInt = Field(default=600, description="Optimizer steps.")
    batch_size: PositiveInt = Field(default=32, description="Sequences per step.")
    seq_len: PositiveInt = Field(default=256, description="Tokens per sequence.")
    lr: PositiveFloat = Field(default=3e-3, description="Peak learning rate (AdamW, cosine decay).")
    warmup_steps: NonNegativeInt = Field(default=30, description="Linear warm-up steps.")
    corpus_size: PositiveInt = Field(default=20000, description="Documents in the synthetic corpus.")
    vocab_size: Annotated[int, Field(ge=260)] = Field(
        default=1024, description="BPE vocabulary size; >= 260 (256 bytes + special tokens).")
    checkpoint_every: PositiveInt = Field(default=100, description="Save a checkpoint every N steps.")
    compile: bool = Field(
        default=False, description="Train through torch.compile (inductor: fused element-wise kernels; needs a C++ "
        "compiler): faster steps after a compilation of seconds to tens of seconds (results/benchmarks/"
        "peak_share.json, `pretraining.compiled`); off by default, since it changes the float rounding and with it "
        "the committed base model.")
    corpus: "CorpusConfig" = Field(default_factory=lambda: CorpusConfig(),
                                   description="Proportions of the synthetic corpus (r1lib.corpus).")


_CORPUS_FRAMES = ("r1_format", "r1_loose", "plain")
_CORPUS_STYLES = ("direct", "short", "careful")
_Share = Annotated[float, Field(ge=0, le=1)]


class CorpusConfig(_Strict):
    """What the pretraining corpus of the embedded base model is made of (``r1lib.corpus``).

    The design: under the R1-Zero template the corpus mostly answers directly; step-by-step solutions are
    common only in the plain Q/A layout. So the base model has a reliable procedure that it rarely uses
    under the template, and RL has a skill to amplify (README, "The embedded base model").
    """

    frames: dict[str, float] = Field(
        default_factory=lambda: {"r1_format": 0.2, "r1_loose": 0.2, "plain": 0.6},
        description="Layout weights: the R1-Zero template with <think>/<answer> tags, the template with other "
        "answer layouts, and plain Q/A documents.")
    template_styles: dict[str, float] = Field(
        default_factory=lambda: {"direct": 0.75, "short": 0.1, "careful": 0.15},
        description="Style weights under the R1-Zero template (frames r1_format and r1_loose).")
    plain_styles: dict[str, float] = Field(
        default_factory=lambda: {"direct": 0.1, "short": 0.3, "careful": 0.6},
        description="Style weights in plain Q/A documents.")
    self_correction: _Share = Field(
        default=0.3, description="Share of careful solutions with one slip caught and fixed ('... = 15. Wait, "
        "... = 16'): the behaviour behind the paper's aha moment.")
    language_mix: _Share = Field(
        default=0.1, description="Share of step-by-step solutions written with Chinese connectives, for the "
        "language-consistency reward (docs/paper.md §1.3).")
    general: _Share = Field(
        default=0.05, description="Share of non-reasoning documents (greetings, instructions, facts about a "
        "synthetic world: r1lib.tasks.general), for the SFT and preference stages of the R1 pipeline.")
    wrong_answers: _Share = Field(
        default=0.0, description="Share of solutions whose final answer is wrong on purpose (0: every document "
        "is correct; what a style achieves is measured on the base model's samples, not planted).")

    @field_validator("frames", "template_styles", "plain_styles")
    @classmethod
    def _check_weights(cls, value: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        """Known names, weights >= 0, at least one positive."""
        names = _CORPUS_FRAMES if info.field_name == "frames" else _CORPUS_STYLES
        for key, weight in value.items():
            if key not in names:
                raise PydanticCustomError("unknown_name", "unknown name '{key}'{hint}; known: {names}",
                                          {"key": key, "hint": _did_you_mean(key, names), "names": ", ".join(names)})
            if not weight >= 0:
                raise PydanticCustomError("bad_weight", "weight of '{key}' must be >= 0 (got {w})",
                                          {"key": key, "w": weight})
        if not any(w > 0 for w in value.values()):
            raise PydanticCustomError("mix_empty", "at least one weight must be > 0 (choose from {names})",
                                      {"names": ", ".join(names)})
        return value


PretrainConfig.model_rebuild()


class SamplingConfig(_Strict):
    """Default generation settings (``r1lib.sampling``)."""

    temperature: Annotated[float, Field(ge=0)] = Field(default=1.0, description="0 means greedy.")
    top_p: Annotated[float, Field(gt=0, le=1)] = Field(default=1.0, description="Nucleus mass, in (0, 1].")
    max_new_tokens: PositiveInt = Field(
        default=256, description="Generation cap. The paper allows 32,768 tokens (docs/paper.md §5); "
        "tiny models on CPU need far less.")
    stop: list[str] = Field(default_factory=lambda: ["</answer>"],
                            description="Stop strings; generation ends after the first one.")
    batch_size: PositiveInt = Field(default=64, description="Prompts per generate call.")


class EvalConfig(_Strict):
    """Evaluation protocol (``r1lib.evaluation``): pass@1 averaged over k samples, pass@k, cons@k."""

    benchmarks: list[str] = Field(default_factory=lambda: ["synthetic"],
                                  description="Benchmarks to evaluate ('synthetic' = tasks.n_test problems).")
    k: PositiveInt = Field(
        default=16, description="Samples per question. Paper: k = 64 for AIME/GPQA, 16 for MATH and "
        "Cons@16 on training curves (docs/paper.md §5).")
    temperature: Annotated[float, Field(ge=0)] = Field(
        default=0.6, description="Paper value 0.6; greedy decoding is avoided (docs/paper.md §5).")
    top_p: Annotated[float, Field(gt=0, le=1)] = Field(default=0.95, description="Paper value 0.95 (docs/paper.md §5).")
    max_new_tokens: PositiveInt = Field(
        default=256, description="Paper: 32,768 (docs/paper.md §5); deviation: CPU budget, tiny model.")
    limit: PositiveInt | None = Field(default=None, description="Evaluate only the first N questions per benchmark.")
    checkpoints: list[str] = Field(default_factory=list,
                                   description="Checkpoint folders to evaluate (empty: the base model and every "
                                   "trained stage of the experiment, r1lib.evaluation.resolve_checkpoints).")
    sampler: Literal["kv", "hf", "vllm"] = Field(
        default="kv", description="Generation back-end for evaluation: 'kv' the KV-cache sampler (CPU default, "
        "any transformers causal LM), 'hf' model.generate, 'vllm' on GPUs (the gpu extra).")


class VLLMConfig(_Strict):
    """vLLM rollouts for the RL engine (``rl.sampler: vllm``, GPUs only; ``r1lib.sampling_vllm``). The fields are
    TRL's ``VLLMGeneration`` arguments (GRPOConfig's ``vllm_*``), with TRL's GRPO defaults except sleep mode."""

    mode: Literal["colocate", "server"] = Field(
        default="colocate", description="'colocate': a vLLM engine in each training process, on its GPU; 'server': "
        "a separate `trl vllm-serve` process on GPUs of its own (weights broadcast after each step).")
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.3, description="colocate: share of each GPU vLLM may take (weights + KV cache); TRL's default 0.3.")
    enable_sleep_mode: bool = Field(
        default=True, description="colocate: free vLLM's weights and KV cache between rollouts (sleep level 2), so "
        "the optimizer step has the memory; weights are pushed again before the next rollout.")
    tensor_parallel_size: PositiveInt = Field(
        default=1, description="colocate: GPUs per vLLM engine; must divide the number of processes.")
    max_model_length: PositiveInt | None = Field(
        default=None, description="Prompt + completion tokens vLLM plans for (None: the model's context).")
    server_base_url: str | None = Field(
        default=None, description="server: e.g. http://node1:8000 (wins over server_host / server_port).")
    server_host: str = Field(default="0.0.0.0", description="server: host of `trl vllm-serve`.")
    server_port: PositiveInt = Field(default=8000, description="server: HTTP port of `trl vllm-serve`.")
    group_port: PositiveInt = Field(default=51216, description="server: port of the weight-broadcast NCCL group.")
    server_timeout: PositiveFloat = Field(default=240.0, description="server: seconds to wait for the server.")


class RLConfig(_Strict):
    """RL stage: the r1lib engine (``r1lib.training.rl``) with GRPO, Dr. GRPO, RLOO or PPO.

    Paper values (docs/paper.md §2.2) and our tiny defaults, each deviation because a CPU run has a few
    hundred steps of a ~1M-parameter model: lr (paper 3e-6), 64 completions per step (paper 512 =
    32 questions x 16), G = 8 (paper 16), clip 0.2 (paper epsilon = 10 for R1 stage 1), 4 mini-batches
    (paper 16), 128 new tokens (paper 32,768 then 65,536). The reference reset and the length
    expansion keep the paper's *fractions* of the run (r1lib.algorithms.schedules).
    """

    algorithm: Literal["grpo", "ppo", "dr_grpo", "rloo"] = Field(
        default="grpo", description="Policy-gradient algorithm; the paper uses GRPO (docs/paper.md §2.1; PPO ablation §8).")
    steps: PositiveInt = Field(default=100, description="Policy updates (paper: 10,400 for R1-Zero, docs/paper.md §2.2).")
    batch_size: PositiveInt = Field(
        default=64, description="Completions per step (paper: 512 = 32 questions x G 16, docs/paper.md §2.2).")
    num_generations: Annotated[int, Field(ge=2)] = Field(
        default=8, description="Group size G (paper: 16, docs/paper.md §2.2); must divide batch_size.")
    lr: PositiveFloat = Field(
        default=1e-5, description="Learning rate, constant (paper: 3e-6, docs/paper.md §2.2; larger for a tiny model "
        "and a short run).")
    weight_decay: Annotated[float, Field(ge=0)] = Field(default=0.0, description="AdamW weight decay (paper: not stated).")
    max_grad_norm: PositiveFloat | None = Field(default=1.0, description="Gradient clipping (paper: not stated).")
    beta: Annotated[float, Field(ge=0)] = Field(default=0.001, description="KL coefficient (paper: 0.001, docs/paper.md §2.2).")
    epsilon: PositiveFloat = Field(
        default=0.2, description="Clip ratio. Paper: 10 for R1 RL stage 1 (docs/paper.md §2.2); 0.2 is the "
        "PPO/TRL default, safer for a tiny model with few samples per step.")
    ref_reset_every: PositiveInt | None = Field(
        default=None, description="Reset the reference model to the policy every N steps. None = the paper's "
        "400 of 10,400 steps scaled to rl.steps (docs/paper.md §2.2).")
    mini_batches: PositiveInt = Field(
        default=4, description="Mini-batches per rollout batch, one inner epoch (paper: 16, docs/paper.md §2.2); "
        "must divide batch_size.")
    micro_batches: PositiveInt = Field(
        default=1, description="Forward/backward passes per mini-batch (gradient accumulation), its rows sorted by "
        "length so that each pass carries little padding; also the chunks of the reference / old log-prob passes. "
        "The same update up to float rounding (tests/test_rl_resume.py), less compute. At most one pass per row (a "
        "smaller mini-batch gets fewer passes). 1: one pass per mini-batch. Not under DeepSpeed (its engine owns "
        "gradient accumulation).")
    share_prefix: bool = Field(
        default=False, description="Compute the prompt prefix that all rows of a pass share (the R1-Zero template) "
        "once per forward pass and reuse its keys/values, with their gradient, for every row "
        "(r1lib.training.rl.sequence_logprobs): the same log-probs and gradients to float rounding, fewer tokens. "
        "On in experiments/default.yaml, with rl.micro_batches 2 (results/benchmarks/engine_settings.json: the part "
        "of a step after generation 0.69 s against 1.04 s for one plain pass from the base model, 0.91 s against "
        "1.17 s from the R1-Zero policy). Ignored with gradient checkpointing (transformers then turns the cache off).")
    max_new_tokens: PositiveInt = Field(
        default=128, description="Completion cap during RL at step 0 (paper: 32,768, docs/paper.md §2.2).")
    max_new_tokens_schedule: list[tuple[Annotated[float, Field(ge=0, le=1)], PositiveInt]] = Field(
        default_factory=list, description="Step schedule of the cap: [[fraction_of_run, tokens], ...]. The paper: "
        "[[0.7885, 65536]] (32,768 -> 65,536 at step 8,200 of 10,400, docs/paper.md §2.2).")
    temperature: Annotated[float, Field(gt=0)] = Field(
        default=1.0, description="Rollout temperature (paper: 1.0, 0.7 in stage 2, docs/paper.md §2.2).")
    loss_aggregation: Literal["sequence", "token", "dr_grpo"] = Field(
        default="sequence", description="How per-token losses are averaged: not specified by R1 "
        "(docs/paper.md §2.1); 'sequence' = DeepSeekMath's 1/|o_i| mean per sequence, then over the batch "
        "(TRL loss_type='grpo'); 'token' = DAPO; 'dr_grpo' = a constant B x max_new_tokens.")
    rewards: dict[str, Any] = Field(
        default_factory=lambda: {"accuracy": 1.0, "format": 1.0},
        description="Reward name -> weight (or {weight, ...options}); accuracy and format with the same "
        "weight (docs/paper.md §1.2).")
    sampler: Literal["kv", "hf", "vllm"] = Field(
        default="kv", description="Rollout back-end: 'kv' the lean KV-cache sampler (CPU default), 'hf' "
        "model.generate, 'vllm' on GPUs (rl.vllm; TRL's vLLM integration, r1lib.sampling_vllm).")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig, description="vLLM settings for rl.sampler: vllm.")
    prompt_format: Literal["r1_zero", "chat"] = Field(
        default="r1_zero", description="How problems become prompts for rollouts and held-out evaluation: the "
        "R1-Zero template (docs/paper.md §1.1) or the model's chat template (DeepSeek-R1 and the pipeline's "
        "Dev1-3 / R1 checkpoints; use the 'readable_format' reward with it).")
    num_threads: PositiveInt | None = Field(default=None, description="torch threads while sampling (None: unchanged).")
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in the backward pass (transformers' gradient "
        "checkpointing; TRL's default): much less memory for long completions of large models, ~30% more compute.")
    checkpoint_every: PositiveInt = Field(default=50, description="Save a checkpoint every N steps.")
    keep_checkpoints: PositiveInt = Field(default=2, description="Newest checkpoints kept on disk.")
    eval_every: PositiveInt = Field(default=25, description="Held-out evaluation every N steps (and at 0, at the end, and right before the length cap changes).")
    eval_k: PositiveInt = Field(default=8, description="Samples per held-out question during training (pass@1, cons@k).")
    eval_limit: PositiveInt | None = Field(default=None, description="Held-out questions used during training (None: all).")
    # PPO only (issue: GRPO vs PPO on one engine; docs/paper.md §8).
    gamma: Annotated[float, Field(ge=0, le=1)] = Field(default=1.0, description="PPO: GAE discount.")
    lam: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.95, description="PPO: GAE lambda (0.95 the common default; the paper's tuned value is 1.0, docs/paper.md §8).")
    critic: Literal["value_head", "separate"] = Field(
        default="value_head", description="PPO: a value head on a copy of the policy's base model, or a separate "
        "small model (rl.critic_preset).")
    critic_preset: Literal["nano", "tiny", "small", "medium"] = Field(
        default="nano", description="PPO with critic='separate': the critic's model preset.")
    critic_lr: PositiveFloat | None = Field(default=None, description="PPO: critic learning rate (None: 10 x rl.lr).")
    value_clip: PositiveFloat = Field(default=0.2, description="PPO: value-loss clip range.")
    vf_coef: PositiveFloat = Field(default=0.5, description="PPO: value-loss coefficient.")
    kl_in: Literal["reward", "loss"] = Field(
        default="reward", description="PPO: per-token KL as a dense reward (classic PPO-RLHF) or k3 in the loss as GRPO.")

    @model_validator(mode="after")
    def _divisibility(self) -> "RLConfig":
        """Groups and mini-batches must tile the batch exactly."""
        if self.batch_size % self.num_generations:
            raise PydanticCustomError(
                "not_divisible", "rl.num_generations ({g}) must divide rl.batch_size ({b})",
                {"g": self.num_generations, "b": self.batch_size})
        if self.batch_size % self.mini_batches:
            raise PydanticCustomError(
                "not_divisible", "rl.mini_batches ({m}) must divide rl.batch_size ({b})",
                {"m": self.mini_batches, "b": self.batch_size})
        return self


class PipelineConfig(_Strict):
    """The multi-stage DeepSeek-R1 pipeline (notebook 04, ``r1lib.pipeline``; docs/paper.md §3).

    Sizes are the paper's *shape* at CPU scale (DEVIATION: the paper's cold start has "thousands" of examples,
    stage 3 about 800k, stage 4 1,700 RL steps). The RL stages take every other setting from ``rl``.
    """

    cold_start_prompts: PositiveInt = Field(default=300, description="Training prompts sampled from the R1-Zero "
                                            "policy for the cold-start data (paper: 'thousands' of examples).")
    cold_start_samples: PositiveInt = Field(default=4, description="Samples per cold-start prompt, at T 1.0 (paper).")
    samples_kept_per_prompt: PositiveInt = Field(default=2, description="Most distinct kept traces per prompt "
                                                 "(cold start and rejection sampling), for diversity.")
    demonstrations: NonNegativeInt = Field(default=60, description="Templated long-CoT demonstrations added to the "
                                           "cold-start data (the paper's few-shot route).")
    sft_epochs: PositiveFloat = Field(
        default=6.0, description="SFT epochs of the cold start and of stage 3 (DEVIATION: paper 2, docs/paper.md "
        "§2.2). Our SFT sets are a few hundred distinct traces (correct careful traces of one problem are mostly "
        "identical, so more samples per prompt add few rows) in a layout the base never saw (the chat template): "
        "in a calibration run on the default models (not committed), at 2 epochs (~50 steps) the tiny model "
        "learned the format but copied the first operand wrong (held-out pass@1 0.2%); at 6 epochs (150 steps) "
        "91% (results/r1_pipeline: Dev1 91.2%).")
    sft_lr: PositiveFloat = Field(default=1e-3, description="SFT peak lr, cosine to 1/10 (paper 5e-6 for V3-Base; "
                                  "a 0.9M-parameter model needs far more).")
    sft_batch_size: PositiveInt = Field(default=16, description="SFT batch size (paper: 64).")
    sft_max_length: PositiveInt = Field(default=320, description="SFT sequence length in tokens.")
    stage2_steps: PositiveInt = Field(default=30, description="Reasoning-oriented RL steps from Dev1.")
    lc_weight: Annotated[float, Field(ge=0)] = Field(
        default=1.0, description="Weight of the language-consistency reward, summed with accuracy and format "
        "(paper eq. 7, docs/paper.md §1.3).")
    lc_ablation: bool = Field(default=True, description="Also run stage 2 without the LC reward (v2 B.6, Fig. 7).")
    rejection_prompts: PositiveInt = Field(default=300, description="Training prompts sampled from Dev2 for stage 3.")
    rejection_samples: PositiveInt = Field(default=4, description="Samples per stage-3 prompt.")
    general_share: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.25, description="Non-reasoning share of the stage-3 SFT data (paper: 200k of 800k).")
    rm_pairs: PositiveInt = Field(default=600, description="Preference pairs for the reward model (paper: 66,000).")
    rm_epochs: PositiveFloat = Field(default=2.0, description="Reward-model epochs (paper: 1).")
    rm_lr: PositiveFloat = Field(default=1e-3, description="Reward-model lr (paper 6e-6; a 0.9M model).")
    stage4_steps: PositiveInt = Field(default=30, description="RL steps of the all-scenario stage (paper: 1,700).")
    stage4_temperature: Annotated[float, Field(gt=0)] = Field(
        default=0.7, description="Rollout temperature of the last stage (paper: 0.7; higher was incoherent).")
    preference_fraction: Annotated[float, Field(gt=0, le=1)] = Field(
        default=400 / 1700, description="Final share of the last stage that adds general prompts and the preference "
        "reward (paper: the last 400 of 1,700 steps).")
    stage4_general_share: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.25, description="Share of general (non-reasoning) prompts in that final part.")
    rl_eval_problems: PositiveInt = Field(default=64, description="Held-out problems of the quick check at the start "
                                          "and end of each RL stage (the full evaluation is the table's).")
    rl_eval_k: PositiveInt = Field(default=4, description="Samples per problem of that quick check.")
    eval_k: PositiveInt = Field(default=4, description="Samples per held-out problem for the table of checkpoints "
                                "(pass@1 averaged over k, cons@k; T and top-p of `eval`, docs/paper.md §5).")
    if_eval_prompts: PositiveInt = Field(default=64, description="Rule-checked instruction-following prompts "
                                         "(the IF-Eval analogue) in the final evaluation.")


class DistillConfig(_Strict):
    """Distillation of the R1 analogue into smaller students, and RL on the same student for comparison
    (notebook 05, ``r1lib.distillation``; docs/paper.md §4, v1 Tables 5-6).

    The paper fine-tunes six dense students on the same ~800k rows as stage 3 (SFT only, 2-3 epochs, lr cosine to
    a tenth, batch 64). Here the teacher's own samples on training prompts, only verified ones, plus the
    non-reasoning rows, or a file of verified traces (``data_from``) at the real scale.
    """

    teacher: str | None = Field(
        default=None, description="The teacher (a Hugging Face folder or hub id, chat format). None: the R1 analogue "
        "of notebook 04, <runs_dir>/r1_pipeline/r1/mixed/policy. Not needed when `data_from` is set.")
    students: list[str] = Field(
        default_factory=lambda: ["nano", "tiny"], min_length=1,
        description="Student base models, smallest first: a size preset (pretrained on the teacher base's corpus "
        "and tokenizer with the `pretrain` settings; the experiment's own `model.preset` is the teacher's base "
        "itself) or a Hugging Face folder / hub id (e.g. Qwen/Qwen2.5-Math-1.5B). The first one is also trained "
        "with RL directly (the v1 Table 6 comparison).")
    data_from: str | None = Field(
        default=None, description="Verified traces instead of sampling the teacher: a local .jsonl/.json/.parquet "
        "file, a datasets folder, or a hub dataset (e.g. open-r1/OpenR1-Math-220k). Rows with `messages`, or "
        "`problem` + `generations` (+ `correctness_math_verify`), or `problem` + `solution` + `answer` "
        "(r1lib.distillation.verified_traces).")
    data_config: str | None = Field(default=None, description="Hub dataset configuration (e.g. 'math' for "
                                    "open-r1/Mixture-of-Thoughts).")
    data_split: str = Field(default="train", min_length=1, description="Split of `data_from`.")
    data_limit: PositiveInt | None = Field(default=None, description="Use at most this many rows of `data_from`.")
    prompts: PositiveInt = Field(default=400, description="Training prompts the teacher answers (another seed of the "
                                 "train split than the pipeline's stages).")
    samples: PositiveInt = Field(default=4, description="Teacher samples per prompt (only verified ones are kept).")
    kept_per_prompt: PositiveInt = Field(default=2, description="Most distinct kept traces per prompt.")
    temperature: Annotated[float, Field(gt=0)] = Field(default=1.0, description="Teacher sampling temperature "
                                                       "(the same as stage 3's rejection sampling).")
    general_share: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.25, description="Non-reasoning share of the SFT data (paper: 200k of 800k).")
    epochs: PositiveFloat = Field(
        default=6.0, description="SFT epochs (DEVIATION: paper 2-3; the same reason as PipelineConfig.sft_epochs: "
        "a few hundred distinct traces in a layout the bases never saw).")
    lr: PositiveFloat = Field(default=1e-3, description="Peak SFT lr, cosine to a tenth (paper 1e-4 for the 1.5B "
                              "student, 2e-5 for the 70B).")
    batch_size: PositiveInt = Field(default=16, description="SFT batch size (paper: 64).")
    max_length: PositiveInt = Field(default=320, description="SFT sequence length in tokens (paper: 32,768).")
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1,
                             description="Seeds of the distillation-vs-RL comparison on the first student (SFT "
                             "order and RL sampling); the other students are distilled with the first seed.")
    rl_steps: PositiveInt = Field(default=60, description="GRPO steps of R1-Zero-style RL on the first student's "
                                  "base (every other setting from `rl`, as in notebook 01).")
    rl_after_distill_steps: NonNegativeInt = Field(
        default=0, description="Optional row: this many GRPO steps (chat format, accuracy + readable format) on "
        "the distilled first student (the paper notes RL 'could substantially boost' distilled models); 0: off.")
    eval_k: PositiveInt = Field(default=4, description="Samples per held-out problem for the tables (pass@1 over "
                                "k, cons@k; T and top-p of `eval`).")

    @field_validator("students")
    @classmethod
    def _distinct_students(cls, value: list[str]) -> list[str]:
        """Each student is trained into a folder named after it, so names must differ."""
        if len(set(value)) != len(value):
            raise PydanticCustomError("duplicate_student", "each student may appear once (got {v})", {"v": value})
        return value


class TrackingConfig(_Strict):
    """Metrics tracking (``r1lib.tracking``): a local JSONL log always, W&B optionally."""

    wandb_mode: Literal["offline", "online", "disabled"] = Field(
        default="offline", description="W&B mode; the environment variable WANDB_MODE wins when set.")
    project: str = Field(default="r1lib", min_length=1, description="W&B project name.")
    group: str | None = Field(default=None, min_length=1, description="W&B run group (None: the experiment name); "
                              "the job type is the stage (r1lib.tracking.stage_job_type). docs/tracking.md.")


# --------------------------------------------------------------------------------------------
# Experiment
# --------------------------------------------------------------------------------------------


class ExperimentConfig(_Strict):
    """A whole experiment: what to run (notebooks) and every setting they use."""

    name: str = Field(description="Experiment name: letters, digits, '_' and '-' (used in paths).")
    seed: int = Field(default=0, description="Global random seed.")
    results_dir: str = Field(
        default="results/{name}", description="Executed notebooks, tables, figures, metrics (committed). "
        "'{name}' is replaced by the experiment name; relative to the repository root.")
    stages_dir: str = Field(
        default="results/{name}", description="Per-stage outputs (metrics.json, tables, figures) go to "
        "<stages_dir>/<stage>/ (e.g. base_model, r1_zero). The default experiment sets 'results' so that the "
        "README's tables cite results/<stage>/. '{name}' is replaced by the experiment name.")
    runs_dir: str = Field(
        default="runs/{name}", description="Checkpoints and large artifacts (gitignored). "
        "'{name}' is replaced by the experiment name; relative to the repository root.")
    notebooks: list[NotebookEntry] = Field(description="Notebooks the runner executes, in order.")
    tasks: TasksConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig, description="Slurm job resources of every notebook (--executor slurm); a notebook entry's `slurm` sets fields over it.")

    _config_path: Path | None = PrivateAttr(default=None)
    _root: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        """Identifier characters only, since the name becomes a folder name."""
        if not _NAME_RE.match(value):
            raise PydanticCustomError(
                "bad_name", "must contain only letters, digits, '_' and '-' and not start with '-'",
                {"v": value})
        return value

    @field_validator("notebooks", mode="before")
    @classmethod
    def _strings_to_entries(cls, value: Any) -> Any:
        """Accept ``- notebooks/x.ipynb`` as shorthand for ``- {path: notebooks/x.ipynb}``."""
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("notebooks")
    @classmethod
    def _unique_names(cls, value: list[NotebookEntry]) -> list[NotebookEntry]:
        """Executed copies are stored by file name, so file names must be unique."""
        seen: set[str] = set()
        for entry in value:
            file_name = Path(entry.path).name
            if file_name in seen:
                raise PydanticCustomError("duplicate_notebook",
                                          "notebook file name '{n}' appears twice (outputs would collide)",
                                          {"n": file_name})
            seen.add(file_name)
        for i, entry in enumerate(value):
            earlier = {n: Path(e.path).name for e in value[:i] for n in (Path(e.path).name, Path(e.path).stem)}
            for need in entry.needs or ():
                if need not in earlier:
                    listed = ", ".join(Path(e.path).stem for e in value[:i]) or "none"
                    raise PydanticCustomError(
                        "unknown_need", "notebooks[{i}] ({n}): needs '{need}', which is not a notebook listed before "
                        "it (listed before it: {listed})", {"i": i, "n": Path(entry.path).stem, "need": need,
                                                            "listed": listed})
        return value

    @model_validator(mode="after")
    def _fill_templates(self) -> "ExperimentConfig":
        """Replace '{name}' in results_dir and runs_dir."""
        for field in ("results_dir", "stages_dir", "runs_dir"):
            raw = getattr(self, field)
            try:
                filled = raw.format(name=self.name)
            except (KeyError, IndexError, ValueError) as exc:
                raise PydanticCustomError(
                    "bad_template", "field '{field}': the only placeholder allowed is {placeholder} (got '{raw}')",
                    {"field": field, "placeholder": "'{name}'", "raw": raw}) from None
            if filled != raw:
                # object.__setattr__ avoids re-running validators through validate_assignment.
                object.__setattr__(self, field, filled)
        return self

    # -- paths -----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path | None:
        """Absolute path of the YAML file this config was loaded from (None if built in code)."""
        return self._config_path

    @property
    def root(self) -> Path:
        """The repository root that relative paths refer to (cwd if built in code)."""
        return self._root if self._root is not None else Path.cwd()

    def _abs(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def results_path(self) -> Path:
        """``results_dir`` as an absolute path."""
        return self._abs(self.results_dir)

    def stage_path(self, stage: str) -> Path:
        """Absolute folder of one pipeline stage's outputs: ``<stages_dir>/<stage>``."""
        return self._abs(self.stages_dir) / stage

    @property
    def runs_path(self) -> Path:
        """``runs_dir`` as an absolute path."""
        return self._abs(self.runs_dir)

    @property
    def base_model(self) -> str:
        """The model RL and the R1 pipeline start from: ``model.path`` when set (a Hugging Face folder or hub id:
        the real scale), else ``<runs_dir>/base_model`` (the embedded base model notebook 00 pretrains)."""
        if self.model.path:
            local = self._abs(self.model.path)
            return str(local) if local.exists() else self.model.path
        return str(self.runs_path / "base_model")

    def notebook_path(self, entry: NotebookEntry) -> Path:
        """Absolute path of a notebook entry (searched in the root, then the config file's folder)."""
        found = _resolve_existing(entry.path, self._search_dirs())
        return found if found is not None else self._abs(entry.path)

    def _search_dirs(self) -> list[Path]:
        dirs = [self.root]
        if self._config_path is not None and self._config_path.parent not in dirs:
            dirs.append(self._config_path.parent)
        return dirs


# --------------------------------------------------------------------------------------------
# Helpers: paths, messages
# --------------------------------------------------------------------------------------------


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` that holds pyproject.toml or .git; else ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in _ROOT_MARKERS):
            return folder
    return start


def _search_dirs(info: ValidationInfo) -> list[Path]:
    context = info.context if isinstance(info.context, Mapping) else {}
    dirs = context.get("search_dirs")
    return [Path(d) for d in dirs] if dirs else [Path.cwd()]


def _resolve_existing(path: str, dirs: Sequence[Path]) -> Path | None:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p if p.is_file() else None
    for d in dirs:
        if (d / p).is_file():
            return (d / p).resolve()
    return None


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _loc_str(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (X, X | None, list[X], Annotated[X, ...])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _is_mapping_type(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (dict, Mapping):
        return True
    if origin in (Union, types.UnionType, Annotated):
        return any(_is_mapping_type(a) for a in typing.get_args(annotation))
    return False


def _fields_of(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the model that contains the field at ``loc`` (for did-you-mean)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(str(part))
        current = _submodel(info.annotation) if info is not None else None
    return list(current.model_fields) if current is not None else []


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Error types raised by the validators above; their messages already show the offending value.
_OWN_ERROR_TYPES = frozenset({
    "notebook_missing", "mix_empty", "unknown_task", "bad_weight", "unknown_name", "difficulty_range", "difficulty_order",
    "model_source", "not_divisible", "bad_name", "duplicate_notebook", "bad_template", "slurm_extra",
})


def _format_validation_error(source: str, err: ValidationError, prefix: str = "") -> str:
    """One line per error: '<file>: field '<loc>': <message> (got <input>)'."""
    lines = []
    for e in err.errors(include_url=False):
        loc = e["loc"]
        where = _loc_str(loc)
        if e["type"] == "extra_forbidden":
            parent = [str(p) for p in loc[:-1] if not isinstance(p, int)]
            hint = _did_you_mean_path(parent, str(loc[-1]), _fields_of(ExperimentConfig, loc)) if loc else ""
            lines.append(f"{source}: {prefix}unknown field '{where}'{hint}")
            continue
        msg = e["msg"]
        if msg.startswith(("Value error, ", "Assertion failed, ")):
            msg = msg.split(", ", 1)[1]
        got = ""
        if (e["type"] not in _OWN_ERROR_TYPES and e["type"] != "missing" and "input" in e
                and not isinstance(e["input"], (dict, list))):
            got = f" (got {_short_repr(e['input'])})"
        field = f"field '{where}': " if where else ""
        lines.append(f"{source}: {prefix}{field}{msg}{got}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------


def named_overrides(overrides: Mapping[str, Any] | None, named: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a notebook's named papermill parameters (``None`` = keep the config) over ``overrides``.

    Notebooks expose a few convenient parameters (``steps = None`` ...); this maps them onto the same
    dotted config fields that ``--set`` uses, so there is one configuration system.
    """
    merged = dict(overrides or {})
    merged.update({key: value for key, value in named.items() if value is not None})
    return merged


def parse_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """Normalize overrides to ``{dotted_key: value}``.

    ``"key=value"`` strings are split at the first '=' and the value parsed with ``yaml.safe_load``
    (so ``8`` is an int, ``[a, b]`` a list, ``null`` None). A mapping is returned as a copy.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, (str, bytes)):
        raise ConfigError(f"overrides must be a list of 'key=value' strings or a dict, got the string {overrides!r}")
    out: dict[str, Any] = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. rl.batch_size=8)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from None
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any] | Sequence[str] | None,
                    model: type[BaseModel] | None = None) -> dict[str, Any]:
    """Return a deep copy of the raw config mapping ``data`` with the overrides applied.

    Keys are checked against the schema of ``model`` (default :class:`ExperimentConfig`): an unknown
    key raises ``ConfigError("unknown field 'rl.bach_size' (did you mean 'rl.batch_size'?)")``.
    Values are not validated here; that happens when the result is validated.
    """
    model = model or ExperimentConfig
    result = copy.deepcopy(dict(data))
    for key, value in parse_overrides(overrides).items():
        parts = [p for p in str(key).split(".")]
        if any(not p for p in parts):
            raise ConfigError(f"override key {key!r} is not a valid dotted key")
        _set_path(result, parts, copy.deepcopy(value), model, [])
    return result


def _set_path(node: dict[str, Any], parts: list[str], value: Any, model: type[BaseModel] | None,
              done: list[str]) -> None:
    """Set ``node[parts...] = value``, creating sections on the way, checking names against ``model``.

    ``model`` is the pydantic model describing ``node``; None means ``node`` is a free mapping
    (the value of a dict-typed field such as ``tasks.mix``).
    """
    head, rest = parts[0], parts[1:]
    here = done + [head]
    annotation: Any = None
    if model is not None:
        info = model.model_fields.get(head)
        if info is None:
            raise ConfigError(f"unknown field '{'.'.join(here)}'{_did_you_mean_path(done, head, list(model.model_fields))}")
        annotation = info.annotation
    sub_model = _submodel(annotation) if model is not None else None
    is_list = model is not None and typing.get_origin(annotation) is list
    if not rest:
        if sub_model is not None and not is_list and isinstance(value, Mapping):
            # A mapping for a section is merged key by key (each key checked).
            child = node.get(head)
            if not isinstance(child, dict):
                child = {}
                node[head] = child
            for k, v in value.items():
                _set_path(child, [str(k)], v, sub_model, here)
            return
        node[head] = value
        return
    if model is not None and (sub_model is None or is_list) and not _is_mapping_type(annotation):
        raise ConfigError(f"cannot set '{'.'.join(here + rest)}': '{'.'.join(here)}' is not a section")
    child = node.get(head)
    if child is None:
        child = {}
        node[head] = child
    elif not isinstance(child, dict):
        raise ConfigError(f"cannot set '{'.'.join(here + rest)}': '{'.'.join(here)}' is not a mapping in the file")
    _set_path(child, rest, value, sub_model if sub_model is not None and not is_list else None, here)


def _did_you_mean_path(done: list[str], head: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(head, choices, n=1, cutoff=0.6)
    return f" (did you mean '{'.'.join(done + [close[0]])}'?)" if close else ""


# --------------------------------------------------------------------------------------------
# Loading and saving
# --------------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _display_path(path: Path) -> str:
    """The path as given if relative to cwd, else as is (keeps messages short and recognisable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read config file: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            raise ConfigError(f"{shown}: line {mark.line + 1}, column {mark.column + 1}: "
                              f"YAML syntax error: {problem}") from None
        raise ConfigError(f"{shown}: YAML syntax error: {problem}") from None
    if data is None:
        raise ConfigError(f"{shown}: the file is empty; expected a mapping of config fields (name, notebooks, ...)")
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: the top level must be a mapping of config fields (name, notebooks, ...), "
                          f"got a {type(data).__name__}")
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{shown}: top-level keys must be strings, got {bad_keys[0]!r}")
    return data


def _merge_sections(base: dict[str, Any], child: Mapping[str, Any], model: type[BaseModel] | None) -> dict[str, Any]:
    """``child`` over ``base``: config sections (pydantic sub-models) are merged key by key, every other value
    (numbers, lists, free mappings such as ``tasks.mix``) is replaced as a whole."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        info = model.model_fields.get(key) if model is not None else None
        sub = _submodel(info.annotation) if info is not None else None
        is_list = info is not None and typing.get_origin(info.annotation) is list
        if sub is not None and not is_list and isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge_sections(out[key], value, sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_with_extends(path: Path, shown: str, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw mapping of an experiment file; ``extends: other.yaml`` (relative to the file) starts from that
    experiment and overrides it with this file's fields (sections merged, other values replaced)."""
    data = _read_yaml(path, shown)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{shown}: field 'extends': must name another experiment YAML file, got {parent!r}")
    parent_path = (path.parent / parent).resolve()
    if parent_path in seen or parent_path == path.resolve():
        raise ConfigError(f"{shown}: field 'extends': {parent} extends itself (a cycle)")
    if not parent_path.is_file():
        raise ConfigError(f"{shown}: field 'extends': file not found: {parent} (relative to {_display_path(path.parent)})")
    base = _read_with_extends(parent_path, _display_path(parent_path), seen + (path.resolve(),))
    return _merge_sections(base, data, ExperimentConfig)


def load_config(path: str | Path, overrides: Mapping[str, Any] | Sequence[str] | None = None, *,
                notebook: str | None = None) -> ExperimentConfig:
    """Load, override and validate an experiment YAML file.

    ``notebook`` (a notebook's file name or stem): apply the experiment's own overrides for that notebook (its
    entry in ``notebooks``) before ``overrides``, so that a notebook run on its own (Jupyter Lab, default
    parameters) gets the settings the runner gives it; under the runner, whose ``overrides`` already hold them,
    applying them again changes nothing.

    A file may start from another one with ``extends: <file>`` (see :func:`_read_with_extends`).
    A relative ``path`` not found from the working directory is looked up from the project root above it (a
    notebook in Jupyter runs in ``notebooks/``). Relative paths in the config (notebooks, results_dir, runs_dir) refer to the repository root:
    the nearest folder above the file holding pyproject.toml or .git (the file's folder if none).
    Notebook paths are also looked up relative to the file's folder. Each notebook entry's own
    overrides are validated too. Raises :class:`ConfigError` naming the file and the field.
    """
    path = Path(path).expanduser()
    shown = _display_path(path)
    if not path.is_file() and not path.is_absolute():
        # A notebook opened in Jupyter Lab runs in notebooks/: its default "experiments/default.yaml" is meant
        # relative to the project root, as under papermill (which runs notebooks there).
        at_root = find_project_root(Path.cwd()) / path
        path = at_root if at_root.is_file() else path
    if not path.is_file():
        raise ConfigError(f"config file not found: {shown}")
    data = _read_with_extends(path, shown)
    if notebook is not None:
        stem = Path(notebook).stem
        for entry in data.get("notebooks") or []:
            if isinstance(entry, Mapping) and Path(str(entry.get("path", ""))).stem == stem and entry.get("overrides"):
                try:
                    data = apply_overrides(data, entry["overrides"])
                except ConfigError as exc:
                    raise ConfigError(f"{shown}: notebook {stem}'s overrides: {exc}") from None
    try:
        data = apply_overrides(data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{shown}: override: {exc}") from None
    config_path = path.resolve()
    root = find_project_root(config_path.parent)
    search = [root] if root == config_path.parent else [root, config_path.parent]
    context = {"search_dirs": search}
    try:
        cfg = ExperimentConfig.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(shown, exc)) from None
    for i, entry in enumerate(cfg.notebooks):
        if not entry.overrides:
            continue
        where = f"notebooks[{i}].overrides ({Path(entry.path).name}): "
        try:
            ExperimentConfig.model_validate(apply_overrides(data, entry.overrides), context=context)
        except ConfigError as exc:
            raise ConfigError(f"{shown}: {where}{exc}") from None
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(shown, exc, prefix=where)) from None
    cfg._config_path = config_path
    cfg._root = root
    return cfg


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain JSON/YAML-able dict of the resolved config (tuples become lists)."""
    return cfg.model_dump(mode="json")


def save_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically); loading it gives an equal config."""
    path = Path(path)
    header = "# Resolved experiment config written by r1lib"
    if cfg.config_path is not None:
        header += f" from {cfg.config_path.name}"
    text = header + "\n" + yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
    atomic_write_text(path, text)
    return path
