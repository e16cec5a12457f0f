"""Upload to stopped-at-breakpoint with the debugger attached (``make local-up DEBUG=1``; goal: at most 2 s).

On an embedded stack (its own, started as :mod:`bench.e2e` does, unless one is given): debugging is switched on for
the stack's function (:func:`ops.debugging.enable`, as ``ops up --debug`` does), a Debug Adapter Protocol client
(:mod:`bench.dap`, what an editor does) attaches with the path mapping of ``.vscode/launch.json`` and sets a
breakpoint on the handler's first line of work in ``lambda/index.py``. Then ``uploads`` times, one after another:
the clock starts right before ``put_object`` of a 1024x768 JPEG and stops when the client receives the ``stopped``
event; the client continues and the next upload waits until the object landed. The first upload is not counted
(it pays for debugpy's first breakpoint set-up in the worker). The result is the median of the rest.

Run: ``.venv/bin/python -c "from bench.debugging import run; print(run())"`` (``TF_PROVIDER_MIRROR`` set as for
``make local-up``), or ``run(stack=...)`` with a running local stack (an ``ops.stack.Stack`` read from its stack
file, e.g. ``ops.stack.resolve()`` after ``make local-up``).
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

from bench.dap import DapClient
from bench.metrics import median
from ops import debugging, procs
from ops.defaults import FUNCTION_SOURCE_DIR, LOCAL_HOST
from ops.stack import Policy, Stack

log = logging.getLogger(__name__)

#: The handler's line the breakpoint goes on (the same as the integration test's).
BREAK_AT = 'logger.info("processing event"'
POLICY = Policy("bench-debugging", retries=2, read_timeout=120.0)
LANDED_TIMEOUT_S = 120.0


def _line(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise ValueError(f"{text!r} is not in {path}; update bench.debugging.BREAK_AT")


def _photo() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 255, size=(768, 1024, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def measure(stack: Stack, uploads: int = 6) -> list[float]:
    """Return the milliseconds from ``put_object`` to the debugger's ``stopped`` event, for each of ``uploads``.

    Debugging is switched on for ``stack``'s function on a free port for the run and off afterwards.
    """
    port = int(stack.endpoint.rsplit(":", 1)[-1])
    function = stack.output("function_name")
    debug_port = procs.free_port()
    state_dir = Path(stack.stack_file or ".").parent
    remote = state_dir / "lambda-cache" / "debug" / function
    index = FUNCTION_SOURCE_DIR / "index.py"
    debugging.enable(port, function, stack.region, debug_port)
    client = DapClient(LOCAL_HOST, debug_port)
    s3 = stack.client("s3", POLICY)
    body = _photo()
    times: list[float] = []
    try:
        mapping = [{"localRoot": str(FUNCTION_SOURCE_DIR), "remoteRoot": str(remote)}]
        client.attach(mapping, {str(index): [_line(index, BREAK_AT)]})
        run = uuid.uuid4().hex[:8]
        for n in range(uploads):
            key = f"bench-debug/{run}/{n}.jpg"
            started = time.perf_counter()
            s3.put_object(Bucket=stack.output("source_bucket"), Key=key, Body=body, ContentType="image/jpeg")
            stopped = client.stopped(LANDED_TIMEOUT_S)
            times.append((time.perf_counter() - started) * 1000)
            client.resume(stopped["threadId"])
            _wait_landed(stack, s3, key)
    finally:
        client.close()
        debugging.disable(port)
    log.info("debugging: upload to stopped at the breakpoint, ms: %s", [round(t) for t in times])
    return times


def _wait_landed(stack: Stack, s3: Any, key: str) -> None:
    deadline = time.monotonic() + LANDED_TIMEOUT_S
    while time.monotonic() < deadline:
        for bucket in ("destination_bucket", "failed_bucket"):
            try:
                s3.head_object(Bucket=stack.output(bucket), Key=key)
                return
            except s3.exceptions.ClientError:
                pass
        time.sleep(0.05)
    raise TimeoutError(f"{key} did not land within {LANDED_TIMEOUT_S:.0f} s after the debugger continued")


def run(stack: Stack | None = None, uploads: int = 6) -> dict[str, Any]:
    """Return ``{"debug_upload_to_break_ms": median}`` over ``uploads`` (the first not counted).

    Without ``stack`` an embedded stack of its own is started (:func:`bench.e2e.start_stack`) and stopped after.
    """
    own = stack is None
    if stack is None:
        from bench.e2e import start_stack

        stack, _ = start_stack()
    try:
        times = measure(stack, uploads)
    finally:
        if own:
            from bench.e2e import stop_stack

            stop_stack(stack)
    return {"debug_upload_to_break_ms": round(median(times[1:] or times), 1)}
