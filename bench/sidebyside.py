"""Our default output next to the peers users would pick, on the same photos, at equal quality.

For every photo of the corpus and every peer of :data:`bench.peers.PEERS` (sharp's mozjpeg preset, imgproxy's
defaults, the libjpeg-turbo baseline, jpegli alone):

* **at equal SSIMULACRA2**: the peer's bytes at the SSIMULACRA2 score of our output, interpolated between two
  measured qualities around it (:func:`bench.perceptual.match`);
* **at equal luma SSIM**: the peer's bytes at the lowest whole quality whose luma SSIM reaches ours (the same
  search as ``bytes_ratio_at_equal_ssim``, :func:`bench.metrics.lowest_quality_reaching`);
* the defaults as users run them: imgproxy at quality 80 and sharp's mozjpeg preset at quality 80, with their
  SSIMULACRA2 and SSIM.

Per peer and metric, the report gives the total ratio (our bytes summed / the peer's bytes summed) and the median
of the per-photo ratios. ``bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2`` is the median per-photo ratio against
sharp's mozjpeg preset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import peers, perceptual
from bench.metrics import jpeg_luma, lowest_quality_reaching, median, ssim
from bench.quality import Reference

log = logging.getLogger(__name__)


@dataclass
class PeerMatch:
    """One peer on one photo."""

    ssimulacra2_quality: float | None = None
    ssimulacra2_bytes: float | None = None
    ssimulacra2_capped: bool = False
    ssim_quality: int | None = None
    ssim_bytes: int | None = None
    ssim_capped: bool = False


@dataclass
class PhotoComparison:
    """Our output and every peer on one photo."""

    name: str
    megapixels: float
    our_bytes: int
    our_ssimulacra2: float
    our_ssim: float
    peers: dict[str, PeerMatch] = field(default_factory=dict)
    defaults: dict[str, dict[str, float]] = field(default_factory=dict)


def _ratio_stats(photos: Sequence[PhotoComparison], peer: str, metric: str) -> dict[str, float | int] | None:
    pairs = [
        (p.our_bytes, getattr(p.peers[peer], f"{metric}_bytes"))
        for p in photos
        if peer in p.peers and getattr(p.peers[peer], f"{metric}_bytes")
    ]
    if not pairs:
        return None
    return {
        "total": sum(o for o, _ in pairs) / sum(b for _, b in pairs),
        "median": median(o / b for o, b in pairs),
        "photos": len(pairs),
        "capped": sum(1 for p in photos if peer in p.peers and getattr(p.peers[peer], f"{metric}_capped")),
    }


def _match_peer(
    ref: Reference,
    reference: bytes,
    name: str,
    target_s2: float | None,
    target_ssim: float | None,
    guesses: dict[str, int],
) -> PeerMatch:
    """Match peer ``name`` on one photo at SSIMULACRA2 ``target_s2`` and/or luma SSIM ``target_ssim``."""
    encode = peers.PEERS[name][0]
    files: dict[int, bytes] = {}
    s2_memo: dict[int, float] = {}
    ssim_memo: dict[int, float] = {}

    def data(q: int) -> bytes:
        if q not in files:
            files[q] = encode(ref.image, q)
        return files[q]

    def s2(q: int) -> float:
        if q not in s2_memo:
            s2_memo[q] = perceptual.ssimulacra2(reference, data(q))
        return s2_memo[q]

    def lssim(q: int) -> float:
        if q not in ssim_memo:
            ssim_memo[q] = ssim(ref.luma, jpeg_luma(data(q)))
        return ssim_memo[q]

    match = PeerMatch()
    if target_s2 is not None:
        found = perceptual.match(target_s2, lambda q: len(data(q)), s2, guess=guesses.get(name, 80))
        guesses[name] = round(found.quality)
        match.ssimulacra2_quality = round(found.quality, 2)
        match.ssimulacra2_bytes = found.bytes
        match.ssimulacra2_capped = found.capped
    if target_ssim is not None:
        q = lowest_quality_reaching(target_ssim, lssim, 1, 100)
        match.ssim_capped = q is None
        match.ssim_quality = 100 if q is None else q
        match.ssim_bytes = len(data(match.ssim_quality))
    return match


def compare(
    refs: Sequence[Reference],
    outputs: Sequence[bytes],
    ssimulacra2_peers: Sequence[str],
    ssim_peers: Sequence[str],
    *,
    with_defaults: bool = True,
) -> dict[str, Any]:
    """Compare our outputs with the peers on every photo; return per-photo rows and the summary.

    Parameters
    ----------
    refs : Sequence[Reference]
        The decoded uploads (``image`` and ``luma``).
    outputs : Sequence[bytes]
        Our default output for each upload, same order.
    ssimulacra2_peers, ssim_peers : Sequence[str]
        Peers matched at equal SSIMULACRA2 / at equal luma SSIM (names of :data:`bench.peers.PEERS`).
    with_defaults : bool
        Also score imgproxy's and sharp's outputs at their default quality 80 (two more SSIMULACRA2 per photo).
    """
    rows: list[PhotoComparison] = []
    guesses: dict[str, int] = {}
    for index, (ref, out) in enumerate(zip(refs, outputs, strict=True)):
        reference = perceptual.reference_bytes(ref.image)
        ours_s2 = perceptual.ssimulacra2(reference, out)
        ours_ssim = ssim(ref.luma, jpeg_luma(out))
        row = PhotoComparison(ref.photo.name, round(ref.photo.megapixels, 3), len(out), ours_s2, ours_ssim)
        for name in dict.fromkeys([*ssimulacra2_peers, *ssim_peers]):
            row.peers[name] = _match_peer(
                ref,
                reference,
                name,
                ours_s2 if name in ssimulacra2_peers else None,
                ours_ssim if name in ssim_peers else None,
                guesses,
            )
        for name, quality in (("imgproxy", peers.IMGPROXY_QUALITY), ("mozjpeg", peers.IMGPROXY_QUALITY)):
            if not with_defaults:
                break
            blob = peers.PEERS[name][0](ref.image, quality)
            row.defaults[f"{name}_q{quality}"] = {
                "bytes": len(blob),
                "ssimulacra2": perceptual.ssimulacra2(reference, blob),
                "ssim": ssim(ref.luma, jpeg_luma(blob)),
            }
        rows.append(row)
        moz = row.peers.get("mozjpeg")
        log.info(
            "peers %2d/%d %-20s ours %6d bytes SSIMULACRA2 %5.1f SSIM %.4f; mozjpeg at equal SSIMULACRA2 %s",
            index + 1,
            len(refs),
            ref.photo.name,
            len(out),
            ours_s2,
            ours_ssim,
            f"{moz.ssimulacra2_bytes:.0f} bytes (q{moz.ssimulacra2_quality})" if moz and moz.ssimulacra2_bytes else "-",
        )
    summary: dict[str, Any] = {
        "min_ssimulacra2": min(r.our_ssimulacra2 for r in rows),
        "median_ssimulacra2": median(r.our_ssimulacra2 for r in rows),
        "photos_below_70": [r.name for r in rows if r.our_ssimulacra2 < 70],
        "ratios": {
            peer: {metric: _ratio_stats(rows, peer, metric) for metric in ("ssimulacra2", "ssim")}
            for peer in dict.fromkeys([*ssimulacra2_peers, *ssim_peers])
        },
    }
    moz = summary["ratios"].get("mozjpeg", {}).get("ssimulacra2")
    summary["bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2"] = moz["median"] if moz else None
    defaults: dict[str, dict[str, float]] = {}
    for key in rows[0].defaults if rows else ():
        defaults[key] = {
            "our_bytes_ratio_total": sum(r.our_bytes for r in rows) / sum(r.defaults[key]["bytes"] for r in rows),
            "min_ssimulacra2": min(r.defaults[key]["ssimulacra2"] for r in rows),
            "median_ssimulacra2": median(r.defaults[key]["ssimulacra2"] for r in rows),
        }
    summary["defaults"] = defaults
    return {"photos": [asdict(r) for r in rows], "summary": summary}
