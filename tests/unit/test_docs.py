"""The README stays a newcomer's page, and the docs it links to stay reachable and complete."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from chargenet_cli.main import parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CLI_REFERENCE = DOCS / "cli.md"

README_MAX_LINES = 220

_FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def relative_links(page: Path) -> list[str]:
    """Link targets in the page's prose: not in code, not to another site."""
    text = _CODE_SPAN.sub("", _FENCED_BLOCK.sub("", page.read_text()))
    return [target for target in _LINK.findall(text) if not _EXTERNAL.match(target)]


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page):
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_file():
            broken.append(target)
    return broken


def registered_commands() -> dict[str, list[str]]:
    """Each top-level `chargenet` command and its subcommands, as main.py registers them."""

    def subcommands(command: argparse.ArgumentParser) -> list[str]:
        return [
            name
            for action in command._actions
            if isinstance(action, argparse._SubParsersAction)
            for name in action.choices
        ]

    [commands] = [action for action in parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return {name: subcommands(command) for name, command in commands.choices.items()}


def test_the_readme_stays_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the manuals belong in docs/"


def test_the_readme_shows_the_two_commands() -> None:
    readme = README.read_text()
    assert "make run" in readme
    assert "make test" in readme


def test_every_relative_link_resolves_to_a_file() -> None:
    pages = markdown_pages()
    assert len(pages) > 2
    broken = {page.relative_to(ROOT).as_posix(): broken_links(page) for page in pages}
    assert {page: links for page, links in broken.items() if links} == {}


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / target.split("#", 1)[0]).resolve() for target in relative_links(README)}
    assert {page.resolve() for page in DOCS.glob("*.md")} - linked == set()


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# There\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok too](there.md#there) [self](#top) [web](https://example.com/x.md)\n"
        "`[code](missing-in-code.md)`\n```\n[block](missing-in-block.md)\n```\n"
        "[gone](missing.md) [gone too](sub/missing.md#part)\n"
    )
    assert broken_links(page) == ["missing.md", "sub/missing.md#part"]


def test_every_top_level_command_is_in_the_cli_reference() -> None:
    reference = CLI_REFERENCE.read_text()
    commands = registered_commands()
    assert "charger" in commands and "fleet" in commands  # the parser was read
    missing = [name for name in commands if not re.search(rf"\bchargenet {re.escape(name)}\b", reference)]
    assert missing == []


def test_every_subcommand_is_on_its_commands_lines_in_the_cli_reference() -> None:
    lines = CLI_REFERENCE.read_text().splitlines()
    missing = []
    for name, subcommands in registered_commands().items():
        own_lines = [line for line in lines if re.search(rf"\bchargenet {re.escape(name)}\b", line)]
        missing += [
            f"{name} {sub}"
            for sub in subcommands
            if not any(re.search(rf"(?<![\w-]){re.escape(sub)}(?![\w-])", line) for line in own_lines)
        ]
    assert missing == []
