"""`make test` runs the suite on pytest-xdist workers with `--dist loadgroup`: the tests that share a stack must run
on one worker (each worker would otherwise bring up a stack of its own), and the grouping must really happen with
the pinned pytest and pytest-xdist (pytest 9.2 silently drops xdist's groups: pytest-dev/pytest-xdist#1386).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import STACK_GROUPS
from tests.stacks import PROJECT_ROOT

GROUPED_TESTS = """
import os
import pytest


@pytest.mark.xdist_group("together")
@pytest.mark.parametrize("n", range(4))
def test_grouped(n, request):
    with open(os.environ["RECORD"], "a") as out:
        out.write(f"{os.environ['PYTEST_XDIST_WORKER']} {request.node.nodeid}\\n")


@pytest.mark.parametrize("n", range(8))
def test_free(n):
    pass
"""

RECORD_GROUPS = """
import json
import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    rows = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        rows.append({
            "nodeid": item.nodeid,
            "fixtures": sorted(item.fixturenames),
            "backend": callspec.params.get("local_stack") if callspec else None,
            "groups": [m.args[0] for m in item.iter_markers("xdist_group")],
        })
    with open(os.environ["RECORD"], "w") as out:
        json.dump(rows, out)
"""


def _pytest(args: list[str], cwd: Path, record: Path, pythonpath: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECORD": str(record), "PYTHONPATH": pythonpath}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouping.py").write_text(GROUPED_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    record = tmp_path / "record.txt"

    run = _pytest(["-n", "3", "--dist", "loadgroup", "-q", "test_grouping.py"], tmp_path, record)

    assert run.returncode == 0, run.stdout + run.stderr
    rows = [line.split(" ", 1) for line in record.read_text().splitlines()]
    assert len(rows) == 4
    assert len({worker for worker, _ in rows}) == 1, rows  # one worker ran the whole group
    assert all(nodeid.endswith("@together") for _, nodeid in rows), rows  # xdist's group is in the node id


def test_every_test_of_a_stack_is_in_that_stacks_group(tmp_path: Path) -> None:
    (tmp_path / "record_groups.py").write_text(RECORD_GROUPS)
    record = tmp_path / "groups.json"

    run = _pytest(["--collect-only", "-q", "-p", "record_groups"], PROJECT_ROOT, record, pythonpath=str(tmp_path))

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(record.read_text())
    seen: set[str] = set()
    for row in rows:
        expected = {STACK_GROUPS[f"{row['backend']}_stack"]} if row["backend"] else set()
        expected |= {group for fixture, group in STACK_GROUPS.items() if fixture in row["fixtures"]}
        if expected:
            # One stack a test: two would live on two workers.
            assert len(expected) == 1 and row["groups"] == [*expected], row
            seen |= expected
        if row["nodeid"].startswith("tests/unit/"):
            assert row["groups"] == [], row  # unit tests go to whichever worker is free
    assert seen == set(STACK_GROUPS.values())  # each stack is used, and its tests are grouped
