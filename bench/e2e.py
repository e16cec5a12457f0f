"""Metrics 4 and 6 on the embedded local cloud: upload-to-destination latency and a burst of uploads.

The bench brings up its own embedded stack, the way the integration tests do: ``python -m tools.build`` (the
same ``build/lambda.zip`` and ``build/layer.zip`` every target gets), then ``python -m ops up`` through
:func:`ops.launch.stack_up` (the local cloud server and the local Terraform root) on a free port of 127.0.0.1 with
its state in a temporary folder. A user's ``make local-up`` on port 4566 (and its snapshot) is left alone.
Everything is stopped and removed afterwards.

local-up, cold and warm
    Seconds from starting ``python -m ops up`` (no dashboard) until it returns with the stack up: first in the new
    state folder (cold: server start, Terraform apply, snapshot), then again after ``python -m ops down`` in the same
    folder (warm: nothing changed, so the snapshot is restored and the apply skipped). The warm stack is the one the
    measurements below run on, so the restored stack is exercised by every upload.

Latency (metric 4)
    One upload (``put_object`` to the source bucket) until the object is in the destination bucket (polled with
    ``head_object`` every 20 ms), measured warm: two uploads of each size sent at once first warm both of the
    local executor's workers and are not counted. The measured uploads run one after another; after each one (and
    a pause that lets the function finish), the same image goes once through ``compress()`` in this process, so
    ``e2e_overhead_ratio_12mp`` divides two figures taken in the same seconds. On these shared machines the speed
    drifts by 20 % from one minute to the next, which a ``compress()`` time from another part of the run would
    count as platform overhead.

Burst (metric 6)
    ``count`` uploads of the corpus photos (cycled) sent by 8 threads at once; the clock runs from the first
    ``put_object`` until every key is accounted for: in the destination bucket (compressed or kept original) or
    in the failed bucket. ``images_per_minute`` = count / that time x 60. Keys still missing after the timeout are
    reported as missing. Right before the burst each photo goes through ``compress()`` in this process (median of
    three), for ``burst_efficiency``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.corpus import Photo
from bench.metrics import median
from ops import statedir
from ops.stack import Policy, Stack, read_stack_file
from ops.stats import percentile

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
#: Seconds between completion polls (``head_object`` on the destination) while an upload is far from done.
POLL_S = 0.02
#: Seconds between polls near the expected arrival (from :data:`FINE_LEAD_S` before the fastest earlier sample):
#: the 20 ms interval alone would add ~10 ms of measurement error to every sample.
FINE_POLL_S = 0.002
FINE_LEAD_S = 0.03


class StackError(RuntimeError):
    """The embedded stack could not be brought up; the message says why (it goes into the report)."""


@dataclass
class LocalUpResult:
    """Seconds ``python -m ops up`` took to bring the stack up: cold (apply) and warm (after ``down``)."""

    cold_s: float
    warm_s: float
    warm_restored: bool
    build_s: float


#: The bench's clients: retried a little (a burst loads the local cloud), long reads (12 MP bodies), a pool per burst.
BENCH_POLICY = Policy("bench", retries=3, read_timeout=120.0, pool=16)


def start_stack(apply_timeout: float = 600.0) -> tuple[Stack, LocalUpResult]:
    """Build the artifacts and bring an embedded stack up on a free port, the way the tests do (:mod:`ops.launch`).

    Returns the stack (read from the stack file ``up`` wrote in a temporary state folder) and the ``local-up`` times.

    ``apply_timeout`` bounds ``python -m ops up`` (server start and Terraform apply, which waits for any other
    tflocal run on the same root); on timeout everything it started is stopped.

    Raises
    ------
    StackError
        When any step fails (no Terraform, no provider mirror and no registry, build error, server error); the
        message names the step and the cause.
    """
    try:
        from ops import launch, procs, stackfile
    except ImportError as exc:
        raise StackError(f"the ops package cannot be imported ({exc}); run `make install`") from exc

    log.info("e2e: building build/lambda.zip and build/layer.zip (python -m tools.build)")
    started = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "tools.build"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=900
    )
    if build.returncode != 0:
        raise StackError(f"`python -m tools.build` failed: {(build.stderr or build.stdout).strip()[-600:]}")
    build_s = time.perf_counter() - started

    state_dir = Path(tempfile.mkdtemp(prefix="bench-localcloud-"))
    port = procs.free_port()
    log.info("e2e: python -m ops up on port %d, cold (server and terraform/envs/local, about a minute)", port)
    cold_s, _ = _timed_up(state_dir, port, apply_timeout)
    log.info("e2e: cold up in %.1f s; python -m ops down, then up again (warm: the snapshot, no apply)", cold_s)
    launch.stack_down(state_dir)
    warm_s, (up, current) = _timed_up(state_dir, port, apply_timeout)
    restored = "restored the stack from" in up.stdout
    log.info("e2e: warm up in %.1f s (%s)", warm_s, "snapshot restored" if restored else "applied again")
    stack = read_stack_file(state_dir / stackfile.STATE_FILE)
    local_up = LocalUpResult(round(cold_s, 2), round(warm_s, 2), restored, round(build_s, 2))
    missing = stackfile.missing_outputs(current.outputs)
    if missing:
        stop_stack(stack)
        raise StackError(f"the local stack has no {', '.join(missing)} output")
    return stack, local_up


def _timed_up(state_dir: Path, port: int, timeout: float) -> tuple[float, tuple[Any, Any]]:
    """Run ``python -m ops up`` in ``state_dir``; return the seconds it took and its result (process, stack file).

    Raises
    ------
    StackError
        When it fails or times out (the state folder is removed then; ``stack_up`` stopped what it started).
    """
    from ops import launch

    started = time.perf_counter()
    try:
        up, current = launch.stack_up(state_dir, port, timeout=timeout)
    except subprocess.TimeoutExpired:
        shutil.rmtree(state_dir, ignore_errors=True)
        raise StackError(
            f"bringing the local stack up did not finish within {timeout:.0f} s (another Terraform run on "
            "terraform/envs/local holds its lock, or the local cloud is overloaded)"
        ) from None
    seconds = time.perf_counter() - started
    if current is None:
        shutil.rmtree(state_dir, ignore_errors=True)
        raise StackError(f"`python -m ops up` failed: {(up.stderr or up.stdout).strip()[-800:]}")
    return seconds, (up, current)


def stop_stack(stack: Stack) -> None:
    """Stop the stack started by :func:`start_stack` (server and its workers) and remove its state folder."""
    from ops import launch

    launch.stack_down(_state_dir(stack))
    shutil.rmtree(_state_dir(stack), ignore_errors=True)


def _state_dir(stack: Stack) -> Path:
    """The temporary state folder of a stack the bench started (where its stack file and server log are)."""
    return Path(stack.stack_file or ".").parent


@dataclass
class LatencyResult:
    """Warm upload-to-destination latencies of one image size."""

    size: str
    megapixels: float
    input_bytes: int
    samples_ms: list[float]
    p50_ms: float
    p95_ms: float
    failed: int = 0
    function_p50_ms: float | None = None
    inprocess_p50_ms: float | None = None


@dataclass
class BurstResult:
    """A burst of uploads and how every one ended."""

    count: int
    seconds: float
    images_per_minute: float
    destination: int
    failed: int
    missing: int
    median_megapixels: float
    threads: int
    compress_ms: list[float] = field(default_factory=list)


@dataclass
class E2EResult:
    """Metrics 4 and 6, or why they could not be measured."""

    latency: list[LatencyResult] = field(default_factory=list)
    burst: BurstResult | None = None
    local_up: LocalUpResult | None = None
    error: str | None = None
    #: Figures of the inner-loop measurements run on the same warm stack (``also`` of :func:`run`), and why any of
    #: them could not be taken.
    inner_loop: dict[str, Any] = field(default_factory=dict)
    inner_loop_errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def _wait_for(
    s3: Any,
    buckets: dict[str, str],
    key: str,
    timeout: float,
    found: dict[str, str] | None = None,
    fine_from: float | None = None,
) -> str | None:
    """Poll until ``key`` is in the destination (returns "destination") or the failed bucket; None on timeout.

    ``found``, when given, receives the destination object's user metadata (the function's result record). Polls
    are :data:`POLL_S` apart, and :data:`FINE_POLL_S` from ``fine_from`` (a ``time.perf_counter()`` value) on.
    """
    deadline = time.perf_counter() + timeout
    polls = 0
    while time.perf_counter() < deadline:
        try:
            head = s3.head_object(Bucket=buckets["destination"], Key=key)
            if found is not None:
                found.update(head.get("Metadata") or {})
            return "destination"
        except s3.exceptions.ClientError:
            pass
        polls += 1
        if polls % 10 == 0:
            try:
                s3.head_object(Bucket=buckets["failed"], Key=key)
                return "failed"
            except s3.exceptions.ClientError:
                pass
        pause = POLL_S
        if fine_from is not None:
            pause = min(POLL_S, max(FINE_POLL_S, fine_from - time.perf_counter()))
        time.sleep(pause)
    return None


def function_errors(stack: Stack, limit: int = 3) -> str:
    """Return the last distinct function failures from the server's log as ``"; the function failed: ..."``."""
    try:
        lines = statedir.StateFiles(_state_dir(stack)).server_log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    found: list[str] = []
    for line in reversed(lines):
        if "failed (" in line:
            reason = line[line.index("failed (") + len("failed (") :].split(",", 1)[0].rstrip(")")
            if reason not in found:
                found.append(reason)
        if len(found) >= limit:
            break
    return f"; the function failed: {', '.join(found)} (see the function's log)" if found else ""


