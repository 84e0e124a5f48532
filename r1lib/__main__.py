"""``python -m r1lib``: see :mod:`r1lib.cli`."""

from r1lib.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
