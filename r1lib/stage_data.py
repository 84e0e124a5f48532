"""Data of DeepSeek-R1's SFT stages: cold-start traces, rejection sampling, non-reasoning data (docs/paper.md §3).

Stage 1 (cold start, -> Dev1): sample the R1-Zero policy at temperature 1.0 on training prompts, keep only
correct and readable traces, rewrite each into R1's readable format (the reasoning in ``<think>…</think>``, then
a short summary ending with the answer), and add a few templated long-CoT demonstrations (the paper's few-shot
route). Stage 3 (-> Dev3): sample the stage-2 model several times per training prompt, keep only correct
ones, drop mixed-language, overlong and repetitive ones, and add non-reasoning data at about 3 reasoning : 1
non-reasoning. Every row is a chat example ``{"messages": [user, assistant]}`` for TRL's ``SFTTrainer``.

The filters (:func:`rejection_reason`) are rules, one reason per dropped sample, counted per reason.

Scale (DEVIATION, labelled where the sizes are set: ``r1lib.config.PipelineConfig``): the paper's cold start
has "thousands" of examples and stage 3 about 800k; ours a few hundred to a thousand, what a 0.9M-parameter
model needs to learn a fixed output format in a few hundred SFT steps on 2 CPU cores.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from r1lib.corpus import render_reasoning
from r1lib.grading import extract_answer
from r1lib.rewards import accuracy_reward, format_reward, language_consistency_reward, readable_format_reward
from r1lib.sampling import Completion, Sampler, SamplingParams
from r1lib.tasks.base import Example
from r1lib.tasks.registry import TASKS
from r1lib.text_stats import think_block

REASONS = ("wrong", "format", "language", "repetition", "overlong")
"""Why a sampled trace is dropped, in the order the filters are applied."""

_SENTENCE = re.compile(r"[^.!?]+[.!?]")
_TAG = re.compile(r"<[^<>]*>")


def summary(answer: str) -> str:
    """The short summary that follows the reasoning: it ends with the answer in ``\\boxed{}`` (paper Listing 1)."""
    return f"The answer is \\boxed{{{answer}}}."


def readable(reasoning: str, answer: str) -> str:
    """R1's readable output: ``<think> reasoning </think>`` and the summary (the released model's format)."""
    return f"<think> {reasoning.strip()} </think> {summary(answer)}"


def has_repetition(text: str, min_words: int = 3) -> bool:
    """Whether a sentence of at least ``min_words`` words occurs twice (a model stuck in a loop); tags such as
    ``<think>`` are not part of a sentence.

    >>> has_repetition("Check 38 + 777: 8 + 7 + 1 = 16, so far 62. Check 38 + 777: 8 + 7 + 1 = 16, so far 62.")
    True
    >>> has_repetition("Check 38 + 777: 8 + 7 + 1 = 16, so far 62. Check 3 + 77: 3 + 7 + 1 = 11, so far 162.")
    False
    >>> has_repetition("<think> We add the ones. We add the ones. </think>")
    True
    """
    if not isinstance(text, str):
        return False
    seen: set[str] = set()
    for sentence in _SENTENCE.findall(_TAG.sub(" ", text)):
        key = " ".join(sentence.split())
        if len(key.split()) < min_words:
            continue
        if key in seen:
            return True
        seen.add(key)
    return False


def rejection_reason(completion: Completion | str, example: Example, *, readable_format: bool = False) -> str | None:
    """The first reason (:data:`REASONS`) to drop a sampled trace, or None to keep it.

    - ``wrong``: the final answer is not right (``accuracy_reward``);
    - ``format``: the output format is not followed (R1-Zero's tags, or R1's readable format with
      ``readable_format``);
    - ``language``: a word of another language in the reasoning (language consistency below 1, docs/paper.md §1.3);
    - ``repetition``: a sentence repeated (:func:`has_repetition`);
    - ``overlong``: the sampler stopped at the length cap (a ``Completion`` with ``finish_reason == "length"``).
    """
    text = completion.text if isinstance(completion, Completion) else completion
    if accuracy_reward(text, example) < 0.5:
        return "wrong"
    fmt = readable_format_reward if readable_format else format_reward
    if fmt(text, example) < 0.5:
        return "format"
    if language_consistency_reward(text, example) < 1.0:
        return "language"
    if has_repetition(text):
        return "repetition"
    if isinstance(completion, Completion) and completion.finish_reason == "length":
        return "overlong"
    return None


def rewrite_readable(text: str, example: Example) -> str:
    """An R1-Zero-format trace (``<think> R </think> <answer> A </answer>``) rewritten into R1's readable format
    (``<think> R </think>`` + summary). A trace already in the readable format is kept as it is."""
    if readable_format_reward(text, example) >= 0.5:
        return text.strip()
    reasoning = think_block(text) or ""
    answer = extract_answer(text) or example.answer
    return readable(reasoning, answer)


def chat_row(problem: str, response: str, **extra: Any) -> dict[str, Any]:
    """One SFT example in TRL's conversational format (plus bookkeeping columns)."""
    return {"messages": [{"role": "user", "content": problem.strip()}, {"role": "assistant", "content": response}],
            **extra}


