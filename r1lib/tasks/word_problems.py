"""Templated grade-school word problems with integer answers.

Five templates (shopping, sharing, ages, rates, savings). The number of solution steps equals
``min(difficulty, 4)``; difficulty also scales the numbers:

1. one step, small numbers (e.g. "buys 3 notebooks at $4 each")
2. two steps
3. three steps
4. four steps
5. four steps with larger numbers

Each step's ``lhs`` names the quantity and ends in its arithmetic, e.g.
``("cost of the notebooks = 3 * 4", "12")``, rendered ``cost of the notebooks = 3 * 4 = 12``.
"""

from __future__ import annotations

import random
from typing import Callable

from r1lib.tasks.base import Example
from r1lib.tasks.expr import check_difficulty, render_steps

Steps = list[tuple[str, str]]

_PEOPLE = [("Maya", "she", "her"), ("Tom", "he", "his"), ("Lena", "she", "her"), ("Omar", "he", "his"),
           ("Sofia", "she", "her"), ("Ben", "he", "his"), ("Aisha", "she", "her"), ("Leo", "he", "his"),
           ("Nora", "she", "her"), ("Ravi", "he", "his"), ("Emma", "she", "her"), ("Kenji", "he", "his"),
           ("Zoe", "she", "her"), ("Diego", "he", "his"), ("Ivy", "she", "her"), ("Sam", "he", "his")]
_ITEMS = [("notebooks", "notebook"), ("pens", "pen"), ("apples", "apple"), ("books", "book"),
          ("mugs", "mug"), ("candles", "candle"), ("T-shirts", "T-shirt"), ("plants", "plant")]
_THINGS = ["crayons", "stickers", "marbles", "cookies", "cards", "beads"]
_RATES = [
    # agent, second agent, unit, period, verb, past participle, goal sentence, "left" question
    ("A pump", "a second pump", "liters", "minute", "pumps", "pumped",
     "A tank holds {T} liters.", "How many more liters are needed to fill the tank?"),
    ("A printer", "a second printer", "pages", "minute", "prints", "printed",
     "A print job has {T} pages.", "How many pages are still left to print?"),
    ("A baker", "an assistant", "cookies", "hour", "bakes", "baked",
     "An order is for {T} cookies.", "How many cookies are still needed for the order?"),
]
_PURCHASES = ["a game", "a book", "a jacket", "a ticket", "a backpack"]


def _scale(difficulty: int) -> int:
    """Upper bound for the basic numbers at this level."""
    return {1: 6, 2: 8, 3: 10, 4: 12, 5: 20}[difficulty]


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _shopping(rng: random.Random, k: int, hi: int) -> tuple[str, Steps]:
    name, he, _ = rng.choice(_PEOPLE)
    (items1, _s1), (items2, item2) = rng.sample(_ITEMS, 2)
    n1, p1, n2, p2 = rng.randint(2, hi), rng.randint(2, hi + 3), rng.randint(2, hi), rng.randint(2, hi + 3)
    c1, c2 = n1 * p1, n2 * p2
    steps: Steps = [(f"cost of the {items1} = {n1} * {p1}", str(c1))]
    if k == 1:
        return f"{name} buys {n1} {items1} that cost ${p1} each. How many dollars does {he} spend?", steps
    if k == 2:
        steps.append((f"total cost = {c1} + {p2}", str(c1 + p2)))
        return (f"{name} buys {n1} {items1} at ${p1} each and a {item2} for ${p2}. "
                f"How many dollars does {he} spend in total?"), steps
    steps += [(f"cost of the {items2} = {n2} * {p2}", str(c2)), (f"total cost = {c1} + {c2}", str(c1 + c2))]
    text = f"{name} buys {n1} {items1} at ${p1} each and {n2} {items2} at ${p2} each."
    if k == 3:
        return f"{text} How many dollars does {he} spend in total?", steps
    bill = next(b for b in (20, 50, 100, 200, 500, 1000) if b > c1 + c2)
    steps.append((f"change = {bill} - {c1 + c2}", str(bill - c1 - c2)))
    return f"{text} {_cap(he)} pays with a ${bill} bill. How many dollars of change does {he} get?", steps


