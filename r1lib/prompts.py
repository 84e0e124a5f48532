"""The R1-Zero prompt template, word for word from the paper's Table 1.

Source: DeepSeek-R1 v1 p.6 Table 1 (= v2 §2.1 p.3); see docs/paper.md §1.1.
The paper's template is one paragraph; the line breaks below are only for the source code,
the rendered string joins them with single spaces exactly as printed in the paper.
"""

from __future__ import annotations

R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user "
    "with the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>. User: {prompt}. Assistant:"
)


def r1_zero_prompt(problem: str) -> str:
    """Fill the template. As in the paper, ``prompt`` is replaced by the question.

    A question that already ends in '.', '?' or '!' keeps its own punctuation instead of
    getting the template's '.' twice (the template's full stop after ``prompt`` is the paper's).
    """
    text = problem.strip()
    if text.endswith((".", "?", "!")):
        return R1_ZERO_TEMPLATE.replace("{prompt}.", text)
    return R1_ZERO_TEMPLATE.format(prompt=text)
