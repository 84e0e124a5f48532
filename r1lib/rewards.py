"""Rule-based rewards: pure functions ``(completion, example) -> float`` that never raise.

``completion`` is the model's text after ``"Assistant:"`` in the R1-Zero template (it may start with
a space); ``example`` is the :class:`~r1lib.tasks.base.Example` it answers.

- :func:`accuracy_reward`: 1 if the final answer is right, else 0 (docs/paper.md §1.2).
- :func:`format_reward`: 1 if the completion is ``<think>...</think> <answer>...</answer>``, else 0
  (docs/paper.md §1.2; the paper gives no numeric value, 1/0 is our choice, §10).
- :func:`language_consistency_reward`: share of target-language words in the CoT (paper eq. 7,
  docs/paper.md §1.3).
- :func:`make_overlong_penalty`: DAPO's soft overlong punishment. Not in the R1 paper (R1 has no
  length reward; its length grows freely, docs/paper.md §7); provided for small-budget runs.

The R1-Zero rule reward is ``accuracy + format`` with the same weight (paper eq. 4, docs/paper.md
§1.2); R1's first RL stage adds the language-consistency reward by direct summation (§1.3), and the
stage-2 reward is ``Reward_reasoning + Reward_general + Reward_language`` (eqs. 8-10, §1.4), of
which the rule-based parts are these. :func:`build_reward_functions` + :func:`combined_reward`
build such weighted sums from a config dict.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from r1lib.grading import exact_match, extract_answer, is_equivalent
from r1lib.tasks.base import Example
from r1lib.text_stats import target_script, think_block, word_script, words

__all__ = [
    "RewardFn",
    "SYNTHETIC_TASKS",
    "END_TOKENS",
    "accuracy_reward",
    "format_reward",
    "readable_format_reward",
    "language_consistency_reward",
    "whitespace_length",
    "make_overlong_penalty",
    "REWARD_FUNCTIONS",
    "REWARD_FACTORIES",
    "build_reward_functions",
    "combined_reward",
    "r1_zero_rule_reward",
]

RewardFn = Callable[[str, Example], float]

#: Procedural tasks whose answers are exact numbers: graded without SymPy.
SYNTHETIC_TASKS = frozenset({"arithmetic", "linear", "word", "addition", "subtraction", "multiply", "chain"})

#: End-of-sequence markers allowed after ``</answer>`` when a completion is decoded with special
#: tokens kept (r1lib's tiny tokenizer ends turns with ``<|end|>``, docs/dependencies.md §2).
END_TOKENS: tuple[str, ...] = ("<|end|>", "<|eos|>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>",
                               "</s>", "<eos>")

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def accuracy_reward(completion: str, example: Example) -> float:
    """1.0 if the completion's final answer is correct, else 0.0 (docs/paper.md §1.2).

    The paper: "If the answer aligns with the reference, the reward is assigned a value of 1;
    otherwise ... 0" (v2 B.3.1); math answers are compared with SymPy. The answer is taken from the
    last ``<answer>`` block, else the last ``\\boxed{}`` (:func:`r1lib.grading.extract_answer`).
    Countdown is graded by evaluating the expression (TinyZero's rule); the synthetic tasks
    (arithmetic, linear, word) by exact numeric/normalised equality; everything else with
    :func:`r1lib.grading.is_equivalent` (math-verify).

    >>> ex = Example(id="0", task="gsm8k", problem="?", answer="1234")
    >>> accuracy_reward(" <think>add</think> <answer>1,234</answer>", ex)
    1.0
    >>> accuracy_reward(" <think>add</think> <answer>1235</answer>", ex), accuracy_reward("1234", ex)
    (0.0, 0.0)
    >>> accuracy_reward("<answer>\\\\frac{\\\\sqrt{2}}{2}</answer>",
    ...                 Example(id="1", task="math500", problem="?", answer="\\\\frac{1}{\\\\sqrt2}"))
    1.0
    """
    try:
        pred = extract_answer(completion)
        task = getattr(example, "task", None)
        if task == "general":  # non-reasoning prompt: the response (the answer block, else the text) is checked
            from r1lib.tasks.general import check_general

            return check_general(pred if pred is not None else _after_think(completion), example)
        if pred is None:
            return 0.0
        if task == "countdown":
            from r1lib.tasks.countdown import check_countdown  # lazy: grading must not need tasks

            meta = example.meta or {}
            return 1.0 if check_countdown(pred, meta.get("nums"), meta.get("target")) else 0.0
        if task in SYNTHETIC_TASKS:
            return 1.0 if exact_match(pred, example.answer) else 0.0
        return 1.0 if is_equivalent(pred, example.answer) else 0.0
    except Exception:  # noqa: BLE001 - a reward must never raise; a broken example scores 0
        return 0.0


def summary_of(completion: str) -> str:
    """What the user reads of a reasoning reply: the text after the last ``</think>`` (all of it without one),
    stripped, without a trailing end token. The preference reward model scores this, and the pipeline's
    instruction-following check reads it.

    >>> summary_of("<think> 2 + 2 = 4 </think> The answer is 4.<|end|>")
    'The answer is 4.'
    """
    out = completion.rsplit("</think>", 1)[-1].strip()
    for token in END_TOKENS:
        out = out.removesuffix(token).strip()
    return out


def _after_think(completion: str) -> str:
    """The text after the last ``</think>`` (the summary), or the whole completion without one."""
    return completion.rsplit("</think>", 1)[-1] if "</think>" in completion else completion


def format_reward(completion: str, example: Example | None = None) -> float:
    """1.0 iff the completion is exactly ``<think>R</think> <answer>A</answer>``, else 0.0.

    The format reward "enforces the model to put its thinking process between '<think>' and
    '</think>' tags" (docs/paper.md §1.2), following the template's "<think> reasoning process here
    </think> <answer> answer here </answer>" (§1.1). Our exact rule (the paper gives none): one
    ``<think>`` block then one ``<answer>`` block, each tag exactly once, both non-empty, only
    whitespace before, between and after them, except one end token (:data:`END_TOKENS`) at the end.

    >>> format_reward(" <think> 2+2 is 4 </think>\\n<answer> 4 </answer>")
    1.0
    >>> format_reward("<answer>4</answer><think>x</think>"), format_reward("<think>x</think><answer>4</answer> ok")
    (0.0, 0.0)
    >>> format_reward("<think>x</think><answer>4</answer><|end|>"), format_reward("<think> </think><answer>4</answer>")
    (1.0, 0.0)
    """
    try:
        if not isinstance(completion, str):
            return 0.0
        if any(completion.count(tag) != 1 for tag in _TAGS):
            return 0.0
        t_open, t_close = completion.index("<think>"), completion.index("</think>")
        a_open, a_close = completion.index("<answer>"), completion.index("</answer>")
        if not t_open < t_close < a_open < a_close:
            return 0.0
        think = completion[t_open + len("<think>"):t_close]
        answer = completion[a_open + len("<answer>"):a_close]
        before, between = completion[:t_open], completion[t_close + len("</think>"):a_open]
        after = completion[a_close + len("</answer>"):].strip()
        for token in END_TOKENS:
            if after.endswith(token):
                after = after[: -len(token)].strip()
                break
        ok = (not before.strip() and not between.strip() and not after
              and think.strip() != "" and answer.strip() != "")
        return 1.0 if ok else 0.0
    except Exception:  # noqa: BLE001 - a reward must never raise
        return 0.0


def readable_format_reward(completion: str, example: Example | None = None) -> float:
    """1.0 iff the completion has DeepSeek-R1's readable output format, else 0.0 (docs/paper.md §3, stage 1).

    The paper's cold-start data use ``|special_token|<reasoning>|special_token|<summary>``; the released model
    writes ``<think>…</think>`` and then a summary. Our rule for a reasoning problem: one non-empty
    ``<think>…</think>`` block at the start, then a non-empty summary holding exactly one ``\boxed{}`` (the
    answer), and no other tag. For a non-reasoning prompt (``example.task == "general"``: simple queries get no
    chain of thought, §3 stage 3): a non-empty reply without think or answer tags. An end token at the very end
    is allowed.

    >>> readable_format_reward("<think> 3 + 4 = 7 </think> The answer is \\\\boxed{7}.")
    1.0
    >>> readable_format_reward("<think> x </think> <answer> 7 </answer>"), readable_format_reward("The answer is 7.")
    (0.0, 0.0)
    """
    try:
        if not isinstance(completion, str):
            return 0.0
        text = completion.strip()
        for token in END_TOKENS:
            if text.endswith(token):
                text = text[: -len(token)].strip()
                break
        if any(tag in text for tag in ("<answer>", "</answer>")):
            return 0.0
        if getattr(example, "task", None) == "general":
            return 1.0 if text and "<think>" not in text and "</think>" not in text else 0.0
        if text.count("<think>") != 1 or text.count("</think>") != 1 or not text.startswith("<think>"):
            return 0.0
        think, summary = text[len("<think>"):].split("</think>", 1)
        ok = think.strip() != "" and summary.strip() != "" and summary.count("\\boxed{") == 1
        return 1.0 if ok else 0.0
    except Exception:  # noqa: BLE001 - a reward must never raise
        return 0.0


def language_consistency_reward(completion: str, example: Example | None = None,
                                target_lang: str = "en") -> float:
    """Share of target-language words in the CoT: ``Num(Words_target) / Num(Words)`` (paper eq. 7).

    The paper (docs/paper.md §1.3): "calculated as the proportion of target language words in the CoT".
    The CoT is the ``<think>`` block (the whole completion when there is none). Word segmentation is not given
    by the paper (§10); ours is in :mod:`r1lib.text_stats` (latin letter runs and single CJK
    characters are words; numbers, symbols, LaTeX commands and Greek letters are not). Edge cases
    (our choice): an empty/blank completion scores 0.0; a CoT with content but no words (only
    numbers/symbols) scores 1.0, since nothing in it is in another language. ``target_lang`` is
    ``"en"`` (latin script) or ``"zh"`` (CJK); an unknown value raises ``ValueError`` (a config
    error, not a property of the completion).

    >>> language_consistency_reward("<think>We add 我们 them</think><answer>5</answer>", None)
    0.6
    >>> language_consistency_reward("<think>我们 add</think>", None, target_lang="zh")
    0.6666666666666666
    >>> language_consistency_reward("<think>2+2=4</think>", None), language_consistency_reward("", None)
    (1.0, 0.0)
    """
    script = target_script(target_lang)
    try:
        if not isinstance(completion, str) or not completion.strip():
            return 0.0
        cot = think_block(completion)
        cot_words = words(completion if cot is None else cot)
        if not cot_words:
            return 1.0
        return sum(1 for w in cot_words if word_script(w) == script) / len(cot_words)
    except Exception:  # noqa: BLE001 - a reward must never raise
        return 0.0


def whitespace_length(text: str) -> int:
    """Number of whitespace-separated tokens (the default length of :func:`make_overlong_penalty`)."""
    return len(text.split()) if isinstance(text, str) else 0


def make_overlong_penalty(max_len: int, buffer: int,
                          length_fn: Callable[[str], int] = whitespace_length) -> RewardFn:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13): not part of R1 (see module docstring).

    ``0`` while ``len <= max_len - buffer``, then linear down to ``-1`` at ``len == max_len``, and
    ``-1`` beyond. ``length_fn`` measures a completion; the default counts whitespace-separated
    tokens, pass e.g. ``lambda s: len(tokenizer(s).input_ids)`` to count model tokens.

    >>> pen = make_overlong_penalty(max_len=10, buffer=4)
    >>> [pen(" ".join(["w"] * n), None) for n in (6, 8, 10, 12)]
    [0.0, -0.5, -1.0, -1.0]
    """
    if not isinstance(max_len, int) or not isinstance(buffer, int) or max_len <= 0 or not 0 < buffer <= max_len:
        raise ValueError(f"make_overlong_penalty: need integers 0 < buffer <= max_len, "
                         f"got max_len={max_len!r}, buffer={buffer!r}")
    threshold = max_len - buffer

    def overlong_penalty(completion: str, example: Example | None = None) -> float:
        try:
            n = length_fn(completion)
        except Exception:  # noqa: BLE001 - a reward must never raise; unmeasurable => no penalty
            return 0.0
        if n <= threshold:
            return 0.0
        if n >= max_len:
            return -1.0
        return (threshold - n) / buffer

    overlong_penalty.__doc__ = f"DAPO soft overlong penalty, max_len={max_len}, buffer={buffer}."
    return overlong_penalty


#: Reward functions usable as they are.
REWARD_FUNCTIONS: dict[str, RewardFn] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "readable_format": readable_format_reward,
    "language_consistency": language_consistency_reward,
}


