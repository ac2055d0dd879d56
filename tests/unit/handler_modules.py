"""Import a function's handler module (`functions/<name>/app.py`) the way Lambda does: its folder on
the path, `app` imported fresh, both undone afterwards, so each test module gets its own function."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def imported_handler(function: str, *companions: str) -> Iterator[ModuleType]:
    """For a module-scoped fixture: `yield from imported_handler("operator_api")`. `companions`
    are the function's other modules, forgotten with it."""
    folder = str(FUNCTIONS / function)
    for name in ("app", *companions):
        sys.modules.pop(name, None)
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module("app")
    finally:
        sys.path.remove(folder)
        for name in ("app", *companions):
            sys.modules.pop(name, None)
