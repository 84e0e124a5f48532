"""Committed results hold no absolute paths of the machine that made them (a user's clone lives elsewhere)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# An absolute POSIX path of a typical machine: a quote, space, '=' or '(' followed by /work/, /tmp/, /home/, ...
ABSOLUTE = re.compile(r"""(?:^|["'\s=(:])/(?:work|tmp|home|root|Users|mnt|opt|var/folders)/""")


def test_results_hold_no_absolute_paths():
    offenders = []
    for path in sorted((REPO / "results").rglob("*")):
        if not path.is_file() or path.suffix not in {".json", ".jsonl", ".md", ".csv", ".ipynb", ".yaml", ".txt"}:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if ABSOLUTE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{i}: {line.strip()[:120]}")
                break
    assert not offenders, "absolute machine paths in committed results:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_should():
    assert ABSOLUTE.search('"out_dir": "/work/main/runs/x"')
    assert ABSOLUTE.search("saved locally in /tmp/abc")
    assert not ABSOLUTE.search('"out_dir": "runs/default/x"')
    assert not ABSOLUTE.search("pass@1 / k = 0.5")
