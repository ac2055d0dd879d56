"""Dependencies, one source of truth: what the code imports is declared, what is declared is locked,
and the Lambda layer's requirements are generated, never kept by hand.

- pyproject.toml's base `dependencies` are the Lambda code's (layers/shared/chargenet, functions/);
  `ops` adds the local stack's and the CLI's, `dev` the tests'; device-shim/pyproject.toml the shim's.
  Every third-party module a part imports must be declared where that part is installed from
  (import names mapped to distributions with importlib.metadata.packages_distributions()).
- requirements.lock pins every declared requirement (requirements-iac.lock every IaC checker) at a
  version the declaration allows: a dependency added without `make lock` fails here, not in CI's
  install.
- layers/shared/requirements.txt is what scripts/layer_requirements.py writes from the first two.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SHIM_PYPROJECT = tomllib.loads((ROOT / "device-shim" / "pyproject.toml").read_text())
SKIPPED_DIRS = {".venv", ".venv-iac", ".venv-uv", ".aws-sam", ".local", "build", "__pycache__", ".git"}


def load_layer_script() -> ModuleType:
    """scripts/layer_requirements.py, which writes the layer's file (its helpers read the lock too)."""
    spec = importlib.util.spec_from_file_location(
        "layer_requirements", ROOT / "scripts" / "layer_requirements.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAYER_SCRIPT = load_layer_script()
normalize = LAYER_SCRIPT.normalize


def requirements(specs: list[str]) -> list[Requirement]:
    return [Requirement(spec) for spec in specs]


BASE = LAYER_SCRIPT.base_dependencies()
OPS = requirements(PYPROJECT["project"]["optional-dependencies"]["ops"])
DEV = requirements(PYPROJECT["project"]["optional-dependencies"]["dev"])
SHIM = requirements(SHIM_PYPROJECT["project"]["dependencies"])
IAC_LINES = [line.split("#")[0].strip() for line in (ROOT / "requirements-iac.txt").read_text().splitlines()]
IAC = requirements([line for line in IAC_LINES if line])

# The parts of the repository, what installs each, and so which declarations its imports may use.
PARTS: dict[str, tuple[list[str], list[Requirement]]] = {
    "the Lambda code (the layer's requirements)": (["layers/shared/chargenet", "functions"], BASE),
    "the local stack and the CLI (chargenet[ops])": (["local", "cli"], BASE + OPS),
    "the device shim (chargenet-shim)": (["device-shim/chargenet_shim"], SHIM),
    "tests and benchmarks (everything `make venv` installs)": (
        ["tests", "device-shim/tests", "bench", "conftest.py", "scripts"],
        BASE + OPS + DEV + SHIM,
    ),
}


def python_files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.name in SKIPPED_DIRS:
            continue
        if child.is_dir():
            yield from python_files(child)
        elif child.suffix == ".py":
            yield child


def imported_names(path: Path) -> Iterator[tuple[str, int]]:
    """Top-level names of absolute imports, with their line, wherever they stand in the module."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


@cache
def _names_beside(directory: Path) -> frozenset[str]:
    return frozenset(child.stem if child.suffix == ".py" else child.name for child in directory.iterdir())


def first_party(name: str, path: Path) -> bool:
    """Our own packages, or a module beside the file or in a folder above it (a function's own
    modules, test helpers, `tests.fakes`)."""
    if name in PYPROJECT["tool"]["ruff"]["lint"]["isort"]["known-first-party"]:
        return True
    return any(name in _names_beside(folder) for folder in path.parents if folder.is_relative_to(ROOT))


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # reads every installed distribution's RECORD


def distributions_of(name: str) -> frozenset[str]:
    return frozenset(normalize(dist) for dist in _packages_distributions().get(name, []))


def third_party_imports(roots: list[str]) -> Iterator[tuple[str, str]]:
    """(import name, "file:line") of every import that is neither the standard library nor ours."""
    for root in roots:
        for path in python_files(ROOT / root):
            for name, line in imported_names(path):
                if name in sys.stdlib_module_names or first_party(name, path):
                    continue
                yield name, f"{path.relative_to(ROOT)}:{line}"


@pytest.mark.parametrize("part", PARTS)
def test_every_third_party_module_a_part_imports_is_declared_for_it(part: str) -> None:
    roots, declared = PARTS[part]
    declared_names = {normalize(r.name) for r in declared}
    undeclared = {}
    for name, where in third_party_imports(roots):
        distributions = distributions_of(name)
        if not distributions & declared_names:
            undeclared.setdefault(name, (sorted(distributions) or ["not installed"], where))
    assert not undeclared, f"{part} imports what it does not declare: {undeclared}"


def test_the_import_check_sees_the_layers_own_imports() -> None:
    """The check above is not vacuous: the layer's third-party imports are found and mapped."""
    found = {name for name, _ in third_party_imports(PARTS["the Lambda code (the layer's requirements)"][0])}
    assert {"aws_lambda_powertools", "pynamodb", "stripe", "jsonschema", "cryptography"} <= found
    assert distributions_of("yaml") == {"pyyaml"}


def locked(lock: str) -> dict[str, str]:
    return LAYER_SCRIPT.locked_versions(ROOT / lock)


@pytest.mark.parametrize(
    ("lock", "declared"),
    [("requirements.lock", BASE + OPS + DEV + SHIM), ("requirements-iac.lock", IAC)],
    ids=["requirements.lock", "requirements-iac.lock"],
)
def test_every_declared_requirement_is_locked_at_a_version_it_allows(
    lock: str, declared: list[Requirement]
) -> None:
    pins = locked(lock)
    missing = [str(r) for r in declared if normalize(r.name) not in pins]
    assert not missing, f"not in {lock} (run `make lock`): {missing}"
    disallowed = [
        f"{r} but {pins[normalize(r.name)]}" for r in declared if pins[normalize(r.name)] not in r.specifier
    ]
    assert not disallowed, f"{lock} pins what pyproject no longer allows (run `make lock`): {disallowed}"


def test_every_lock_line_carries_hashes() -> None:
    """`make venv` installs with --require-hashes: a pin without a hash would fail there."""
    for lock in ("requirements.lock", "requirements-iac.lock"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text())
        bare = [
            entry.split()[0] for entry in entries if "==" in entry.split("\n")[0] and "--hash=" not in entry
        ]
        assert not bare, f"{lock}: pins without hashes: {bare}"


def test_the_layer_requirements_are_the_ones_generated_from_pyproject_and_the_lock() -> None:
    committed = (ROOT / "layers" / "shared" / "requirements.txt").read_text()
    assert committed == LAYER_SCRIPT.layer_requirements(), (
        "layers/shared/requirements.txt is generated: run `make lock` (scripts/layer_requirements.py)"
    )


def test_the_layer_ships_every_base_dependency_but_boto3_at_the_locked_version() -> None:
    lines = (ROOT / "layers" / "shared" / "requirements.txt").read_text().splitlines()
    shipped = dict(
        (normalize(Requirement(line).name), str(Requirement(line).specifier))
        for line in lines
        if line and not line.startswith("#")
    )
    pins = locked("requirements.lock")
    assert "boto3" not in shipped  # the Lambda runtime's
    for requirement in BASE:
        name = normalize(requirement.name)
        if name != "boto3":
            assert shipped[name] == f"=={pins[name]}"
    assert all(specifier == f"=={pins[name]}" for name, specifier in shipped.items())
