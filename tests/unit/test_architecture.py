"""docs/architecture.md, checked against the tree: its parts table, its module lists and every rule it states.

The doc is the definition: the import matrix comes from the "may import" column of its parts table, the module lists
from its "Modules" section, the function's AWS-touching modules from the list labelled "AWS glue", and each rule of
its "Rules" table names the test here that checks it (a rule without a test, or a test without a rule, fails). Source
is read with ``ast``; no module is imported.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"

#: Our own top-level import names and the folder each lives in (the folder is the doc's key).
PARTS = {
    "image_compressor": "lambda/image_compressor",
    "index": "lambda/index.py",
    "image_compressor_cli": "cli",
    "localcloud": "localcloud",
    "ops": "ops",
    "dashboard": "dashboard",
    "bench": "bench",
    "tools": "tools",
    "tests": "tests",
}
#: Folders that hold no module of ours.
NOT_OURS = {"build", "node_modules", "tfstate", "test-artifacts"}

#: What the function may import besides itself and the standard library: the layer's packages and the runtime's SDK.
FUNCTION_THIRD_PARTY = {"PIL", "aws_lambda_powertools", "ajpegli", "numpy"}
FUNCTION_RUNTIME = {"boto3", "botocore"}

#: boto3 calls that change something in S3, SQS, SNS or Lambda (the dashboard makes none of them itself).
WRITE_CALLS = {
    "put_object", "upload_fileobj", "upload_file", "copy_object", "delete_object", "delete_objects",
    "put_object_tagging", "send_message", "send_message_batch", "delete_message", "delete_message_batch",
    "change_message_visibility", "change_message_visibility_batch", "purge_queue", "invoke", "publish",
    "update_function_configuration",
}  # fmt: skip
#: The one place that makes boto3 sessions and clients for a stack; the function has its own (``aws``).
CLIENT_FACTORY = "ops/stack.py"
CLIENT_CALLS = {"boto3.client", "boto3.resource", "boto3.Session", "boto3.session.Session"}
#: The largest module outside bench/ (lines).
MAX_MODULE_LINES = 600


# ---------------------------------------------------------------------------------------------------------------------
# Reading the doc
# ---------------------------------------------------------------------------------------------------------------------


def _section(title: str, text: str | None = None) -> list[str]:
    """Return the lines of the ``## title`` section of the doc (up to the next ``## ``)."""
    lines = (DOC.read_text(encoding="utf-8") if text is None else text).splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _rows(lines: list[str]) -> list[list[str]]:
    """Return the cells of each body row of the first Markdown table in ``lines``."""
    rows = [line for line in lines if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def _ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def may_import(text: str | None = None) -> dict[str, set[str]]:
    """Return ``part -> the names it may import`` from the parts table (bare parts, or dotted module names)."""
    folder_to_part = {folder.split("/")[0] + "/": part for part, folder in PARTS.items()}
    matrix: dict[str, set[str]] = {}
    for row in _rows(_section("The parts", text)):
        for folder in _ticked(row[0]):
            if folder not in folder_to_part:
                continue
            names = set(PARTS) if "everything" in row[-1] else {t for t in _ticked(row[-1]) if t.split(".")[0] in PARTS}
            for part, part_folder in PARTS.items():
                if part_folder.split("/")[0] + "/" == folder:
                    matrix[part] = names
    return matrix


def module_lists(text: str | None = None) -> dict[str, dict[str, set[str]]]:
    """Return ``folder -> label -> module names`` from the Modules section (label ``""`` when there is none)."""
    found: dict[str, dict[str, set[str]]] = {}
    for line in _section("Modules", text):
        match = re.match(r"^- `([^`]+/)`(?: \(([^)]*)\))?: (.*)$", line)
        if match:
            folder, label, rest = match.groups()
            found.setdefault(folder, {})[label or ""] = set(_ticked(rest))
    return found


def rules(text: str | None = None) -> dict[str, str]:
    """Return ``rule id -> the test that checks it`` from the Rules table."""
    return {_ticked(row[0])[0]: _ticked(row[-1])[0] for row in _rows(_section("Rules", text))}


# ---------------------------------------------------------------------------------------------------------------------
# Reading the source
# ---------------------------------------------------------------------------------------------------------------------


def _files(part: str) -> list[Path]:
    path = ROOT / PARTS[part]
    return [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path, package: str) -> Iterator[str]:
    """Yield the absolute module names ``path`` imports (relative imports resolved within ``package``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield f"{package}.{node.module}" if node.module else package
            elif node.module != "__future__":
                yield node.module or ""


def _calls(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line, dotted name) of every call in ``path`` whose callee is a plain or attribute name."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
            yield node.lineno, ".".join(reversed(parts))


def _violations(part: str, matrix: dict[str, set[str]]) -> list[str]:
    """Imports of ``part`` its row does not allow. A dotted name in the row allows that module of its part only."""
    allowed = matrix[part]
    folder = PARTS[part].split("/")[0]
    own = {other for other, where in PARTS.items() if where.split("/")[0] == folder}
    found = []
    for path in _files(part):
        for name in _imports(path, part):
            top = name.split(".")[0]
            if top in PARTS and top not in own and top not in allowed and name not in allowed:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def _python_folders() -> set[str]:
    """Every folder of ours holding Python files, as ``folder/`` relative to the checkout."""
    folders = set()
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0].startswith(".") or relative.parts[0] in NOT_OURS or "__pycache__" in relative.parts:
            continue
        if relative.parts[0].endswith(".egg-info") or len(relative.parts) == 1:
            continue
        folders.add(str(relative.parent) + "/")
    return folders


def _modules_of(folder: str) -> set[str]:
    """The module names a folder holds (tests: its helpers, not its test files)."""
    names = {p.stem for p in (ROOT / folder).glob("*.py") if p.stem != "__init__"}
    return {n for n in names if not n.startswith("test_")} if folder.startswith("tests") else names


# ---------------------------------------------------------------------------------------------------------------------
# The rules (each is a row of the doc's Rules table)
# ---------------------------------------------------------------------------------------------------------------------

MATRIX = may_import()


def test_every_part_has_a_row_and_every_python_folder_belongs_to_a_part():
    assert set(MATRIX) == set(PARTS), "a part without a row in docs/architecture.md's parts table"
    owned = {Path(path).parts[0] for path in PARTS.values()}
    loose = {folder for folder in _python_folders() if folder.split("/")[0] not in owned}
    assert loose == set(), f"folders without a row in docs/architecture.md: {sorted(loose)}"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_imports_only_what_its_row_allows(part: str):
    assert _violations(part, MATRIX) == []


def test_the_module_lists_are_the_tree():
    listed = {folder: set().union(*labels.values()) for folder, labels in module_lists().items()}
    actual = {folder: _modules_of(folder) for folder in _python_folders() if _modules_of(folder)}
    missing = {f: sorted(actual[f] - listed.get(f, set())) for f in actual if actual[f] - listed.get(f, set())}
    invented = {f: sorted(listed[f] - actual.get(f, set())) for f in listed if listed[f] - actual.get(f, set())}
    assert (missing, invented) == ({}, {}), "docs/architecture.md's Modules section and the tree disagree"


def test_the_function_package_imports_only_what_ships_with_it():
    allowed = set(sys.stdlib_module_names) | FUNCTION_THIRD_PARTY | FUNCTION_RUNTIME | {"image_compressor"}
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for part in ("image_compressor", "index")
        for path in _files(part)
        for name in _imports(path, part)
        if name.split(".")[0] not in allowed
    ]
    assert found == []


def test_the_pure_core_imports_no_aws_sdk_and_no_aws_glue():
    glue = module_lists()["lambda/image_compressor/"]["AWS glue"]
    forbidden = FUNCTION_RUNTIME | {"aws_lambda_powertools"} | {f"image_compressor.{m}" for m in glue}
    found = []
    for path in _files("image_compressor"):
        if path.stem in glue:
            continue
        for name in _imports(path, "image_compressor"):
            if name.split(".")[0] in forbidden or any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []


def test_the_policy_evaluator_is_pure():
    path = ROOT / "localcloud" / "policyeval.py"
    found = [name for name in _imports(path, "localcloud") if name.split(".")[0] not in sys.stdlib_module_names]
    assert found == [], "localcloud/policyeval.py decides from policies and a request only (no moto, boto3, server)"


def test_the_dashboard_writes_nothing_itself():
    found = [
        f"{path.relative_to(ROOT)}:{line} calls {name}"
        for path in _files("dashboard")
        for line, name in _calls(path)
        if name.rsplit(".", 1)[-1] in WRITE_CALLS
    ]
    assert found == [], "the dashboard calls ops for what it changes (ops.upload, ops.reprocess, ops.redrive)"


def test_boto3_clients_are_made_in_one_place():
    found = [
        f"{path.relative_to(ROOT)}:{line} calls {name}"
        for part in ("ops", "dashboard", "bench", "image_compressor_cli", "tools")
        for path in _files(part)
        if str(path.relative_to(ROOT)) != CLIENT_FACTORY
        for line, name in _calls(path)
        if name in CLIENT_CALLS
    ]
    assert found == [], f"get clients from ops.stack.Stack.client ({CLIENT_FACTORY})"


def test_no_module_outside_bench_is_over_600_lines():
    found = {
        str(path.relative_to(ROOT)): lines
        for part in PARTS
        if part not in {"bench", "tests"}
        for path in _files(part)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert found == {}, f"split these by job (at most {MAX_MODULE_LINES} lines a module outside bench/ and tests/)"


def test_test_module_names_are_unique_across_the_suite() -> None:
    """pytest imports test modules by basename (the test folders are not packages): two files of one name break
    collection of the whole suite ("import file mismatch"), so each name is used once."""
    tests = Path(__file__).resolve().parents[1]
    names: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}


# ---------------------------------------------------------------------------------------------------------------------
# The doc and these checks
# ---------------------------------------------------------------------------------------------------------------------


def test_every_rule_of_the_doc_has_its_test_and_every_test_its_rule():
    tests = {name for name, value in globals().items() if name.startswith("test_") and callable(value)}
    stated = rules()
    assert sorted(set(stated.values()) - tests) == [], "a rule in docs/architecture.md names a test that does not exist"
    assert sorted(tests - set(stated.values())) == [], "a test here checks no rule of docs/architecture.md"


def test_the_checks_catch_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A forbidden import, a module the doc does not list, and a dotted rule broken, each found."""
    doc = DOC.read_text(encoding="utf-8")
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / "bad.py").write_text("from localcloud import server\nfrom . import ui\n")
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "leak.py").write_text("from image_compressor import core\nimport image_compressor.result\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations("dashboard", may_import(doc)) == ["dashboard/bad.py imports localcloud"]
    assert _violations("ops", may_import(doc)) == ["ops/leak.py imports image_compressor"]
    listed = module_lists(doc)["ops/"][""]
    assert "leak" not in listed and "stack" in listed
    assert "parts" in rules(doc)
