"""Optional encoders for :func:`image_compressor.core.compress` beyond the default Pillow one.

Nothing here is imported by the core or the function; an encoder whose package is missing fails with a clear
message only when it is constructed. Pass one as ``compress(data, options, encoder=...)``.
"""

from __future__ import annotations

from PIL import Image

from image_compressor.core import EncodeParams, PillowEncoder


class MozjpegLosslessEncoder(PillowEncoder):
    """Pillow encode, then mozjpeg's lossless re-optimisation (``mozjpeg-lossless-optimization`` package).

    Same pixels and metadata as :class:`~image_compressor.core.PillowEncoder` (every marker is copied), a few
    per cent fewer bytes, at roughly the cost of a second encode.
    """

    name = "pillow+mozjpeg-lossless"

    def __init__(self) -> None:
        try:
            import mozjpeg_lossless_optimization
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "the mozjpeg encoder needs the package mozjpeg-lossless-optimization; "
                "pip install mozjpeg-lossless-optimization, or use the default Pillow encoder"
            ) from exc
        self._optimize = mozjpeg_lossless_optimization.optimize
        self._copy_all = mozjpeg_lossless_optimization.COPY_MARKERS.ALL

    def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
        """Encode with Pillow, then losslessly re-optimise the Huffman coding and progression with mozjpeg."""
        return self._optimize(super().encode(image, params), copy=self._copy_all)
