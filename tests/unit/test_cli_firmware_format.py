"""The operator CLI takes the firmware package format from chargenet_firmware_format, not the device shim.

The firmware commands sign, store and read packages; the shim's firmware code (download,
install, the gateway's relay, IoT Jobs on the device) is the device's business. Only the demo
and scenario commands, which drive simulated chargers, import the shim's simulator.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "cli" / "chargenet_cli"
FORMAT = "chargenet_firmware_format"
# The device side of firmware updates: no CLI module needs it.
DEVICE_FIRMWARE = ("chargenet_shim.firmware", "chargenet_shim.gateway_firmware", "chargenet_shim.jobs")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for each import statement; `from a import b` names a.b as well as a."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def under(module: str, parent: str) -> bool:
    return module == parent or module.startswith(parent + ".")


def cli_modules() -> list[Path]:
    return sorted(CLI.glob("*.py"))


def firmware_modules() -> list[Path]:
    return sorted(CLI.glob("firmware_*.py"))


def test_there_are_firmware_commands_to_check():
    assert {p.name for p in firmware_modules()} >= {"firmware_cmd.py", "firmware_signing.py"}


@pytest.mark.parametrize("path", firmware_modules(), ids=lambda p: p.name)
def test_a_firmware_command_imports_the_format_module_and_nothing_of_the_shim(path):
    found = imports(path)
    shim = [f"line {line}: {module}" for line, module in found if under(module, "chargenet_shim")]
    assert not shim, f"{path.name} imports the device shim: {shim}"


def test_the_firmware_commands_use_the_format_module():
    used = {module for path in firmware_modules() for _, module in imports(path)}
    assert FORMAT in used


@pytest.mark.parametrize("path", cli_modules(), ids=lambda p: p.name)
def test_no_cli_module_imports_the_devices_firmware_code(path):
    device = [
        f"line {line}: {module}"
        for line, module in imports(path)
        if any(under(module, name) for name in DEVICE_FIRMWARE)
        or (under(module, "chargenet_shim.sim") and "firmware" in module)
    ]
    assert not device, f"{path.name}: take the package format from {FORMAT}: {device}"


def test_the_firmware_commands_load_none_of_the_devices_firmware_code():
    # Transitively too: what the commands import at run time, not only what they name.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, chargenet_cli.firmware_cmd, chargenet_cli.firmware_signing; "
            "print('\\n'.join(m for m in sys.modules if m.startswith('chargenet_shim')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = loaded.stdout.split()
    assert not [
        m for m in modules if any(under(m, name) for name in (*DEVICE_FIRMWARE, "chargenet_shim.sim"))
    ]