def _buckets(stack: Stack) -> dict[str, str]:
    out = stack.outputs
    return {"source": out["source_bucket"], "destination": out["destination_bucket"], "failed": out["failed_bucket"]}


#: Pause after an upload landed before the in-process compress() beside it: the function still publishes and tags.
SETTLE_S = 0.3


def inprocess_ms(photo: Photo) -> float:
    """Return the milliseconds of one ``compress()`` of ``photo`` in this process, with the defaults."""
    from bench.speed import core_compress

    start = time.perf_counter()
    core_compress(photo.data)
    return (time.perf_counter() - start) * 1000


def latency(
    stack: Stack, size: str, photo: Photo, samples: int, warm_workers: int = 2, timeout: float = 60.0
) -> LatencyResult:
    """Time ``samples`` sequential uploads of ``photo`` until each is in the destination bucket, warm.

    First ``warm_workers`` uploads are sent at once and waited for, uncounted, so that every warm worker of the
    local executor (2 by default) has started and run the function once. After each measured upload,
    :data:`SETTLE_S` later, ``photo`` goes once through ``compress()`` in this process (``inprocess_p50_ms``).
    """
    s3 = stack.client("s3", BENCH_POLICY)
    buckets = _buckets(stack)
    run = uuid.uuid4().hex[:8]

    def one(key: str) -> tuple[str | None, float]:
        start = time.perf_counter()
        s3.put_object(Bucket=buckets["source"], Key=key, Body=photo.data, ContentType="image/jpeg")
        where = _wait_for(s3, buckets, key, timeout)
        return where, (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(warm_workers) as pool:
        warm = list(pool.map(one, [f"bench/{run}/{size}-warm-{i}.jpg" for i in range(warm_workers)]))
    log.info("e2e %-5s warm-up: %s ms", size, ", ".join(f"{ms:.0f}" for _, ms in warm))
    if any(where != "destination" for where, _ in warm):
        ends = ", ".join(where or "nowhere" for where, _ in warm)
        raise StackError(
            f"the {size} warm-up uploads did not reach the destination bucket ({ends}){function_errors(stack)}"
        )
    times: list[float] = []
    function_ms: list[float] = []
    local_ms: list[float] = []
    inprocess_ms(photo)  # warm-up of this process's imports and encoder
    failed = 0
    for i in range(samples):
        key = f"bench/{run}/{size}-{i}.jpg"
        record: dict[str, str] = {}
        fastest = min(times + [ms for _, ms in warm]) / 1000
        start = time.perf_counter()
        s3.put_object(Bucket=buckets["source"], Key=key, Body=photo.data, ContentType="image/jpeg")
        where = _wait_for(s3, buckets, key, timeout, record, fine_from=start + fastest - FINE_LEAD_S)
        elapsed = (time.perf_counter() - start) * 1000
        if where != "destination":
            failed += 1
            log.warning("e2e %s upload %d ended in %s%s", size, i, where or "nowhere (timeout)", function_errors(stack))
            if where is None:
                raise StackError(f"a {size} upload did not arrive within {timeout:.0f} s{function_errors(stack)}")
            continue
        times.append(elapsed)
        try:
            function_ms.append(float(record.get("processing-ms", "")))
        except ValueError:
            pass
        time.sleep(SETTLE_S)
        local_ms.append(inprocess_ms(photo))
        log.info(
            "e2e %-5s upload %2d: %7.1f ms (function's own compress: %s ms; in this process: %.1f ms)",
            size,
            i,
            elapsed,
            record.get("processing-ms", "?"),
            local_ms[-1],
        )
    if not times:
        raise StackError(f"no {size} upload reached the destination bucket{function_errors(stack)}")
    return LatencyResult(
        size,
        round(photo.megapixels, 2),
        len(photo.data),
        [round(t, 1) for t in times],
        median(times),
        percentile(times, 95),
        failed,
        median(function_ms) if function_ms else None,
        median(local_ms) if local_ms else None,
    )


def burst(stack: Stack, photos: Sequence[Photo], count: int, threads: int = 8, timeout: float = 600.0) -> BurstResult:
    """Send ``count`` uploads at once from ``threads`` threads and wait until every one is accounted for."""
    s3 = stack.client("s3", BENCH_POLICY)
    buckets = _buckets(stack)
    prefix = f"burst/{uuid.uuid4().hex[:8]}/"
    items = [(f"{prefix}{i:04d}.jpg", photos[i % len(photos)]) for i in range(count)]

    def put(item: tuple[str, Photo]) -> None:
        s3.put_object(Bucket=buckets["source"], Key=item[0], Body=item[1].data, ContentType="image/jpeg")

    def listed(bucket: str) -> set[str]:
        keys: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.update(obj["Key"] for obj in page.get("Contents", []))
        return keys

    distinct = list(photos[: min(count, len(photos))])
    compress_ms = [median([inprocess_ms(photo) for _ in range(3)]) for photo in distinct]
    log.info("e2e burst: %d uploads from %d threads", count, threads)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, items))
    sent = time.perf_counter() - start
    log.info("e2e burst: all %d uploads sent in %.1f s; waiting for the function", count, sent)
    wanted = {key for key, _ in items}
    deadline = start + timeout
    done_dest: set[str] = set()
    done_failed: set[str] = set()
    end = start
    while time.perf_counter() < deadline:
        done_dest = listed(buckets["destination"]) & wanted
        done_failed = listed(buckets["failed"]) & wanted - done_dest
        end = time.perf_counter()
        if len(done_dest) + len(done_failed) >= count:
            break
        time.sleep(0.25)
    seconds = end - start
    accounted = len(done_dest) + len(done_failed)
    log.info("e2e burst: %d/%d accounted for in %.1f s", accounted, count, seconds)
    return BurstResult(
        count=count,
        seconds=round(seconds, 2),
        images_per_minute=round(accounted / seconds * 60, 1) if seconds > 0 else 0.0,
        destination=len(done_dest),
        failed=len(done_failed),
        missing=count - accounted,
        median_megapixels=round(median(p.megapixels for _, p in items), 3),
        threads=threads,
        compress_ms=[round(ms, 2) for ms in compress_ms],
    )


