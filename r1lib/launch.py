"""Launch the RL engine in its own process(es) with ``accelerate launch``.

The same command runs one CPU process, DDP on CPU (gloo), DDP on GPUs or DeepSpeed ZeRO-2 / ZeRO-3 (PPO's
critic included); only the accelerate config file changes (``experiments/accelerate/``, see its README)::

    accelerate launch --config_file experiments/accelerate/ddp_cpu_2proc.yaml \\
        -m r1lib train-rl experiments/default.yaml --init runs/default/base_model --out runs/default/r1_zero

From Python (a notebook), :func:`launch_rl` builds that command with :func:`accelerate_command`, runs it
as a subprocess, streams its output and raises :class:`LaunchError` with the tail of the log if it fails.

Inside the launched process :func:`make_accelerator` builds the ``Accelerator`` (the ``train-rl`` CLI
calls it). It fixes a silent accelerate pitfall: a multi-process launch on a machine without GPUs
(``distributed_type: MULTI_GPU`` in the config, i.e. torchrun) gives every process
``DistributedType.NO`` and ``num_processes == 1`` unless the Accelerator is built with ``cpu=True``;
each process would then train alone and all would write the same output folder. With ``cpu=True``
the processes form one MULTI_CPU group over gloo. DeepSpeed on CPU has the same trap in another form
(see :func:`make_accelerator`).

Under ZeRO-3 each process holds only a shard of every parameter. :func:`gathered_parameters`,
:func:`full_state_dict` and :func:`load_full_state_dict` give the whole tensors (DeepSpeed's
``GatheredParameters``; no-ops without ZeRO-3), and :func:`weights_checksum` gathers before summing. All of
them are collectives: every process must call them at the same point, or the run hangs.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LAUNCH_INFO_FILE",
    "LAUNCH_LOG_FILE",
    "LaunchError",
    "LaunchResult",
    "accelerate_command",
    "full_state_dict",
    "gathered_parameters",
    "is_partitioned",
    "launch_info",
    "launch_rl",
    "rl_result",
    "run_rl",
    "load_full_state_dict",
    "make_accelerator",
    "unwrap_for_generation",
    "weights_checksum",
]

LAUNCH_INFO_FILE = "launch.json"
LAUNCH_LOG_FILE = "train_rl.log"
TAIL_LINES = 60


class LaunchError(RuntimeError):
    """The launched training exited with a non-zero code; the message holds the command and the log's tail."""

    def __init__(self, message: str, *, returncode: int, command: Sequence[str], tail: str,
                 log_path: Path | None) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.command = list(command)
        self.tail = tail
        self.log_path = log_path


@dataclass
class LaunchResult:
    """A finished launch: the command, where its log and outputs are, how long it took."""

    command: list[str]
    out_dir: Path
    log_path: Path | None
    seconds: float

    @property
    def policy_path(self) -> Path:
        return self.out_dir / "policy"

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"


