"""docs/operators.md's role table is the domain's (chargenet.domain.operators): the one table of
permissions, written once in code and shown as it is in the docs."""

from __future__ import annotations

from pathlib import Path

from chargenet.domain.operators import ROLE_PERMISSIONS, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "operators.md"


def _documented() -> dict[str, dict[str, bool]]:
    lines = DOC.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| Permission |"))
    roles = [cell.strip() for cell in lines[header].strip("|").split("|")[1:]]
    table: dict[str, dict[str, bool]] = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        permission, *marks = (cell.strip() for cell in line.strip("|").split("|"))
        table[permission] = {role: mark == "✓" for role, mark in zip(roles, marks, strict=True)}
    return table


def test_the_docs_table_lists_every_permission_once_per_role() -> None:
    documented = _documented()
    assert list(documented) == [p.value for p in Permission]
    expected = {p.value: {r.value: p in ROLE_PERMISSIONS[r] for r in Role} for p in Permission}
    assert documented == expected
