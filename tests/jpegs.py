"""In-memory test images: photo-like JPEGs and friends, built with Pillow so no binary fixture is committed."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def photo_image(width: int = 640, height: int = 480, mode: str = "RGB", seed: int = 1) -> Image.Image:
    """Return a photo-like image: smooth gradients, shapes and mild noise, so compression behaves as on a photo."""
    base = Image.linear_gradient("L").resize((width, height))
    r = base
    g = base.transpose(Image.Transpose.ROTATE_90).resize((width, height))
    b = Image.radial_gradient("L").resize((width, height))
    img = Image.merge("RGB", (r, g, b))
    draw = ImageDraw.Draw(img)
    step = max(8, min(width, height) // 6)
    for i in range(0, max(width, height), step):
        colour = ((i * 37 + seed * 11) % 255, (i * 91 + seed * 7) % 255, (i * 53) % 255)
        draw.ellipse((i % width, (i * 3) % height, i % width + step, (i * 3) % height + step), fill=colour)
    # Seeded, so every call with the same arguments gives the same bytes (Pillow's effect_noise draws from C's rand(),
    # whose state depends on what ran before in the process, which made outcomes depend on test order).
    sigma = 24 + seed % 5
    grey = np.random.default_rng(seed).normal(128.0, sigma, (height, width)).clip(0, 255).astype(np.uint8)
    noise = Image.fromarray(grey, "L").convert("RGB")
    img = Image.blend(img, noise, 0.12).filter(ImageFilter.GaussianBlur(0.6))
    return img.convert(mode) if mode != "RGB" else img


def photo_jpeg(width: int = 640, height: int = 480, quality: int = 95, mode: str = "RGB", **save_kwargs) -> bytes:
    """Return JPEG bytes of :func:`photo_image`, saved at ``quality`` with extra Pillow ``save_kwargs``."""
    buf = io.BytesIO()
    photo_image(width, height, mode).save(buf, "JPEG", quality=quality, **save_kwargs)
    return buf.getvalue()


# --- Edge-case factories for the compression core --------------------------------------------------------------

#: Colours of the corner markers in :func:`upright_image` (top-left, top-right, bottom-left).
CORNER_COLOURS = {"top_left": (255, 0, 0), "top_right": (0, 0, 255), "bottom_left": (0, 255, 0)}

# The transpose that turns an upright image into the pixels a camera stores with a given EXIF orientation
# (the inverse of what a viewer applies).
_STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_image(width: int = 320, height: int = 200) -> Image.Image:
    """Return a photo-like image with solid marker blocks in three corners (see ``CORNER_COLOURS``)."""
    img = photo_image(width, height)
    draw = ImageDraw.Draw(img)
    side = min(width, height) // 5
    draw.rectangle((0, 0, side, side), fill=CORNER_COLOURS["top_left"])
    draw.rectangle((width - 1 - side, 0, width - 1, side), fill=CORNER_COLOURS["top_right"])
    draw.rectangle((0, height - 1 - side, side, height - 1), fill=CORNER_COLOURS["bottom_left"])
    return img


def exif_bytes(orientation: int | None = None, gps: bool = False, make: str | None = "TestCam") -> bytes:
    """Return an EXIF block (as Pillow's ``exif=`` save argument takes it) with the tags asked for."""
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 22.0, 12.5), 3: "E", 4: (4.0, 53.0, 30.0)}
    return exif.tobytes()


def oriented_jpeg(orientation: int, width: int = 320, height: int = 200, quality: int = 95, **save_kwargs) -> bytes:
    """Return a JPEG whose pixels are stored as a camera with EXIF ``orientation`` would store them.

    Displayed with the orientation applied, it shows :func:`upright_image` (``width`` x ``height``).
    """
    img = upright_image(width, height)
    store = _STORE_FOR_ORIENTATION[orientation]
    if store is not None:
        img = img.transpose(store)
    buf = io.BytesIO()
    save_kwargs.setdefault("exif", exif_bytes(orientation=orientation))
    img.save(buf, "JPEG", quality=quality, **save_kwargs)
    return buf.getvalue()


def ycck_jpeg(cmyk: Image.Image, quality: int = 95) -> bytes:
    """Return an Adobe YCCK JPEG (APP14 transform 2, as Photoshop writes) that decodes to the CMYK image ``cmyk``.

    Pillow cannot write YCCK, so the colour transform is done here: the C, M, Y planes are stored as YCbCr of
    (C, M, Y) read as RGB, K as inverted K, all inverted again by Pillow's Adobe CMYK writer; then the Adobe
    segment's transform byte is switched from 0 (none) to 2 (YCCK).
    """
    c, m, y, k = cmyk.split()
    ycc = Image.merge("RGB", (c, m, y)).convert("YCbCr")
    planes = [p.point(lambda v: 255 - v) for p in ycc.split()]
    stored = Image.merge("CMYK", (*planes, k))
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=quality)
    data = bytearray(buf.getvalue())
    at = data.find(b"\xff\xee")
    assert at > 0 and data[at + 4 : at + 9] == b"Adobe", "Pillow did not write an Adobe segment for CMYK"
    data[at + 4 + 11] = 2  # transform flag: 2 = YCCK
    return bytes(data)