def _sharing(rng: random.Random, k: int, hi: int) -> tuple[str, Steps] | None:
    name, he, _ = rng.choice(_PEOPLE)
    things = rng.choice(_THINGS)
    s, q = rng.randint(2, hi), rng.randint(2, hi)
    if k == 1:
        total = s * q
        return (f"{name} has {total} {things} and shares them equally among {s} friends. "
                f"How many {things} does each friend get?"), [(f"{things} per friend = {total} / {s}", str(q))]
    keep = rng.randint(1, hi) if k >= 3 else 0
    total = s * q + keep
    boxes = [b for b in range(2, 13) if total % b == 0 and total // b >= 2]
    if not boxes:
        return None
    b = rng.choice(boxes)
    c = total // b
    steps: Steps = [(f"total {things} = {b} * {c}", str(total))]
    text = f"{name} has {b} boxes with {c} {things} in each box."
    if k == 2:
        text += f" {_cap(he)} shares all of them equally among {s} friends."
    else:
        steps.append((f"{things} to share = {total} - {keep}", str(total - keep)))
        text += f" {_cap(he)} keeps {keep} and shares the rest equally among {s} friends."
    steps.append((f"{things} per friend = {total - keep} / {s}", str(q)))
    if k <= 3:
        return f"{text} How many {things} does each friend get?", steps
    g = rng.randint(1, q - 1)
    steps.append((f"{things} left per friend = {q} - {g}", str(q - g)))
    return (f"{text} Each friend then gives away {g} of them. "
            f"How many {things} does each friend have left?"), steps


def _ages(rng: random.Random, k: int, hi: int) -> tuple[str, Steps] | None:
    name, _, his = rng.choice(_PEOPLE)
    t, a = rng.randint(4, 4 + hi), rng.randint(1, max(2, hi // 2))
    sister = t + a
    steps: Steps = [("sister's age = " + f"{t} + {a}", str(sister))]
    text = f"{name} is {t} years old. {_cap(his)} sister is {a} years older."
    if k == 1:
        return f"{text} How old is {his} sister?", steps
    m = rng.choice((2, 3))
    father = sister * m
    if not 22 <= father <= 90:
        return None
    steps.append((f"father's age = {sister} * {m}", str(father)))
    text += f" Their father is {m} times as old as the sister."
    if k == 2:
        return f"{text} How old is the father?", steps
    n = rng.randint(2, 10)
    if k == 3:
        steps.append((f"father's age in {n} years = {father} + {n}", str(father + n)))
        return f"{text} How old will the father be in {n} years?", steps
    y = rng.randint(1, 8)
    mother = father - y
    steps += [(f"mother's age = {father} - {y}", str(mother)),
              (f"mother's age in {n} years = {mother} + {n}", str(mother + n))]
    return (f"{text} Their mother is {y} years younger than the father. "
            f"How old will the mother be in {n} years?"), steps


def _rates(rng: random.Random, k: int, hi: int) -> tuple[str, Steps]:
    agent, agent2, unit, per, verb, past, goal, left_q = rng.choice(_RATES)
    r1, t1, r2, t2 = rng.randint(2, hi + 4), rng.randint(2, hi), rng.randint(2, hi + 4), rng.randint(2, hi)
    done1, done2 = r1 * t1, r2 * t2
    first = f"{agent} {verb} {r1} {unit} per {per}"
    if k == 1:
        return (f"{first}. How many {unit} are {past} in {t1} {per}s?",
                [(f"{unit} {past} = {r1} * {t1}", str(done1))])
    if k == 2:
        total_goal = done1 + rng.randint(1, 5 * hi)
        steps: Steps = [(f"{unit} {past} = {r1} * {t1}", str(done1)),
                        (f"{unit} still needed = {total_goal} - {done1}", str(total_goal - done1))]
        return f"{goal.format(T=total_goal)} {first} for {t1} {per}s. {left_q}", steps
    steps = [(f"{unit} {past} first = {r1} * {t1}", str(done1)),
             (f"{unit} {past} next = {r2} * {t2}", str(done2)),
             (f"{unit} {past} in total = {done1} + {done2}", str(done1 + done2))]
    both = f"{first} for {t1} {per}s, then {agent2} {verb} {r2} {unit} per {per} for {t2} {per}s."
    if k == 3:
        return f"{both} How many {unit} are {past} in total?", steps
    total_goal = done1 + done2 + rng.randint(1, 5 * hi)
    steps.append((f"{unit} still needed = {total_goal} - {done1 + done2}", str(total_goal - done1 - done2)))
    return f"{goal.format(T=total_goal)} {both} {left_q}", steps


def _savings(rng: random.Random, k: int, hi: int) -> tuple[str, Steps] | None:
    name, he, _ = rng.choice(_PEOPLE)
    w, n = rng.randint(2, hi + 5), rng.randint(2, hi)
    saved = w * n
    steps: Steps = [(f"money saved = {w} * {n}", str(saved))]
    text = f"{name} saves ${w} each week for {n} weeks."
    if k == 1:
        return f"{text} How many dollars does {he} save?", steps
    gift = rng.randint(2, 5 * hi) if k >= 3 else 0
    if k >= 3:
        steps.append((f"money after the gift = {saved} + {gift}", str(saved + gift)))
        text += f" {_cap(he)} also gets ${gift} as a gift."
    have = saved + gift
    spend = rng.randint(1, have - 1)
    steps.append((f"money left = {have} - {spend}", str(have - spend)))
    text += f" Then {he} spends ${spend} on {rng.choice(_PURCHASES)}."
    if k <= 3:
        return f"{text} How many dollars does {he} have left?", steps
    left = have - spend
    jars = [j for j in range(2, 7) if left % j == 0]
    if not jars:
        return None
    j = rng.choice(jars)
    steps.append((f"money per jar = {left} / {j}", str(left // j)))
    return f"{text} {_cap(he)} splits the rest equally into {j} jars. How many dollars go in each jar?", steps


TEMPLATES: dict[str, Callable[[random.Random, int, int], tuple[str, Steps] | None]] = {
    "shopping": _shopping, "sharing": _sharing, "ages": _ages, "rates": _rates, "savings": _savings,
}


class WordProblemTask:
    """Templated word problems (shopping, sharing, ages, rates, savings)."""

    name = "word"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        """Draw one problem at ``difficulty`` (1..5, see the module docstring)."""
        check_difficulty(difficulty)
        k, hi = min(difficulty, 4), _scale(difficulty)
        while True:  # some templates reject numbers that do not divide evenly or ages out of range
            template = rng.choice(sorted(TEMPLATES))
            made = TEMPLATES[template](rng, k, hi)
            if made is not None:
                break
        problem, steps = made
        assert len(steps) == k
        return Example(id=f"{self.name}-unassigned", task=self.name, problem=problem, answer=steps[-1][1],
                       solution=render_steps(steps),
                       meta={"difficulty": difficulty, "steps": steps, "template": template})

    def key(self, example: Example) -> str:
        """Canonical key: the problem text with whitespace collapsed."""
        return " ".join(example.problem.split())
