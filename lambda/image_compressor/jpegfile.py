"""JPEG file structure without decoding: marker segments, frame header (SOF), end of image; lossless segment edits.

Pure standard library. Reading the frame header lets the core refuse pixel bombs and unsupported variants before
any pixel is decoded; the segment list lets it drop metadata losslessly (the entropy-coded data is copied as is).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"

# SOFn markers: every C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})
_HIERARCHICAL = frozenset({0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF})
_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS = 0xDA
# A marker inside entropy-coded data: FF followed by anything but a stuffed 00, a restart marker, TEM or fill FF.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\x01\xd0-\xd7\xff]")
_FILL = re.compile(rb"\xff+")
#: More marker segments than this is not a photo but an attack on the parser (a progressive JPEG has ~10-30).
MAX_SEGMENTS = 10_000
#: Longest run of fill bytes or junk tolerated between header segments (libjpeg allows any; real files have a few).
MAX_PADDING = 4096


class JpegStructureError(ValueError):
    """The bytes start like a JPEG but their marker structure is broken; the message says how."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One marker segment: ``data[start:end]`` is ``FF <marker> <length:2> <payload>``."""

    marker: int
    start: int
    end: int

    @property
    def payload_start(self) -> int:
        """Offset of the first payload byte (after the 2-byte marker and the 2-byte length)."""
        return self.start + 4

    @property
    def is_metadata(self) -> bool:
        """True for APPn (E0-EF) and COM (FE) segments: metadata, never needed to decode pixels by themselves."""
        return 0xE0 <= self.marker <= 0xEF or self.marker == 0xFE


@dataclass(frozen=True, slots=True)
class JpegLayout:
    """Where things are in one JPEG file.

    Attributes
    ----------
    width, height : int
        Frame size from the SOF header (stored pixels, before any EXIF orientation).
    components : int
        Number of colour components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    precision : int
        Bits per sample (8 for ordinary JPEG, 12 or 16 for rare medical/scientific files).
    sof_marker : int
        Second byte of the SOF marker (``0xC0`` baseline, ``0xC2`` progressive, ...).
    segments : tuple[Segment, ...]
        Every marker segment in file order: the header up to and including the first SOS, then any segments
        between scans (DHT, SOS, ... of progressive files).
    scan_start : int
        Offset of the first SOS marker.
    end : int | None
        Offset just after the EOI marker, or ``None`` when no EOI was found (truncated file); bytes after ``end``
        are trailing data (for example the extra images of a multi-picture file).
    """

    width: int
    height: int
    components: int
    precision: int
    sof_marker: int
    segments: tuple[Segment, ...]
    scan_start: int
    end: int | None

    @property
    def progressive(self) -> bool:
        """True for progressive DCT frames."""
        return self.sof_marker in _PROGRESSIVE

    @property
    def scans(self) -> int:
        """Number of scans (SOS markers) found: 1 for baseline, about 10 for progressive; 1 when not walked."""
        return sum(1 for seg in self.segments if seg.marker == _SOS)

    @property
    def pixels(self) -> int:
        """Width times height as declared in the frame header."""
        return self.width * self.height

    def unsupported(self) -> str | None:
        """Return why the decoder cannot handle this JPEG variant, or ``None`` when it can."""
        if self.sof_marker in _HIERARCHICAL:
            return (
                "hierarchical JPEG (SOF5-7/13-15) is not supported; export it again as a baseline or progressive JPEG"
            )
        if self.sof_marker in _LOSSLESS:
            return "lossless JPEG (SOF3/SOF11) is not supported; export it again as a baseline or progressive JPEG"
        if self.precision != 8:
            return f"{self.precision}-bit JPEG is not supported (only 8-bit); export it again as an 8-bit JPEG"
        if self.components not in (1, 3, 4):
            return (
                f"a JPEG with {self.components} colour components is not supported (only grey, colour or CMYK); "
                "export it again as an RGB JPEG"
            )
        if self.width == 0 or self.height == 0:
            return (
                f"the frame header declares {self.width}x{self.height} pixels (a zero size, or a height given "
                "later by a DNL marker), which the decoder cannot handle; export it again"
            )
        return None