def _accuracy_factory(general: bool = True) -> RewardFn:
    """``accuracy`` with options: ``general: false`` scores non-reasoning prompts 0 (R1's last RL stage rewards
    them with the preference model instead of a rule, docs/paper.md §1.4)."""
    if general:
        return accuracy_reward

    def reasoning_accuracy(completion: str, example: Example) -> float:
        return 0.0 if getattr(example, "task", None) == "general" else accuracy_reward(completion, example)

    return reasoning_accuracy


def _preference_factory(model: str, device: str = "auto") -> RewardFn:
    """A preference reward model's score of the *summary* (the text after ``</think>``), for non-reasoning
    prompts only (reasoning prompts score 0: they get rule rewards), squashed to (0, 1) with a sigmoid so that
    it sits on the rule rewards' scale (the paper does not say how it scales the score). docs/paper.md §1.4:
    the helpfulness reward model sees only the final summary."""
    import math

    from r1lib.training.reward_model import RewardModelScorer

    scorer = RewardModelScorer(model, device=device)

    def preference(completion: str, example: Example) -> float:
        if getattr(example, "task", None) != "general" or not isinstance(completion, str):
            return 0.0
        return 1.0 / (1.0 + math.exp(-scorer.score([example.problem], [summary_of(completion)])[0]))

    return preference


