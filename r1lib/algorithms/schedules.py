"""Step schedules, scaled from the paper's 10,400-step run to a run of any length.

The paper (docs/paper.md §2.2): max length 32,768 until step 8,200 of 10,400, then 65,536; the reference
model is reset to the policy every 400 steps. A run of ``S`` steps keeps the *fractions*: the expansion
at ``round(8200/10400 * S)`` and a reset every ``max(1, round(400/10400 * S))`` steps.
"""

from __future__ import annotations

from typing import Sequence

PAPER_STEPS = 10_400
PAPER_EXPANSION_STEP = 8_200
PAPER_REF_RESET_EVERY = 400
PAPER_SHORT, PAPER_LONG = 32_768, 65_536


def scaled_step(paper_step: int, run_steps: int, paper_total: int = PAPER_STEPS) -> int:
    """The step of a ``run_steps``-long run at the same fraction as ``paper_step`` of ``paper_total``."""
    if run_steps < 1:
        raise ValueError(f"run_steps must be >= 1, got {run_steps}")
    return int(round(paper_step / paper_total * run_steps))


def scaled_ref_reset_every(run_steps: int) -> int:
    """The paper's reset period (400 of 10,400 steps) scaled to the run; at least 1."""
    return max(1, scaled_step(PAPER_REF_RESET_EVERY, run_steps))


def length_schedule(start: int, changes: Sequence[tuple[float, int]], run_steps: int) -> list[tuple[int, int]]:
    """``[(from_step, value), ...]`` from a start value and ``(fraction_of_run, value)`` changes."""
    sched = [(0, int(start))]
    for frac, value in sorted(changes):
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"schedule fraction must be in [0, 1], got {frac}")
        sched.append((int(round(frac * run_steps)), int(value)))
    return sched


def paper_length_schedule(short: int, long: int, run_steps: int) -> list[tuple[int, int]]:
    """The paper's short -> long expansion at step 8,200/10,400 of the run."""
    return length_schedule(short, [(PAPER_EXPANSION_STEP / PAPER_STEPS, long)], run_steps)


def step_value(schedule: Sequence[tuple[int, int]], step: int) -> int:
    """Value in force at ``step`` (0-based) of a ``[(from_step, value), ...]`` step schedule."""
    value = schedule[0][1]
    for start, v in schedule:
        if step >= start:
            value = v
    return value
