"""JPEG metadata: what each APPn/COM segment is, EXIF orientation and GPS, and the keep/drop policy.

Reading EXIF uses a small bounds-checked TIFF reader of our own, so a broken EXIF block can never raise out of
here: it is reported as broken and treated as "no orientation, drop it". Rewriting EXIF (only when metadata is
kept) goes through Pillow's ``Image.Exif`` and is checked again with our reader before it is written.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from image_compressor.jpegfile import JpegLayout, Segment, segment_bytes

EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
ICC_HEADER = b"ICC_PROFILE\x00"
IPTC_HEADER = b"Photoshop 3.0\x00"

ORIENTATION_TAG = 0x0112
GPS_IFD_TAG = 0x8825
EXIF_IFD_TAG = 0x8769
PIXEL_X_DIMENSION = 0xA002
PIXEL_Y_DIMENSION = 0xA003

# EXIF orientation -> the transpose that makes the stored pixels upright (None for 1, already upright).
TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class ExifInfo:
    """What our reader found in an EXIF block.

    Attributes
    ----------
    orientation : int
        EXIF orientation 1-8 (1 when absent, out of range or unreadable).
    has_gps : bool
        IFD0 points to a GPS IFD.
    broken : bool
        The block could not be read as TIFF (bad byte order, offsets out of range, ...).
    """

    orientation: int = 1
    has_gps: bool = False
    broken: bool = False


def read_exif(payload: bytes) -> ExifInfo:
    """Read orientation and GPS presence from an APP1 EXIF payload (``"Exif" 00 00`` + TIFF), never raising.

    Parameters
    ----------
    payload : bytes
        The APP1 segment payload, starting with ``"Exif" 00 00``.

    Returns
    -------
    ExifInfo
        Orientation (1 when missing or invalid), whether a GPS IFD is referenced, and whether the block is broken.
    """
    tiff = payload[len(EXIF_HEADER) :] if payload.startswith(b"Exif\x00") else payload
    if tiff[:2] == b"II":
        endian = "<"
    elif tiff[:2] == b"MM":
        endian = ">"
    else:
        return ExifInfo(broken=True)
    try:
        magic, ifd0 = struct.unpack_from(endian + "HI", tiff, 2)
        if magic != 42 or ifd0 < 8 or ifd0 + 2 > len(tiff):
            return ExifInfo(broken=True)
        (count,) = struct.unpack_from(endian + "H", tiff, ifd0)
        if ifd0 + 2 + 12 * count > len(tiff):
            return ExifInfo(broken=True)
        orientation = 1
        has_gps = False
        for i in range(count):
            tag, typ, num = struct.unpack_from(endian + "HHI", tiff, ifd0 + 2 + 12 * i)
            if tag == ORIENTATION_TAG and typ == 3 and num >= 1:
                (value,) = struct.unpack_from(endian + "H", tiff, ifd0 + 2 + 12 * i + 8)
                orientation = value if 1 <= value <= 8 else 1
            elif tag == GPS_IFD_TAG:
                has_gps = True
    except struct.error:
        return ExifInfo(broken=True)
    return ExifInfo(orientation=orientation, has_gps=has_gps)


def segment_kind(data: bytes, seg: Segment) -> str:
    """Name an APPn/COM segment from its marker and payload signature.

    Returns one of ``jfif``, ``exif``, ``xmp``, ``xmp-extension``, ``icc``, ``iptc``, ``adobe``, ``mpf``,
    ``comment``, or ``appN`` for anything else.
    """
    head = data[seg.payload_start : min(seg.end, seg.payload_start + 40)]
    if seg.marker == 0xFE:
        return "comment"
    if seg.marker == 0xE0 and head.startswith(b"JFIF\x00"):
        return "jfif"
    if seg.marker == 0xE1:
        if head.startswith(b"Exif\x00"):
            return "exif"
        if head.startswith(XMP_HEADER):
            return "xmp"
        if head.startswith(XMP_EXTENSION_HEADER):
            return "xmp-extension"
    if seg.marker == 0xE2:
        if head.startswith(ICC_HEADER):
            return "icc"
        if head.startswith(b"MPF\x00"):
            return "mpf"
    if seg.marker == 0xED and head.startswith(IPTC_HEADER):
        return "iptc"
    if seg.marker == 0xEE and head.startswith(b"Adobe"):
        return "adobe"
    return f"app{seg.marker - 0xE0}"


def xmp_mentions_gps(xmp: bytes) -> bool:
    """True when an XMP packet carries GPS properties (``exif:GPSLatitude`` and friends)."""
    return b"GPS" in xmp


@dataclass(frozen=True, slots=True)
class SourceMetadata:
    """The metadata found in one JPEG's segments (first occurrence of each kind).

    Attributes
    ----------
    exif : bytes | None
        APP1 EXIF payload including its ``"Exif" 00 00`` header.
    exif_info : ExifInfo
        What :func:`read_exif` found (defaults when there is no EXIF).
    xmp : bytes | None
        The XMP packet (without its namespace header).
    comment : bytes | None
        The first COM segment payload.
    iptc : bytes | None
        The first APP13 Photoshop/IPTC segment, complete (marker and length included).
    icc_profile : bytes | None
        The ICC profile joined from every APP2 ``ICC_PROFILE`` chunk of the header, wherever it stands (before or
        after the frame header), or ``None`` when there is none or its chunks do not add up.
    """

    exif: bytes | None = None
    exif_info: ExifInfo = ExifInfo()
    xmp: bytes | None = None
    comment: bytes | None = None
    iptc: bytes | None = None
    icc_profile: bytes | None = None

    @property
    def orientation(self) -> int:
        """EXIF orientation 1-8 (1 when there is none)."""
        return self.exif_info.orientation


def collect(data: bytes, layout: JpegLayout) -> SourceMetadata:
    """Gather EXIF, XMP, comment, IPTC and the ICC profile from all header segments (before the first scan)."""
    exif = xmp = comment = iptc = None
    icc_chunks: list[bytes] = []
    for seg in layout.segments:
        if seg.start >= layout.scan_start:
            break
        if not seg.is_metadata:
            continue
        kind = segment_kind(data, seg)
        if kind == "exif" and exif is None:
            exif = data[seg.payload_start : seg.end]
        elif kind == "xmp" and xmp is None:
            xmp = data[seg.payload_start + len(XMP_HEADER) : seg.end]
        elif kind == "comment" and comment is None:
            comment = data[seg.payload_start : seg.end]
        elif kind == "iptc" and iptc is None:
            iptc = data[seg.start : seg.end]
        elif kind == "icc":
            icc_chunks.append(data[seg.payload_start + len(ICC_HEADER) : seg.end])
    info = read_exif(exif) if exif is not None else ExifInfo()
    icc = join_icc_chunks(icc_chunks)
    return SourceMetadata(exif=exif, exif_info=info, xmp=xmp, comment=comment, iptc=iptc, icc_profile=icc)


def join_icc_chunks(chunks: list[bytes]) -> bytes | None:
    """Join APP2 ICC chunks (each ``<sequence number> <count> <bytes>``) into one profile, never raising.

    Parameters
    ----------
    chunks : list[bytes]
        The payloads after the ``ICC_PROFILE`` 00 header, in file order (before or after SOF alike).

    Returns
    -------
    bytes | None
        The profile in sequence-number order, or ``None`` when there are no chunks, or when the numbers are not
        exactly 1..count with the count every chunk declares (a partial or inconsistent profile is dropped, as
        Pillow does, rather than written broken).
    """
    if not chunks or any(len(chunk) < 2 for chunk in chunks):
        return None
    count = len(chunks)
    ordered = sorted(chunks, key=lambda chunk: chunk[0])
    numbers_ok = [chunk[0] for chunk in ordered] == list(range(1, count + 1))
    if not numbers_ok or any(chunk[1] != count for chunk in chunks):
        return None
    profile = b"".join(chunk[2:] for chunk in ordered)
    return profile or None


def rewrite_exif(
    payload: bytes, *, orientation: int | None, keep_gps: bool, size: tuple[int, int] | None = None
) -> bytes | None:
    """Return an APP1 EXIF payload with orientation set, GPS dropped unless kept, and no thumbnail; never raising.

    Parameters
    ----------
    payload : bytes
        The source APP1 EXIF payload (``"Exif" 00 00`` + TIFF).
    orientation : int | None
        Value to write in the Orientation tag; ``None`` leaves the tag as it is.
    keep_gps : bool
        Keep the GPS IFD (otherwise it is removed).
    size : tuple[int, int] | None
        New pixel size written to PixelXDimension/PixelYDimension when the source has them.

    Returns
    -------
    bytes | None
        The new payload, or ``None`` when the block is broken, cannot be rewritten, does not fit one segment,
        or (without ``keep_gps``) would still reference GPS: the caller then drops EXIF altogether.
    """
    if read_exif(payload).broken:
        return None
    try:
        exif = Image.Exif()
        exif.load(payload)
        if not keep_gps:
            exif.pop(GPS_IFD_TAG, None)
        if orientation is not None and ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = orientation
        if size is not None and EXIF_IFD_TAG in exif:
            sub = exif.get_ifd(EXIF_IFD_TAG)
            if PIXEL_X_DIMENSION in sub:
                sub[PIXEL_X_DIMENSION] = size[0]
            if PIXEL_Y_DIMENSION in sub:
                sub[PIXEL_Y_DIMENSION] = size[1]
        out = exif.tobytes()
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on odd EXIF; a broken block is dropped, not fatal
        return None
    check = read_exif(out)
    if check.broken or (check.has_gps and not keep_gps) or len(out) > 65533:
        return None
    return out


def orientation_only_exif(orientation: int) -> bytes:
    """Return a minimal APP1 EXIF payload holding just the Orientation tag (big-endian TIFF, one IFD entry)."""
    return EXIF_HEADER + b"MM\x00\x2a" + struct.pack(">IHHHIHHI", 8, 1, ORIENTATION_TAG, 3, 1, orientation, 0, 0)


def strip_edit(
    data: bytes,
    layout: JpegLayout,
    meta: SourceMetadata,
    *,
    keep_metadata: bool,
    keep_gps: bool,
) -> Callable[[Segment], bytes | None]:
    """Return a segment editor for :func:`jpegfile.rebuild` that applies the metadata policy losslessly.

    The pixels are not touched, so EXIF orientation is kept (as a one-tag EXIF when nothing else is kept) and
    viewers still show the image upright. ICC profiles, JFIF and Adobe segments are always kept (the Adobe
    segment says how to decode colour). Without ``keep_metadata`` everything else goes: EXIF, XMP, IPTC,
    comments, MPF and other APPn segments. With it, EXIF (GPS removed unless ``keep_gps``), XMP without GPS
    (any XMP with ``keep_gps``), IPTC and comments stay. Segments after the first scan are only ever dropped if
    they are metadata. Bytes after EOI (extra images of multi-picture files) always go.
    """
    exif_done = False

    def edit(seg: Segment) -> bytes | None:
        nonlocal exif_done
        kind = segment_kind(data, seg)
        if kind in {"icc", "jfif", "adobe"}:
            return None
        in_header = seg.start < layout.scan_start
        if kind == "exif" and in_header and not exif_done:
            exif_done = True
            payload = data[seg.payload_start : seg.end]
            if keep_metadata:
                info = read_exif(payload)
                if not info.broken and (keep_gps or not info.has_gps):
                    return None
                new = rewrite_exif(payload, orientation=None, keep_gps=keep_gps)
                if new is not None:
                    return segment_bytes(0xE1, new)
            if meta.orientation != 1:
                return segment_bytes(0xE1, orientation_only_exif(meta.orientation))
            return b""
        if keep_metadata and in_header:
            if kind == "xmp" and (keep_gps or not xmp_mentions_gps(data[seg.payload_start : seg.end])):
                return None
            if kind == "xmp-extension" and keep_gps:
                return None
            if kind in {"iptc", "comment"}:
                return None
        return b""

    return edit