def overhead_ratio(e2e_p50_ms: float, compress_p50_ms: float) -> float:
    """Return what the local cloud adds to the function's own work: e2e p50 / in-process ``compress()`` p50.

    Both of the same image, taken in the same run (absolute times differ a lot between machines of one kind). 1.0
    would be a platform that costs nothing; the goal is at most 1.15.
    """
    return round(e2e_p50_ms / compress_p50_ms, 3)


def burst_efficiency(result: BurstResult, compress_ms: Sequence[float], cores: int) -> float:
    """Return the burst's images per second over what the cores could do running ``compress()`` alone.

    ``compress_ms`` holds the in-process ``compress()`` time of each photo given to :func:`burst`, in the same
    order (the burst cycles through them; :func:`burst` measures them right before, in ``result.compress_ms``).
    The ideal rate is ``cores`` images at once, each taking the mean ``compress()`` time of the burst's images;
    1.0 means the platform (server, dispatch, workers, S3 transfers, logs) costs nothing, and the goal is at
    least 0.85.
    """
    if result.seconds <= 0 or not compress_ms:
        return 0.0
    mean_s = sum(compress_ms[i % len(compress_ms)] for i in range(result.count)) / result.count / 1000
    accounted = result.destination + result.failed
    return round((accounted / result.seconds) / (cores / mean_s), 3)


