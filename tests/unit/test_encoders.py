"""The encoders: jpegli (metadata spliced in, progressive in one pass, grey as one component), the encoder option."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from image_compressor import jpegfile, metadata
from image_compressor.core import compress
from image_compressor.encoders import (
    EncodeParams,
    JpegliEncoder,
    PillowEncoder,
    encoder_for,
    metadata_segments,
    packed_pixels,
    splice_segments,
)
from image_compressor.result import Status
from image_compressor.settings import CompressionOptions, Settings, SettingsError
from PIL import Image, ImageChops, ImageCms, ImageOps

from tests.jpegs import CORNER_COLOURS, exif_bytes, oriented_jpeg, photo_image, photo_jpeg

JPEGLI = JpegliEncoder()
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
IPTC = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0b\x1c\x02\x78\x00\x07caption\x00"


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def segment_kinds(data: bytes) -> list[str]:
    layout = jpegfile.parse(data)
    return [metadata.segment_kind(data, s) for s in layout.segments if s.is_metadata and s.start < layout.scan_start]


def sampling(data: bytes) -> list[tuple[int, int]]:
    """(horizontal, vertical) sampling factors of each component, from the SOF header."""
    layout = jpegfile.parse(data)
    sof = next(s for s in layout.segments if s.marker in (0xC0, 0xC1, 0xC2))
    payload = data[sof.payload_start : sof.end]
    return [(payload[7 + 3 * i] >> 4, payload[7 + 3 * i] & 15) for i in range(payload[5])]


def test_jpegli_writes_progressive_420_colour_with_every_kept_segment():
    params = EncodeParams(
        quality=80,
        progressive=True,
        optimize=True,
        icc_profile=SRGB,
        exif=b"Exif\x00\x00" + exif_bytes(orientation=1),
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
        comment=b"kept comment",
        extra_segments=jpegfile.segment_bytes(0xED, IPTC),
        dpi=(300, 300),
    )
    data = JPEGLI.encode(photo_image(400, 300), params)
    layout = jpegfile.parse(data)
    assert layout.progressive and layout.components == 3
    assert sampling(data) == [(2, 2), (1, 1), (1, 1)]  # 4:2:0
    assert segment_kinds(data) == ["jfif", "exif", "xmp", "icc", "iptc", "comment"]
    img = decode(data)
    assert img.mode == "RGB" and img.size == (400, 300)
    assert img.info["icc_profile"] == SRGB
    assert img.getexif()[0x010F] == "TestCam"
    assert img.info["xmp"] == params.xmp
    assert img.info["comment"] == b"kept comment"
    assert img.info["dpi"] == (300, 300)
    assert b"caption" in data


def test_nothing_is_written_that_params_do_not_ask_for():
    data = JPEGLI.encode(photo_image(200, 100), EncodeParams(quality=80, progressive=True, optimize=True))
    assert segment_kinds(data) == ["jfif"]
    assert not decode(data).getexif()


def test_a_large_icc_profile_is_split_into_app2_chunks_and_read_back_whole():
    header = bytearray(SRGB[:128])
    profile = bytes(header) + bytes(range(256)) * 600  # 153,728 bytes: three APP2 segments
    data = JPEGLI.encode(
        photo_image(64, 64), EncodeParams(quality=80, progressive=True, optimize=True, icc_profile=profile)
    )
    assert segment_kinds(data).count("icc") == 3
    assert decode(data).info["icc_profile"] == profile


def test_without_progressive_the_jpegli_output_is_sequential_with_the_same_pixels():
    image = photo_image(320, 240)
    progressive = JPEGLI.encode(image, EncodeParams(quality=75, progressive=True, optimize=True, icc_profile=SRGB))
    sequential = JPEGLI.encode(image, EncodeParams(quality=75, progressive=False, optimize=False, icc_profile=SRGB))
    assert jpegfile.parse(sequential).sof_marker == 0xC0
    assert decode(sequential).info["icc_profile"] == SRGB
    assert ImageChops.difference(decode(progressive), decode(sequential)).getbbox() is None  # the pass is lossless
    assert len(progressive) < len(sequential)


def test_grey_stays_one_component_progressive_or_sequential_with_the_same_pixels():
    grey = photo_image(300, 200).convert("L")
    data = JPEGLI.encode(grey, EncodeParams(quality=80, progressive=True, optimize=True, comment=b"g"))
    layout = jpegfile.parse(data)
    assert layout.components == 1 and layout.progressive
    img = decode(data)
    assert img.mode == "L" and img.info["comment"] == b"g"
    sequential = JPEGLI.encode(grey, EncodeParams(quality=80, progressive=False, optimize=True))
    assert jpegfile.parse(sequential).sof_marker == 0xC0 and jpegfile.parse(sequential).components == 1
    assert ImageChops.difference(img, decode(sequential)).getbbox() is None
    # Close to the source: the grey channel is encoded, not a colour image made grey.
    assert max(ImageChops.difference(img, grey).getextrema()) < 64


def test_adaptive_quantisation_is_off_by_default_and_can_be_turned_on():
    image = photo_image(320, 240)
    params = EncodeParams(quality=80, progressive=True, optimize=True)
    flat = JPEGLI.encode(image, params)
    adaptive = JpegliEncoder(adaptive_quantization=True).encode(image, params)
    assert JPEGLI.adaptive_quantization is False
    assert flat != adaptive
    assert decode(flat).size == decode(adaptive).size == (320, 240)


def test_quality_changes_the_size_and_other_modes_are_refused():
    image = photo_image(320, 240)
    sizes = [len(JPEGLI.encode(image, EncodeParams(quality=q, progressive=True, optimize=True))) for q in (40, 70, 95)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    with pytest.raises(ValueError, match="L or RGB images, got mode CMYK"):
        JPEGLI.encode(image.convert("CMYK"), EncodeParams(quality=80, progressive=True, optimize=True))


def test_segment_helpers():
    params = EncodeParams(quality=1, progressive=False, optimize=False, comment=b"x" * 70_000)
    with pytest.raises(ValueError, match="does not fit"):
        metadata_segments(params)
    with pytest.raises(ValueError, match="start-of-image"):
        splice_segments(b"\x00\x01", b"")
    jfif = metadata_segments(EncodeParams(quality=1, progressive=False, optimize=False))
    assert jfif == b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    assert splice_segments(b"\xff\xd8\xff\xdb", jfif) == b"\xff\xd8" + jfif + b"\xff\xdb"


def test_encoder_names():
    assert isinstance(encoder_for("jpegli"), JpegliEncoder)
    assert isinstance(encoder_for("pillow"), PillowEncoder)
    with pytest.raises(ValueError, match="unknown encoder 'guetzli'; use one of: jpegli, pillow"):
        encoder_for("guetzli")


# --- through the core ---------------------------------------------------------------------------------------------


def test_default_output_is_jpegli_progressive_with_icc_and_no_private_metadata():
    data = photo_jpeg(800, 600, icc_profile=SRGB, exif=exif_bytes(gps=True), comment=b"home")
    out = compress(data)
    assert out.result.status is Status.COMPRESSED
    assert jpegfile.parse(out.data).progressive
    assert segment_kinds(out.data) == ["jfif", "icc"]
    assert decode(out.data).info["icc_profile"] == SRGB
    assert b"home" not in out.data and b"Exif" not in out.data


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpegli_keeps_exif_with_orientation_1_and_upright_pixels(orientation):
    data = oriented_jpeg(orientation, exif=exif_bytes(orientation=orientation, gps=True), icc_profile=SRGB)
    out = compress(data, CompressionOptions(keep_metadata=True))
    img = decode(out.data)
    assert img.size == (320, 200)
    assert img.getexif()[0x0112] == 1 and img.getexif()[0x010F] == "TestCam" and 0x8825 not in img.getexif()
    assert img.info["icc_profile"] == SRGB
    shown = ImageOps.exif_transpose(img)
    assert all(abs(a - b) <= 40 for a, b in zip(shown.getpixel((5, 5)), CORNER_COLOURS["top_left"], strict=True))


def test_the_pillow_encoder_option_uses_pillow():
    data = photo_jpeg(640, 480)
    options = CompressionOptions(encoder="pillow", target_ssim=None, quality=80)
    out = compress(data, options)
    assert out.data == compress(data, options, encoder=PillowEncoder()).data
    assert out.data != compress(data, CompressionOptions(target_ssim=None, quality=80)).data
    assert jpegfile.parse(out.data).progressive


# --- settings -------------------------------------------------------------------------------------------------------


def settings(**env: str) -> CompressionOptions:
    return Settings.from_env({"DEST_BUCKET": "d", "FAILED_BUCKET": "f", **env}).compression


def test_search_and_encoder_settings_from_env():
    defaults = settings()
    assert (defaults.encoder, defaults.target_ssim, defaults.min_quality, defaults.quality) == ("jpegli", 0.95, 78, 95)
    for off in ("", "0", "off", "OFF", "none", "false"):
        assert settings(TARGET_SSIM=off).target_ssim is None
        assert settings(TARGET_SSIM=off).quality == 85  # the fixed default without a target
    tuned = settings(TARGET_SSIM="0.95", MIN_QUALITY="50", JPEG_QUALITY="90", JPEG_ENCODER="Pillow")
    assert (tuned.target_ssim, tuned.min_quality, tuned.quality, tuned.encoder) == (0.95, 50, 90, "pillow")
    assert settings(JPEG_QUALITY="70", TARGET_SSIM="off").quality == 70


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"TARGET_SSIM": "1"}, "TARGET_SSIM must be an SSIM above 0 and below 1"),
        ({"TARGET_SSIM": "good"}, "TARGET_SSIM must be an SSIM above 0 and below 1"),
        ({"JPEG_ENCODER": "mozjpeg"}, "JPEG_ENCODER must be one of jpegli, pillow"),
        ({"MIN_QUALITY": "0"}, "min_quality must be between 1 and 95"),
        ({"JPEG_QUALITY": "0"}, "quality must be between 1 and 95"),
    ],
)
def test_bad_search_settings_name_the_variable(env, words):
    with pytest.raises(SettingsError, match=words):
        settings(**env)


def test_every_new_option_is_in_the_fingerprint():
    base = CompressionOptions()
    variants = [
        CompressionOptions(encoder="pillow"),
        CompressionOptions(target_ssim=0.97),
        CompressionOptions(target_ssim=None),
        CompressionOptions(min_quality=50),
        CompressionOptions(quality=90),
        CompressionOptions(max_scans=10),
    ]
    prints = {base.fingerprint(), *(v.fingerprint() for v in variants)}
    assert len(prints) == len(variants) + 1
    # min_quality does not matter without a target, so it does not change the fingerprint then.
    assert (
        CompressionOptions(target_ssim=None, min_quality=50).fingerprint()
        == CompressionOptions(target_ssim=None).fingerprint()
    )


@pytest.mark.parametrize("size", [(1, 1), (37, 23), (640, 480)])
@pytest.mark.parametrize("strip_bytes", [1, 100, 1 << 20])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_packed_pixels_is_tobytes_in_strips(size, strip_bytes, mode):
    image = photo_image(*size).convert(mode)
    assert packed_pixels(image, strip_bytes) == image.tobytes()


def test_the_function_fingerprint_covers_the_object_size_cap_too():
    small, large = Settings("d", "f", max_object_bytes=1000), Settings("d", "f")
    assert small.fingerprint() != large.fingerprint()
    assert small.fingerprint().startswith(small.compression.fingerprint())


def test_the_encoder_closes_the_image_only_when_the_caller_releases_it():
    kept = photo_image(160, 120)
    released = kept.copy()
    params = EncodeParams(quality=80, progressive=True, optimize=True)
    first = JPEGLI.encode(kept, params)
    assert kept.getpixel((0, 0)) is not None  # still usable
    second = JPEGLI.encode(released, replace(params, release_pixels=True))
    assert first == second  # same output either way
    with pytest.raises(ValueError, match="closed"):
        released.getpixel((0, 0))
