"""Every notebook has one reviewable source: its paired jupytext percent-format script.

``notebooks/X.ipynb`` and ``notebooks/X.py`` (pairing declared in ``notebooks/jupytext.toml``) must hold the
same cells; edit the .py, then ``make notebooks`` (``jupytext --sync notebooks/*.py``) rewrites the .ipynb.
The .ipynb is committed without outputs and with exactly one papermill ``parameters`` cell.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def pair_problems(ipynb: Path) -> list[str]:
    """What is wrong with a notebook and its paired script (empty if nothing)."""
    script = ipynb.with_suffix(".py")
    if not script.exists():
        return [f"{ipynb.name}: no paired {script.name} (run `jupytext --sync {ipynb}`)"]
    problems = []
    nb, text = jupytext.read(ipynb), jupytext.read(script, fmt="py:percent")
    a, b = _cells(nb), _cells(text)
    if a != b:
        diff = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        problems.append(f"{ipynb.name} and {script.name} differ ({len(a)} vs {len(b)} cells, first difference at "
                        f"cell {diff}): edit the .py, then `make notebooks`")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append(f"{ipynb.name}: kernelspec is not python3")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            problems.append(f"{ipynb.name}: cell {i} has outputs or an execution count")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1 or params[0].cell_type != "code":
        problems.append(f"{ipynb.name}: {len(params)} cells tagged 'parameters' (expected one code cell)")
    for path in (ipynb, script):
        raw = path.read_text(encoding="utf-8")
        if "shared/notes" in raw or "paper_facts" in raw:
            problems.append(f"{path.name}: cites shared/notes (cite docs/paper.md §N instead)")
    if "jupytext_version" in script.read_text(encoding="utf-8"):
        problems.append(f"{script.name}: the header carries a jupytext version (see notebooks/jupytext.toml)")
    return problems


def test_every_notebook_is_paired_with_a_percent_script():
    assert IPYNBS, "no notebooks found"
    scripts = sorted(NOTEBOOKS.glob("*.py"))
    assert {p.stem for p in scripts} == {p.stem for p in IPYNBS}
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert '# %% tags=["parameters"]' in text, script.name
    config = (NOTEBOOKS / "jupytext.toml").read_text(encoding="utf-8")
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("ipynb", IPYNBS, ids=[p.stem for p in IPYNBS])
def test_notebook_and_script_agree(ipynb):
    assert pair_problems(ipynb) == []


@pytest.mark.parametrize("side", ["py", "ipynb"])
def test_a_one_sided_edit_is_caught(tmp_path, side):
    """The check above fails when only one side of a pair is edited."""
    src = NOTEBOOKS / "06_evaluation.ipynb"
    for path in (src, src.with_suffix(".py"), NOTEBOOKS / "jupytext.toml"):
        shutil.copy(path, tmp_path / path.name)
    copy = tmp_path / src.name
    assert pair_problems(copy) == []
    edited = copy.with_suffix(f".{side}")
    nb = jupytext.read(edited)
    nb.cells[-1].source += "\nprint('edited on one side only')"
    jupytext.write(nb, edited, fmt="py:percent" if side == "py" else "ipynb")
    assert any("differ" in p for p in pair_problems(copy))


@pytest.mark.parametrize("ipynb", IPYNBS, ids=[p.stem for p in IPYNBS])
def test_parameters_default_to_the_main_experiment(ipynb):
    """Run top to bottom as committed, every notebook uses the default experiment."""
    import nbformat

    params = [c for c in nbformat.read(ipynb, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    assert 'config_path = "experiments/default.yaml"' in params[0].source