def with_frame_header(
    data: bytes,
    *,
    width: int | None = None,
    height: int | None = None,
    precision: int | None = None,
    marker: int | None = None,
) -> bytes:
    """Return ``data`` (a JPEG) with its SOF header patched: declared size, sample precision or SOF marker.

    Used to craft pixel bombs (a tiny file declaring a huge frame) and unsupported variants.
    """
    out = bytearray(data)
    for sof in (0xC0, 0xC1, 0xC2):
        at = out.find(bytes((0xFF, sof)))
        if at > 0:
            break
    else:
        raise ValueError("no SOF0/1/2 marker found")
    if precision is not None:
        out[at + 4] = precision
    if height is not None:
        out[at + 5 : at + 7] = height.to_bytes(2, "big")
    if width is not None:
        out[at + 7 : at + 9] = width.to_bytes(2, "big")
    if marker is not None:
        out[at + 1] = marker
    return bytes(out)


def insert_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """Return JPEG ``data`` with a raw marker segment inserted right after SOI (e.g. a broken EXIF block)."""
    return data[:2] + bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def icc_after_sof(data: bytes, leave_first: int = 0) -> bytes:
    """Return JPEG ``data`` with its APP2 ICC_PROFILE segments moved to right after the SOF header.

    Some encoders write the profile there (Pillow's test image ``icc-after-SOF.jpg``); Pillow itself only reads
    chunks that come before SOF. ``leave_first`` keeps that many ICC chunks where they were (a split profile).
    """
    before_sof, moved, after_sof = [data[:2]], [], []
    seen_sof, icc_seen, at = False, 0, 2
    while data[at + 1] != 0xDA:  # up to the first scan
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        segment = data[at:end]
        is_icc = segment[1] == 0xE2 and segment[4:16] == b"ICC_PROFILE\x00"
        if is_icc and icc_seen >= leave_first:
            moved.append(segment)
        else:
            (after_sof if seen_sof else before_sof).append(segment)
        icc_seen += is_icc
        seen_sof = seen_sof or segment[1] in (0xC0, 0xC1, 0xC2)
        at = end
    assert moved and seen_sof, "no ICC segment to move, or no SOF before the scan"
    # before_sof ends with the SOF segment itself: the moved chunks go right behind it.
    return b"".join([*before_sof, *moved, *after_sof]) + data[at:]


def other_format(fmt: str, width: int = 64, height: int = 48) -> bytes:
    """Return :func:`photo_image` saved as ``fmt`` (``PNG``, ``GIF``, ``WEBP``, ``BMP``, ``TIFF``)."""
    buf = io.BytesIO()
    photo_image(width, height).save(buf, fmt)
    return buf.getvalue()


def cmyk_icc_profile() -> bytes:
    """Return a small but real ICC v2 CMYK printer profile (Lab PCS, 2-point lut16 A2B0) built from scratch.

    The corners of its colour table are the plain ``(1-C)(1-K)`` formula converted to Lab by LittleCMS, so it
    behaves like a (very coarse) press profile; enough to drive the CMYK-through-ICC path of the core.
    """
    import struct

    from PIL import ImageCms

    corners = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = tuple(round(255 * (1 - v) * (1 - k)) for v in (c, m, y))
                    corners.append(rgb)
    swatch = Image.new("RGB", (16, 1))
    swatch.putdata(corners)
    lab = ImageCms.profileToProfile(
        swatch, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), outputMode="LAB"
    )
    clut = b""
    for l8, a8, b8 in lab.get_flattened_data():  # Pillow's LAB: L 0-255, a/b stored +128
        clut += struct.pack(">HHH", round(l8 / 255 * 0xFF00), a8 * 256, b8 * 256)

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    identity = b"".join(s15(1.0 if i % 4 == 0 else 0.0) for i in range(9))
    a2b0 = (
        b"mft2"
        + b"\x00" * 4
        + bytes((4, 3, 2, 0))
        + identity
        + struct.pack(">HH", 2, 2)
        + struct.pack(">HH", 0, 65535) * 4
        + clut
        + struct.pack(">HH", 0, 65535) * 3
    )
    text = b"test CMYK"
    desc = (
        b"desc"
        + b"\x00" * 4
        + struct.pack(">I", len(text) + 1)
        + text
        + b"\x00"
        + struct.pack(">II", 0, 0)
        + struct.pack(">HB", 0, 0)
        + b"\x00" * 67
    )
    wtpt = b"XYZ " + b"\x00" * 4 + s15(0.9642) + s15(1.0) + s15(0.8249)
    cprt = b"text" + b"\x00" * 4 + b"public domain\x00"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, blob in tags:
        blob += b"\x00" * (-len(blob) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(blob))
        body += blob
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"prtrCMYKLab "
        + b"\x00" * 12
        + b"acsp"
        + b"\x00" * 24
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\x00" * 48
    )
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + body
