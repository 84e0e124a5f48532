"""What the runner shows while a notebook runs: which notebook, which cell, the elapsed time, and the last
progress line the cell printed (the tqdm bars of pretraining, RL and evaluation), so that a user of
``make reproduce`` never stares at a silent terminal for minutes.

Papermill streams every output of the kernel to ``stdout_file`` / ``stderr_file`` as it arrives; a papermill
engine (papermill's default one with a hook, registered as ``"r1lib-progress"`` by :func:`register_engine`)
reports each cell's start. A :class:`NotebookProgress` takes both and, from a background thread, prints one
status line: rewritten in place every second on a terminal, a new line every ``interval`` seconds otherwise (CI
logs, ``nohup``)::

    [1/7] 00_base_model · cell 6/14 · 2 min 31 s · pretrain:  45%|████▌     | 630/1400 [02:10<02:40, loss=0.31]

Papermill's own progress bar is per cell only, and it does not move while one cell runs for minutes.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["NotebookProgress", "ENGINE_NAME", "register_engine", "format_elapsed", "last_status_line"]

ENGINE_NAME = "r1lib-progress"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def format_elapsed(seconds: float) -> str:
    """``"42 s"``, ``"2 min 31 s"``, ``"1 h 02 min"``.

    >>> format_elapsed(42.4), format_elapsed(151), format_elapsed(3725)
    ('42 s', '2 min 31 s', '1 h 02 min')
    """
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def last_status_line(text: str) -> str | None:
    """The last non-empty line of streamed output, a carriage return starting a new line as a tqdm bar does
    (ANSI codes dropped); None when there is none. W&B's own messages (``wandb: ...``, e.g. where an offline run is)
    are not progress and are skipped.

    >>> last_status_line("pretrain:  10%|#  | 1/10\\rpretrain:  20%|## | 2/10\\r")
    'pretrain:  20%|## | 2/10'
    >>> last_status_line("step 3/60\\nwandb: View this run in the terminal with `wandb leet`\\n")
    'step 3/60'
    >>> last_status_line("\\n\\n") is None
    True
    """
    parts = [p.strip() for p in re.split(r"[\r\n]", _ANSI.sub("", text))]
    parts = [p for p in parts if p and not p.startswith("wandb:")]
    return parts[-1] if parts else None


class NotebookProgress:
    """The status of one running notebook; ``write`` takes the kernel's streamed output (a file-like object for
    papermill's ``stdout_file`` / ``stderr_file``), ``cell_started`` the engine's cell events.

    ``out``: where status lines go (default stderr); ``tty``: rewrite one line in place (default: whether ``out``
    is a terminal); ``interval``: seconds between lines when not a terminal (0: no background thread; tests call
    :meth:`status` themselves).
    """

    def __init__(self, label: str, *, out: TextIO | None = None, tty: bool | None = None, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_width: int = 160) -> None:
        self.label, self.out = label, out if out is not None else sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)()) if tty is None else tty
        self.interval, self.clock, self.max_width = interval, clock, max_width
        self.start = clock()
        self.cell: int | None = None
        self.cells: int | None = None
        self.last: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = 0

    # papermill's stdout_file / stderr_file protocol
    def write(self, text: str) -> int:
        line = last_status_line(text)
        if line is not None:
            with self._lock:
                self.last = line
        return len(text)

    def flush(self) -> None:
        pass

    def cell_started(self, index: int, total: int) -> None:
        with self._lock:
            self.cell, self.cells, self.last = index + 1, total, None

    def status(self) -> str:
        """The current status line."""
        with self._lock:
            parts = [self.label]
            if self.cell is not None:
                parts.append(f"cell {self.cell}/{self.cells}")
            parts.append(format_elapsed(self.clock() - self.start))
            if self.last:
                parts.append(self.last)
        line = " · ".join(parts)
        return line if len(line) <= self.max_width else line[: self.max_width - 1] + "…"

    def _show(self) -> None:
        line = self.status()
        if self.tty:
            pad = max(0, self._shown - len(line))
            self.out.write("\r" + line + " " * pad)
            self._shown = len(line)
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def _loop(self) -> None:
        period = 1.0 if self.tty else self.interval
        while not self._stop.wait(period):
            self._show()

    def __enter__(self) -> "NotebookProgress":
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="r1lib-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.tty and self._shown:
            self.out.write("\r" + " " * self._shown + "\r")
            self.out.flush()


def _engine_class() -> type:
    from papermill.engines import NBClientEngine

    class _ProgressEngine(NBClientEngine):
        """papermill's default engine, telling a :class:`NotebookProgress` (the ``progress`` keyword of
        ``papermill.execute_notebook``) when each cell starts."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, progress: NotebookProgress | None = None,
                                     **kwargs):
            if progress is not None:
                start = nb_man.cell_start

                def cell_start(cell, cell_index=None, **kw):
                    progress.cell_started(cell_index or 0, len(nb_man.nb.cells))
                    return start(cell, cell_index, **kw)

                nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    return _ProgressEngine


def register_engine() -> str:
    """Register the progress engine with papermill (idempotent); returns its name."""
    from papermill.engines import papermill_engines

    if ENGINE_NAME not in papermill_engines._engines:
        papermill_engines.register(ENGINE_NAME, _engine_class())
    return ENGINE_NAME

