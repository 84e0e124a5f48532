"""The one record type every task, loader, reward and evaluator shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Example:
    """A verifiable problem.

    ``answer`` is always a string (the gold final answer). ``meta`` carries task-specific data:
    synthetic generators put ``difficulty`` and ``steps`` there (a list of ``(lhs, rhs)`` string
    pairs, rendered as ``"lhs = rhs"``, computed in order, the last ``rhs`` being the answer);
    Countdown puts ``nums`` and ``target``.
    """

    id: str
    task: str
    problem: str
    answer: str
    solution: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "problem": self.problem, "answer": self.answer,
                "solution": self.solution, "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Example":
        return cls(id=str(d["id"]), task=str(d["task"]), problem=str(d["problem"]),
                   answer=str(d["answer"]), solution=d.get("solution"), meta=dict(d.get("meta") or {}))
