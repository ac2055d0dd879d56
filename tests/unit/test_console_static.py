"""The operator console's static files keep the rules the CSP and the issue set: no markup built
from data, no eval, no tokens in web storage, no inline script or style, nothing fetched from
another origin, every module import resolvable, and the vendored Chart.js the file its README names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "functions" / "console" / "static"
ASSETS = STATIC / "assets"
VENDOR = ASSETS / "vendor"
INDEX = STATIC / "index.html"
URL_PREFIX = "/console/"  # index.html is served at /console/ and /console/callback

# Ways to turn text into markup or code, and storage a token could leak into.
FORBIDDEN_JS = {
    "innerHTML": re.compile(r"\binnerHTML\b"),
    "outerHTML": re.compile(r"\bouterHTML\b"),
    "insertAdjacentHTML": re.compile(r"\binsertAdjacentHTML\b"),
    "document.write": re.compile(r"\bdocument\.write"),
    "eval(": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"\bnew\s+Function\b"),
    "setTimeout with a string": re.compile(r"\bset(?:Timeout|Interval)\s*\(\s*[\"'`]"),
    "localStorage": re.compile(r"\blocalStorage\b"),
}
IMPORT = re.compile(
    r"""^\s*import\s+(?P<names>[^;]*?)\s+from\s+["'](?P<target>[^"']+)["']\s*;""", re.MULTILINE
)
BARE_IMPORT = re.compile(r"""(?:^\s*import\s+["']|\bimport\s*\(\s*["'])(?P<target>[^"']+)""", re.MULTILINE)
EXTERNAL_URL = re.compile(r"https?://", re.IGNORECASE)
BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
LINE_COMMENT = re.compile(r"(?<![:\"'\\\w])//.*$", re.MULTILINE)  # not the // of a URL in a string
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def own_scripts() -> list[Path]:
    """Our ES modules: everything under assets/ but the vendored libraries."""
    return sorted(p for p in ASSETS.rglob("*.js") if VENDOR not in p.parents)


def code_of(path: Path) -> str:
    """The file without its comments (comments may cite URLs; code may not fetch them)."""
    text = path.read_text()
    if path.suffix == ".html":
        return HTML_COMMENT.sub("", text)
    return LINE_COMMENT.sub("", BLOCK_COMMENT.sub("", text))


def imports_of(module: Path) -> list[tuple[Path, list[str]]]:
    """(resolved target, imported names) of each static import; names empty for `* as x`."""
    found = []
    for match in IMPORT.finditer(module.read_text()):
        target = match["target"]
        assert target.startswith("./") or target.startswith("../"), (
            f"{module.name}: import {target!r} is not relative"
        )
        names = match["names"]
        braces = re.search(r"\{([^}]*)\}", names)
        imported = [n.split(" as ")[0].strip() for n in braces[1].split(",") if n.strip()] if braces else []
        found.append(((module.parent / target).resolve(), imported))
    return found


def reachable_modules() -> set[Path]:
    seen: set[Path] = set()
    pending = [(ASSETS / "app.js").resolve()]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        assert module.is_file(), f"{module.relative_to(ROOT)} is imported but does not exist"
        pending.extend(target for target, _ in imports_of(module))
    return seen


def exported_names(module: Path) -> set[str]:
    text = module.read_text()
    declared = re.findall(
        r"^export\s+(?:async\s+)?(?:function\*?|class|const|let)\s+([A-Za-z_$][\w$]*)", text, re.MULTILINE
    )
    return set(declared)


@pytest.mark.parametrize("script", own_scripts(), ids=lambda p: str(p.relative_to(ASSETS)))
def test_no_script_builds_markup_from_text_evaluates_code_or_uses_local_storage(script: Path) -> None:
    code = code_of(script)
    used = [name for name, pattern in FORBIDDEN_JS.items() if pattern.search(code)]
    assert used == []


def test_session_storage_is_used_by_the_sign_in_round_trip_only() -> None:
    users = [p.name for p in own_scripts() if re.search(r"\bsessionStorage\b", code_of(p))]
    assert users == ["auth.js"]
    auth = code_of(ASSETS / "auth.js")
    assert "sessionStorage.removeItem" in auth  # the verifier and state are deleted on return


def test_index_html_has_no_inline_script_style_or_handler() -> None:
    html = code_of(INDEX)
    scripts = re.findall(r"<script\b[^>]*>", html, re.IGNORECASE)
    assert scripts and all(re.search(r"\bsrc\s*=", tag) for tag in scripts)
    bodies = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.IGNORECASE | re.DOTALL)
    assert [body for body in bodies if body.strip()] == []  # nothing between the tags
    assert re.search(r"<style\b", html, re.IGNORECASE) is None
    assert re.search(r"\sstyle\s*=", html, re.IGNORECASE) is None
    assert re.findall(r"\son[a-z]+\s*=", html, re.IGNORECASE) == []
    assert re.search(r"javascript:", html, re.IGNORECASE) is None


def test_index_html_loads_the_app_as_a_module_and_the_stylesheet() -> None:
    html = INDEX.read_text()
    assert re.search(r'<script type="module" src="/console/assets/app\.js"></script>', html)
    assert re.search(r'<link rel="stylesheet" href="/console/assets/console\.css"\s*/?>', html)


def test_index_html_references_only_existing_assets() -> None:
    html = code_of(INDEX)
    references = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    files = [r for r in references if not r.startswith(("#", "data:"))]  # data: is the empty favicon
    assert files
    for reference in files:
        assert reference.startswith(URL_PREFIX + "assets/"), reference
        assert (STATIC / reference.removeprefix(URL_PREFIX)).is_file(), reference


def test_every_imported_module_and_name_exists() -> None:
    for module in reachable_modules():
        for target, names in imports_of(module):
            missing = set(names) - exported_names(target)
            assert not missing, f"{module.name} imports {sorted(missing)} that {target.name} does not export"


def test_every_imported_name_is_used() -> None:
    for module in own_scripts():
        code = IMPORT.sub("", code_of(module))
        for match in IMPORT.finditer(module.read_text()):
            local_names = re.findall(r"(?:\bas\s+|[{,]\s*)([A-Za-z_$][\w$]*)\s*(?=[,}]|$)", match["names"])
            unused = [name for name in local_names if not re.search(rf"(?<![\w$.]){re.escape(name)}\b", code)]
            assert unused == [], f"{module.name} imports {unused} and never uses them"


def test_every_script_is_reachable_from_app_js() -> None:
    """No dead module: each of ours is imported (directly or not) by the entry point."""
    assert set(own_scripts()) == reachable_modules()


def test_no_script_loads_modules_by_bare_name_or_dynamic_import() -> None:
    for script in own_scripts():
        assert BARE_IMPORT.findall(code_of(script)) == [], script.name


def test_no_asset_reaches_another_origin() -> None:
    """Everything the console loads or calls is same-origin (or the token endpoint from config.json)."""
    checked = [INDEX, *own_scripts(), *ASSETS.rglob("*.css")]
    offenders = [str(p.relative_to(STATIC)) for p in checked if EXTERNAL_URL.search(code_of(p))]
    assert offenders == []


def test_chart_js_is_the_vendored_file_its_readme_names() -> None:
    readme = (VENDOR / "README.md").read_text()
    row = re.search(
        r"\|\s*`chart\.umd\.js`\s*\|[^|]*\|\s*(?P<version>4\.\d+\.\d+)\s*\|\s*`(?P<sha>[0-9a-f]{64})`", readme
    )
    assert row, "vendor/README.md lists chart.umd.js with its 4.x version and sha256"
    library = (VENDOR / "chart.umd.js").read_bytes()
    assert hashlib.sha256(library).hexdigest() == row["sha"]
    assert f"Chart.js v{row['version']}" in library[:200].decode()
    assert "MIT License" in (VENDOR / "LICENSE.md").read_text()


def test_the_chart_library_is_loaded_from_our_origin() -> None:
    charts = code_of(ASSETS / "charts.js")
    assert '"/console/assets/vendor/chart.umd.js"' in charts
