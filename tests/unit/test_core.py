"""The pure compression core: real JPEGs built in memory, checked by decoding the output with Pillow."""

from __future__ import annotations

import io

import pytest
from image_compressor import jpegfile, ssim
from image_compressor.core import (
    Compressed,
    EncodeParams,
    PillowEncoder,
    compress,
    normalize_mode,
)
from image_compressor.metadata import join_icc_chunks, read_exif
from image_compressor.result import Status
from image_compressor.settings import CompressionOptions, Settings
from image_compressor.sniff import describe
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageOps, ImageStat

from tests.jpegs import (
    CORNER_COLOURS,
    cmyk_icc_profile,
    exif_bytes,
    icc_after_sof,
    insert_segment,
    oriented_jpeg,
    other_format,
    photo_image,
    photo_jpeg,
    upright_image,
    with_frame_header,
    ycck_jpeg,
)

# --- helpers ---------------------------------------------------------------------------------------------------


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, averaged (0 = identical, 255 = opposite)."""
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    return sum(stat.mean) / 3


def near(pixel: tuple[int, ...], colour: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel, colour, strict=True))


def kinds(data: bytes) -> list[str]:
    """Names of the metadata segments in a JPEG, read with Pillow's own parser (independent of ours)."""
    img = Image.open(io.BytesIO(data))
    return [name for name, _ in img.applist]


def assert_consistent(out: Compressed, data: bytes) -> None:
    """Result fields agree with each other and with the bytes returned."""
    result = out.result
    assert result.input_bytes == len(data)
    assert result.ms >= 0
    if result.status is Status.FAILED:
        assert out.data is None
        assert result.output_bytes == 0
        assert result.quality == 0
        assert result.reason
        return
    assert out.data is not None
    assert result.output_bytes == len(out.data)
    assert result.output_bytes <= result.input_bytes
    assert result.width > 0 and result.height > 0
    if result.status is Status.KEPT_ORIGINAL:
        assert out.data == data
        assert result.output_bytes == result.input_bytes
        assert result.reason
    else:
        assert result.reason is None
        assert result.output_bytes < result.input_bytes
        shown = ImageOps.exif_transpose(decode(out.data))
        assert shown.size == (result.width, result.height)


# --- the ordinary case ---------------------------------------------------------------------------------------


def test_photo_is_recompressed_progressive_at_the_searched_quality():
    data = photo_jpeg(1024, 768, quality=95)
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.COMPRESSED
    defaults = CompressionOptions()
    assert defaults.min_quality <= out.result.quality <= defaults.quality
    # The quality search aims at the default luma SSIM target (0.95); sampling error stays well inside 0.005.
    assert ssim.ssim(ssim.luma(decode(data)), ssim.luma(decode(out.data))) >= defaults.target_ssim - 0.005
    assert (out.result.width, out.result.height) == (1024, 768)
    assert out.result.output_bytes < 0.6 * len(data)
    img = decode(out.data)
    assert img.format == "JPEG" and img.mode == "RGB"
    assert img.info.get("progressive") == 1
    assert jpegfile.parse(out.data).sof_marker == 0xC2
    # Visually close to the source: small mean error on a noisy photo-like image.
    assert mean_diff(img, decode(data)) < 3.0


def test_options_change_the_encoding():
    data = photo_jpeg(640, 480, quality=95)
    # Fixed qualities (no search): with the default search, 90 is only the ceiling and a lower quality may do.
    low = compress(data, CompressionOptions(quality=40, target_ssim=None))
    high = compress(data, CompressionOptions(quality=90, target_ssim=None))
    assert low.result.quality == 40 and high.result.quality == 90
    assert low.result.output_bytes < high.result.output_bytes
    baseline = compress(data, CompressionOptions(progressive=False, optimize=False))
    assert jpegfile.parse(baseline.data).sof_marker == 0xC0
    assert "progressive" not in decode(baseline.data).info


def test_settings_from_env_reach_the_options():
    settings = Settings.from_env(
        {"DEST_BUCKET": "d", "FAILED_BUCKET": "f", "JPEG_QUALITY": "70", "KEEP_METADATA": "true", "KEEP_GPS": "1"}
    )
    assert settings.compression.quality == 70
    assert settings.compression.keep_metadata and settings.compression.keep_gps
    assert "-g1" in settings.compression.fingerprint()
    assert not CompressionOptions().keep_gps


