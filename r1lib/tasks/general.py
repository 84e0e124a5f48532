"""Simple non-reasoning prompts with reference responses: greetings, instructions, synthetic facts.

What it is for: the later stages of the DeepSeek-R1 pipeline mix **non-reasoning data** (the paper:
writing, factual QA, self-cognition, translation; simple queries get no chain of thought) into the
reasoning data at about 3 : 1. Our tiny model's pretraining corpus holds a small share of such
documents, and the stage-3 SFT data and the stage-4 preference reward model use them:
:func:`check_general` grades a response, :func:`bad_responses` gives rejected variants
(off-topic, wrong language, rambling) for preference pairs.

Three kinds (``meta["kind"]``), drawn with :data:`KIND_WEIGHTS`:

1. ``greeting``: greetings, thanks, goodbyes and self-cognition ("Hi, who are you?" ->
   ``"Hello! " + IDENTITY``). A prompt is an optional opener ("Hi!", "Good morning,"), an optional
   self-introduction ("I am Maya.") and an intent sentence ("Who are you?"); the reference is a
   fixed reply per part ("Hello!" or "Hello Maya! Nice to meet you.", then the intent's reply).
   ``meta["accepted"]`` lists the accepted replies: the reference, and, when the prompt greets
   before asking something, the intent's reply alone.
2. ``instruction``: a short instruction with one verifiable answer over :data:`VOCAB` (60 common
   words) and counts one..four spelled as words: "Repeat the word lamp three times." ->
   ``"lamp lamp lamp"``. ``meta["words"]`` holds the required words in order.
3. ``fact``: a question about a fixed synthetic world, :data:`WORLD` (40 made-up creatures with a
   color, a home and a food): "What color is the zorb?" -> ``"The zorb is <color>."``.
   ``meta`` holds ``entity``, ``attribute`` and ``value``.

Design choices:

- Such simple prompts because the model has ~1M parameters and sees these documents as a few percent
  of a ~6M-token corpus: every response is one or two short sentences in a fixed style, built from a
  closed vocabulary, so the model can learn the mapping (and the facts) rather than free writing.
- The world is made up so that its facts are learnable only from our corpus (no leakage from real
  knowledge, which the model does not have anyway) and so that the corpus and the evaluation agree.
  It is built deterministically from SHA-256 (never ``hash()``): the same on every machine and
  Python version; each value is used by exactly 4 of the 40 creatures. Homes and foods are plain
  words ("cave", "honey"); only the creatures are made-up names.
- Surface variety (openers, names, question wrappers such as "Maya asks: ") makes many distinct
  prompt texts per underlying reply, because :func:`r1lib.tasks.registry.generate` keeps keys
  unique (each prompt at most once per list) and splits train/test by key: a small pool would run
  dry and skew the kind mix. Facts are shared by both splits (they cannot be inferred, only
  recalled); the held-out test prompts are new phrasings of them. Distinct prompts (both splits):
  greeting 24,355 (identity 10,125; thanks 40, bye 24), instruction 422,160, fact 30,600. Because
  small sub-pools (bare "Who are you?", thanks, bye, "Say the word X.") fill up first, a deduplicated
  list drifts from :data:`KIND_WEIGHTS`: measured with ``generate`` at difficulty (1, 3), about
  21% greeting / 34% instruction / 45% fact at 5,000 examples, and thanks/bye nearly vanish at 20,000.
- ``difficulty`` (1..5) only lengthens instructions mildly: repeat counts go up to
  ``min(4, difficulty + 1)`` and three-word lists appear from level 2. Greetings and facts ignore it.
- No ``meta["steps"]``: these examples carry no chain of thought (``solution`` is ``None``).

Checker rules (:func:`check_general`, 1.0 or 0.0, never raises): text is compared as lower-cased
word tokens (``\\w+``), so case, whitespace and punctuation are ignored. Any response with a CJK
character scores 0.0 (every prompt is English: language consistency), as does an empty one.

- greeting: the tokens equal those of one of ``meta["accepted"]``;
- instruction: the tokens are exactly ``meta["words"]`` (no extra word, same order);
- fact: the response names the entity (or its plural), states the value, names no other value of
  that attribute and no other creature, has no negation ("not", "no", "never", "isn't", ...), and
  has at most :data:`FACT_MAX_LENGTH_FACTOR` times the reference's number of words.

:func:`bad_responses` variants all score 0.0: ``off_topic`` (the reference of a prompt of another
kind), ``rambling`` (reference plus filler, >= 3x longer: not an accepted greeting, extra words for an
instruction, over the length limit for a fact), and ``wrong_language`` (the reference translated
word by word with :data:`ZH`, names kept): it is rejected by the CJK rule, and independently because
the required English words are gone.

**Instruction following** (our IF-Eval analogue; rule-checked, never scored by a reward model):
:func:`add_constraint` appends one verifiable constraint to a prompt and records it in
``meta["constraint"]``; the reference satisfies it by construction (``meta["accepted"]`` etc. are kept):

- ``max_words``: "Answer in at most N words." (``{"kind": "max_words", "n": N}``), N = the reference's
  word count plus 0..:data:`MAX_WORDS_SLACK`; passes with at most N word tokens (``\\w+``);
- ``include``: "Include the word X in your answer." (``{"kind": "include", "word": X}``), X a word of the
  reference that every accepted reply has (an instruction's required word, a fact's creature, never
  the fact's value, which would give the answer away; a word of 4+ letters of a greeting's reply);
  passes when X appears as a whole word, case-insensitively;
- ``english``: "Answer in English." (``{"kind": "english"}``); passes with no CJK character and at
  least one Latin word.

:func:`check_constraint` checks one rule, :func:`instruction_following` scores 1.0 iff
:func:`check_general` does and the constraint (if any) holds; :func:`instruction_following_set`
gives a deterministic evaluation set (the test split by default, kinds balanced). The split of a
constrained example is that of its underlying prompt, so test prompts never occur in train data.

**Pipeline data**: :func:`preference_pairs` (stage-4 reward model: chosen = the reference, rejected =
a :func:`bad_responses` variant rotating off_topic / wrong_language / rambling; in the constrained
share the added constraint is the one the rejected reply breaks: rambling breaks max_words,
wrong_language breaks english, off_topic breaks include) and :func:`sft_rows` (stage-3 non-reasoning SFT rows: user prompt,
assistant reference, no chain of thought). Every chosen reply / SFT reply passes
:func:`instruction_following` and every rejected reply fails it (all of them: each fails
:func:`check_general` already, and ``preference_pairs`` checks it).
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
from dataclasses import replace
from typing import Any

from r1lib.tasks.base import Example
from r1lib.tasks.expr import check_difficulty

KIND_WEIGHTS: dict[str, float] = {"greeting": 0.25, "instruction": 0.35, "fact": 0.40}
"""Share of each kind among sampled examples."""

# --- self-cognition and greetings -------------------------------------------------------------------

IDENTITY = "I am Tiny R1, a small assistant. I can answer simple questions and solve math problems."
"""The fixed self-cognition answer."""

NAMES = ("Maya", "Tom", "Lena", "Omar", "Sofia", "Ben", "Aisha", "Leo", "Nora", "Ravi",
         "Emma", "Kenji", "Zoe", "Diego", "Ivy", "Sam", "Anna", "Max", "Lucy", "Noah",
         "Mia", "Jack", "Ella", "Liam", "Hana", "Yusuf", "Clara", "Felix", "Rosa", "Hugo",
         "Iris", "Milo", "Nina", "Oscar", "Priya", "Theo", "Vera", "Amir", "Elena", "Jonas")
"""User names, for self-introductions and question wrappers."""

OPENERS = ("Hello", "Hi", "Hey", "Hi there", "Hello there", "Good morning", "Good afternoon", "Good evening")
INTRODUCTIONS = ("I am {name}.", "My name is {name}.")

# intent -> (phrasings, reply). "hello" has no sentence of its own: the prompt is only an opener
# and/or a self-introduction. "thanks" and "bye" stand alone (no opener, no introduction).
INTENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "hello": ((), "I am a small assistant. How can I help?"),
    "how_are_you": (("How are you?", "How are you today?", "How is it going?"),
                    "I am fine, thank you. How can I help?"),
    "identity": (("Who are you?", "What are you?", "What is your name?", "Tell me about yourself.",
                  "Can you introduce yourself?"), IDENTITY),
    "help": (("Can you help me?", "I need some help.", "Can I ask you something?"),
             "Yes, of course. What do you need?"),
    "thanks": (tuple(head + tail for head in ("Thanks", "Thank you", "Thanks a lot", "Thank you very much",
                                              "Many thanks")
                     for tail in ("!", ".", " for the help.", " for your help.", " for the answer.",
                                  ", that was helpful.", ", that helps.", " for explaining.")),
               "You are welcome! Happy to help."),
    "bye": (tuple(head + tail for head in ("Goodbye", "Bye", "See you later", "See you soon", "Good night",
                                           "Bye for now")
                  for tail in ("!", ".", ", and thanks!", ", thank you!")),
            "Goodbye! Have a nice day."),
}
INTENT_WEIGHTS: dict[str, float] = {"hello": 0.20, "how_are_you": 0.15, "identity": 0.40, "help": 0.13,
                                    "thanks": 0.07, "bye": 0.05}
"""Share of each intent among greetings (self-cognition, ``identity``, the largest)."""
_STANDALONE = ("thanks", "bye")
# How a greeting starts (intents other than thanks/bye): opener and/or self-introduction.
_GREET_PARTS: dict[str, float] = {"none": 0.20, "opener": 0.25, "intro": 0.20, "both": 0.35}
_HELLO_PARTS: dict[str, float] = {"opener": 0.30, "intro": 0.30, "both": 0.40}

# --- instructions -----------------------------------------------------------------------------------

VOCAB = ("lamp", "river", "apple", "book", "chair", "cloud", "dog", "cat", "door", "egg",
         "flower", "hat", "house", "key", "moon", "music", "paper", "pencil", "rain", "road",
         "rock", "ship", "shoe", "sky", "snow", "star", "sun", "table", "tree", "water",
         "wind", "window", "bird", "boat", "bread", "bell", "box", "cake", "coin", "cup",
         "desk", "drum", "fire", "frog", "glass", "horse", "kite", "milk", "ring", "sand",
         "tent", "train", "wall", "wheel", "king", "clock", "bag", "bed", "bus", "map")
"""The 60 words instructions use."""
COUNT_WORDS = ("one", "two", "three", "four")

INSTRUCTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "say": ("Say the word {a}.", "Write the word {a}.", "Please write {a}."),
    "repeat": ("Repeat the word {a} {n}.", "Say {a} {n}.", "Write the word {a} {n}."),
    "pair": ("Write the word {a} and then the word {b}.", "Say {a}, then {b}.", "Write {a} followed by {b}."),
    "list": ("Write the words {a}, {b} and {c} in this order.", "Say {a}, then {b}, then {c}."),
}
FORM_WEIGHTS: dict[str, float] = {"say": 0.20, "repeat": 0.35, "pair": 0.30, "list": 0.15}
"""Share of each instruction form (``list`` only from difficulty 2; renormalised at level 1)."""

# --- the synthetic world ----------------------------------------------------------------------------

CREATURES = ("zorb", "blick", "frane", "glim", "drox", "snib", "trell", "vosk", "quib", "plam",
             "mirk", "jorp", "fleb", "kesh", "lorn", "nuff", "pim", "rask", "skee", "tove",
             "wub", "yarp", "zell", "brom", "dweb", "gax", "hobb", "jix", "krell", "lunk",
             "mox", "oomp", "prax", "rilt", "slom", "vell", "wix", "yomp", "zant", "quorn")
"""The 40 made-up creatures of the world."""
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "color": ("red", "blue", "green", "yellow", "purple", "pink", "brown", "black", "white", "gray"),
    "home": ("forest", "cave", "lake", "desert", "mountain", "swamp", "meadow", "island", "valley", "hill"),
    "food": ("berries", "fish", "seeds", "leaves", "honey", "mushrooms", "grass", "nuts", "bugs", "roots"),
}


def _build_world() -> dict[str, dict[str, str]]:
    """Each attribute: creatures ordered by SHA-256 of (attribute, name), values dealt round-robin."""
    world: dict[str, dict[str, str]] = {name: {} for name in CREATURES}
    for attribute, values in ATTRIBUTE_VALUES.items():
        order = sorted(CREATURES, key=lambda name: hashlib.sha256(
            f"r1lib-general-world|{attribute}|{name}".encode("utf-8")).hexdigest())
        for i, name in enumerate(order):
            world[name][attribute] = values[i % len(values)]
    return world


WORLD: dict[str, dict[str, str]] = _build_world()
"""creature -> {"color": ..., "home": ..., "food": ...}; deterministic (see :func:`_build_world`)."""

FACT_QUESTIONS: dict[str, tuple[str, ...]] = {
    "color": ("What color is the {e}?", "What is the color of the {e}?", "Which color does the {e} have?"),
    "home": ("Where does the {e} live?", "Where is the home of the {e}?", "In which place does the {e} live?"),
    "food": ("What does the {e} eat?", "What food does the {e} eat?", "What is the food of the {e}?"),
}
FACT_ANSWERS: dict[str, str] = {"color": "The {e} is {v}.", "home": "The {e} lives in the {v}.",
                                "food": "The {e} eats {v}."}
_PLAIN_WRAPPERS = ("Quick question: ", "Please tell me: ", "I want to know: ", "Question: ")
_NAME_WRAPPERS = ("{name} asks: ", "{name} wants to know: ")
_WRAPPER_KINDS: dict[str, float] = {"none": 0.30, "plain": 0.20, "name": 0.50}
FACT_MAX_LENGTH_FACTOR = 2
"""A fact response may have at most this many times the reference's number of words."""
NEGATIONS = frozenset({"not", "no", "never", "isn", "doesn", "don", "cannot", "nothing"})