def _override_args(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``--set key=value`` pairs; mapping values are written as JSON, which YAML (the CLI's parser) reads back."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise TypeError(f"overrides must be a mapping or a list of 'key=value' strings, got the string {overrides!r}")
    items = ([f"{k}={json.dumps(v)}" for k, v in overrides.items()] if isinstance(overrides, Mapping)
             else [str(o) for o in overrides])
    args: list[str] = []
    for item in items:
        args += ["--set", item]
    return args


def accelerate_command(config_path: str | os.PathLike, *, init_model: str | os.PathLike, out_dir: str | os.PathLike,
                       accelerate_config: str | os.PathLike | None = None, num_processes: int | None = None,
                       overrides: Mapping[str, Any] | Sequence[str] | None = None, resume: bool = True,
                       main_process_port: int | None = 0, extra_launch_args: Sequence[str] = (),
                       python: str | None = None) -> list[str]:
    """The ``accelerate launch ... -m r1lib train-rl ...`` command line as a list (for ``subprocess``).

    ``accelerate`` is run as ``python -m accelerate.commands.launch`` with this interpreter (or
    ``python``), so the venv's accelerate is used whatever ``PATH`` says. ``main_process_port=0`` lets
    accelerate pick a free port, so that several launches on one machine do not collide (None: the
    config file's port or accelerate's 29500). ``extra_launch_args`` go to accelerate (e.g.
    ``["--use_deepspeed", "--zero_stage", "2"]``).
    """
    cmd = [python or sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config is not None:
        cmd += ["--config_file", str(accelerate_config)]
    if num_processes is not None:
        if num_processes < 1:
            raise ValueError(f"num_processes must be >= 1, got {num_processes}")
        cmd += ["--num_processes", str(num_processes)]
    if main_process_port is not None:
        cmd += ["--main_process_port", str(main_process_port)]
    cmd += [*map(str, extra_launch_args), "-m", "r1lib", "train-rl", str(config_path),
            "--init", str(init_model), "--out", str(out_dir), *_override_args(overrides)]
    if not resume:
        cmd.append("--no-resume")
    return cmd


def launch_rl(config_path: str | os.PathLike, *, init_model: str | os.PathLike, out_dir: str | os.PathLike,
              accelerate_config: str | os.PathLike | None = None, num_processes: int | None = None,
              overrides: Mapping[str, Any] | Sequence[str] | None = None, resume: bool = True,
              env: Mapping[str, str] | None = None, echo: Callable[[str], None] | None = None,
              timeout: float | None = None, **command_kw: Any) -> LaunchResult:
    """Run :func:`accelerate_command` as a subprocess, streaming its output line by line.

    Output goes to ``echo`` (default: this process's stdout, so a notebook shows it) and to
    ``<out_dir>/train_rl.log`` (appended: a resumed run keeps the earlier log). ``env`` is added to
    this process's environment. Raises :class:`LaunchError` with the last lines of the log when the
    command exits non-zero (or runs past ``timeout`` seconds, after which it is killed).
    """
    cmd = accelerate_command(config_path, init_model=init_model, out_dir=out_dir,
                             accelerate_config=accelerate_config, num_processes=num_processes,
                             overrides=overrides, resume=resume, **command_kw)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LAUNCH_LOG_FILE
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    write = echo if echo is not None else (lambda line: (sys.stdout.write(line), sys.stdout.flush()))
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    t0 = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        # A new session: the launcher and its worker processes form one group, killed together.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env,
                                text=True, errors="replace", bufsize=1, start_new_session=True)
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            _kill_group(proc)

        watchdog = threading.Timer(timeout, _kill) if timeout is not None else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                write(line)
            returncode = proc.wait()
        finally:  # also on KeyboardInterrupt in a notebook: do not leave the training running
            if watchdog is not None:
                watchdog.cancel()
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
    seconds = time.perf_counter() - t0
    if timed_out.is_set():
        text = "".join(tail)
        raise LaunchError(f"training did not finish within {timeout} s and was killed: {' '.join(cmd)}\n"
                          f"last {len(tail)} lines of {log_path}:\n{text}", returncode=returncode, command=cmd,
                          tail=text, log_path=log_path)
    if returncode != 0:
        text = "".join(tail)
        raise LaunchError(f"training failed (exit code {returncode}) after {seconds:.1f} s: {' '.join(cmd)}\n"
                          f"last {len(tail)} lines of {log_path}:\n{text}", returncode=returncode, command=cmd,
                          tail=text, log_path=log_path)
    return LaunchResult(command=cmd, out_dir=out, log_path=log_path, seconds=seconds)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher's process group (the launcher and the workers it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- inside the launched process -------------------------------------------------------------------


def _launched_world_size() -> int:
    """Processes the launcher started (torchrun / DeepSpeed / MPI environment), 1 for plain ``python``."""
    for var in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        if os.environ.get(var):
            return int(os.environ[var])
    return 1


def make_accelerator(**kwargs: Any) -> Any:
    """The ``Accelerator`` for a process started by ``accelerate launch``, torchrun or plain ``python``.

    Without GPUs: multi-process without DeepSpeed gets ``cpu=True``, so that the processes form one
    MULTI_CPU gloo group (see the module docstring). DeepSpeed must not get ``cpu=True`` (it would be
    silently turned off, docs/dependencies.md §1); it gets the backend ``gloo`` named instead, since
    otherwise accelerate sees 1 process (``backend is None``) while DeepSpeed's group holds all of them,
    and every process would write checkpoints and logs as the main one.
    Raises RuntimeError when the launcher started N > 1 processes but accelerate sees another number
    (every process would train alone).
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    world = _launched_world_size()
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
    if not torch.cuda.is_available():
        if deepspeed and "kwargs_handlers" not in kwargs:
            # Without a backend accelerate records DistributedType.NO / 1 process while DeepSpeed's own
            # group has all of them: every process would act as the main one. Name gloo explicitly.
            kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo")]
        elif world > 1 and not deepspeed and "cpu" not in kwargs:
            kwargs["cpu"] = True
    acc = Accelerator(**kwargs)
    if acc.num_processes != world:
        raise RuntimeError(f"the launcher started {world} processes but accelerate sees {acc.num_processes} "
                           f"(distributed type {acc.distributed_type}); each would train alone. Check the "
                           f"accelerate config (experiments/accelerate/README.md)")
    return acc


def _is_zero3(param: Any) -> bool:
    """A parameter partitioned by DeepSpeed ZeRO-3 (DeepSpeed marks them with ``ds_id``)."""
    return hasattr(param, "ds_id")


def is_partitioned(model: Any) -> bool:
    """Whether ``model`` was loaded partitioned by ZeRO-3 (then a deep copy would copy empty shards: load again)."""
    return any(_is_zero3(p) for p in model.parameters())


@contextmanager
def gathered_parameters(params: Iterable[Any], *, modifier_rank: int | None = None) -> Iterator[None]:
    """Inside the block, the ZeRO-3-partitioned tensors among ``params`` are whole on every process.

    DeepSpeed's ``zero.GatheredParameters``, entered only when some parameter is partitioned, so that the same
    code runs without DeepSpeed (or under ZeRO-1/2) at no cost. A collective: every process must enter.
    ``modifier_rank=None`` is read-only (DeepSpeed refuses in-place changes on exit); with a rank, that rank's
    values are broadcast and re-partitioned on exit (how to write into sharded weights).
    """
    sharded = [p for p in params if _is_zero3(p)]
    if not sharded:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(sharded, modifier_rank=modifier_rank):
        yield


@contextmanager
def unwrap_for_generation(model: Any, accelerator: Any) -> Iterator[Any]:
    """TRL's ``unwrap_model_for_generation`` (under ZeRO-3: the whole policy gathered once, DeepSpeed's per-layer
    fetch hooks removed for the block), made safe for generations that differ between processes.

    Why more than TRL: with DeepSpeed 0.19 the root module keeps one more forward pre-hook, which TRL does not
    remove: each forward pass starts with ``reset_step``, which, while the parameter trace is being recorded
    (always, right after TRL re-adds the hooks), broadcasts the module order to check it across processes. A
    generation runs one forward per token, so processes that generate different numbers of tokens, or only the
    main process (evaluation), issue unmatched broadcasts and hang (seen on CPU, 2 processes). That hook is
    detached for the block too and put back first in line, where DeepSpeed registered it; and ``generate`` runs
    with ``synced_gpus=False`` (below). Every process must enter (the gather is a collective); without ZeRO-3
    it only unwraps.
    """
    from trl.models import unwrap_model_for_generation

    with unwrap_model_for_generation(model, accelerator) as unwrapped:
        optimizer = getattr(model, "optimizer", None)  # ZeRO-3: the stage-3 optimizer, or the offload (as TRL)
        offload = getattr(optimizer, "parameter_offload", optimizer)
        handle = getattr(offload, "fwd_pre_hook", None)
        hook = offload.module._forward_pre_hooks.get(handle.id) if handle is not None else None
        if hook is None:
            yield unwrapped
            return
        handle.remove()
        # transformers' generate() defaults to synced_gpus=True under ZeRO-3: every process keeps stepping (an
        # all-reduce per token) until all are done, which hangs when only the main process generates. With the
        # weights gathered and no hooks there is nothing to keep in step, so each process generates on its own.
        own_generate = vars(unwrapped).get("generate")
        unwrapped.generate = functools.partial(type(unwrapped).generate, unwrapped, synced_gpus=False)
        try:
            yield unwrapped
        finally:
            if own_generate is None:
                del unwrapped.generate
            else:
                unwrapped.generate = own_generate
            offload.fwd_pre_hook = offload.module.register_forward_pre_hook(hook, prepend=True)


def full_state_dict(module: Any) -> dict[str, Any]:
    """A CPU copy of ``module.state_dict()`` with whole tensors, also when ZeRO-3 shards them (every process
    must call it; each gets the copy). ``module`` is the bare model, not a DeepSpeed engine."""
    with gathered_parameters(module.parameters()):
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def load_full_state_dict(module: Any, state: Mapping[str, Any]) -> None:
    """``module.load_state_dict(state)`` with whole tensors ``state``, also into ZeRO-3 shards (every process must
    call it with the same ``state``; rank 0's copy is what the shards keep)."""
    import torch

    with gathered_parameters(module.parameters(), modifier_rank=0), torch.no_grad():
        module.load_state_dict(state)


def weights_checksum(model: Any) -> str:
    """A float64 sum of every parameter, printed with full precision (``repr``): a cheap fingerprint to
    compare the replicas of a data-parallel run, or a run with a saved model.

    Under ZeRO-3 each process holds only a shard, so every parameter is gathered first, one at a time (the
    memory of one tensor): a collective, which every process must call before ``end_training`` destroys the
    process group. Gathered sums are equal on all processes by construction; what they show there is that the
    shards together are the saved model (tests/test_rl_distributed.py compares them with ``policy/``)."""
    import torch

    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            with gathered_parameters([p]):
                total += p.detach().double().sum().cpu()
    return repr(float(total))


def launch_info(acc: Any) -> dict[str, Any]:
    """How this run was launched (written to ``<out_dir>/launch.json`` by ``train-rl``)."""
    import torch

    state = acc.state
    ds = getattr(state, "deepspeed_plugin", None)
    info: dict[str, Any] = {
        "num_processes": acc.num_processes,
        "distributed_type": str(acc.distributed_type).split(".")[-1],
        "backend": getattr(state, "backend", None),
        "device": str(acc.device),
        "mixed_precision": str(acc.mixed_precision),
        "deepspeed_zero_stage": int(ds.zero_stage) if ds is not None else None,
        "torch": torch.__version__,
        "argv": sys.argv,
    }
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        info["backend"] = torch.distributed.get_backend()
    return info


LAUNCH_CONFIG_FILE = "launch_config.yaml"


def run_rl(cfg: Any, *, init_model: str | os.PathLike, out_dir: str | os.PathLike, resume: bool = True,
           progress: bool | str = "bar", echo: Callable[[str], None] | None = None) -> Any:
    """Notebook 01's training call: :func:`r1lib.training.rl.train_rl` in this process, or, when the experiment sets
    ``launch.accelerate_config``, the same training in ``accelerate launch`` processes (several GPUs: DDP or DeepSpeed)
    that this process starts and waits for. Either way the result is an :class:`r1lib.training.rl.RLResult`.

    The launched processes read the resolved config (with the notebook's overrides) from
    ``<out_dir>/launch_config.yaml``, so they train exactly what the notebook would have trained in-process; their
    output is streamed into the notebook and ``<out_dir>/train_rl.log``; a failure raises :class:`LaunchError` with
    the log's tail, and a rerun resumes from the newest checkpoint as an in-process run does.
    """
    from r1lib.config import ConfigError, save_config
    from r1lib.training.rl import train_rl

    launch = cfg.launch
    if not launch.accelerate_config:
        return train_rl(cfg, init_model=init_model, out_dir=out_dir, resume=resume, progress=progress)
    acc_cfg = Path(launch.accelerate_config).expanduser()
    acc_cfg = acc_cfg if acc_cfg.is_absolute() else cfg.root / acc_cfg
    if not acc_cfg.is_file():
        raise ConfigError(f"field 'launch.accelerate_config': file not found: {launch.accelerate_config} (relative to "
                          f"the project root {cfg.root})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = save_config(cfg, out / LAUNCH_CONFIG_FILE)
    launch_rl(resolved, init_model=init_model, out_dir=out, accelerate_config=acc_cfg,
              num_processes=launch.num_processes, resume=resume, echo=echo)
    return rl_result(out)


def rl_result(out_dir: str | os.PathLike) -> Any:
    """The :class:`r1lib.training.rl.RLResult` of a finished run, read back from ``<out_dir>/metrics.jsonl`` (the
    step lines are the history; the last held-out evaluation is ``final_eval``)."""
    from r1lib.training.rl import RLResult

    out = Path(out_dir)
    metrics = out / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    history = [r for r in rows if "loss" in r]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    final_eval = {k: v for k, v in evals[-1].items() if k.startswith("eval/")} if evals else {}
    return RLResult(out_dir=out, policy_path=out / "policy", metrics_path=metrics,
                    steps=int(history[-1]["step"]) if history else 0,
                    train_seconds=float(history[-1].get("train_seconds", 0.0)) if history else 0.0,
                    final_eval=final_eval, history=history)
