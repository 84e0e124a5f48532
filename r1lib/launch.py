"""Launch the RL engine in its own process(es) with ``accelerate launch``.

The same command runs one CPU process, DDP on CPU (gloo), DDP on GPUs or DeepSpeed ZeRO-2 (the engine
refuses ZeRO-3 for now); only the accelerate config file changes (``experiments/accelerate/``, see its
README)::

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
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LAUNCH_INFO_FILE",
    "LAUNCH_LOG_FILE",
    "LaunchError",
    "LaunchResult",
    "accelerate_command",
    "launch_info",
    "launch_rl",
    "make_accelerator",
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


def weights_checksum(model: Any) -> str:
    """A float64 sum of every parameter, printed with full precision (``repr``): a cheap fingerprint to
    compare the replicas of a data-parallel run. Under ZeRO-3 each process holds only a shard."""
    import torch

    with torch.no_grad():
        total = sum((p.detach().double().sum() for p in model.parameters()), torch.zeros((), dtype=torch.float64))
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
