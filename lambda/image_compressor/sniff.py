"""Name what a blob of bytes really is, from its first bytes, so a non-JPEG gets a reason a person can act on."""

from __future__ import annotations

JPEG_SIGNATURE = b"\xff\xd8\xff"

# (prefix, offset, name). Checked in order; the first match wins.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"8BPS", 0, "Photoshop PSD"),
    (b"%PDF-", 0, "PDF"),
    (b"PK\x03\x04", 0, "ZIP archive"),
    (b"\x1f\x8b", 0, "gzip data"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\xff\xd8", 0, "broken JPEG (FF D8 is not followed by a marker)"),
)

_FTYP_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
    b"qt  ": "QuickTime video",
}


def is_jpeg(data: bytes) -> bool:
    """Return True when ``data`` starts with the JPEG signature ``FF D8 FF`` (SOI followed by a marker)."""
    return data.startswith(JPEG_SIGNATURE)


def describe(data: bytes) -> str:
    """Name the kind of content in ``data`` from its leading bytes.

    Parameters
    ----------
    data : bytes
        The object's bytes (only the first few hundred are looked at).

    Returns
    -------
    str
        ``"JPEG"``, a format name such as ``"PNG"``, ``"WebP"``, ``"HEIC"``, ``"text"``, ``"empty"``, or
        ``"unknown binary data (starts with 12 34 56 78)"``.
    """
    if not data:
        return "empty"
    if is_jpeg(data):
        return "JPEG"
    for prefix, offset, name in _SIGNATURES:
        if data[offset : offset + len(prefix)] == prefix:
            return name
    if data[:4] == b"RIFF" and len(data) >= 12:
        kind = data[8:12]
        return {b"WEBP": "WebP", b"AVI ": "AVI video", b"WAVE": "WAV audio"}.get(kind, "RIFF data")
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return _FTYP_BRANDS.get(brand, f"ISO media ({brand.decode('latin-1').strip() or 'unknown brand'})")
    text = _as_text(data[:512])
    if text is not None:
        head = text.lstrip().lower()
        if head.startswith(("<!doctype html", "<html")):
            return "HTML"
        if head.startswith("<svg") or (head.startswith("<?xml") and "<svg" in head):
            return "SVG"
        if head.startswith("<?xml"):
            return "XML"
        if head.startswith(("{", "[")):
            return "JSON or other text"
        return "text"
    return f"unknown binary data (starts with {data[:4].hex(' ').upper()})"


def not_jpeg_reason(data: bytes) -> str:
    """Return the failure reason for bytes that are not a JPEG, naming what they are and what to do next."""
    kind = describe(data)
    if kind == "empty":
        return "empty object (0 bytes); upload the image again, the upload did not carry any data"
    if kind.startswith("broken JPEG"):
        return f"not a JPEG: content is a {kind}; the file is damaged, export it again as JPEG"
    if kind in {"text", "HTML", "XML", "JSON or other text"} or kind.startswith("unknown"):
        return f"not a JPEG: content is {kind}; upload a real JPEG image (the .jpg name alone is not enough)"
    return f"not a JPEG: content is {kind}; convert it to JPEG before uploading, or upload it without a .jpg name"


def _as_text(head: bytes) -> str | None:
    """Return ``head`` decoded as UTF-8 when it looks like printable text, else None."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the end of the sample.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if text and printable / len(text) > 0.95 else None