def test_a_plugged_encoder_is_used():
    class BaselineEncoder(PillowEncoder):
        name = "baseline"

        def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=params.quality, icc_profile=params.icc_profile, comment=b"")
            return buf.getvalue()

    data = photo_jpeg(640, 480, quality=95)
    out = compress(data, encoder=BaselineEncoder())
    assert out.result.status is Status.COMPRESSED
    assert jpegfile.parse(out.data).sof_marker == 0xC0


def test_an_encoder_error_is_a_failed_result_naming_the_encoder():
    class WidthLimitedEncoder(PillowEncoder):
        name = "width-limited"

        def encode(self, image: Image.Image, params: EncodeParams) -> bytes:
            if image.width > 100:
                raise ValueError(f"images wider than 100 px are not supported, got {image.width}")
            return super().encode(image, params)

    data = photo_jpeg(640, 480)
    out = compress(data, encoder=WidthLimitedEncoder())
    assert_consistent(out, data)
    assert out.result.status is Status.FAILED
    assert out.result.reason.startswith("the JPEG encoder (width-limited) failed: ValueError: images wider")
    small = compress(data, CompressionOptions(max_dimension=100), encoder=WidthLimitedEncoder())
    assert small.result.status is Status.COMPRESSED


# --- orientation -----------------------------------------------------------------------------------------------


def test_orientation_factory_matches_pillows_reading():
    # Guard for the tests below: Pillow's own exif_transpose shows every factory image upright.
    for orientation in range(1, 9):
        shown = ImageOps.exif_transpose(decode(oriented_jpeg(orientation)))
        assert shown.size == (320, 200)
        assert near(shown.getpixel((5, 5)), CORNER_COLOURS["top_left"])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied_to_the_pixels(orientation):
    data = oriented_jpeg(orientation)
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.COMPRESSED
    img = decode(out.data)
    assert img.size == (320, 200)
    assert (out.result.width, out.result.height) == (320, 200)
    assert near(img.getpixel((5, 5)), CORNER_COLOURS["top_left"])
    assert near(img.getpixel((314, 5)), CORNER_COLOURS["top_right"])
    assert near(img.getpixel((5, 194)), CORNER_COLOURS["bottom_left"])
    assert near(img.getpixel((314, 194)), (128, 128, 128), tolerance=127)  # no marker here: not a solid corner
    assert 0x0112 not in img.getexif()
    assert "exif" not in img.info
    assert mean_diff(img, upright_image()) < 6.0


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_kept_exif_says_orientation_1(orientation):
    data = oriented_jpeg(orientation, exif=exif_bytes(orientation=orientation, gps=True))
    out = compress(data, CompressionOptions(keep_metadata=True))
    img = decode(out.data)
    exif = img.getexif()
    assert exif[0x0112] == 1
    assert exif[0x010F] == "TestCam"
    assert 0x8825 not in exif
    assert near(img.getpixel((5, 5)), CORNER_COLOURS["top_left"])


def test_orientation_with_downscale():
    data = oriented_jpeg(6, 640, 400)
    out = compress(data, CompressionOptions(max_dimension=160))
    img = decode(out.data)
    assert img.size == (160, 100)
    assert (out.result.width, out.result.height) == (160, 100)
    assert near(img.getpixel((3, 3)), CORNER_COLOURS["top_left"])
    assert near(img.getpixel((156, 3)), CORNER_COLOURS["top_right"])


# --- metadata --------------------------------------------------------------------------------------------------


def test_gps_and_other_metadata_are_stripped_by_default():
    data = photo_jpeg(exif=exif_bytes(gps=True), comment=b"shot at home")
    assert 0x8825 in decode(data).getexif()
    out = compress(data)
    assert out.result.status is Status.COMPRESSED
    assert b"Exif\x00\x00" not in out.data
    assert b"shot at home" not in out.data
    img = decode(out.data)
    assert not img.getexif()
    assert "comment" not in img.info
    assert set(kinds(out.data)) <= {"APP0"}


def test_keep_metadata_keeps_exif_and_comment_but_not_gps():
    data = photo_jpeg(exif=exif_bytes(gps=True), comment=b"holiday")
    out = compress(data, CompressionOptions(keep_metadata=True))
    img = decode(out.data)
    exif = img.getexif()
    assert exif[0x010F] == "TestCam"
    assert 0x8825 not in exif
    assert not exif.get_ifd(0x8825)
    assert img.info["comment"] == b"holiday"


