"""Invoke by hand, warm: how long ``image-compressor invoke`` takes on a 1 MP photo once the function is warm.

The goal (issue 20) is a round trip of at most 1 s. :func:`invoke_warm` measures :func:`ops.invoke.invoke_object`
end to end, as the command runs it after start-up: HeadObject of the source, the synchronous invoke (the function
downloads, compresses and writes the photo, and notifies), reading the answer and the log tail, and the failed-copy
check after a success. Each measured invoke runs on a fresh object whose key the bucket's S3 trigger does not match
(no ``.jpg`` suffix), so only the invoke processes it and the function really compresses it (no output of an earlier
run to re-use). One unmeasured invoke first warms the function's worker.

Call it with a running stack, e.g. ``stack, _ = bench.e2e.start_stack(); bench.invoking.invoke_warm(stack)``, then
``bench.e2e.stop_stack(stack)``.
"""

from __future__ import annotations

import logging
import time
import uuid

from bench.corpus import Photo, large_photo
from bench.e2e import BENCH_POLICY
from bench.metrics import median
from ops import invoke
from ops.stack import Stack

log = logging.getLogger(__name__)

#: Measured invokes (after one that warms the worker).
RUNS = 7


def invoke_warm(stack: Stack, photo: Photo | None = None, runs: int = RUNS) -> dict[str, float]:
    """Return the median wall-clock milliseconds of a warm hand invoke of a 1 MP photo on ``stack``.

    Parameters
    ----------
    stack : Stack
        A running stack (the bench's embedded one from ``bench.e2e.start_stack``).
    photo : Photo | None
        The photo to invoke on (default: the corpus's 1 MP camera photo, ``large_photo("1mp")``).
    runs : int
        Measured invokes, each on a fresh copy of the photo, after one unmeasured warm-up invoke.

    Returns
    -------
    dict[str, float]
        ``{"invoke_warm_ms_1mp": median}``. The objects it uploaded and their outputs are deleted again.

    Raises
    ------
    RuntimeError
        When an invoke did not compress the photo (the message names the state and the reason).
    """
    photo = photo or large_photo("1mp")
    s3 = stack.client("s3", BENCH_POLICY)
    source, destination = stack.output("source_bucket"), stack.output("destination_bucket")
    prefix = f"bench-invoke/{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{index}.photo" for index in range(runs + 1)]
    timings: list[float] = []
    try:
        for index, key in enumerate(keys):
            s3.put_object(Bucket=source, Key=key, Body=photo.data, ContentType="image/jpeg")
            started = time.perf_counter()
            done = invoke.invoke_object(stack, key)
            elapsed = (time.perf_counter() - started) * 1000
            if done.state != "compressed":
                raise RuntimeError(f"invoke of {key} ended {done.state}: {done.reason}")
            if index:
                timings.append(elapsed)
            log.info("invoke: %s %.0f ms (%s)", key, elapsed, done.report or "no REPORT line")
    finally:
        for key in keys:
            s3.delete_object(Bucket=source, Key=key)
            s3.delete_object(Bucket=destination, Key=key)
    result = round(median(timings), 1)
    log.info("invoke: warm %s (%.2f MP): median %.1f ms over %d invokes", photo.name, photo.megapixels, result, runs)
    return {"invoke_warm_ms_1mp": result}
