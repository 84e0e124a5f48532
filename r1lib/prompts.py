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


PROMPT_FORMATS: tuple[str, ...] = ("r1_zero", "chat")
"""How a problem becomes a prompt: ``"r1_zero"``, the paper's R1-Zero template (a plain-text continuation,
the base model's and R1-Zero's format), or ``"chat"``, the model's chat template with the problem as the user
turn (the format of DeepSeek-R1 and of the pipeline's checkpoints Dev1, Dev2, Dev3 and R1)."""


class PromptFormat:
    """Turns problems into prompt strings in one of :data:`PROMPT_FORMATS`, and says how to tokenize them.

    ``"chat"`` needs the tokenizer (its chat template); the template already holds any BOS token, so chat
    prompts are tokenized without adding special tokens (``add_special_tokens`` is False), and the answer ends
    with the end-of-turn token, not with a stop string (``stop`` is empty). ``"r1_zero"`` prompts end with
    "Assistant:" and generation stops after ``</answer>``.
    """

    def __init__(self, name: str = "r1_zero", tokenizer: object = None) -> None:
        if name not in PROMPT_FORMATS:
            raise ValueError(f"unknown prompt format {name!r}; choose one of {PROMPT_FORMATS}")
        if name == "chat" and getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("prompt format 'chat' needs a tokenizer with a chat template")
        self.name = name
        self.tokenizer = tokenizer

    @property
    def add_special_tokens(self) -> bool:
        return self.name == "r1_zero"

    @property
    def format_reward(self):
        """The rule that checks this format's output: R1-Zero's tags, or R1's readable ``<think>`` + summary."""
        from r1lib.rewards import format_reward, readable_format_reward

        return format_reward if self.name == "r1_zero" else readable_format_reward

    @property
    def stop(self) -> tuple[str, ...]:
        return ("</answer>",) if self.name == "r1_zero" else ()

    def __call__(self, problem: str) -> str:
        if self.name == "r1_zero":
            return r1_zero_prompt(problem)
        return self.tokenizer.apply_chat_template([{"role": "user", "content": problem.strip()}], tokenize=False,
                                                  add_generation_prompt=True)