def parse(data: bytes, *, find_end: bool = True) -> JpegLayout:
    """Read the marker structure of a JPEG without decoding any pixels.

    Parameters
    ----------
    data : bytes
        The whole file; must start with SOI (``FF D8``).
    find_end : bool
        Also walk the entropy-coded data (a C-speed regex search, no decoding) to find the EOI marker and any
        segments between scans. Without it ``end`` is ``None`` and only header segments are listed.

    Returns
    -------
    JpegLayout
        Frame size, components, precision, coding process, segment positions and end of image.

    Raises
    ------
    JpegStructureError
        When the header is cut short, a segment length is impossible, or image data comes before a frame header.
    """
    if not data.startswith(SOI):
        raise JpegStructureError("the data does not start with the JPEG start-of-image marker FF D8")
    n = len(data)
    segments: list[Segment] = []
    sof: tuple[int, int, int, int, int] | None = None  # marker, precision, height, width, components
    pos = 2
    markers_seen = 0
    while True:
        markers_seen += 1
        if markers_seen > MAX_SEGMENTS:
            raise JpegStructureError(f"corrupt JPEG: more than {MAX_SEGMENTS} markers before the image data")
        if pos >= n:
            raise JpegStructureError(
                f"truncated JPEG: the file ends inside its header after {n} bytes, before image data"
            )
        if data[pos] != 0xFF:
            # Junk between segments: skip to the next FF as libjpeg does (it only warns).
            nxt = data.find(b"\xff", pos)
            if nxt < 0:
                raise JpegStructureError("truncated JPEG: no image data (SOS marker) found after the header")
            if nxt - pos > MAX_PADDING:
                raise JpegStructureError(f"corrupt JPEG: {nxt - pos} bytes of junk between header segments")
            pos = nxt
            continue
        fill = _FILL.match(data, pos)  # one or more FF: all but the last are fill bytes before a marker
        if fill is not None:
            if fill.end() - pos > MAX_PADDING:
                raise JpegStructureError(f"corrupt JPEG: {fill.end() - pos} fill bytes between header segments")
            pos = fill.end() - 1
        if pos + 1 >= n:
            raise JpegStructureError("truncated JPEG: the file ends inside a marker")
        marker = data[pos + 1]
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2  # stuffed byte, TEM or restart marker outside a scan: no length, nothing to read
            continue
        if marker == 0xD8:
            raise JpegStructureError("corrupt JPEG: a second start-of-image marker appears inside the header")
        if marker == 0xD9:
            raise JpegStructureError("corrupt JPEG: the file ends (EOI marker) before any image data")
        if pos + 4 > n:
            raise JpegStructureError("truncated JPEG: the file ends inside a marker segment")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2:
            raise JpegStructureError(
                f"corrupt JPEG: marker FF{marker:02X} at byte {pos} has an impossible length {length}"
            )
        if end > n:
            raise JpegStructureError(
                f"truncated JPEG: marker segment FF{marker:02X} at byte {pos} needs {length} bytes "
                "but the file ends first"
            )
        segments.append(Segment(marker, pos, end))
        if marker in _SOF_MARKERS and sof is None:
            payload = data[pos + 4 : end]
            if len(payload) < 6:
                raise JpegStructureError("corrupt JPEG: the frame header (SOF) is too short")
            sof = (
                marker,
                payload[0],
                int.from_bytes(payload[1:3], "big"),
                int.from_bytes(payload[3:5], "big"),
                payload[5],
            )
        if marker == _SOS:
            if sof is None:
                raise JpegStructureError("corrupt JPEG: image data (SOS) comes before the frame header (SOF)")
            scan_start = pos
            pos = end
            break
        pos = end

    end_of_image: int | None = None
    if find_end:
        end_of_image = _walk_scans(data, pos, segments)
    sof_marker, precision, height, width, components = sof
    return JpegLayout(
        width=width,
        height=height,
        components=components,
        precision=precision,
        sof_marker=sof_marker,
        segments=tuple(segments),
        scan_start=scan_start,
        end=end_of_image,
    )


def _walk_scans(data: bytes, pos: int, segments: list[Segment]) -> int | None:
    """Find EOI after the first scan header, appending segments met between scans; None when EOI is missing."""
    n = len(data)
    search = _MARKER_IN_SCAN.search
    while True:
        match = search(data, pos)
        if match is None:
            return None
        at = match.start()
        marker = data[at + 1]
        if marker == 0xD9:
            return at + 2
        if at + 4 > n:
            return None
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        end = at + 2 + length
        if length < 2 or end > n:
            return None
        if len(segments) >= MAX_SEGMENTS:
            raise JpegStructureError(f"corrupt JPEG: more than {MAX_SEGMENTS} marker segments")
        segments.append(Segment(marker, at, end))
        pos = end


def rebuild(data: bytes, layout: JpegLayout, edit: Callable[[Segment], bytes | None]) -> bytes:
    """Return the file with marker segments kept, dropped or replaced, and nothing after EOI.

    Parameters
    ----------
    data : bytes
        The file ``layout`` was parsed from (with ``find_end=True``).
    layout : JpegLayout
        Its structure.
    edit : Callable[[Segment], bytes | None]
        Called for each APPn/COM segment; returns the bytes to write in its place (``data[seg.start:seg.end]`` to
        keep it, ``b""`` to drop it, or a new complete segment). ``None`` keeps the segment as is.

    Returns
    -------
    bytes
        SOI, the edited segments, the untouched entropy-coded data, EOI. Pixels are bit-for-bit the same.

    Raises
    ------
    JpegStructureError
        When the layout has no end of image (a truncated file cannot be rebuilt).
    """
    if layout.end is None:
        raise JpegStructureError("truncated JPEG: no end-of-image marker, so the file cannot be rewritten losslessly")
    parts: list[bytes | memoryview] = [SOI]
    view = memoryview(data)
    cursor = 2
    for seg in layout.segments:
        if not seg.is_metadata:
            continue
        replacement = edit(seg)
        if replacement is None:
            continue
        parts.append(view[cursor : seg.start])
        parts.append(replacement)
        cursor = seg.end
    parts.append(view[cursor : layout.end])
    return b"".join(parts)


def segment_bytes(marker: int, payload: bytes) -> bytes:
    """Return a complete marker segment ``FF <marker> <length> <payload>``.

    Raises
    ------
    ValueError
        When the payload does not fit in one segment (65533 bytes).
    """
    if len(payload) > 65533:
        raise ValueError(f"segment payload of {len(payload)} bytes does not fit in one JPEG marker segment")
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload
