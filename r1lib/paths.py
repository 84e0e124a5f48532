"""Portable paths in committed results.

Files under ``results/`` are committed, so they must not record the absolute paths of the machine that
made them (``/home/alice/r1lib/runs/...``). Everything that writes a path into a results file goes through
:func:`portable_path`: a path inside the project root becomes relative to it (POSIX separators); a path
outside the project (a hub id, ``/data/...``, a temporary folder) is kept as given, since there is nothing
portable to make of it. In memory, r1lib keeps absolute paths (they work from any working directory);
only what is written is made portable.

:func:`relativize_text` does the same inside free text (printed output of an executed notebook), and
:func:`relativize_obj` inside a JSON-like object.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["project_root_of", "portable_path", "relativize_text", "relativize_obj"]

#: Files or folders that mark a project root (the same markers as ``r1lib.config.find_project_root``).
ROOT_MARKERS = ("pyproject.toml", ".git")


def project_root_of(path: str | os.PathLike[str]) -> Path | None:
    """The nearest folder at or above ``path`` that holds pyproject.toml or .git; None if there is none."""
    start = Path(path).expanduser().resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return folder
    return None


def _relative(path: Path, root: Path) -> Path | None:
    """``path`` relative to ``root``, comparing first the paths as written (made absolute against the
    working directory, symlinks kept) and then with symlinks resolved; None when outside."""
    pairs = ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (path.resolve(), root.resolve()))
    for p, r in pairs:
        try:
            return p.relative_to(r)
        except ValueError:
            continue
    return None


def portable_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None) -> str:
    """``path`` as it should be written into a committed results file.

    - inside ``root`` (the project root): relative to it, with ``/`` separators (``"."`` for the root
      itself);
    - otherwise, or when ``root`` is None: unchanged (``str(path)``; a hub id such as
      ``"Qwen/Qwen2.5-0.5B"`` that names no existing folder under ``root`` stays as it is).

    A relative ``path`` is taken relative to the current working directory, as the file system does.

    >>> portable_path("/home/me/r1lib/runs/x", "/home/me/r1lib")
    'runs/x'
    >>> portable_path("/data/models/qwen", "/home/me/r1lib")
    '/data/models/qwen'
    """
    text = os.fspath(path)
    if root is None or not text:
        return text
    p = Path(text).expanduser()
    if not p.is_absolute() and not (Path.cwd() / p).exists():
        return text  # a hub id or a name, not a path on this machine
    rel = _relative(p, Path(root).expanduser())
    return text if rel is None else rel.as_posix()


def _root_pattern(root: str) -> re.Pattern[str]:
    # The root as a whole path: preceded by the start of a line, a character that cannot be part of a path
    # (so "/x/work/main" does not match root "/work/main") or a terminal colour code ("\x1b[1m", as in
    # wandb's messages); followed by "/" or by something that cannot continue a file name.
    return re.compile(r"(^|[^\w.~/-]|\x1b\[[0-9;]*m)" + re.escape(root.rstrip("/")) + r"(/|(?![\w.~-]))",
                      re.MULTILINE)


def relativize_text(text: str, root: str | os.PathLike[str]) -> str:
    """Replace absolute paths inside ``root`` in free text by paths relative to it.

    ``<root>/runs/x`` becomes ``runs/x`` and a bare ``<root>`` becomes ``.``; both the root as given and
    its symlink-resolved form are replaced. Paths outside the root are left alone.

    >>> relativize_text("wrote /home/me/r1lib/results/eval.md", "/home/me/r1lib")
    'wrote results/eval.md'
    """
    roots = {os.path.abspath(os.fspath(root)), str(Path(root).resolve())}
    for r in sorted(roots, key=len, reverse=True):  # the longer form first if one contains the other
        if r in ("", "/"):
            continue
        text = _root_pattern(r).sub(lambda m: m.group(1) + ("" if m.group(2) == "/" else "."), text)
    return text


def relativize_obj(obj: Any, root: str | os.PathLike[str]) -> Any:
    """A copy of a JSON-like object (dicts, lists, strings, ``Path``) with :func:`relativize_text`
    applied to every string and path (mapping keys included)."""
    if isinstance(obj, str):
        return relativize_text(obj, root)
    if isinstance(obj, os.PathLike):
        return relativize_text(os.fspath(obj), root)
    if isinstance(obj, Mapping):
        return {relativize_obj(k, root) if isinstance(k, str) else k: relativize_obj(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [relativize_obj(v, root) for v in obj]
    return obj
