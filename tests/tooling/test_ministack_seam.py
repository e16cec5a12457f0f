"""The pinned MiniStack still has what our seam around it (``localcloud/ministack.py``) changes at start."""

from __future__ import annotations

import subprocess

import pytest

from ops import defaults

pytestmark = [pytest.mark.tooling]


def test_the_pinned_ministack_has_the_method_the_seam_changes() -> None:
    """The pinned MiniStack's ``Worker._drain_stderr_bounded`` takes the three waits the seam sets, in this order."""
    python = defaults.MINISTACK_PYTHON
    if not python.is_file():
        pytest.skip(f"no MiniStack venv ({python}): `make install` makes it")
    code = (
        "import inspect; from ministack.core import lambda_runtime as r; "
        "print(','.join(list(inspect.signature(r.Worker._drain_stderr_bounded).parameters)[1:]))"
    )
    found = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert found.stdout.strip() == "first_line_wait,idle_confirm,hard_cap"
