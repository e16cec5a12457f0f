"""The import rules of docs/architecture.md, read from the source with ``ast`` (no module is imported).

Each part may import only the parts its row of the table allows; the function package imports nothing outside itself
but the standard library and what the Lambda layer or runtime ships; its pure core imports no AWS SDK at all.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Our own top-level import names and the folder each lives in.
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

#: Which of our parts each part may import (itself always).
MAY_IMPORT = {
    "image_compressor": set(),
    "index": {"image_compressor"},
    "image_compressor_cli": {"image_compressor", "ops"},
    "localcloud": set(),
    "ops": {"localcloud", "image_compressor"},
    "dashboard": {"ops", "image_compressor"},
    "bench": {"ops", "image_compressor"},
    "tools": {"ops"},
    "tests": set(PARTS),
}

#: What the function may import besides itself and the standard library: the layer's packages and the runtime's SDK.
FUNCTION_THIRD_PARTY = {"PIL", "aws_lambda_powertools", "ajpegli", "numpy"}
FUNCTION_RUNTIME = {"boto3", "botocore"}
#: The function's modules that touch AWS; everything else in the package is the pure core (no AWS SDK).
FUNCTION_AWS_MODULES = {
    "aws",
    "service",
    "observability",
    "outcomes",
    "idempotency",
    "outputs",
    "failed_copy",
    "notify",
    "summary",
}
#: The emulator's import of ops: only the server's interface constants go the other way (ops imports localcloud).
OPS_MAY_IMPORT_FROM_LOCALCLOUD = {"localcloud.server"}
#: The operations layer's imports of the function package: its contracts only (the backfill's skip decision reads the
#: outcome metadata; its invocations are Batch Operations events), never the core or the AWS glue.
OPS_MAY_IMPORT_FROM_FUNCTION = {"image_compressor.result", "image_compressor.batch"}


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


def _violations(part: str) -> list[str]:
    allowed = MAY_IMPORT[part] | {part}
    found = []
    for path in _files(part):
        for name in _imports(path, part):
            top = name.split(".")[0]
            if top in PARTS and top not in allowed:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
            if part == "ops" and top == "localcloud" and name not in OPS_MAY_IMPORT_FROM_LOCALCLOUD:
                found.append(f"{path.relative_to(ROOT)} imports {name} (only localcloud.server's interface)")
            if part == "ops" and top == "image_compressor" and name not in OPS_MAY_IMPORT_FROM_FUNCTION:
                found.append(f"{path.relative_to(ROOT)} imports {name} (only the function's contracts)")
    return found


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_each_part_imports_only_what_its_row_allows(part: str):
    assert _violations(part) == []


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
    forbidden = FUNCTION_RUNTIME | {"aws_lambda_powertools"} | {f"image_compressor.{m}" for m in FUNCTION_AWS_MODULES}
    found = []
    for path in _files("image_compressor"):
        if path.stem in FUNCTION_AWS_MODULES:
            continue
        for name in _imports(path, "image_compressor"):
            if name.split(".")[0] in forbidden or any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert found == []


#: boto3 calls that change something in S3, SQS, SNS or Lambda. The dashboard only reads; what it starts (an upload, a
#: reprocess, a replay) is an operation of ``ops``, the same one the CLI and make run.
WRITE_CALLS = {
    "put_object", "upload_fileobj", "upload_file", "copy_object", "delete_object", "delete_objects",
    "put_object_tagging", "send_message", "send_message_batch", "delete_message", "delete_message_batch",
    "change_message_visibility", "change_message_visibility_batch", "purge_queue", "invoke", "publish",
    "update_function_configuration",
}  # fmt: skip
#: The one place that makes boto3 sessions and clients for a stack (``Stack.client``); the function has its own
#: (``image_compressor.aws``), and the tests may make theirs.
CLIENT_FACTORY = "ops/stack.py"
CLIENT_CALLS = {"boto3.client", "boto3.resource", "boto3.Session", "boto3.session.Session"}


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


def test_the_rules_catch_a_forbidden_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "dashboard").mkdir()
    (tmp_path / "dashboard" / "bad.py").write_text("from localcloud import server\nfrom . import ui\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations("dashboard") == ["dashboard/bad.py imports localcloud"]


def test_every_python_folder_belongs_to_a_part():
    skipped = {"build", "node_modules"}
    folders = {
        d.name
        for d in ROOT.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and d.name not in skipped
        and not d.name.endswith(".egg-info")
        and any(d.rglob("*.py"))
    }
    owned = {Path(path).parts[0] for path in PARTS.values()}
    assert folders <= owned, f"folders without a row in docs/architecture.md: {sorted(folders - owned)}"


def test_test_module_names_are_unique_across_the_suite() -> None:
    """pytest imports test modules by basename (the test folders are not packages): two files of one name break
    collection of the whole suite ("import file mismatch"), so each name is used once."""
    tests = Path(__file__).resolve().parents[1]
    names: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
