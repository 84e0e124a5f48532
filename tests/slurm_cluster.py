"""A real single-node Slurm cluster on this machine, for tests/test_slurm.py.

Debian's ``slurm-wlm`` and ``munge`` packages provide the daemons (``apt-get install -y slurm-wlm munge``; .ci/run
installs them). :class:`LocalSlurmCluster` writes a slurm.conf for ``localhost`` into a private folder, starts its
own ``munged``, ``slurmctld`` and ``slurmd`` in the foreground (children of this process, stopped by their pid),
and points the client commands at it through ``SLURM_CONF``; nothing of the system's Slurm or munge (if any) is
read or touched. Choices and why:

- the node's resources are what ``slurmd -C`` detects, so the node registers as configured and goes idle;
- ``select/cons_tres`` (GPU-aware, as on a GPU cluster) with ``CR_CPU``, ``proctrack/linuxproc``, ``task/none``:
  no cgroups, which containers often lack;
- no accounting (``accounting_storage/none``): ``sacct`` fails, so ``r1lib status`` takes its ``scontrol``
  fallback, the harder path; ``MinJobAge=3600`` keeps finished jobs in the controller for the whole session;
- ``sched/builtin``: FIFO, scheduling on every submission and job end (no backfill interval to wait for);
- free TCP ports and a short folder under the system's temp dir (a munge socket path must fit in 108 bytes).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["REQUIRED_BINARIES", "missing_binaries", "LocalSlurmCluster", "SlurmStartError"]

REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel")


class SlurmStartError(RuntimeError):
    """The cluster did not come up; the message holds the daemons' log tails."""


def missing_binaries() -> list[str]:
    """The Slurm and munge programs not on PATH (``/usr/sbin`` included, where Debian puts the daemons)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/usr/local/sbin"
    return [b for b in REQUIRED_BINARIES if shutil.which(b, path=path) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class LocalSlurmCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.dir = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="r1slurm-"))
        self.conf = self.dir / "slurm.conf"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._old_conf: str | None = None
        self._path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/usr/local/sbin"

    def _bin(self, name: str) -> str:
        found = shutil.which(name, path=self._path)
        if found is None:
            raise SlurmStartError(f"{name} not found")
        return found

    def _node_line(self) -> str:
        """The node's hardware as slurmd detects it (``slurmd -C``), under the name ``localhost``."""
        out = subprocess.run([self._bin("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
        fields = [f for f in out.splitlines()[0].split() if not f.startswith(("NodeName=", "UpTime="))]
        return "NodeName=localhost NodeAddr=127.0.0.1 " + " ".join(fields) + " State=UNKNOWN"

    def write_config(self) -> None:
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            (d / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        host = socket.gethostname().split(".")[0]
        self.conf.write_text("\n".join([
            "ClusterName=r1libtest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={d / 'munge' / 'munge.socket'}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            f"PlugStackConfig={d / 'plugstack.conf'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MinJobAge=3600",
            "ReturnToService=2",
            "MpiDefault=none",
            self._node_line(),
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        (d / "plugstack.conf").write_text("")

    def start(self, timeout: float = 60.0) -> "LocalSlurmCluster":
        """Write the config, start the daemons and wait until ``sinfo`` shows the node idle."""
        self.write_config()
        d = self.dir
        self._old_conf = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(self.conf)
        sock = d / "munge" / "munge.socket"
        self._spawn("munged", [self._bin("munged"), "-F", "--force", f"--socket={sock}",
                               f"--key-file={d / 'munge' / 'munge.key'}", f"--pid-file={d / 'munge' / 'munged.pid'}",
                               f"--log-file={d / 'munge' / 'munged.log'}", f"--seed-file={d / 'munge' / 'seed'}"])
        self._wait(lambda: sock.exists(), 10, "munged did not create its socket")
        self._spawn("slurmctld", [self._bin("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [self._bin("slurmd"), "-D", "-f", str(self.conf), "-N", "localhost"])
        self._wait(self._node_idle, timeout, "the node did not become idle")
        return self

    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.dir / "log" / f"{name}.stdout", "wb")  # noqa: SIM115 - kept open for the daemon's life
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()

    def _node_idle(self) -> bool:
        proc = subprocess.run([self._bin("sinfo"), "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                              check=False)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                self.stop()
                raise SlurmStartError(f"{', '.join(dead)} exited early ({what})\n{self.logs()}")
            if ready():
                return
            time.sleep(0.3)
        self.stop()
        raise SlurmStartError(f"{what} within {timeout:.0f} s\n{self.logs()}")

    def logs(self) -> str:
        d = self.dir
        parts = [(d / "munge" / "munged.log"), d / "log" / "slurmctld.log", d / "log" / "slurmd.log",
                 d / "log" / "slurmctld.stdout", d / "log" / "slurmd.stdout"]
        return "\n".join(f"--- {p.name}\n{_tail(p)}" for p in parts if p.exists())

    def wait_jobs(self, job_ids: list[str], timeout: float) -> None:
        """Wait until none of the jobs is pending, running or completing (squeue lists only those)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = subprocess.run([self._bin("squeue"), "-h", "-j", ",".join(job_ids), "-o", "%i %T"],
                                  capture_output=True, text=True, check=False)
            if proc.returncode == 0 and not proc.stdout.strip():
                return
            time.sleep(0.5)
        raise TimeoutError(f"jobs {job_ids} still queued after {timeout:.0f} s:\n{proc.stdout}\n{self.logs()}")

    def stop(self) -> None:
        """Cancel this cluster's jobs, stop the daemons (by pid, newest first) and restore SLURM_CONF."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            queued = subprocess.run([self._bin("squeue"), "-h", "-o", "%i"], capture_output=True, text=True,
                                    check=False).stdout.split()
            if queued:
                subprocess.run([self._bin("scancel"), *queued], capture_output=True, check=False)
                try:
                    self.wait_jobs(queued, 15)
                except TimeoutError:
                    pass  # the daemons are stopped below anyway
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self._old_conf
        self._old_conf = None

    def __enter__(self) -> "LocalSlurmCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