def run(
    photos: Sequence[Photo],
    one_mp: Photo,
    twelve_mp: Photo,
    samples_1mp: int,
    samples_12mp: int,
    burst_count: int,
    apply_timeout: float = 600.0,
    also: Mapping[str, Callable[[Stack], dict[str, Any]]] | None = None,
) -> E2EResult:
    """Bring up the embedded stack, measure metrics 4 and 6, tear it down; never raises for stack problems.

    ``also`` maps a name to a measurement run on the same warm stack afterwards (the inner loop: a hand invoke, the
    debugger); its figures go to ``inner_loop``, its failure to ``inner_loop_errors`` under that name. Set
    ``BENCH_SKIP_E2E=1`` to skip this part (the report then says so).
    """
    if os.environ.get("BENCH_SKIP_E2E", "").strip() in {"1", "true", "yes"}:
        return E2EResult(error="skipped: BENCH_SKIP_E2E is set")
    try:
        stack, local_up = start_stack(apply_timeout)
    except StackError as exc:
        log.error("e2e not measured: %s", exc)
        return E2EResult(error=str(exc))
    result = E2EResult(local_up=local_up)
    try:
        result.latency.append(latency(stack, "1mp", one_mp, samples_1mp))
        result.latency.append(latency(stack, "12mp", twelve_mp, samples_12mp))
        result.burst = burst(stack, photos, burst_count, timeout=max(120.0, 1.5 * burst_count))
    except Exception as exc:  # noqa: BLE001 - the report must say what went wrong instead of crashing the bench
        log.error("e2e measurement failed: %s", exc)
        result.error = f"{type(exc).__name__}: {exc}"
    try:
        for name, measure in (also or {}).items():
            try:
                result.inner_loop.update(measure(stack))
            except Exception as exc:  # noqa: BLE001 - one measurement's failure is reported, the others still run
                log.error("%s not measured: %s", name, exc)
                result.inner_loop_errors[name] = f"{type(exc).__name__}: {exc}"
    finally:
        stop_stack(stack)
    return result
