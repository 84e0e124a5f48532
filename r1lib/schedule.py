"""Which notebooks of an experiment may run at the same time, and with how many threads (``r1lib.runner``).

Each notebook entry names the notebooks it reads from (``needs``; None: every notebook listed before it, the plain
order). The runner starts a notebook once all of them have finished, up to ``runner.parallel`` at once; when a
listed need failed or was skipped it skips the notebook (without a list, the notebook runs anyway, as before). The functions here are pure (names in, names out) so the plan can be
tested and printed without running anything.

Threads: on a small CPU two notebooks of small-model RL each running on one core get through about twice the work
of one notebook on two cores (a GRPO arm of notebook 02 took the same time with one torch thread as with two;
README, "Benchmarks"). A notebook that can overlap with another therefore gets ``cpus // parallel`` threads. One that
never overlaps, because every other notebook needs it or it needs every other one (00's pretraining, 06's
evaluation in the default experiment), keeps all cores: its results are the same as in a plain sequential run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["notebook_needs", "ancestors", "may_overlap", "thread_plan"]


def notebook_needs(entries: Sequence[Any], selected: Sequence[Any] | None = None) -> dict[str, tuple[str, ...]]:
    """File name -> the file names of the notebooks it needs, for the ``selected`` entries (default: all).

    ``entries``: the config's notebook entries (``path``, ``needs``), in config order; ``needs`` None means every
    entry before it. A need that is not selected (``--only``) counts as met: its outputs are those of an earlier run.
    """
    names = [Path(e.path).name for e in entries]
    by_alias = {alias: Path(e.path).name for e in entries for alias in (Path(e.path).name, Path(e.path).stem)}
    chosen = {Path(e.path).name for e in (entries if selected is None else selected)}
    out: dict[str, tuple[str, ...]] = {}
    for i, entry in enumerate(entries):
        name = names[i]
        if name not in chosen:
            continue
        wanted = names[:i] if entry.needs is None else [by_alias[n] for n in entry.needs]
        out[name] = tuple(n for n in dict.fromkeys(wanted) if n in chosen)
    return out


def ancestors(needs: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Every notebook's needs, direct and indirect."""
    closed: dict[str, set[str]] = {}
    for name in needs:  # config order: a notebook's needs come before it
        closed[name] = set()
        for need in needs[name]:
            closed[name] |= {need} | closed.get(need, set())
    return closed


def may_overlap(needs: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Notebook -> the notebooks that may run at the same time as it (neither needs the other, even indirectly)."""
    up = ancestors(needs)
    return {a: {b for b in needs if b != a and b not in up[a] and a not in up[b]} for a in needs}


def thread_plan(needs: Mapping[str, Sequence[str]], parallel: int, cpus: int) -> dict[str, int | None]:
    """Notebook -> torch threads for its kernel: ``max(1, cpus // parallel)`` if it may run alongside another
    notebook, None (torch's default: every core) if it cannot or ``parallel`` is 1."""
    overlap = may_overlap(needs)
    share = max(1, cpus // max(1, parallel))
    return {name: (share if parallel > 1 and overlap[name] else None) for name in needs}