def test_keep_gps_keeps_the_location():
    data = photo_jpeg(exif=exif_bytes(gps=True))
    out = compress(data, CompressionOptions(keep_metadata=True, keep_gps=True))
    gps = decode(out.data).getexif().get_ifd(0x8825)
    assert gps[1] == "N"
    assert gps[2] == (52.0, 22.0, 12.5)
    # keep_gps alone (without keep_metadata) keeps nothing.
    plain = compress(data, CompressionOptions(keep_gps=True))
    assert b"Exif\x00\x00" not in plain.data


XMP_PLAIN = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6" dc:creator="Ann"/></x:xmpmeta>'
XMP_GPS = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description exif:GPSLatitude="52,22.2N"/></x:xmpmeta>'


def test_xmp_follows_the_policy():
    plain = photo_jpeg(xmp=XMP_PLAIN)
    assert "xmp" not in decode(compress(plain).data).info
    kept = decode(compress(plain, CompressionOptions(keep_metadata=True)).data).info["xmp"]
    assert b'dc:creator="Ann"' in kept
    assert b'tiff:Orientation="1"' in kept  # orientation is applied, so XMP must not ask for it again
    located = photo_jpeg(xmp=XMP_GPS)
    assert "xmp" not in decode(compress(located, CompressionOptions(keep_metadata=True)).data).info
    with_gps = CompressionOptions(keep_metadata=True, keep_gps=True)
    assert b"GPSLatitude" in decode(compress(located, with_gps).data).info["xmp"]


IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x78\x00\x07caption\x00"


def test_iptc_is_kept_only_with_keep_metadata():
    data = insert_segment(photo_jpeg(), 0xED, IPTC)
    assert "APP13" in kinds(data)
    assert "APP13" not in kinds(compress(data).data)
    kept = compress(data, CompressionOptions(keep_metadata=True)).data
    assert "APP13" in kinds(kept)
    assert b"caption" in kept


def test_icc_profile_is_kept_byte_for_byte():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = photo_jpeg(icc_profile=profile, exif=exif_bytes(gps=True))
    out = compress(data)
    assert decode(out.data).info["icc_profile"] == profile


def test_icc_profile_after_the_frame_header_is_kept():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = icc_after_sof(photo_jpeg(icc_profile=profile))
    markers = [seg.marker for seg in jpegfile.parse(data).segments]
    assert markers.index(0xE2) > markers.index(0xC0)  # the profile stands after the frame header
    assert "icc_profile" not in decode(data).info  # Pillow alone does not see it: the case of the issue
    assert decode(compress(data).data).info["icc_profile"] == profile


def test_icc_profile_split_around_the_frame_header_is_joined_in_order():
    big = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    # A profile over one APP2 segment (65519 bytes): pad the tag-less tail, keep the header's colour space.
    profile = big + bytes(70_000)
    data = icc_after_sof(photo_jpeg(icc_profile=profile), leave_first=1)
    assert decode(compress(data).data).info["icc_profile"] == profile


def test_icc_chunks_that_do_not_add_up_are_dropped():
    assert join_icc_chunks([]) is None
    assert join_icc_chunks([bytes([1, 2]) + b"a"]) is None  # chunk 2 of 2 missing
    assert join_icc_chunks([bytes([2, 2]) + b"b", bytes([1, 2]) + b"a"]) == b"ab"
    assert join_icc_chunks([bytes([1, 2]) + b"a", bytes([1, 2]) + b"b"]) is None  # the same number twice
    assert join_icc_chunks([bytes([1])]) is None  # truncated chunk header


def test_icc_profile_of_the_wrong_colour_space_is_dropped():
    grey_profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    grey_profile[16:20] = b"GRAY"
    rgb = compress(photo_jpeg(icc_profile=bytes(grey_profile)))
    assert "icc_profile" not in decode(rgb.data).info
    grey = compress(photo_jpeg(mode="L", icc_profile=bytes(grey_profile)))
    assert decode(grey.data).info["icc_profile"] == bytes(grey_profile)