# --- rejected variants ------------------------------------------------------------------------------

ZH: dict[str, str] = {
    # instruction vocabulary
    "lamp": "灯", "river": "河", "apple": "苹果", "book": "书", "chair": "椅子", "cloud": "云", "dog": "狗",
    "cat": "猫", "door": "门", "egg": "蛋", "flower": "花", "hat": "帽子", "house": "房子", "key": "钥匙",
    "moon": "月亮", "music": "音乐", "paper": "纸", "pencil": "铅笔", "rain": "雨", "road": "路", "rock": "石头",
    "ship": "船", "shoe": "鞋", "sky": "天空", "snow": "雪", "star": "星星", "sun": "太阳", "table": "桌子",
    "tree": "树", "water": "水", "wind": "风", "window": "窗户", "bird": "鸟", "boat": "小船", "bread": "面包",
    "bell": "铃", "box": "盒子", "cake": "蛋糕", "coin": "硬币", "cup": "杯子", "desk": "书桌", "drum": "鼓",
    "fire": "火", "frog": "青蛙", "glass": "玻璃", "horse": "马", "kite": "风筝", "milk": "牛奶", "ring": "戒指",
    "sand": "沙子", "tent": "帐篷", "train": "火车", "wall": "墙", "wheel": "轮子", "king": "国王", "clock": "钟",
    "bag": "包", "bed": "床", "bus": "公交车", "map": "地图",
    # world values
    "red": "红色", "blue": "蓝色", "green": "绿色", "yellow": "黄色", "purple": "紫色", "pink": "粉色",
    "brown": "棕色", "black": "黑色", "white": "白色", "gray": "灰色",
    "forest": "森林", "cave": "山洞", "lake": "湖", "desert": "沙漠", "mountain": "山", "swamp": "沼泽",
    "meadow": "草地", "island": "岛", "valley": "山谷", "hill": "小山",
    "berries": "浆果", "fish": "鱼", "seeds": "种子", "leaves": "叶子", "honey": "蜂蜜", "mushrooms": "蘑菇",
    "grass": "草", "nuts": "坚果", "bugs": "虫子", "roots": "根",
    # words of the fixed replies and fact answers
    "the": "这个", "is": "是", "lives": "住", "in": "在", "eats": "吃", "hello": "你好", "i": "我", "am": "是",
    "a": "一个", "small": "小", "assistant": "助手", "how": "怎么", "can": "能", "help": "帮助", "fine": "很好",
    "thank": "谢谢", "you": "你", "nice": "很好", "to": "来", "meet": "认识", "tiny": "小", "answer": "回答",
    "simple": "简单的", "questions": "问题", "and": "和", "solve": "解决", "math": "数学", "problems": "题目",
    "yes": "是的", "of": "的", "course": "当然", "what": "什么", "do": "做", "need": "需要", "are": "是",
    "welcome": "不客气", "happy": "高兴", "goodbye": "再见", "have": "有", "day": "天",
}
"""English -> Chinese word table for the ``wrong_language`` variant (names are kept)."""
FILLERS = ("I hope this helps.", "Let me know if you need anything else.", "That is all I can say.",
           "Thank you for your question.", "Have a good day.", "I am always here for you.")