@dataclass
class FilterStats:
    """What a sample-and-filter pass kept and dropped: ``sampled``, ``kept``, ``dropped`` per reason, and the
    number of prompts with at least one kept trace."""

    sampled: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    prompts: int = 0
    prompts_kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"sampled": self.sampled, "kept": self.kept, "prompts": self.prompts, "prompts_kept": self.prompts_kept,
                "dropped": {r: int(self.dropped.get(r, 0)) for r in REASONS},
                "keep_rate": self.kept / self.sampled if self.sampled else 0.0}


def sample_and_filter(sampler: Sampler, examples: Sequence[Example], *, n: int, temperature: float,
                      max_new_tokens: int, prompt_format: Any, seed: int, readable_format: bool,
                      max_per_prompt: int | None = None) -> tuple[list[dict[str, Any]], FilterStats]:
    """Sample ``n`` traces per example, drop those :func:`rejection_reason` rejects, rewrite the kept ones into
    the readable format and return them as chat rows (at most ``max_per_prompt`` per example, distinct texts)."""
    params = SamplingParams(temperature=temperature, top_p=1.0, max_new_tokens=max_new_tokens, n=n,
                            stop=prompt_format.stop, seed=seed)
    outputs = sampler.generate([prompt_format(ex.problem) for ex in examples], params)
    stats, rows = FilterStats(prompts=len(examples)), []
    for ex, row in zip(examples, outputs):
        kept: dict[str, None] = {}
        for c in row:
            stats.sampled += 1
            reason = rejection_reason(c, ex, readable_format=readable_format)
            if reason is not None:
                stats.dropped[reason] += 1
                continue
            stats.kept += 1
            kept.setdefault(rewrite_readable(c.text, ex), None)
        chosen = list(kept)[:max_per_prompt] if max_per_prompt else list(kept)
        stats.prompts_kept += bool(chosen)
        rows.extend(chat_row(ex.problem, text, source="sampled", task=ex.task) for text in chosen)
    return rows, stats


def demonstrations(examples: Sequence[Example], seed: int = 0) -> list[dict[str, Any]]:
    """Templated long-CoT demonstrations (the paper's few-shot route), written in the readable format, one per
    example: the careful, self-checking style of the corpus (``r1lib.corpus.render_reasoning``) for the generated
    tasks; a dataset's own worked solution (``Example.solution``, e.g. GSM8K's) for real problems; an example with
    neither is skipped."""
    rng = random.Random(seed)
    rows = []
    for ex in examples:
        if ex.task in TASKS:
            reasoning = render_reasoning(ex, "careful", rng=rng)
        elif ex.solution:
            reasoning = ex.solution
        else:
            continue
        rows.append(chat_row(ex.problem, readable(reasoning, ex.answer), source="template", task=ex.task))
    return rows


def mix_rows(reasoning: Sequence[dict[str, Any]], general: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """Reasoning and non-reasoning rows shuffled together, deterministically (columns: messages, source, task)."""
    rows = [{"messages": r["messages"], "source": r.get("source", "?"), "task": r.get("task", "?")} for r in reasoning]
    rows += [{"messages": r["messages"], "source": "general", "task": "general"} for r in general]
    random.Random(seed).shuffle(rows)
    return rows


def row_table(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Rows per source (``sampled``, ``template``, ``general``)."""
    return dict(sorted(Counter(r.get("source", "?") for r in rows).items()))