BROKEN_EXIF = {
    "garbage": b"Exif\x00\x00" + b"\x13\x37" * 40,
    "bad byte order": b"Exif\x00\x00XX\x00\x2a\x00\x00\x00\x08" + b"\x00" * 30,
    "ifd offset past the end": b"Exif\x00\x00MM\x00\x2a\x7f\xff\xff\xff",
    "entry count past the end": b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff\x01\x12\x00\x03",
    "header only": b"Exif\x00\x00",
    "gps pointer to nowhere": b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x88\x25\x00\x04\x00\x00\x00\x01"
    + b"\x7f\xff\xff\xf0\x00\x00\x00\x00",
}


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow's own EXIF reader complains, rightly
@pytest.mark.parametrize("name", BROKEN_EXIF)
@pytest.mark.parametrize("keep_metadata", [False, True])
def test_broken_exif_never_fails_the_image(name, keep_metadata):
    data = insert_segment(photo_jpeg(), 0xE1, BROKEN_EXIF[name])
    out = compress(data, CompressionOptions(keep_metadata=keep_metadata))
    assert_consistent(out, data)
    assert out.result.status is Status.COMPRESSED
    assert 0x8825 not in decode(out.data).getexif()


def test_exif_reader_reports_broken_blocks_instead_of_raising():
    for payload in BROKEN_EXIF.values():
        info = read_exif(payload)
        assert info.orientation == 1
    assert read_exif(BROKEN_EXIF["garbage"]).broken
    good = read_exif(exif_bytes(orientation=6, gps=True))
    assert (good.orientation, good.has_gps, good.broken) == (6, True, False)


# --- colour spaces and odd inputs ------------------------------------------------------------------------------


def test_grayscale_stays_grayscale():
    data = photo_jpeg(mode="L")
    out = compress(data)
    assert out.result.status is Status.COMPRESSED
    img = decode(out.data)
    assert img.mode == "L"
    assert jpegfile.parse(out.data).components == 1


def cmyk_test_image() -> Image.Image:
    """Photo-like CMYK with a pure cyan patch and a K gradient, so inversion mistakes show."""
    cmyk = photo_image(320, 200).convert("CMYK")
    c, m, y, _ = cmyk.split()
    k = Image.linear_gradient("L").resize((320, 200)).point(lambda v: v // 3)
    cmyk = Image.merge("CMYK", (c, m, y, k))
    cmyk.paste((255, 0, 0, 0), (0, 0, 40, 40))
    return cmyk


def test_adobe_cmyk_becomes_correct_rgb():
    cmyk = cmyk_test_image()
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)  # Pillow writes Photoshop-style inverted CMYK with an Adobe segment
    data = buf.getvalue()
    assert "APP14" in kinds(data)
    out = compress(data)
    assert out.result.status is Status.COMPRESSED
    img = decode(out.data)
    assert img.mode == "RGB"
    assert near(img.getpixel((10, 10)), (0, 255, 255))  # cyan, not red (which inverted data would give)
    assert mean_diff(img, cmyk.convert("RGB")) < 6.0


def test_adobe_ycck_becomes_correct_rgb():
    cmyk = cmyk_test_image()
    data = ycck_jpeg(cmyk)
    assert decode(data).info["adobe_transform"] == 2
    out = compress(data)
    assert out.result.status is Status.COMPRESSED
    img = decode(out.data)
    assert img.mode == "RGB"
    assert near(img.getpixel((10, 10)), (0, 255, 255))
    assert mean_diff(img, cmyk.convert("RGB")) < 6.0


def test_cmyk_with_an_embedded_profile_is_converted_through_it():
    profile = cmyk_icc_profile()
    cmyk = cmyk_test_image()
    cmyk.paste((128, 128, 0, 60), (100, 0, 140, 40))
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95, icc_profile=profile)
    out = compress(buf.getvalue())
    assert out.result.status is Status.COMPRESSED
    img = decode(out.data)
    assert img.mode == "RGB"
    assert "icc_profile" not in img.info  # converted to sRGB, which untagged JPEG means
    through_profile = ImageCms.profileToProfile(
        Image.new("CMYK", (1, 1), (128, 128, 0, 60)),
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    ).getpixel((0, 0))
    plain_formula = Image.new("CMYK", (1, 1), (128, 128, 0, 60)).convert("RGB").getpixel((0, 0))
    assert not near(through_profile, plain_formula, tolerance=20)  # the test profile really differs
    assert near(img.getpixel((120, 20)), through_profile, tolerance=12)
    assert near(img.getpixel((10, 10)), (0, 255, 255))


