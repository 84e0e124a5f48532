"""Which notebooks of an experiment may run at the same time, and with how many threads (``r1lib.runner``).

Each notebook entry names the notebooks it reads from (``needs``; None: every notebook listed before it, the plain
order). The runner starts a notebook once all of them have finished, up to ``runner.parallel`` at once; when a
listed need failed or was skipped it skips the notebook (without a list, the notebook runs anyway, as before). The
functions here are pure (names in, names out) so the plan can be tested and printed without running anything.

Threads: the small models' steps do not scale to a second core (tiny matmuls, many small ops), so two notebooks on
one core each get through more work than one notebook on two cores (``benchmarks/bench_parallel_arms.py`` ->
``results/benchmarks/parallel_arms.json``). A notebook that can overlap with another therefore gets
``cpus // parallel`` threads: more threads than cores, with OpenMP's spinning threads, slows both notebooks down
many times over. One that never overlaps, because every other notebook needs it or it needs every other one (00's
pretraining, 06's evaluation in the default experiment), or that is ``exclusive`` (runs alone), keeps every core:
its numbers are those of a plain sequential run. The thread count is fixed by the plan, not by timing, so a run
stays deterministic on one machine.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["notebook_needs", "ancestors", "descendants", "may_overlap", "thread_plan", "start_order"]


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


def descendants(needs: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Every notebook's dependents, direct and indirect."""
    up = ancestors(needs)
    return {a: {b for b in needs if a in up[b]} for a in needs}


def may_overlap(needs: Mapping[str, Sequence[str]], exclusive: Collection[str] = ()) -> dict[str, set[str]]:
    """Notebook -> the notebooks that may run at the same time as it: neither needs the other, even indirectly,
    and neither is ``exclusive`` (run alone)."""
    up = ancestors(needs)
    return {a: set() if a in exclusive else
            {b for b in needs if b != a and b not in exclusive and b not in up[a] and a not in up[b]} for a in needs}


def thread_plan(needs: Mapping[str, Sequence[str]], parallel: int, cpus: int,
                exclusive: Collection[str] = ()) -> dict[str, int | None]:
    """Notebook -> torch threads for its kernel: ``max(1, cpus // parallel)`` if it may run alongside another
    notebook, None (torch's default: every core) if it cannot, is exclusive, or ``parallel`` is 1."""
    overlap = may_overlap(needs, exclusive)
    share = max(1, cpus // max(1, parallel))
    return {name: (share if parallel > 1 and overlap[name] else None) for name in needs}


def start_order(ready: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """The notebooks ready to start, most dependents first (the head of the longest chain), then config order:
    in the default experiment 01 (04, 05 and 06 wait for it) starts before 02 and 03, and 04 before 03."""
    below = descendants(needs)
    order = list(needs)
    return sorted(ready, key=lambda n: (-len(below[n]), order.index(n)))
