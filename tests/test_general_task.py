"""Tests for the non-reasoning task (r1lib.tasks.general): sampling, the checker, rejected variants."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from r1lib.tasks.base import Example
from r1lib.tasks.registry import generate
from r1lib.tasks.general import (ATTRIBUTE_VALUES, BAD_KINDS, CONSTRAINT_KINDS, CREATURES, IDENTITY, INTENTS,
                                 KIND_WEIGHTS, MAX_WORDS_SLACK, NAMES, VIOLATED_BY, VOCAB, WORLD, ZH, GeneralTask,
                                 add_constraint, bad_responses, check_constraint, check_general, instruction_following,
                                 instruction_following_set, preference_pairs, sft_rows)

TASK = GeneralTask()
CJK = re.compile(r"[\u4e00-\u9fff]")


def _samples(n: int, seed: int = 0, difficulty: tuple[int, int] = (1, 5)) -> list[Example]:
    rng = random.Random(seed)
    return [TASK.sample(rng, rng.randint(*difficulty)) for _ in range(n)]


SAMPLES = _samples(1000)


def _by_kind(kind: str, n: int = 1, **filters: object) -> list[Example]:
    out = [e for e in _samples(3000, seed=11) if e.meta["kind"] == kind
           and all(e.meta.get(k) == v for k, v in filters.items())]
    assert len(out) >= n, (kind, filters)
    return out[:n]


def _example(kind: str, prompt: str, answer: str, **meta: object) -> Example:
    return Example(id="x", task="general", problem=prompt, answer=answer, meta={"kind": kind, **meta})


# --- sampling ----------------------------------------------------------------------------------------

def test_every_kind_with_roughly_its_weight() -> None:
    counts = Counter(e.meta["kind"] for e in SAMPLES)
    assert set(counts) == set(KIND_WEIGHTS) == {"greeting", "instruction", "fact"}
    for kind, weight in KIND_WEIGHTS.items():
        assert abs(counts[kind] / len(SAMPLES) - weight) < 0.05, counts
    assert {e.meta["intent"] for e in SAMPLES if e.meta["kind"] == "greeting"} == set(INTENTS)
    assert {e.meta["form"] for e in SAMPLES if e.meta["kind"] == "instruction"} == {"say", "repeat", "pair", "list"}
    assert {e.meta["attribute"] for e in SAMPLES if e.meta["kind"] == "fact"} == {"color", "home", "food"}


def test_deterministic_and_seed_dependent() -> None:
    assert [e.to_dict() for e in _samples(200, seed=3)] == [e.to_dict() for e in _samples(200, seed=3)]
    assert [e.problem for e in _samples(200, seed=3)] != [e.problem for e in _samples(200, seed=4)]


def test_record_shape() -> None:
    for e in SAMPLES:
        assert e.task == "general" and isinstance(e.answer, str) and e.answer and e.solution is None
        assert 1 <= e.meta["difficulty"] <= 5 and "steps" not in e.meta
        assert json.loads(json.dumps(e.to_dict())) == e.to_dict()      # meta is plain JSON


@pytest.mark.parametrize("difficulty", [0, 6, True, 2.0])
def test_bad_difficulty(difficulty: object) -> None:
    with pytest.raises(ValueError):
        TASK.sample(random.Random(0), difficulty)  # type: ignore[arg-type]


def test_difficulty_lengthens_instructions_only_mildly() -> None:
    def instructions(level: int) -> list[Example]:
        return [e for e in _samples(600, seed=5, difficulty=(level, level)) if e.meta["kind"] == "instruction"]
    level1, level5 = instructions(1), instructions(5)
    assert max(len(e.meta["words"]) for e in level1) == 2 and "list" not in {e.meta["form"] for e in level1}
    assert max(len(e.meta["words"]) for e in level5) == 4 and "list" in {e.meta["form"] for e in level5}


# --- references, checked independently of the generator ---------------------------------------------

COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4}
INSTRUCTION_PATTERNS = [
    (re.compile(r"(?:Say the word|Write the word|Please write) (\w+)\."), lambda m: [m[1]]),
    (re.compile(r"(?:Repeat the word|Say|Write the word) (\w+) (one|two|three|four) times?\."),
     lambda m: [m[1]] * COUNTS[m[2]]),
    (re.compile(r"(?:Write the word (\w+) and then the word (\w+)|Say (\w+), then (\w+)"
                r"|Write (\w+) followed by (\w+))\."), lambda m: [w for w in m.groups() if w]),
    (re.compile(r"(?:Write the words (\w+), (\w+) and (\w+) in this order|Say (\w+), then (\w+), then (\w+))\."),
     lambda m: [w for w in m.groups() if w]),
]
FACT_PATTERN = re.compile(r"(?:(?:Quick question|Please tell me|I want to know|Question|[A-Z][a-z]+ asks"
                          r"|[A-Z][a-z]+ wants to know): )?(What color is|What is the color of|Which color does"
                          r"|Where does|Where is the home of|In which place does|What does|What food does"
                          r"|What is the food of) the (\w+)(?: have| live| eat)?\?")


def _expected_words(prompt: str) -> list[str]:
    for pattern, words in INSTRUCTION_PATTERNS:
        if m := pattern.fullmatch(prompt):
            return words(m)
    raise AssertionError(f"unexpected instruction: {prompt!r}")


def test_references_follow_the_prompts() -> None:
    for e in SAMPLES:
        kind = e.meta["kind"]
        if kind == "instruction":
            words = _expected_words(e.problem)
            assert e.answer == " ".join(words) == " ".join(e.meta["words"]), e.problem
            assert all(w in VOCAB for w in words)
        elif kind == "fact":
            m = FACT_PATTERN.fullmatch(e.problem)
            assert m, e.problem
            entity, attribute = m[2], e.meta["attribute"]
            value = WORLD[entity][attribute]
            assert e.meta["entity"] == entity and e.meta["value"] == value
            assert e.answer == {"color": f"The {entity} is {value}.", "home": f"The {entity} lives in the {value}.",
                                "food": f"The {entity} eats {value}."}[attribute]
        else:
            assert e.answer == e.meta["accepted"][0]
            assert e.answer.endswith(INTENTS[e.meta["intent"]][1])
            if "name" in e.meta:
                assert e.meta["name"] in e.problem and e.answer.startswith(f"Hello {e.meta['name']}! ")
            if e.meta["intent"] == "identity":
                assert e.answer.endswith(IDENTITY)


def test_brief_examples() -> None:
    """The shapes named in the task brief, found among samples."""
    prompts = {e.problem: e.answer for e in _samples(20000, seed=1)}
    assert prompts["Who are you?"] == IDENTITY
    assert prompts["Hi, who are you?"] == "Hello! " + IDENTITY
    assert prompts["Hello!"] == "Hello! I am a small assistant. How can I help?"
    assert prompts["Thanks for the help."] == "You are welcome! Happy to help."
    assert prompts["Say the word river."] == "river"


def test_check_accepts_every_reference() -> None:
    for e in SAMPLES:
        assert check_general(e.answer, e) == 1.0, e
        assert check_general(Example.from_dict(json.loads(json.dumps(e.to_dict()))).answer, e) == 1.0


# --- checker: crafted responses -----------------------------------------------------------------------

def test_check_instruction() -> None:
    pair = _example("instruction", "Write the word lamp and then the word river.", "lamp river",
                    words=["lamp", "river"])
    assert check_general("lamp river", pair) == 1.0
    assert check_general("  Lamp,  RIVER! ", pair) == 1.0            # case, spacing, punctuation ignored
    assert check_general("river lamp", pair) == 0.0                   # wrong order
    assert check_general("lamp", pair) == 0.0
    assert check_general("Sure: lamp river", pair) == 0.0              # extra words
    assert check_general("lamp river river", pair) == 0.0
    repeat = _example("instruction", "Repeat the word lamp three times.", "lamp lamp lamp",
                      words=["lamp", "lamp", "lamp"])
    assert check_general("lamp lamp lamp", repeat) == 1.0
    assert check_general("lamp lamp", repeat) == 0.0                  # wrong count
    assert check_general("lamp lamp lamp lamp", repeat) == 0.0
    assert check_general("lamp lamp lamp 灯", repeat) == 0.0            # CJK
    assert check_general("lamps lamps lamps", repeat) == 0.0


def test_check_fact() -> None:
    entity = "zorb"
    color = WORLD[entity]["color"]
    other_color = next(c for c in ATTRIBUTE_VALUES["color"] if c != color)
    other_entity = next(c for c in CREATURES if c != entity and WORLD[c]["color"] == color)  # same color
    ex = _example("fact", "What color is the zorb?", f"The zorb is {color}.",
                  entity=entity, attribute="color", value=color)
    assert check_general(f"The zorb is {color}.", ex) == 1.0
    assert check_general(f"Zorbs are {color.upper()}!", ex) == 1.0     # paraphrase, case, plural
    assert check_general(f"The zorb is {other_color}.", ex) == 0.0      # wrong color
    assert check_general(f"The zorb is {color} and {other_color}.", ex) == 0.0
    assert check_general(f"The {other_entity} is {color}.", ex) == 0.0  # other entity (same color!)
    assert check_general(f"The zorb is {color}, like the {other_entity}.", ex) == 0.0
    assert check_general(f"The zorb is not {color}.", ex) == 0.0        # negation
    assert check_general(f"The zorb isn't {other_color}, it is {color}.", ex) == 0.0
    assert check_general(f"{color}", ex) == 0.0                          # entity missing
    assert check_general("The zorb.", ex) == 0.0
    assert check_general(f"The zorb is {ZH[color]}.", ex) == 0.0
    long = f"The zorb is {color}. " + "It is a very nice little animal. " * 2
    assert check_general(long, ex) == 0.0                                # over twice the reference length
    home = WORLD[entity]["home"]
    ex_home = _example("fact", "Where does the zorb live?", f"The zorb lives in the {home}.",
                       entity=entity, attribute="home", value=home)
    assert check_general(f"It lives in the {home}, the zorb.", ex_home) == 1.0
    assert check_general(f"The zorb is {color}.", ex_home) == 0.0        # answers another question


def test_check_greeting() -> None:
    ex = _by_kind("greeting", intent="identity")[0]
    assert check_general(ex.answer.upper().replace(",", ""), ex) == 1.0
    assert check_general("Hello!", ex) == 0.0
    assert check_general("I am a small assistant. How can I help?", ex) == 0.0
    assert check_general(IDENTITY + " Bye!", ex) == 0.0
    greeted = _example("greeting", "Hi, I am Maya. Who are you?", f"Hello Maya! Nice to meet you. {IDENTITY}",
                       intent="identity", name="Maya", accepted=[f"Hello Maya! Nice to meet you. {IDENTITY}", IDENTITY])
    assert check_general(f"hello maya nice to meet you {IDENTITY.lower()}", greeted) == 1.0
    assert check_general(IDENTITY, greeted) == 1.0                     # the intent's reply alone is accepted
    assert check_general(f"Hello Tom! Nice to meet you. {IDENTITY}", greeted) == 0.0
    thanks = _by_kind("greeting", intent="thanks")[0]
    assert check_general("You're welcome!", thanks) == 0.0
    assert check_general("You are welcome! Happy to help.", thanks) == 1.0


@pytest.mark.parametrize("response", ["", "   \n", None, 123, ["lamp"], b"lamp"])
def test_check_rejects_empty_and_non_strings(response: object) -> None:
    for e in SAMPLES[:30]:
        assert check_general(response, e) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize("example", [
    None, "lamp",
    Example(id="x", task="general", problem="?", answer="lamp"),                        # no meta
    _example("instruction", "?", "lamp"),                                                 # no words
    _example("instruction", "?", "lamp", words=None),
    _example("fact", "?", "The zorb is red.", entity="zorb"),                              # missing fields
    _example("greeting", "?", "Hello!", accepted=None),
    _example("poem", "?", "lamp"),
])
def test_check_never_raises_on_broken_examples(example: object) -> None:
    assert check_general("lamp", example) == 0.0  # type: ignore[arg-type]


# --- rejected variants ---------------------------------------------------------------------------------

def test_bad_responses_are_rejected() -> None:
    allowed_latin = set(CREATURES) | {n.lower() for n in NAMES} | {"r"}   # names are kept; "R1" -> "R" + "1"
    rng = random.Random(0)
    for e in SAMPLES[:400]:
        bad = bad_responses(e, rng)
        assert set(bad) == {"off_topic", "wrong_language", "rambling"}
        assert all(check_general(text, e) == 0.0 for text in bad.values()), (e, bad)
        assert bad["off_topic"] != e.answer and bad["off_topic"].strip()
        assert CJK.search(bad["wrong_language"]) and bad["wrong_language"] != e.answer
        assert {w.lower() for w in re.findall(r"[A-Za-z]+", bad["wrong_language"])} <= allowed_latin
        assert bad["rambling"].startswith(e.answer)
        assert len(bad["rambling"]) >= 3 * len(e.answer)
        assert len(bad["rambling"].split()) >= 3 * len(e.answer.split())
    e = SAMPLES[0]
    assert bad_responses(e, random.Random(7)) == bad_responses(e, random.Random(7))


def test_off_topic_is_another_kinds_reference() -> None:
    references = {e.answer: e.meta["kind"] for e in _samples(20000, seed=2)}
    rng = random.Random(1)
    for e in SAMPLES[:100]:
        off = bad_responses(e, rng)["off_topic"]
        if off in references:                     # most are; the others are unseen prompts' references
            assert references[off] != e.meta["kind"]


# --- keys and the world -------------------------------------------------------------------------------

def test_keys() -> None:
    examples = _samples(3000, seed=9)
    by_key: dict[str, Example] = {}
    for e in examples:
        key = TASK.key(e)
        assert key == " ".join(e.problem.split())
        if key in by_key:                         # the same key: the same prompt, the same reference
            assert by_key[key].problem == e.problem and by_key[key].answer == e.answer
        by_key[key] = e
    distinct = {e.problem for e in examples}
    assert len({TASK.key(e) for e in examples}) == len(distinct) > 2000
    spaced = Example.from_dict({**examples[0].to_dict(), "problem": "  " + examples[0].problem.replace(" ", "   ")})
    assert TASK.key(spaced) == TASK.key(examples[0])


def test_world_is_pinned() -> None:
    assert len(CREATURES) == len(set(CREATURES)) == len(WORLD) == 40
    assert WORLD["zorb"] == {"color": "white", "home": "island", "food": "fish"}
    assert WORLD["blick"] == {"color": "purple", "home": "valley", "food": "nuts"}
    assert WORLD["glim"] == {"color": "green", "home": "cave", "food": "leaves"}
    assert WORLD["quorn"] == {"color": "green", "home": "hill", "food": "mushrooms"}
    for attribute, values in ATTRIBUTE_VALUES.items():    # balanced: every value held by exactly 4 creatures
        assert Counter(WORLD[c][attribute] for c in CREATURES) == {v: 4 for v in values}


def test_world_independent_of_hash_seed() -> None:
    """Another interpreter with another PYTHONHASHSEED builds the same world (no ``hash()``)."""
    code = "import json; from r1lib.tasks.general import WORLD; print(json.dumps(WORLD))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, cwd=Path(__file__).resolve().parents[1])
    assert json.loads(out.stdout) == WORLD


def test_vocabularies() -> None:
    assert len(VOCAB) == len(set(VOCAB)) == 60
    assert len(NAMES) == len(set(NAMES)) == 40
    values = {v for vs in ATTRIBUTE_VALUES.values() for v in vs}
    assert len(values) == 30
    english = set(VOCAB) | values | set(ZH) | {n.lower() for n in NAMES}
    assert not set(CREATURES) & english                   # made-up names collide with no other word
    assert not set(VOCAB) & values
    assert set(VOCAB) | values <= set(ZH)


# --- verifiable constraints (IF-Eval analogue) ---------------------------------------------------------

@pytest.mark.parametrize("kind", CONSTRAINT_KINDS)
def test_references_satisfy_their_constraints(kind: str) -> None:
    rng = random.Random(21)
    for e in SAMPLES:                                     # 1,000 examples of every base kind mix
        c = add_constraint(e, rng, kind)
        constraint = c.meta["constraint"]
        assert constraint["kind"] == kind and c.id == e.id + "-if-" + kind
        assert c.problem.startswith(e.problem) and len(c.problem) > len(e.problem)
        assert c.answer == e.answer and c.task == e.task and c.solution is None
        assert {k: v for k, v in c.meta.items() if k != "constraint"} == e.meta and "constraint" not in e.meta
        assert check_constraint(c.answer, constraint)
        assert check_general(c.answer, c) == 1.0 and instruction_following(c.answer, c) == 1.0
        for reply in c.meta.get("accepted", []):          # every accepted greeting reply still passes
            assert instruction_following(reply, c) == 1.0
        assert json.loads(json.dumps(c.to_dict())) == c.to_dict()
        words = len(re.findall(r"\w+", e.answer))
        if kind == "max_words":
            assert words <= constraint["n"] <= words + MAX_WORDS_SLACK
            assert f"at most {constraint['n']} words" in c.problem
        elif kind == "include":
            word = constraint["word"]
            assert word.lower() in re.findall(r"\w+", e.answer.lower()) and f"the word {word} " in c.problem
            if e.meta["kind"] == "fact":                  # the creature, never the value (the answer)
                assert word == e.meta["entity"] and e.meta["value"] not in c.problem
            if e.meta["kind"] == "instruction":
                assert word in e.meta["words"]
        else:
            assert c.problem.endswith("Answer in English.")


def test_constraint_kind_drawn_and_deterministic() -> None:
    drawn = Counter(add_constraint(e, random.Random(i), None).meta["constraint"]["kind"]
                    for i, e in enumerate(SAMPLES[:300]))
    assert set(drawn) == set(CONSTRAINT_KINDS)
    e = SAMPLES[3]
    assert add_constraint(e, random.Random(5)).to_dict() == add_constraint(e, random.Random(5)).to_dict()


def test_add_constraint_rejects_bad_input() -> None:
    e = SAMPLES[0]
    with pytest.raises(ValueError):
        add_constraint(e, random.Random(0), "rhyme")
    with pytest.raises(ValueError):
        add_constraint(add_constraint(e, random.Random(0)), random.Random(0))     # one constraint only
    with pytest.raises(ValueError):
        add_constraint(Example(id="a", task="arithmetic", problem="1+1", answer="2"), random.Random(0))


def test_crafted_violations_are_caught() -> None:
    fact = _by_kind("fact")[0]
    entity, value = fact.meta["entity"], fact.meta["value"]
    c = add_constraint(fact, random.Random(0), "max_words")
    n = c.meta["constraint"]["n"]
    assert instruction_following(fact.answer, c) == 1.0
    words = len(fact.answer.split())
    long = fact.answer[:-1] + ", " + " ".join(["yes"] * (n + 1 - words)) + "."   # n + 1 words: within the
    assert len(long.split()) == n + 1 <= 2 * words                     # fact length limit, over the constraint
    assert check_general(long, fact) == 1.0 and check_constraint(long, c.meta["constraint"]) is False
    assert instruction_following(long, c) == 0.0

    c = add_constraint(fact, random.Random(0), "include")
    assert c.meta["constraint"] == {"kind": "include", "word": entity}
    plural = fact.answer.replace(entity, entity + "s")                # check_general accepts the plural ...
    assert check_general(plural, fact) == 1.0 and instruction_following(plural, c) == 0.0   # ... not a whole word
    assert instruction_following(fact.answer.upper(), c) == 1.0

    greeting = _by_kind("greeting", intent="identity")[0]
    c = add_constraint(greeting, random.Random(0), "include")
    word = c.meta["constraint"]["word"]
    assert instruction_following(greeting.answer, c) == 1.0
    assert check_constraint(re.sub(rf"\b{word}\b", "", greeting.answer, flags=re.I), c.meta["constraint"]) is False

    assert check_constraint("The zorb is white.", {"kind": "english"})
    for text in ("这个 zorb 是 白色.", "The zorb is 白色.", "斑马", "123 !", ""):
        assert check_constraint(text, {"kind": "english"}) is False, text
    assert check_constraint("lamp lamp", {"kind": "include", "word": "Lamp"})
    assert not check_constraint("lamplight", {"kind": "include", "word": "lamp"})
    assert check_constraint("one two three", {"kind": "max_words", "n": 3})
    assert not check_constraint("one two three four", {"kind": "max_words", "n": 3})


@pytest.mark.parametrize("response, constraint", [
    (None, {"kind": "english"}), (3, {"kind": "max_words", "n": 3}), ("a", None), ("a", "english"),
    ("a", {}), ("a", {"kind": "rhyme"}), ("a", {"kind": "max_words"}), ("a", {"kind": "max_words", "n": "5"}),
    ("a", {"kind": "max_words", "n": True}), ("a", {"kind": "include"}), ("a", {"kind": "include", "word": 5}),
    ("a", {"kind": "include", "word": " "}),
])
def test_check_constraint_never_raises(response: object, constraint: object) -> None:
    assert check_constraint(response, constraint) is False  # type: ignore[arg-type]


def test_instruction_following_without_constraint_equals_check_general() -> None:
    rng = random.Random(4)
    for e in SAMPLES[:200]:
        assert instruction_following(e.answer, e) == 1.0
        for text in bad_responses(e, rng).values():
            assert instruction_following(text, e) == check_general(text, e) == 0.0
    broken = Example.from_dict({**SAMPLES[0].to_dict(), "meta": {**SAMPLES[0].meta, "constraint": "short"}})
    assert instruction_following(SAMPLES[0].answer, broken) == 0.0
    assert instruction_following(None, SAMPLES[0]) == 0.0  # type: ignore[arg-type]


def test_bad_responses_fail_instruction_following_on_constrained_examples() -> None:
    rng = random.Random(8)
    for i, e in enumerate(SAMPLES[:600]):
        c = add_constraint(e, rng, CONSTRAINT_KINDS[i % 3])
        bad = bad_responses(c, rng)
        assert all(instruction_following(text, c) == 0.0 for text in bad.values()), (c, bad)
        assert not check_constraint(bad[next(k for k, v in VIOLATED_BY.items() if v == CONSTRAINT_KINDS[i % 3])],
                                    c.meta["constraint"]), (c, bad)   # the natural variant breaks the rule itself


def test_instruction_following_set() -> None:
    examples = instruction_following_set(300)
    assert len(examples) == 300 and len({e.problem for e in examples}) == 300
    assert Counter(e.meta["constraint"]["kind"] for e in examples) == {k: 100 for k in CONSTRAINT_KINDS}
    assert {e.meta["kind"] for e in examples} == set(KIND_WEIGHTS)
    assert all(e.meta["split"] == "test" and e.id.startswith("general-test-s0-") for e in examples)
    assert all(instruction_following(e.answer, e) == 1.0 for e in examples)
    assert [e.to_dict() for e in instruction_following_set(300)] == [e.to_dict() for e in examples]
    assert [e.to_dict() for e in instruction_following_set(30)] == [e.to_dict() for e in examples[:30]]
    assert [e.problem for e in instruction_following_set(30, seed=1)] != [e.problem for e in examples[:30]]
    assert instruction_following_set(0) == []


# --- preference pairs and SFT rows ---------------------------------------------------------------------

PAIRS = preference_pairs(900, seed=3)


def test_preference_pairs_separate() -> None:
    assert len(PAIRS) == 900
    by_prompt: dict[str, dict] = {}
    for i, p in enumerate(PAIRS):
        assert set(p) == {"prompt", "chosen", "rejected", "kind", "id", "constraint"}
        assert p["kind"] == BAD_KINDS[i % 3]                          # the variants rotate
        assert p["chosen"] != p["rejected"] and p["chosen"].strip() and p["rejected"].strip()
        by_prompt[p["prompt"]] = p
    assert len(by_prompt) == 900
    # rebuild the examples to grade with the rule checker: 100% of pairs separate
    base = {e.id: e for e in generate("general", 900, split="train", seed=3)}
    for p in PAIRS:
        e = base[p["id"].split("-if-")[0]]
        if p["constraint"] is not None:
            e = Example.from_dict({**e.to_dict(), "problem": p["prompt"],
                                   "meta": {**e.meta, "constraint": p["constraint"]}})
            assert p["prompt"].startswith(base[e.id].problem) and p["id"] == e.id + "-if-" + p["constraint"]["kind"]
            assert p["constraint"]["kind"] == VIOLATED_BY[p["kind"]]
            assert not check_constraint(p["rejected"], p["constraint"])   # the rejected reply breaks the rule
        else:
            assert p["prompt"] == e.problem and p["id"] == e.id
        assert p["chosen"] == e.answer
        assert instruction_following(p["chosen"], e) == 1.0
        assert instruction_following(p["rejected"], e) == 0.0
    assert all(CJK.search(p["rejected"]) for p in PAIRS if p["kind"] == "wrong_language")


def test_preference_pairs_constrained_share_and_determinism() -> None:
    assert sum(p["constraint"] is not None for p in PAIRS) == 270          # round(0.3 * 900)
    assert {p["constraint"]["kind"] for p in PAIRS if p["constraint"]} == set(CONSTRAINT_KINDS)
    assert preference_pairs(900, seed=3) == PAIRS
    assert preference_pairs(60, seed=4) != preference_pairs(60, seed=3)
    assert all(p["constraint"] is None for p in preference_pairs(50, constrained=0.0))
    assert all(p["constraint"] is not None for p in preference_pairs(50, constrained=1.0))
    for bad in (-0.1, 1.5, "0.3", True):
        with pytest.raises(ValueError):
            preference_pairs(5, constrained=bad)  # type: ignore[arg-type]


def test_sft_rows() -> None:
    rows = sft_rows(500, seed=2)
    assert len(rows) == 500 and rows == sft_rows(500, seed=2)
    for row in rows:
        assert set(row) == {"messages"}
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant" and len(row["messages"]) == 2
        assert isinstance(user["content"], str) and user["content"] and assistant["content"]
        assert "<think>" not in assistant["content"] and not CJK.search(assistant["content"])
    constrained = [r for r in rows if re.search(r"(Answer in at most \d+ words|Include the word \w+ in your "
                                                r"answer|Answer in English)\.$", r["messages"][0]["content"])]
    assert len(constrained) == 150                                         # round(0.3 * 500)
    assert all(r["messages"][0]["content"] for r in rows)
    assert {r["messages"][0]["content"] for r in sft_rows(200, seed=2, constrained=0.0)}.isdisjoint(
        {r["messages"][0]["content"] for r in constrained})
    with pytest.raises(ValueError):
        sft_rows(5, constrained=2.0)


def test_test_and_train_prompts_are_disjoint() -> None:
    test_keys = {TASK.key(e) for e in instruction_following_set(1000)}
    train_keys = ({TASK.key(Example(id="", task="general", problem=p["prompt"], answer=""))
                   for p in preference_pairs(2000, seed=0)}
                  | {" ".join(r["messages"][0]["content"].split()) for r in sft_rows(2000, seed=0)})
    assert len(test_keys) == 1000 and train_keys.isdisjoint(test_keys)
    strip = re.compile(r" (Answer in at most \d+ words|Include the word \w+ in your answer|Answer in English)\.$")
    assert {strip.sub("", k) for k in train_keys}.isdisjoint({strip.sub("", k) for k in test_keys})
