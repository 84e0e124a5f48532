"""Tests for the benchmark loaders (local JSONL, name resolution, the files shipped in r1lib/data/benchmarks, hub
fallback with a fake `datasets`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import types
from fractions import Fraction
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest

from r1lib.tasks import BenchmarkError, check_countdown, load_benchmark
from r1lib.tasks import benchmarks as bm


def extra_data(*files: str) -> Path:
    """The directory in $R1LIB_DATA_DIR holding the sets that are not shipped (GSM8K train, Countdown) in the
    layout of ``r1lib.tasks.benchmarks.LOCAL_FILES``; skip when it is not set or lacks ``files``."""
    env = os.environ.get(bm.DATA_DIR_ENV)
    if not env:
        pytest.skip(f"${bm.DATA_DIR_ENV} is not set: the sets not shipped with r1lib (GSM8K train, Countdown) are "
                    f"checked only against a local copy")
    path = Path(env)
    missing = [f for f in files if not (path / f).is_file()]
    if missing:
        pytest.skip(f"${bm.DATA_DIR_ENV}={path} lacks {missing}")
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"id": "a", "problem": "1+1?", "answer": "2"})


# --- malformed local files ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad_line, message", [
    ('{"id": "c", "problem": "x", ', r":3: invalid JSON"),
    (json.dumps({"id": "c", "problem": "x"}), r":3: missing required field 'answer'"),
    (json.dumps({"problem": "x", "answer": "1"}), r":3: missing required field 'id'"),
    (json.dumps({"id": "c", "problem": "x", "answer": [1]}), r":3: field 'answer' must be a string or number"),
    (json.dumps({"id": "c", "problem": "x", "answer": True}), r":3: field 'answer'"),
    (json.dumps({"id": "c", "problem": "", "answer": "1"}), r":3: field 'problem' must be a non-empty string"),
    (json.dumps({"id": "c", "problem": 5, "answer": "1"}), r":3: field 'problem'"),
    (json.dumps({"id": None, "problem": "x", "answer": "1"}), r":3: field 'id'"),
    (json.dumps({"id": "c", "problem": "x", "answer": "1", "solution": 3}), r":3: field 'solution'"),
    (json.dumps(["not", "an", "object"]), r":3: expected a JSON object, got list"),
])
def test_malformed_row_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = write_lines(tmp_path / "bench.jsonl", [GOOD, GOOD.replace('"a"', '"b"'), bad_line, GOOD])
    with pytest.raises(BenchmarkError, match=message) as info:
        load_benchmark(str(path))
    assert str(info.value).startswith(f"{path}:3:")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bench.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(BenchmarkError, match=r"bench.jsonl:2: not valid UTF-8"):
        load_benchmark(path)  # a Path works too


def test_countdown_rows_need_nums_and_target(tmp_path: Path) -> None:
    row = {"id": "c0", "problem": "Using the numbers [1, 2], create ...", "answer": "3", "target": 3}
    path = write_lines(tmp_path / "countdown" / "mine.jsonl", [json.dumps(row)])
    with pytest.raises(BenchmarkError, match=r"mine.jsonl:1: countdown row needs 'nums'"):
        load_benchmark(str(path))
    row["nums"] = [1, 2]
    row["target"] = "3"
    write_lines(path, [json.dumps(row)])
    with pytest.raises(BenchmarkError, match=r":1: countdown row needs 'target'"):
        load_benchmark(str(path))


# --- well-formed local files --------------------------------------------------------------------------

def test_local_file_coercion_meta_limit(tmp_path: Path) -> None:
    rows = [{"id": 7, "problem": "p1", "answer": 42, "solution": "s", "level": 3},
            {"id": "b", "problem": "p2", "answer": 27.0, "solution": None},
            {"id": "c", "problem": "p3", "answer": 2.5},
            {"id": "d", "problem": "p4", "answer": " \\frac{1}{2} "}]
    path = write_lines(tmp_path / "mybench.jsonl", [json.dumps(rows[0]), "", "   "] +
                       [json.dumps(r) for r in rows[1:]])
    examples = load_benchmark(str(path))
    assert [e.id for e in examples] == ["7", "b", "c", "d"]
    assert [e.answer for e in examples] == ["42", "27", "2.5", "\\frac{1}{2}"]
    assert examples[0].solution == "s" and examples[1].solution is None
    assert examples[0].meta == {"level": 3} and examples[1].meta == {}
    assert {e.task for e in examples} == {"mybench"}                   # task from the file stem
    assert [e.id for e in load_benchmark(str(path), limit=2)] == ["7", "b"]
    assert load_benchmark(str(path), limit=0) == []


def test_task_name_from_known_directory(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "gsm8k" / "extra.jsonl", [GOOD])
    assert load_benchmark(str(path))[0].task == "gsm8k"


def test_data_dir_and_env_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_lines(tmp_path / "data" / "gsm8k" / "test.jsonl", [GOOD, GOOD.replace('"a"', '"b"')])
    write_lines(tmp_path / "data" / "countdown" / "tinyzero_test.jsonl", [json.dumps(
        {"id": "c", "problem": "q", "answer": "3", "nums": [1, 2], "target": 3})])
    examples = load_benchmark("gsm8k", data_dir=tmp_path / "data")
    assert [(e.id, e.task) for e in examples] == [("a", "gsm8k"), ("b", "gsm8k")]
    monkeypatch.setenv("R1LIB_DATA_DIR", str(tmp_path / "data"))
    assert len(load_benchmark("GSM8K")) == 2
    assert load_benchmark("countdown")[0].meta == {"nums": [1, 2], "target": 3}


@pytest.mark.parametrize("name, split, message", [
    ("nope", "test", "not an existing .jsonl file, not a known benchmark"),
    ("missing.jsonl", "test", "missing.jsonl: file not found"),
    ("math500", "train", "has no split 'train'; available: \\['test'\\]"),
])
def test_resolution_errors(name: str, split: str, message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        load_benchmark(name, split=split)


def test_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="limit"):
        load_benchmark("gsm8k", limit=-1, data_dir=tmp_path)


# --- hub fallback (a fake `datasets` module; nothing touches the network) -----------------------------

@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Install a fake `datasets` whose load_dataset serves `tables[(path, split)]` or raises."""
    tables: dict[str, Any] = {}
    calls: list[tuple] = []

    def load_dataset(path: str, name: str | None = None, split: str | None = None) -> list[dict]:
        calls.append((path, name, split))
        if (path, split) not in tables:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)")
        return tables[(path, split)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    # Only the hub: no shipped files, no $R1LIB_DATA_DIR.
    monkeypatch.setattr(bm, "SHIPPED_DATA_DIR", Path(os.devnull) / "no-shipped-data")
    monkeypatch.delenv(bm.DATA_DIR_ENV, raising=False)
    return {"tables": tables, "calls": calls}


def test_hub_failure_names_everything_tried(tmp_path: Path, fake_hub: dict[str, Any]) -> None:
    with pytest.raises(BenchmarkError) as info:
        load_benchmark("aime24", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "aime24" / "test.jsonl") in message
    assert "HuggingFaceH4/aime_2024" in message and "Maxwell-Jia/AIME_2024" in message
    assert "ConnectionError" in message
    assert fake_hub["calls"] == [("HuggingFaceH4/aime_2024", None, "train"), ("Maxwell-Jia/AIME_2024", None, "train")]


def test_hub_gsm8k_mapping(tmp_path: Path, fake_hub: dict[str, Any]) -> None:
    fake_hub["tables"][("openai/gsm8k", "test")] = [
        {"question": "How many?", "answer": "He has 1000 + 234 = <<1000+234=1234>>1,234\n#### 1,234"}]
    (example,) = load_benchmark("openai/gsm8k")
    assert (example.id, example.task, example.problem, example.answer) == ("gsm8k-test-0000", "gsm8k",
                                                                          "How many?", "1234")
    assert example.solution == "He has 1000 + 234 = <<1000+234=1234>>1,234"
    assert fake_hub["calls"] == [("openai/gsm8k", "main", "test")]


def test_hub_aime_second_source_and_amc(tmp_path: Path, fake_hub: dict[str, Any]) -> None:
    fake_hub["tables"][("Maxwell-Jia/AIME_2024", "train")] = [
        {"ID": "2024-II-4", "Problem": "Find it.", "Solution": "...", "Answer": 33}]
    fake_hub["tables"][("math-ai/amc23", "test")] = [{"id": 3, "question": "Q?", "answer": 27.0, "url": "u"}]
    (aime,) = load_benchmark("aime24", data_dir=tmp_path)
    assert (aime.id, aime.task, aime.answer) == ("2024-II-4", "aime24", "33")
    (amc,) = load_benchmark("amc23", data_dir=tmp_path)
    assert (amc.id, amc.problem, amc.answer, amc.meta["url"]) == ("amc23-3", "Q?", "27", "u")


def test_hub_countdown_and_generic(tmp_path: Path, fake_hub: dict[str, Any]) -> None:
    fake_hub["tables"][("Jiayi-Pan/Countdown-Tasks-3to4", "train")] = [
        {"target": 98, "nums": [44, 19, 35]}, {"target": 64, "nums": [63, 95, 96]}, {"target": 1, "nums": [1]}]
    examples = load_benchmark("countdown", split="train", limit=2, data_dir=tmp_path)
    assert [e.id for e in examples] == ["countdown-hfrow-000000", "countdown-hfrow-000001"]
    assert examples[0].problem == ("Using the numbers [44, 19, 35], create an equation that equals 98. You can use "
                                   "basic arithmetic operations (+, -, *, /) and each number can only be used once.")
    assert examples[0].meta == {"target": 98, "nums": [44, 19, 35]} and examples[0].answer == "98"
    fake_hub["tables"][("someone/Bench", "test")] = [{"question": "Q", "answer": 5}]
    (generic,) = load_benchmark("someone/Bench")
    assert (generic.id, generic.task, generic.problem, generic.answer) == ("0", "bench", "Q", "5")


def test_hub_row_with_unexpected_fields(fake_hub: dict[str, Any]) -> None:
    fake_hub["tables"][("HuggingFaceH4/MATH-500", "test")] = [{"question": "no 'problem' field"}]
    with pytest.raises(BenchmarkError, match=r"HuggingFaceH4/MATH-500\[test\] row 0: unexpected fields"):
        load_benchmark("HuggingFaceH4/MATH-500")


# --- the files shipped with the package ---------------------------------------------------------------

SHIPPED = {"gsm8k": 1319, "math500": 500, "aime24": 30, "amc23": 40}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No data directory configured: what a fresh clone or a pip install sees."""
    monkeypatch.delenv(bm.DATA_DIR_ENV, raising=False)


@pytest.mark.parametrize("name, count", sorted(SHIPPED.items()))
def test_shipped_sets_load_from_a_clean_environment(name: str, count: int, clean_env: None) -> None:
    examples = load_benchmark(name)
    assert len(examples) == count
    assert len({e.id for e in examples}) == count
    assert all(e.task == name and e.problem.strip() and e.answer.strip() for e in examples)
    if name != "math500":
        assert all(re.fullmatch(r"-?\d+", e.answer) for e in examples), name   # integer answers
    if name == "aime24":
        assert all(0 <= int(e.answer) <= 999 for e in examples)
        assert {e.id for e in examples} == {f"2024-{part}-{n}" for part in ("I", "II") for n in range(1, 16)}
    if name == "math500":
        assert {e.meta["level"] for e in examples} == {1, 2, 3, 4, 5}


def test_shipped_first_rows_hand_checked(clean_env: None) -> None:
    assert load_benchmark("gsm8k", limit=1)[0].answer == "18"                 # Janet's ducks
    assert load_benchmark("aime24", limit=1)[0].answer == "204"               # 2024 AIME I problem 1
    amc = load_benchmark("amc23", limit=1)[0]
    assert (amc.answer, amc.meta["answer_original"]) == ("27", 27.0)          # the upstream float, as an integer
    math500 = load_benchmark("math500", limit=3)
    assert [e.answer for e in math500] == ["\\left( 3, \\frac{\\pi}{2} \\right)", "p - q", "\\frac{14}{3}"]


def _sources_table() -> dict[str, tuple[str, int, str]]:
    """``file -> (rows, bytes, sha256)`` from the checksum table of the shipped SOURCES.md."""
    text = (bm.SHIPPED_DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| (\d+|-) \| (\d+) \| `([0-9a-f]{64})` \|$", text, flags=re.M)
    return {f: (n, int(size), digest) for f, n, size, digest in rows}


def test_shipped_files_match_sources_md() -> None:
    """Every shipped file is listed in SOURCES.md with its size, row count and sha256, and nothing else is there."""
    table = _sources_table()
    on_disk = {p.relative_to(bm.SHIPPED_DATA_DIR).as_posix() for p in bm.SHIPPED_DATA_DIR.rglob("*")
               if p.is_file() and p.name != "SOURCES.md" and "__pycache__" not in p.parts}
    assert set(table) == on_disk
    assert len(table) == 11 and all(f"{name}/test.jsonl" in table for name in SHIPPED)
    for name, (rows, size, digest) in table.items():
        data = (bm.SHIPPED_DATA_DIR / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest), name
        if name.endswith(".jsonl"):
            assert int(rows) == sum(1 for line in data.splitlines() if line.strip()), name
    for name, count in SHIPPED.items():
        assert table[f"{name}/test.jsonl"][0] == str(count)
    assert all(any(f.startswith(f"{name}/LICENSE.") for f in table) for name in SHIPPED)   # a licence per set


def test_shipped_answers_are_gradable_against_their_reference(clean_env: None) -> None:
    """r1lib's reward gives 1 to each reference answer written in the R1-Zero format, and 0 to a wrong one."""
    from r1lib.rewards import accuracy_reward

    for name in SHIPPED:
        examples = load_benchmark(name)
        right = [e.id for e in examples
                 if accuracy_reward(f"<think> ... </think> <answer> {e.answer} </answer>", e) == 1.0]
        assert len(right) == len(examples), (name, sorted({e.id for e in examples} - set(right))[:10])
        # a wrong answer is not accepted (integer sets: the answer + 1)
        if name != "math500":
            wrong = [e.id for e in examples if accuracy_reward(f"<answer>{int(e.answer) + 1}</answer>", e) != 0.0]
            assert not wrong, (name, wrong[:10])


def test_data_dirs_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit data_dir, then $R1LIB_DATA_DIR, then the shipped files; a set missing from one is found in the
    next, so a directory with extra sets does not hide the shipped ones."""
    monkeypatch.delenv(bm.DATA_DIR_ENV, raising=False)
    assert bm.data_dirs() == [bm.SHIPPED_DATA_DIR]
    assert bm.SHIPPED_DATA_DIR == Path(bm.__file__).resolve().parents[1] / "data" / "benchmarks"
    monkeypatch.setenv(bm.DATA_DIR_ENV, str(tmp_path / "env"))
    assert bm.data_dirs(tmp_path / "mine") == [tmp_path / "mine", tmp_path / "env", bm.SHIPPED_DATA_DIR]
    write_lines(tmp_path / "env" / "aime24" / "test.jsonl", [GOOD])
    assert [e.id for e in load_benchmark("aime24")] == ["a"]                   # the env dir before the shipped file
    assert [e.id for e in load_benchmark("aime24", data_dir=tmp_path / "mine")] == ["a"]
    write_lines(tmp_path / "mine" / "aime24" / "test.jsonl", [GOOD.replace('"a"', '"m"')])
    assert [e.id for e in load_benchmark("aime24", data_dir=tmp_path / "mine")] == ["m"]
    assert len(load_benchmark("amc23", data_dir=tmp_path / "mine")) == 40      # not in either: the shipped file


# --- several sources (tasks.train_from: [gsm8k, math]) ------------------------------------------------

def test_list_of_sources_is_concatenated(tmp_path: Path, clean_env: None) -> None:
    mine = write_lines(tmp_path / "mine.jsonl", [GOOD, GOOD.replace('"a"', '"b"')])
    rows = load_benchmark(["aime24", str(mine), "amc23"])
    assert len(rows) == 30 + 2 + 40
    assert [r.task for r in rows[29:33]] == ["aime24", "mine", "mine", "amc23"]
    assert [r.id for r in load_benchmark((mine, "aime24"), limit=3)] == ["a", "b", "2024-I-1"]
    with pytest.raises(BenchmarkError, match="empty list"):
        load_benchmark([])
    with pytest.raises(BenchmarkError, match="got int: 3"):
        load_benchmark(["aime24", 3])


def test_math_train_from_the_hub(fake_hub: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """MATH has no answer field: the reference is the solution's last box; a row without one is skipped, logged."""
    fake_hub["tables"][("DigitalLearningGmbH/MATH-lighteval", "train")] = [
        {"problem": "Find $x$.", "level": "Level 2", "type": "Algebra",
         "solution": "So $x = \\boxed{2}$, hence $\\boxed{\\frac{1}{2}}$."},
        {"problem": "No box.", "level": "Level 1", "type": "Algebra", "solution": "It is 3."},
        {"problem": "Third.", "level": "Level 5", "type": "Geometry", "solution": "$\\boxed{ 7 }$"}]
    with caplog.at_level("WARNING", logger="r1lib.tasks.benchmarks"):
        rows = load_benchmark("math", split="train")
    assert [(r.id, r.task, r.answer) for r in rows] == [("math-train-0000", "math", "\\frac{1}{2}"),
                                                        ("math-train-0002", "math", "7")]
    assert rows[0].meta == {"level": "Level 2", "subject": "Algebra"}
    assert "skipped 1 rows without a reference answer (rows [1])" in caplog.text
    assert fake_hub["calls"] == [("DigitalLearningGmbH/MATH-lighteval", "default", "train")]
    with pytest.raises(BenchmarkError, match="could not load benchmark 'math' \\(split 'test'\\)"):
        load_benchmark("math")                                     # nothing local, the fake hub has no test table


# --- the sets not shipped (a local copy in $R1LIB_DATA_DIR) -------------------------------------------

@pytest.mark.parametrize("name, split, count", [
    ("gsm8k", "train", 7473), ("countdown", "test", 1024), ("countdown", "train", 10240),
    ("countdown", "d1_cd3", 256),
])
def test_extra_files(name: str, split: str, count: int) -> None:
    data = extra_data(bm.LOCAL_FILES[name][split])
    examples = load_benchmark(name, split=split, data_dir=data)
    assert len(examples) == count
    assert len({e.id for e in examples}) == count
    assert all(e.task == name and e.problem and e.answer for e in examples)
    assert all(int(e.answer) == int(e.answer.strip()) for e in examples)  # integer answers
    if name == "countdown":
        assert all(e.answer == str(e.meta["target"]) for e in examples)


def test_extra_first_rows_hand_checked() -> None:
    data = extra_data(bm.LOCAL_FILES["countdown"]["train"])
    first = load_benchmark("countdown", split="train", data_dir=data, limit=1)[0]
    assert first.meta["nums"] == [44, 19, 35] and first.meta["target"] == 98
    assert check_countdown("44 + 19 + 35", first.meta["nums"], first.meta["target"])


def solve_countdown(nums: list[int], target: int) -> str | None:
    """Brute force: combine any two values with + - * / (exact fractions) until one value is left."""
    def search(items: list[tuple[Fraction, str]]) -> str | None:
        if len(items) == 1:
            return items[0][1] if items[0][0] == target else None
        for i, j in permutations(range(len(items)), 2):
            (a, ea), (b, eb) = items[i], items[j]
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            candidates = [(a + b, f"({ea} + {eb})"), (a - b, f"({ea} - {eb})"), (a * b, f"({ea} * {eb})")]
            if b != 0:
                candidates.append((a / b, f"({ea} / {eb})"))
            for value, text in candidates:
                found = search(rest + [(value, text)])
                if found:
                    return found
        return None
    return search([(Fraction(n), str(n)) for n in nums])


def test_solver_hand_checked() -> None:
    assert solve_countdown([44, 19, 35], 98) is not None
    assert solve_countdown([1, 1], 5) is None


def test_extra_countdown_rows_are_solvable() -> None:
    data = extra_data(bm.LOCAL_FILES["countdown"]["test"])
    for example in load_benchmark("countdown", data_dir=data, limit=50):
        nums, target = example.meta["nums"], example.meta["target"]
        solution = solve_countdown(nums, target)
        assert solution is not None, example.id
        assert check_countdown(solution, nums, target), (example.id, solution)
        assert not check_countdown(solution, nums, target + 1)
        assert not check_countdown(solution, nums + [1], target)
