"""The shim's layout: the site gateway never depends on the simulator, the firmware format on neither.

Read from the source with ast, so a stray import fails here rather than on a site gateway that
suddenly needs the simulator's code.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SHIM = Path(__file__).resolve().parents[1]
PACKAGE = SHIM / "chargenet_shim"
FORMAT_MODULE = SHIM / "chargenet_firmware_format.py"
SIMULATOR = "chargenet_shim.sim"
# The command line offers `simulate` too: it may load the simulator, inside that command only.
ENTRY_POINT = PACKAGE / "cli.py"


def imported(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """Every module an import statement under `tree` names (`from a import b` names a and a.b)."""
    found: list[tuple[str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, node))
            found += [(f"{node.module}.{alias.name}", node) for alias in node.names]
    return found


def is_simulator(module: str) -> bool:
    return module == SIMULATOR or module.startswith(SIMULATOR + ".")


def production_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py"))


def test_the_layout_is_what_this_test_reads():
    assert (PACKAGE / "sim" / "__init__.py").is_file()
    assert {p.name for p in production_modules()} >= {
        "gateway.py",
        "gateway_firmware.py",
        "link.py",
        "cli.py",
    }
    assert not (PACKAGE / "simulator.py").exists(), "the simulator lives in chargenet_shim/sim/"


@pytest.mark.parametrize("path", production_modules(), ids=lambda p: p.name)
def test_a_gateway_module_imports_nothing_from_the_simulator(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    if path == ENTRY_POINT:
        # Only what runs at import time counts for the entry point: `simulate` imports inside itself.
        top_level = ast.Module(
            body=[n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)],
            type_ignores=[],
        )
        tree = top_level
    offending = [f"line {node.lineno}: {module}" for module, node in imported(tree) if is_simulator(module)]
    assert not offending, f"{path.name} imports the simulator: {offending}"


def test_the_gateway_and_its_command_line_run_without_loading_the_simulator():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, chargenet_shim.cli, chargenet_shim.gateway; "
            "print('\\n'.join(m for m in sys.modules if m.startswith('chargenet_shim.sim')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""


def test_the_firmware_format_imports_neither_side_nor_any_cloud_library():
    tree = ast.parse(FORMAT_MODULE.read_text(), filename=str(FORMAT_MODULE))
    roots = {module.split(".")[0] for module, _ in imported(tree)}
    forbidden = {"chargenet", "chargenet_shim", "chargenet_cli", "chargenet_local"}
    forbidden |= {"boto3", "botocore", "awscrt", "awsiot", "ocpp", "websockets"}
    assert not roots & forbidden
    assert roots <= {
        "__future__", "base64", "binascii", "datetime", "hashlib", "json", "re", "dataclasses",
        "cryptography", "pydantic",
    }  # fmt: skip
