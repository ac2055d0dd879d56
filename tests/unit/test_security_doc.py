"""Every test docs/SECURITY.md cites as proof exists: a renamed or removed test fails here.

The document cites `path::test_name` (a `[param]` suffix may follow) and, after one, `::test_name`
alone for another test of the same file; a bare `path.py` also sets the file the next `::test_name`
belongs to. Each cited file must exist and define the test at module level or in a class.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "SECURITY.md"

# A test file path, a `::name` chain, or both; in document order.
_REFERENCE = re.compile(r"(?P<path>(?:tests|device-shim)/[\w./-]+?\.py)?(?P<names>(?:::\w+)+)?")


def cited_tests(text: str) -> list[tuple[int, str, str]]:
    """(line, path, test name) of every cited test; a `::name` without a path takes the last path."""
    cited, path = [], None
    for match in _REFERENCE.finditer(text):
        if match.group("path"):
            path = match.group("path")
        if not match.group("names") or not match.group("names").rsplit("::", 1)[1].startswith("test_"):
            continue  # a placeholder such as `file::test` is no citation
        line = text.count("\n", 0, match.start()) + 1
        name = match.group("names").rsplit("::", 1)[1]  # `::Class::test` names the test last
        cited.append((line, path or "<no file named before>", name))
    return cited


def cited_files(text: str) -> set[str]:
    return {m.group("path") for m in _REFERENCE.finditer(text) if m.group("path")}


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """Functions and assigned names at module level and in classes (where pytest collects tests)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    bodies = [tree.body, *(node.body for node in tree.body if isinstance(node, ast.ClassDef))]
    names = set()
    for body in bodies:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


def unresolved(text: str, root: Path) -> list[str]:
    problems = [f"{path}: no such file" for path in sorted(cited_files(text)) if not (root / path).is_file()]
    for line, path, name in cited_tests(text):
        file = root / path
        if file.is_file() and name not in defined_tests(file):
            problems.append(f"line {line}: {path}::{name} is not defined")
        elif not file.is_file() and not path.endswith(".py"):
            problems.append(f"line {line}: ::{name} follows no file")
    return problems


def test_every_test_the_security_doc_cites_exists() -> None:
    assert unresolved(DOC.read_text(), ROOT) == []


def test_a_removed_test_a_continuation_and_a_missing_file_are_each_reported() -> None:
    text = (
        "Test references are `file::test`; `::test_before_any_file`\n"
        "- `tests/unit/test_security_doc.py::test_every_test_the_security_doc_cites_exists`,\n"
        "  `::test_that_was_removed[case]`\n"
        "| Weakness | Control | tests/unit/test_gone.py::test_x |\n"
    )
    assert cited_tests(text) == [
        (1, "<no file named before>", "test_before_any_file"),
        (2, "tests/unit/test_security_doc.py", "test_every_test_the_security_doc_cites_exists"),
        (3, "tests/unit/test_security_doc.py", "test_that_was_removed"),
        (4, "tests/unit/test_gone.py", "test_x"),
    ]
    assert unresolved(text, ROOT) == [
        "tests/unit/test_gone.py: no such file",
        "line 1: ::test_before_any_file follows no file",
        "line 3: tests/unit/test_security_doc.py::test_that_was_removed is not defined",
    ]