def _language_consistency_factory(target_lang: str = "en") -> RewardFn:
    target_script(target_lang)  # validate now, not at the first reward call
    fn = functools.partial(language_consistency_reward, target_lang=target_lang)
    functools.update_wrapper(fn, language_consistency_reward)
    return fn


#: Reward functions built from options (``{"weight": w, **options}`` in a spec).
REWARD_FACTORIES: dict[str, Callable[..., RewardFn]] = {
    "accuracy": _accuracy_factory,
    "preference": _preference_factory,
    "language_consistency": _language_consistency_factory,
    "overlong_penalty": make_overlong_penalty,
}


def build_reward_functions(spec: Mapping[str, float | Mapping[str, Any]]) -> list[tuple[str, RewardFn, float]]:
    """``{name: weight}`` or ``{name: {"weight": w, **options}}`` -> ``[(name, fn, weight), ...]``.

    Names are the keys of :data:`REWARD_FUNCTIONS` and :data:`REWARD_FACTORIES`; options go to the
    factory (``{"overlong_penalty": {"weight": 1.0, "max_len": 512, "buffer": 128}}``). The R1-Zero
    rule reward is ``{"accuracy": 1.0, "format": 1.0}`` (paper eq. 4). Bad specs raise ``ValueError``
    naming the entry.

    >>> [(n, w) for n, _, w in build_reward_functions({"accuracy": 1.0, "format": 1.0})]
    [('accuracy', 1.0), ('format', 1.0)]
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"reward spec: expected a non-empty mapping name -> weight, got {spec!r}")
    known = sorted(set(REWARD_FUNCTIONS) | set(REWARD_FACTORIES))
    out: list[tuple[str, RewardFn, float]] = []
    for name, entry in spec.items():
        if name not in known:
            raise ValueError(f"reward spec: unknown reward {name!r}; known: {known}")
        options: dict[str, Any] = {}
        if isinstance(entry, Mapping):
            options = dict(entry)
            weight = options.pop("weight", 1.0)
        else:
            weight = entry
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(f"reward spec[{name!r}]: weight must be a number, got {weight!r}")
        if options or name not in REWARD_FUNCTIONS:
            if name not in REWARD_FACTORIES:
                raise ValueError(f"reward spec[{name!r}]: takes no options, got {sorted(options)}")
            try:
                fn = REWARD_FACTORIES[name](**options)
            except TypeError as exc:
                raise ValueError(f"reward spec[{name!r}]: bad options {options}: {exc}") from exc
        else:
            fn = REWARD_FUNCTIONS[name]
        out.append((name, fn, float(weight)))
    return out


def combined_reward(completion: str, example: Example,
                    funcs: Sequence[tuple[str, RewardFn, float]]) -> tuple[float, dict[str, float]]:
    """Weighted sum of rewards; returns ``(total, {name: unweighted value})``.

    >>> ex = Example(id="0", task="arithmetic", problem="2+2?", answer="4")
    >>> combined_reward("<think>2+2=4</think> <answer>4</answer>", ex,
    ...                 build_reward_functions({"accuracy": 1.0, "format": 1.0}))
    (2.0, {'accuracy': 1.0, 'format': 1.0})
    """
    parts = {name: float(fn(completion, example)) for name, fn, _ in funcs}
    total = sum(weight * parts[name] for name, _, weight in funcs)
    return total, parts


def r1_zero_rule_reward(completion: str, example: Example) -> float:
    """The R1-Zero rule reward ``Reward_acc + Reward_format`` (paper eq. 4, same weight).

    >>> r1_zero_rule_reward("<think>2+2=4</think> <answer>5</answer>",
    ...                     Example(id="0", task="arithmetic", problem="2+2?", answer="4"))
    1.0
    """
    return accuracy_reward(completion, example) + format_reward(completion, example)
