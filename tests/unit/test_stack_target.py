"""ops.target: TARGET=local|aws resolved once for backfill and redrive, with messages that say what to run.

The paths that reach a running local cloud are in tests/integration/test_stack_target_live.py (unit tests open no
connections).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import stackfile
from ops import target as stack_target


def test_an_unknown_target_names_both(tmp_path: Path) -> None:
    with pytest.raises(stack_target.TargetError, match="unknown target 'prod'.*TARGET=local.*TARGET=aws"):
        stack_target.resolve("prod", state_dir=tmp_path)


def test_no_local_stack_says_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(stack_target.TargetError, match="no local stack is running .*`make local-up`.*TARGET=aws"):
        stack_target.resolve("local", state_dir=tmp_path)


def test_an_unreadable_stack_file_is_a_target_error(tmp_path: Path) -> None:
    (tmp_path / stackfile.STATE_FILE).write_text('{"version": 99}')
    with pytest.raises(stack_target.TargetError, match="make local-down"):
        stack_target.resolve("local", state_dir=tmp_path)
