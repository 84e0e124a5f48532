"""Verifiable problems: procedural generators (digit procedures: addition, subtraction, multiply, chain; arithmetic,
linear, countdown, word; non-reasoning: general) and benchmark loaders.

>>> from r1lib.tasks import generate, load_benchmark, check_countdown
>>> generate("arithmetic", 2, seed=0)[0].id
'arithmetic-train-s0-000000'
"""

from r1lib.tasks.base import Example
from r1lib.tasks.benchmarks import BenchmarkError, load_benchmark
from r1lib.tasks.countdown import check_countdown, countdown_problem
from r1lib.tasks.expr import ExpressionError, numbers_used
from r1lib.tasks.expr import evaluate as evaluate_expression
from r1lib.tasks.registry import TASKS, generate, generate_mix, split_of, step_expression, verify_steps

__all__ = [
    "Example", "TASKS", "generate", "generate_mix", "load_benchmark", "BenchmarkError", "check_countdown",
    "evaluate_expression", "ExpressionError", "numbers_used", "countdown_problem", "split_of",
    "step_expression", "verify_steps",
]
