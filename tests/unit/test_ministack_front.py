"""Our seam around MiniStack (``localcloud/ministack.py``): what it changes in MiniStack's classes at start."""

from __future__ import annotations

import inspect

from localcloud import ministack


class Worker:
    """Stands for MiniStack's ``lambda_runtime.Worker``: the same method, with MiniStack 1.5.33's waits."""

    def _drain_stderr_bounded(self, first_line_wait=0.050, idle_confirm=0.005, hard_cap=0.250) -> tuple:
        return first_line_wait, idle_confirm, hard_cap


def test_the_log_drain_gets_patient_defaults_and_explicit_waits_stay() -> None:
    ministack.patient_log_drain(Worker)

    assert Worker()._drain_stderr_bounded() == (0.25, 0.05, 2.0)
    assert Worker()._drain_stderr_bounded(first_line_wait=0.1) == (0.1, 0.05, 2.0)  # as ProvidedWorker calls it
    assert list(inspect.signature(Worker._drain_stderr_bounded).parameters)[1:] == [
        "first_line_wait",
        "idle_confirm",
        "hard_cap",
    ]
