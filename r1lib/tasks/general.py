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
"""

from __future__ import annotations

import hashlib
import random
import re
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