def test_cmyk_with_a_broken_profile_falls_back_to_the_plain_formula():
    junk = bytearray(b"\x00" * 200)
    junk[16:20] = b"CMYK"
    buf = io.BytesIO()
    cmyk_test_image().save(buf, "JPEG", quality=95, icc_profile=bytes(junk))
    out = compress(buf.getvalue())
    assert out.result.status is Status.COMPRESSED
    assert near(decode(out.data).getpixel((10, 10)), (0, 255, 255))


def test_progressive_input():
    data = photo_jpeg(800, 600, progressive=True)
    assert jpegfile.parse(data).progressive
    out = compress(data)
    assert out.result.status is Status.COMPRESSED
    assert mean_diff(decode(out.data), decode(data)) < 3.0


def test_sixteen_bit_quantisation_tables():
    tables = [[2 + (i % 8) * 40 for i in range(64)], [300 + i for i in range(64)]]
    data = _qtable_jpeg(tables)
    dqt = data.find(b"\xff\xdb")
    assert data[dqt + 4] >> 4 == 1  # precision nibble 1: 16-bit table
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status in (Status.COMPRESSED, Status.KEPT_ORIGINAL)
    assert decode(out.data).size == (640, 480)


def _qtable_jpeg(tables: list[list[int]]) -> bytes:
    buf = io.BytesIO()
    photo_image().save(buf, "JPEG", qtables=tables)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("P", "RGB"), ("PA", "RGB"), ("LA", "L"), ("RGBA", "RGB"), ("1", "L"), ("I;16", "L"), ("RGBX", "RGB")],
)
def test_palette_alpha_and_deep_modes_become_jpeg_modes(mode, expected):
    base = photo_image(64, 48)
    if mode == "P":
        img = base.convert("P")
    elif mode == "PA":
        img = base.convert("P").convert("PA")
    elif mode == "I;16":
        img = base.convert("L").convert("I").point(lambda v: v * 256).convert("I;16")
    else:
        img = base.convert(mode)
    out, profile = normalize_mode(img, None)
    assert out.mode == expected
    assert out.size == (64, 48)
    assert profile is None
    if mode == "I;16":
        assert mean_diff(out, base.convert("L")) < 2.0
    buf = io.BytesIO()
    out.save(buf, "JPEG")  # the encoder accepts it


def test_transparent_pixels_are_flattened_onto_white():
    rgba = photo_image(64, 48).convert("RGBA")
    rgba.putpixel((0, 0), (10, 20, 30, 0))
    out, _ = normalize_mode(rgba, None)
    assert out.getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    palette.info["transparency"] = 1
    flat, _ = normalize_mode(palette, None)
    assert flat.mode == "RGB" and flat.getpixel((0, 0)) == (255, 255, 255)


# --- bad input -------------------------------------------------------------------------------------------------


def test_empty_object():
    out = compress(b"")
    assert_consistent(out, b"")
    assert out.result.status is Status.FAILED
    assert out.result.reason.startswith("empty object (0 bytes)")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (other_format("PNG"), "PNG"),
        (other_format("GIF"), "GIF"),
        (other_format("WEBP"), "WebP"),
        (other_format("BMP"), "BMP"),
        (other_format("TIFF"), "TIFF"),
        (b"hello, this is not an image\n", "text"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (b"\x00\x01\x02\x03\x04\x05", "unknown binary data (starts with 00 01 02 03)"),
    ],
)
def test_non_jpeg_content_is_named(data, name):
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.FAILED
    assert out.result.reason.startswith(f"not a JPEG: content is {name}")
    assert describe(data) == name


def test_jpeg_signature_without_a_marker():
    out = compress(b"\xff\xd8\x00\x00garbage")
    assert out.result.status is Status.FAILED
    assert "not a JPEG" in out.result.reason


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.3, 0.6, 0.99])
@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg_fails_with_a_reason(fraction, progressive):
    full = photo_jpeg(progressive=progressive, exif=exif_bytes(gps=True))
    data = full[: max(3, int(len(full) * fraction))]
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.FAILED
    assert "truncated" in out.result.reason
    assert "upload" in out.result.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("tail", [b"", b"\x00" * 64], ids=["cut", "padded"])
