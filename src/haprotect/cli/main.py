"""Entry point of the ``haprotect`` console script.

The application loads a verb's module when that verb runs (see
:mod:`haprotect.cli.verbs`), so the console script starts at once.
"""

from __future__ import annotations

from haprotect.cli.app import app


def main() -> None:
    app()