"""Filler sentences for the ``rambling`` variant."""

_WORD = re.compile(r"\w+")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    """A key drawn with the given weights (in insertion order; one ``rng.random()`` call)."""
    x = rng.random() * sum(weights.values())
    for key, weight in weights.items():
        x -= weight
        if x < 0:
            return key
    return next(reversed(weights))


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _after_comma(sentence: str) -> str:
    """A sentence continued after "Hi, ": lower-cased first letter, except the pronoun "I"."""
    return sentence if sentence.startswith("I ") else sentence[0].lower() + sentence[1:]


# --- generators -------------------------------------------------------------------------------------

def _greeting(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    intent = _pick(rng, INTENT_WEIGHTS)
    phrasings, reply = INTENTS[intent]
    if intent in _STANDALONE:
        return rng.choice(phrasings), reply, {"intent": intent, "accepted": [reply]}
    parts = _pick(rng, _HELLO_PARTS if intent == "hello" else _GREET_PARTS)
    sentences: list[str] = []
    name = rng.choice(NAMES) if parts in ("intro", "both") else None
    if name is not None:
        sentences.append(rng.choice(INTRODUCTIONS).format(name=name))
    if intent != "hello":
        sentences.append(rng.choice(phrasings))
    if parts in ("opener", "both"):
        opener = rng.choice(OPENERS)
        punct = rng.choice(("!", ".", ",") if sentences else ("!", "."))
        if punct == ",":
            sentences[0] = f"{opener}, {_after_comma(sentences[0])}"
        else:
            sentences.insert(0, f"{opener}{punct}")
    greet = None if parts == "none" else (f"Hello {name}! Nice to meet you." if name else "Hello!")
    reference = reply if greet is None else f"{greet} {reply}"
    accepted = [reference] + ([reply] if greet is not None and intent != "hello" else [])
    meta: dict[str, Any] = {"intent": intent, "accepted": accepted}
    if name is not None:
        meta["name"] = name
    return " ".join(sentences), reference, meta


def _instruction(rng: random.Random, difficulty: int) -> tuple[str, str, dict[str, Any]]:
    weights = FORM_WEIGHTS if difficulty >= 2 else {k: w for k, w in FORM_WEIGHTS.items() if k != "list"}
    form = _pick(rng, weights)
    template = rng.choice(INSTRUCTION_TEMPLATES[form])
    if form == "repeat":
        count = rng.randint(1, min(4, difficulty + 1))
        word = rng.choice(VOCAB)
        times = f"{COUNT_WORDS[count - 1]} {'time' if count == 1 else 'times'}"
        words = [word] * count
        prompt = template.format(a=word, n=times)
    else:
        words = rng.sample(VOCAB, {"say": 1, "pair": 2, "list": 3}[form])
        prompt = template.format(**dict(zip("abc", words)))
    return prompt, " ".join(words), {"form": form, "words": words}


def _fact(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    entity = rng.choice(CREATURES)
    attribute = rng.choice(sorted(ATTRIBUTE_VALUES))
    value = WORLD[entity][attribute]
    question = rng.choice(FACT_QUESTIONS[attribute]).format(e=entity)
    wrapper = _pick(rng, _WRAPPER_KINDS)
    if wrapper == "plain":
        question = rng.choice(_PLAIN_WRAPPERS) + question
    elif wrapper == "name":
        question = rng.choice(_NAME_WRAPPERS).format(name=rng.choice(NAMES)) + question
    answer = FACT_ANSWERS[attribute].format(e=entity, v=value)
    return question, answer, {"entity": entity, "attribute": attribute, "value": value}


def _sample_kind(rng: random.Random, kind: str, difficulty: int) -> Example:
    if kind == "greeting":
        prompt, answer, extra = _greeting(rng)
    elif kind == "instruction":
        prompt, answer, extra = _instruction(rng, difficulty)
    elif kind == "fact":
        prompt, answer, extra = _fact(rng)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KIND_WEIGHTS)}")
    return Example(id=f"{GeneralTask.name}-unassigned", task=GeneralTask.name, problem=prompt, answer=answer,
                   solution=None, meta={"kind": kind, "difficulty": difficulty, **extra})