@pytest.mark.parametrize("progressive", [False, True])
def test_missing_end_marker_is_truncated(tail, progressive):
    # Whether libjpeg itself notices the missing marker depends on the last entropy-coded bytes (about 1 photo in
    # 35 of the noisy test photos decodes without complaint; zero padding always does), so the core must decide it.
    full = photo_jpeg(progressive=progressive)
    assert full.endswith(b"\xff\xd9")
    data = full[:-2] + tail
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.FAILED
    assert out.result.reason.startswith("truncated JPEG: no end-of-image marker")
    assert "upload the complete file again" in out.result.reason
    assert (out.result.width, out.result.height) == (640, 480)


def test_pixel_bomb_fails_before_decoding():
    # A 3 KB file whose frame header claims 60000 x 60000 pixels (3.6 gigapixels).
    data = with_frame_header(photo_jpeg(64, 48), width=60000, height=60000)
    assert len(data) < 10_000
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.FAILED
    assert "too many pixels" in out.result.reason
    assert "60000x60000" in out.result.reason
    assert "MAX_PIXELS" in out.result.reason
    assert (out.result.width, out.result.height) == (60000, 60000)


def test_pixel_cap_is_configurable():
    data = photo_jpeg(640, 480)
    assert compress(data, CompressionOptions(max_pixels=640 * 480)).result.status is Status.COMPRESSED
    out = compress(data, CompressionOptions(max_pixels=640 * 480 - 1))
    assert out.result.status is Status.FAILED
    assert "MAX_PIXELS" in out.result.reason


def test_bomb_above_pillows_own_limit_still_fails_cleanly():
    # With the cap raised past Pillow's own guard, Pillow's DecompressionBombError is turned into a result.
    data = with_frame_header(photo_jpeg(64, 48), width=60000, height=60000)
    out = compress(data, CompressionOptions(max_pixels=10**10))
    assert out.result.status is Status.FAILED
    assert "too many pixels" in out.result.reason


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"precision": 12}, "12-bit JPEG is not supported"),
        ({"marker": 0xC3}, "lossless JPEG"),
        ({"marker": 0xC5}, "hierarchical JPEG"),
        ({"height": 0}, "zero size"),
    ],
)
def test_unsupported_variants_fail_with_a_reason(patch, words):
    data = with_frame_header(photo_jpeg(64, 48), **patch)
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status is Status.FAILED
    assert words in out.result.reason


def test_corrupt_header_fails_with_a_reason():
    data = photo_jpeg(64, 48)
    dqt = data.find(b"\xff\xdb")
    broken = data[: dqt + 2] + b"\x00\x01" + data[dqt + 4 :]  # impossible segment length 1
    out = compress(broken)
    assert out.result.status is Status.FAILED
    assert "corrupt JPEG" in out.result.reason


def _before_scan(data: bytes, insert: bytes) -> bytes:
    sos = data.find(b"\xff\xda")
    return data[:sos] + insert + data[sos:]


@pytest.mark.parametrize(
    ("insert", "words"),
    [
        (b"\xff\xe5\x00\x02" * 20_000, "more than 10000 markers"),  # endless empty APP5 segments
        (b"\xff" * 1_000_000, "fill bytes"),
        (b"\x00" * 1_000_000, "junk"),
    ],
)
def test_parser_attacks_fail_fast_with_a_reason(insert, words):
    data = _before_scan(photo_jpeg(64, 48), insert)
    out = compress(data)
    assert out.result.status is Status.FAILED
    assert words in out.result.reason


def test_a_little_padding_is_tolerated_like_libjpeg_does():
    data = _before_scan(photo_jpeg(64, 48), b"\xff" * 7 + b"\x00" * 5)
    assert compress(data).result.status is Status.COMPRESSED


# --- never bigger, and what is written instead ------------------------------------------------------------------


# A fixed quality far above the input's (no SSIM target) makes re-encoding grow the file.
FIXED_90 = CompressionOptions(quality=90, target_ssim=None)


def test_kept_original_when_re_encoding_would_not_be_smaller():
    data = photo_jpeg(quality=40)  # JFIF only: nothing private to strip
    out = compress(data, FIXED_90)
    assert_consistent(out, data)
    assert out.result.status is Status.KEPT_ORIGINAL
    assert out.data == data
    assert out.result.output_bytes == out.result.input_bytes == len(data)
    assert out.result.reason.startswith("re-encoding would not make it smaller")
    assert f"({len(data)} -> " in out.result.reason
    assert (out.result.width, out.result.height) == (640, 480)


