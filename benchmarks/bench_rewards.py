"""Throughput of the graders and rewards: calls per second on realistic and adversarial completions.

Run:  .venv/bin/python benchmarks/bench_rewards.py   -> results/benchmarks/rewards.json

Reward calls sit inside every RL step (batch x G completions), so their cost matters; the unit tests only
check the 1-second safety limit, speed targets live here.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

from r1lib.grading import is_equivalent
from r1lib.rewards import accuracy_reward, format_reward, language_consistency_reward
from r1lib.tasks import generate_mix
from r1lib.tasks.base import Example

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "rewards.json"


def _time(fn, items, repeat: int = 3) -> dict:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for it in items:
            fn(*it)
        runs.append(time.perf_counter() - t0)
    per_call = statistics.median(runs) / len(items)
    return {"calls": len(items), "us_per_call": per_call * 1e6, "calls_per_s": 1 / per_call}


def main() -> dict:
    exs = generate_mix({"arithmetic": 1, "linear": 1, "word": 1, "countdown": 1}, 400, split="test", seed=0)
    good = [(f" <think> {' '.join(a + ' = ' + b + '.' for a, b in ex.meta['steps'])} </think> "
             f"<answer> {ex.meta.get('solution_expr', ex.answer)} </answer>", ex) for ex in exs]
    latex_pairs = [("\\frac{1}{2}", "0.5"), ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"), ("(1, 2]", "(1,2]"),
                   ("x^2 + 2x + 1", "(x+1)^2")] * 25
    math_ex = Example(id="m", task="math500", problem="p", answer="\\frac{\\sqrt{3}}{2}")
    adversarial = [("<answer>" + "9**9**9**9" + "</answer>", math_ex), ("{" * 5000 + "}" * 5000, math_ex),
                   ("x" * 100_000, math_ex), ("<answer>1</answer>" * 200, math_ex)]
    results = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "accuracy_reward_synthetic": _time(accuracy_reward, good),
        "format_reward": _time(format_reward, good),
        "language_consistency_reward": _time(language_consistency_reward, good),
        "is_equivalent_latex": _time(is_equivalent, latex_pairs),
        "accuracy_reward_adversarial": _time(accuracy_reward, adversarial, repeat=1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