class GeneralTask:
    """Simple non-reasoning prompts (greeting / instruction / fact) with reference responses."""

    name = "general"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        """Draw one example; the kind with :data:`KIND_WEIGHTS`, ``difficulty`` 1..5 (module docstring)."""
        check_difficulty(difficulty)
        return _sample_kind(rng, _pick(rng, KIND_WEIGHTS), difficulty)

    def key(self, example: Example) -> str:
        """Canonical key: the prompt text with whitespace collapsed (the reference is a function of it)."""
        return " ".join(example.problem.split())


# --- checking ---------------------------------------------------------------------------------------

def _check_fact(got: list[str], meta: dict[str, Any], reference: str) -> bool:
    entity, attribute, value = meta["entity"], meta["attribute"], meta["value"]
    present = set(got)
    if len(got) > FACT_MAX_LENGTH_FACTOR * len(_tokens(reference)):
        return False
    if entity not in present and entity + "s" not in present:
        return False
    if value not in present or present & (set(ATTRIBUTE_VALUES[attribute]) - {value}):
        return False
    others = {c for c in CREATURES if c != entity}
    if present & (others | {c + "s" for c in others}):
        return False
    return not present & NEGATIONS


def check_general(response: str, example: Example) -> float:
    """1.0 if ``response`` does what the prompt of ``example`` asks, else 0.0; never raises.

    Rules in the module docstring (CJK characters or an empty response: 0.0).

    >>> ex = Example(id="0", task="general", problem="Repeat the word lamp two times.", answer="lamp lamp",
    ...              meta={"kind": "instruction", "words": ["lamp", "lamp"]})
    >>> check_general("Lamp, lamp.", ex), check_general("lamp", ex), check_general(None, ex)
    (1.0, 0.0, 0.0)
    """
    try:
        if not isinstance(response, str) or not response.strip() or _CJK.search(response):
            return 0.0
        meta = example.meta
        kind = meta.get("kind")
        got = _tokens(response)
        if kind == "greeting":
            ok = any(got == _tokens(reply) for reply in meta["accepted"])
        elif kind == "instruction":
            ok = got == [str(w).lower() for w in meta["words"]]
        elif kind == "fact":
            ok = _check_fact(got, meta, example.answer)
        else:
            ok = False
        return 1.0 if ok else 0.0
    except Exception:  # noqa: BLE001 - a reward must never raise; a broken example scores 0
        return 0.0