def test_low_quality_input_with_gps_gets_metadata_removed_losslessly():
    data = photo_jpeg(quality=40, exif=exif_bytes(gps=True), comment=b"secret")
    out = compress(data, FIXED_90)
    assert_consistent(out, data)
    assert out.result.status is Status.COMPRESSED
    assert out.result.quality == 0  # nothing re-encoded
    assert b"Exif\x00\x00" not in out.data and b"secret" not in out.data
    assert ImageChops.difference(decode(out.data), decode(data)).getbbox() is None  # same pixels, bit for bit


def test_low_quality_rotated_input_keeps_only_the_orientation_tag():
    data = oriented_jpeg(6, quality=40, exif=exif_bytes(orientation=6, gps=True))
    out = compress(data, FIXED_90)
    assert_consistent(out, data)
    assert out.result.status is Status.COMPRESSED
    img = decode(out.data)
    exif = img.getexif()
    assert dict(exif) == {0x0112: 6}
    assert ImageChops.difference(img, decode(data)).getbbox() is None
    shown = ImageOps.exif_transpose(img)
    assert near(shown.getpixel((5, 5)), CORNER_COLOURS["top_left"])


def test_trailing_images_after_the_end_marker_are_dropped():
    # Multi-picture files carry more images after EOI, each possibly with its own EXIF/GPS.
    extra = photo_jpeg(64, 48, exif=exif_bytes(gps=True))
    data = photo_jpeg(quality=40) + extra
    out = compress(data, FIXED_90)
    assert_consistent(out, data)
    assert out.result.status is Status.COMPRESSED
    assert b"Exif\x00\x00" not in out.data
    assert out.data.endswith(b"\xff\xd9") and len(out.data) == len(data) - len(extra)


@pytest.mark.parametrize("source_quality", [20, 50, 75, 90, 95])
@pytest.mark.parametrize("quality", [50, 80, 95])
def test_output_is_never_bigger(source_quality, quality):
    data = photo_jpeg(320, 240, quality=source_quality, exif=exif_bytes(orientation=3))
    out = compress(data, CompressionOptions(quality=quality))
    assert_consistent(out, data)
    assert out.result.status is not Status.FAILED
    assert len(out.data) <= len(data)


def test_tiny_image_is_handled():
    data = photo_jpeg(1, 1)
    out = compress(data)
    assert_consistent(out, data)
    assert out.result.status in (Status.COMPRESSED, Status.KEPT_ORIGINAL)


# --- downscaling -----------------------------------------------------------------------------------------------


def test_max_dimension_downscales_to_the_exact_size():
    data = photo_jpeg(1600, 1200)
    out = compress(data, CompressionOptions(max_dimension=400))
    assert_consistent(out, data)
    img = decode(out.data)
    assert img.size == (400, 300)
    reference = decode(data).resize((400, 300), Image.Resampling.LANCZOS)
    assert mean_diff(img, reference) < 4.0


def test_portrait_downscale_keeps_the_aspect_ratio():
    data = photo_jpeg(480, 1000)
    out = compress(data, CompressionOptions(max_dimension=250))
    assert decode(out.data).size == (120, 250)


def test_max_dimension_never_upscales():
    data = photo_jpeg(300, 200)
    out = compress(data, CompressionOptions(max_dimension=4000))
    assert decode(out.data).size == (300, 200)


def test_downscaled_grey_and_cmyk():
    grey = compress(photo_jpeg(800, 600, mode="L"), CompressionOptions(max_dimension=200))
    assert decode(grey.data).mode == "L" and decode(grey.data).size == (200, 150)
    buf = io.BytesIO()
    cmyk_test_image().save(buf, "JPEG")
    cmyk = compress(buf.getvalue(), CompressionOptions(max_dimension=160))
    img = decode(cmyk.data)
    assert img.mode == "RGB" and img.size == (160, 100)
    assert near(img.getpixel((4, 4)), (0, 255, 255))


def test_another_encoder_is_pluggable_and_keeps_the_metadata_policy():
    from image_compressor.encoders import JpegliEncoder

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = photo_jpeg(800, 600, icc_profile=profile, comment=b"private")
    fixed = CompressionOptions(target_ssim=None)
    plain = compress(data, fixed)
    adaptive = compress(data, fixed, encoder=JpegliEncoder(adaptive_quantization=True))
    assert adaptive.result.status is Status.COMPRESSED
    assert adaptive.data != plain.data
    assert decode(adaptive.data).info["icc_profile"] == profile
    assert b"private" not in adaptive.data
