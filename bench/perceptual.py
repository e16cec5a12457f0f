"""SSIMULACRA2, the perceptual metric that sees colour, and bytes at equal quality by interpolation.

SSIMULACRA2 (Cloudinary / JPEG XL project; here the ``ssimulacra2`` package, pure Python + numpy + scipy) compares
two images in the XYB colour space at six scales: 100 is lossless, 90 visually lossless, 70 high quality, 50
medium. Luma SSIM ignores chroma entirely; SSIMULACRA2 does not.

It costs about 4 s per megapixel on our machines, so matching a peer's bytes at equal SSIMULACRA2 cannot afford
the binary search of every quality that luma SSIM gets (:func:`bench.metrics.lowest_quality_reaching`). Instead
:func:`match` brackets the target between two measured qualities, refines the bracket with an interpolated step,
and interpolates the bytes linearly between the two qualities around the target: "bytes at equal score" rather
than "bytes of the lowest whole quality that reaches it". With a bracket of a few quality steps the interpolation
error is well under one quality step's worth of bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image


def reference_bytes(image: Image.Image) -> bytes:
    """Return ``image`` as lossless PPM bytes: the reference side of :func:`ssimulacra2` (decoded once, cheaply)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "PPM")
    return buf.getvalue()


def ssimulacra2(reference: bytes, distorted: bytes) -> float:
    """Return the SSIMULACRA2 score of ``distorted`` (any Pillow-readable file bytes) against ``reference``.

    Calls ``ssimulacra2.compute_ssimulacra2`` from the ``ssimulacra2`` package on in-memory files, unchanged.
    """
    from ssimulacra2 import compute_ssimulacra2

    return float(compute_ssimulacra2(io.BytesIO(reference), io.BytesIO(distorted)))


@dataclass(frozen=True, slots=True)
class Match:
    """A peer's bytes at the score of our output.

    Attributes
    ----------
    quality : float
        Interpolated (fractional) quality at which the peer reaches the target score.
    bytes : float
        Interpolated bytes at that quality.
    capped : bool
        True when even the highest quality does not reach the target (``bytes`` is then that quality's bytes).
    evaluations : int
        How many scores were computed.
    """

    quality: float
    bytes: float
    capped: bool
    evaluations: int


def match(
    target: float,
    size: Callable[[int], int],
    score: Callable[[int], float],
    guess: int = 80,
    lo: int = 10,
    hi: int = 100,
    step: int = 8,
) -> Match:
    """Return the interpolated bytes at which an encoder reaches ``target`` (see the module docstring).

    Parameters
    ----------
    target : float
        The score to reach (our output's score).
    size, score : Callable[[int], int], Callable[[int], float]
        Quality to the encoder's bytes / score at that quality; callers memoise them (``size`` is cheap).
    guess : int
        First quality measured (for example the answer for the previous photo).
    lo, hi : int
        Quality range.
    step : int
        Stride of the bracketing walk.
    """
    measured: dict[int, float] = {}

    def s(q: int) -> float:
        if q not in measured:
            measured[q] = score(q)
        return measured[q]

    q = min(max(guess, lo), hi)
    if s(q) >= target:
        ok = q
        while ok > lo and s(max(lo, ok - step)) >= target:
            ok = max(lo, ok - step)
        if ok == lo:
            return Match(lo, size(lo), False, len(measured))
        fail = max(lo, ok - step)
    else:
        fail = q
        while fail < hi and s(min(hi, fail + step)) < target:
            fail = min(hi, fail + step)
        if fail == hi:
            return Match(hi, size(hi), True, len(measured))
        ok = min(hi, fail + step)
    # One interpolated step inside the bracket, then interpolate the bytes.
    if ok - fail > 2:
        frac = (target - s(fail)) / max(s(ok) - s(fail), 1e-9)
        mid = min(max(round(fail + frac * (ok - fail)), fail + 1), ok - 1)
        if s(mid) >= target:
            ok = mid
        else:
            fail = mid
    frac = min(max((target - s(fail)) / max(s(ok) - s(fail), 1e-9), 0.0), 1.0)
    quality = fail + frac * (ok - fail)
    return Match(quality, size(fail) + frac * (size(ok) - size(fail)), False, len(measured))