def bad_responses(example: Example, rng: random.Random) -> dict[str, str]:
    """Three rejected variants of the reference, for preference pairs; each scores 0.0.

    - ``off_topic``: the reference response to a prompt of another kind;
    - ``wrong_language``: the reference with its words replaced through :data:`ZH` (names kept);
    - ``rambling``: the reference followed by filler sentences, at least 3x longer (words and characters).
    """
    reference = example.answer
    kind = example.meta.get("kind")
    difficulty = example.meta.get("difficulty", 1)
    others = [k for k in KIND_WEIGHTS if k != kind]
    off_topic = "I like to eat cake in the rain."  # fallback, never expected
    for _ in range(100):
        other = _sample_kind(rng, rng.choice(others), difficulty)
        if check_general(other.answer, example) == 0.0:
            off_topic = other.answer
            break
    wrong_language = _LATIN_WORD.sub(lambda m: ZH.get(m.group().lower(), m.group()), reference)
    rambling = reference
    while len(_tokens(rambling)) < 3 * len(_tokens(reference)) or len(rambling) < 3 * len(reference):
        rambling += " " + rng.choice(FILLERS)
    return {"off_topic": off_topic, "wrong_language": wrong_language, "rambling": rambling}


# --- verifiable constraints (an IF-Eval analogue) ----------------------------------------------------

CONSTRAINT_KINDS = ("max_words", "include", "english")
"""The kinds of verifiable constraint :func:`add_constraint` appends to a prompt."""
CONSTRAINT_TEMPLATES: dict[str, str] = {"max_words": "Answer in at most {n} words.",
                                        "include": "Include the word {word} in your answer.",
                                        "english": "Answer in English."}
"""The sentence appended to the prompt for each constraint kind."""
MAX_WORDS_SLACK = 3
"""``max_words`` allows the reference's word count plus 0..this many words (drawn). Every rambling
variant has at least 4 more words than the reference (one filler sentence or more), so it always
breaks the limit."""
BAD_KINDS = ("off_topic", "wrong_language", "rambling")
"""The rejected variants of :func:`bad_responses`, in the order :func:`preference_pairs` rotates them."""
VIOLATED_BY: dict[str, str] = {"off_topic": "include", "wrong_language": "english", "rambling": "max_words"}
"""Rejected variant -> the constraint it naturally breaks (used for constrained preference pairs)."""
_INCLUDE_MIN_LENGTH = 4   # greeting words eligible for ``include``: no "I", "a", "am", "you", ...
_NAME_WORDS = frozenset(n.lower() for n in NAMES)


def _stable_seed(*parts: object) -> int:
    """A 64-bit seed from SHA-256 of the parts (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def _include_candidates(example: Example) -> list[str]:
    """Words an ``include`` constraint may ask for: words of the reference that every accepted reply has."""
    meta = example.meta
    kind = meta.get("kind")
    if kind == "instruction":
        return sorted({str(w) for w in meta["words"]})
    if kind == "fact":
        return [str(meta["entity"])]       # never the value: that would give the answer away
    if kind == "greeting":
        common = set.intersection(*(set(_tokens(reply)) for reply in meta["accepted"]))
        words = sorted(w for w in common if len(w) >= _INCLUDE_MIN_LENGTH and w not in _NAME_WORDS
                       and _LATIN_WORD.fullmatch(w))
        if words:
            return words
    return sorted(w for w in set(_tokens(example.answer)) if _LATIN_WORD.fullmatch(w))


def add_constraint(example: Example, rng: random.Random, kind: str | None = None) -> Example:
    """A copy of a general ``example`` whose prompt ends with one verifiable constraint.

    ``kind`` is one of :data:`CONSTRAINT_KINDS` (``None``: drawn uniformly with ``rng``). The prompt
    gets the sentence of :data:`CONSTRAINT_TEMPLATES`, ``meta["constraint"]`` the rule
    (``{"kind": "max_words", "n": 7}``, ``{"kind": "include", "word": "lamp"}``, ``{"kind": "english"}``)
    and the id the suffix ``"-if-<kind>"``; the rest of ``meta`` (``accepted``, ``words``, ...) is kept,
    so :func:`check_general` grades as before. The reference satisfies the constraint by construction:
    ``n`` is its word count plus 0..:data:`MAX_WORDS_SLACK`; the included word is one of its words that
    every accepted reply has (an instruction's required word, the creature of a fact, never the fact's
    value; a word of at least 4 letters of a greeting's reply); references are English.
    Raises ``ValueError`` for an unknown kind, a non-general example or one already constrained.

    >>> ex = Example(id="g1", task="general", problem="Say the word lamp.", answer="lamp",
    ...              meta={"kind": "instruction", "words": ["lamp"]})
    >>> c = add_constraint(ex, random.Random(0), "include")
    >>> c.id, c.problem, c.meta["constraint"]
    ('g1-if-include', 'Say the word lamp. Include the word lamp in your answer.', {'kind': 'include', 'word': 'lamp'})
    """
    if kind is None:
        kind = rng.choice(CONSTRAINT_KINDS)
    if kind not in CONSTRAINT_KINDS:
        raise ValueError(f"unknown constraint kind {kind!r}; expected one of {CONSTRAINT_KINDS}")
    if example.task != GeneralTask.name or example.meta.get("kind") not in KIND_WEIGHTS:
        raise ValueError(f"add_constraint needs a general example, got task {example.task!r}")
    if "constraint" in example.meta:
        raise ValueError(f"{example.id} already has a constraint: {example.meta['constraint']!r}")
    constraint: dict[str, Any]
    if kind == "max_words":
        constraint = {"kind": kind, "n": len(_tokens(example.answer)) + rng.randint(0, MAX_WORDS_SLACK)}
    elif kind == "include":
        constraint = {"kind": kind, "word": rng.choice(_include_candidates(example))}
    else:
        constraint = {"kind": kind}
    sentence = CONSTRAINT_TEMPLATES[kind].format(**constraint)
    meta = copy.deepcopy(example.meta)
    meta["constraint"] = constraint
    out = replace(example, id=f"{example.id}-if-{kind}", problem=f"{example.problem.rstrip()} {sentence}", meta=meta)
    if not check_constraint(out.answer, constraint):  # never expected: the reference is built to satisfy it
        raise RuntimeError(f"{out.id}: the reference breaks its own constraint {constraint!r}")
    return out


def check_constraint(response: str, constraint: dict[str, Any]) -> bool:
    """Whether ``response`` satisfies ``constraint`` (a ``meta["constraint"]`` dict); never raises.

    - ``max_words``: at most ``n`` word tokens (``\\w+``; a run of Chinese characters is one token);
    - ``include``: ``word`` appears as a whole word, case-insensitively;
    - ``english``: no CJK character and at least one Latin word.

    A non-string response, or a malformed or unknown constraint, gives ``False``.

    >>> check_constraint("The zorb is white.", {"kind": "max_words", "n": 4})
    True
    >>> check_constraint("The zorb is white, I think.", {"kind": "max_words", "n": 4})
    False
    >>> include = {"kind": "include", "word": "zorb"}
    >>> check_constraint("A ZORB!", include), check_constraint("zorbs", include)
    (True, False)
    >>> check_constraint("lamp", {"kind": "english"}), check_constraint("lamp 灯", {"kind": "english"})
    (True, False)
    """
    try:
        if not isinstance(response, str) or not isinstance(constraint, dict):
            return False
        kind = constraint.get("kind")
        if kind == "max_words":
            n = constraint["n"]
            return isinstance(n, int) and not isinstance(n, bool) and len(_tokens(response)) <= n
        if kind == "include":
            word = constraint["word"]
            if not isinstance(word, str) or not word.strip():
                return False
            pattern = r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)"
            return re.search(pattern, response, re.IGNORECASE) is not None
        if kind == "english":
            return not _CJK.search(response) and _LATIN_WORD.search(response) is not None
        return False
    except Exception:  # noqa: BLE001 - a reward must never raise
        return False


def instruction_following(response: str, example: Example) -> float:
    """1.0 iff ``check_general(response, example) == 1.0`` and the constraint (if any) holds, else 0.0.

    The IF-Eval analogue: purely rule-checked (:func:`check_general` and :func:`check_constraint`),
    never scored by a reward model. Never raises; a ``meta["constraint"]`` that is present but
    malformed scores 0.0.

    >>> ex = Example(id="g1", task="general", problem="Say the word lamp. Answer in at most 2 words.",
    ...              answer="lamp", meta={"kind": "instruction", "words": ["lamp"],
    ...                                   "constraint": {"kind": "max_words", "n": 2}})
    >>> instruction_following("Lamp.", ex), instruction_following("lamp lamp", ex)
    (1.0, 0.0)
    """
    try:
        if check_general(response, example) != 1.0:
            return 0.0
        if "constraint" in example.meta and not check_constraint(response, example.meta["constraint"]):
            return 0.0
        return 1.0
    except Exception:  # noqa: BLE001
        return 0.0


def _check_share(name: str, share: float) -> float:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {share!r}")
    return float(share)


def _base_examples(n: int, split: str, seed: int, difficulty: int | tuple[int, int]) -> list[Example]:
    from r1lib.tasks.registry import generate  # lazy: the registry imports this module

    return generate(GeneralTask.name, n, split=split, seed=seed, difficulty=difficulty)


def _constrained_flags(n: int, share: float, rng: random.Random) -> list[bool]:
    """Exactly ``round(share * n)`` True flags, in a random order."""
    flags = [i < round(share * n) for i in range(n)]
    rng.shuffle(flags)
    return flags


def instruction_following_set(n: int, *, split: str = "test", seed: int = 0,
                              difficulty: int | tuple[int, int] = (1, 3)) -> list[Example]:
    """``n`` constrained examples for the IF-Eval analogue, deterministic from ``(split, seed)``.

    The examples are ``generate("general", n, split=split, seed=seed, difficulty=difficulty)``, each
    with one constraint; the kinds rotate over :data:`CONSTRAINT_KINDS` (counts differ by at most one).
    The split is that of the underlying prompt, so the test set shares no prompt with any train data.
    Grade with :func:`instruction_following`.
    """
    rng = random.Random(_stable_seed("r1lib-general-ifeval", split, seed))
    return [add_constraint(e, rng, CONSTRAINT_KINDS[i % len(CONSTRAINT_KINDS)])
            for i, e in enumerate(_base_examples(n, split, seed, difficulty))]


def preference_pairs(n: int, *, split: str = "train", seed: int = 0, constrained: float = 0.3,
                     difficulty: int | tuple[int, int] = (1, 3)) -> list[dict[str, Any]]:
    """``n`` preference pairs over general prompts, for the stage-4 reward model; deterministic by seed.

    Each pair is ``{"prompt", "chosen", "rejected", "kind", "id", "constraint"}``: ``chosen`` is the
    reference reply (concise, one language, does what is asked), ``rejected`` the :func:`bad_responses`
    variant ``kind``, rotating over :data:`BAD_KINDS` (pair ``i`` gets ``BAD_KINDS[i % 3]``). A share
    ``constrained`` of the pairs (exactly ``round(constrained * n)``, spread at random) has a constraint
    added to its prompt, the one the rejected variant breaks (:data:`VIOLATED_BY`: rambling breaks
    ``max_words``, wrong_language ``english``, off_topic ``include``); ``constraint`` is that dict or
    ``None``. Every chosen reply scores 1.0 and every rejected one 0.0 under
    :func:`instruction_following` (checked; a violation raises ``RuntimeError``, never expected).
    """
    share = _check_share("constrained", constrained)
    examples = _base_examples(n, split, seed, difficulty)
    rng = random.Random(_stable_seed("r1lib-general-pairs", split, seed))
    flags = _constrained_flags(len(examples), share, rng)
    pairs: list[dict[str, Any]] = []
    for i, (example, flag) in enumerate(zip(examples, flags)):
        kind = BAD_KINDS[i % len(BAD_KINDS)]
        if flag:
            example = add_constraint(example, rng, VIOLATED_BY[kind])
        rejected = bad_responses(example, rng)[kind]
        chosen = example.answer
        if (chosen == rejected or instruction_following(chosen, example) != 1.0
                or instruction_following(rejected, example) != 0.0):
            raise RuntimeError(f"{example.id}: preference pair does not separate ({chosen!r} vs {rejected!r})")
        pairs.append({"prompt": example.problem, "chosen": chosen, "rejected": rejected, "kind": kind,
                      "id": example.id, "constraint": example.meta.get("constraint")})
    return pairs


def sft_rows(n: int, *, split: str = "train", seed: int = 0, constrained: float = 0.3,
             difficulty: int | tuple[int, int] = (1, 3)) -> list[dict[str, Any]]:
    """``n`` chat rows of non-reasoning data for stage-3 SFT; deterministic by seed.

    Each row is ``{"messages": [{"role": "user", "content": prompt}, {"role": "assistant",
    "content": reference}]}`` with no chain of thought (the paper gives simple queries none). A share
    ``constrained`` of the rows (exactly ``round(constrained * n)``, spread at random) has a constraint
    added; their kinds rotate over :data:`CONSTRAINT_KINDS`. Every reply passes :func:`instruction_following`.
    """
    share = _check_share("constrained", constrained)
    examples = _base_examples(n, split, seed, difficulty)
    rng = random.Random(_stable_seed("r1lib-general-sft", split, seed))
    flags = _constrained_flags(len(examples), share, rng)
    rows: list[dict[str, Any]] = []
    n_constrained = 0
    for example, flag in zip(examples, flags):
        if flag:
            example = add_constraint(example, rng, CONSTRAINT_KINDS[n_constrained % len(CONSTRAINT_KINDS)])
            n_constrained += 1
        rows.append({"messages": [{"role": "user", "content": example.problem},
                                  {"role": "assistant", "content": example.answer}]})
    return rows
