"""Fast checks of the benchmark's metric functions on tiny in-memory images (no corpus, no timing)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from bench import e2e, encoders, metrics, plots, report, speed
from bench.corpus import camera_jpeg
from ops.stats import percentile
from tests.jpegs import photo_image, photo_jpeg


def _luma_of_jpeg(image: Image.Image, quality: int) -> np.ndarray:
    return metrics.jpeg_luma(encoders.baseline(image, quality))


def test_ssim_of_identical_images_is_one():
    y = metrics.luma(photo_image(96, 64))
    assert metrics.ssim(y, y.copy()) == pytest.approx(1.0)


def test_ssim_drops_with_jpeg_quality():
    image = photo_image(128, 96)
    y = metrics.luma(image)
    high = metrics.ssim(y, _luma_of_jpeg(image, 95))
    low = metrics.ssim(y, _luma_of_jpeg(image, 10))
    assert 0.0 < low < high < 1.0


def test_ssim_refuses_different_sizes():
    with pytest.raises(ValueError, match="same size"):
        metrics.ssim(np.zeros((8, 8)), np.zeros((8, 9)))


def test_luma_of_grey_image_is_the_grey_values():
    grey = Image.new("L", (4, 3), 77)
    assert np.array_equal(metrics.luma(grey), np.full((3, 4), 77.0))
    rgb = Image.new("RGB", (2, 2), (255, 0, 0))
    assert metrics.luma(rgb)[0, 0] == pytest.approx(0.299 * 255)


def test_quality_search_returns_lowest_quality_reaching_target_on_real_jpegs():
    image = photo_image(96, 72)
    y = metrics.luma(image)
    calls: list[int] = []

    def measure(q: int) -> float:
        calls.append(q)
        return metrics.ssim(y, _luma_of_jpeg(image, q))

    target = measure(60)
    found = metrics.lowest_quality_reaching(target, measure, 1, 100)
    assert found is not None and found <= 60
    assert measure(found) >= target
    assert all(measure(q) < target for q in range(max(1, found - 3), found))
    assert len(calls) < 40  # a search, not a sweep


def test_quality_search_looks_below_a_wiggle():
    # Not monotonic: 47-49 and 51+ reach the target, 50 does not. The binary search alone would answer 51.
    values = {q: (1.0 if q >= 47 and q != 50 else 0.0) for q in range(1, 101)}
    assert metrics.lowest_quality_reaching(0.5, values.__getitem__) == 47
    assert metrics.lowest_quality_reaching(0.5, values.__getitem__, window=0) == 51


def test_quality_search_returns_none_when_unreachable_and_checks_range():
    assert metrics.lowest_quality_reaching(2.0, lambda q: q / 100) is None
    assert metrics.lowest_quality_reaching(0.0, lambda q: q / 100, 5, 9) == 5
    with pytest.raises(ValueError, match="empty"):
        metrics.lowest_quality_reaching(0.5, lambda q: 1.0, 10, 5)


def test_percentile_median_and_bytes_ratio():
    assert percentile([10, 20, 30, 40, 50], 50) == 30
    assert percentile([10, 20], 95) == 20  # nearest rank: an observed value, as CloudWatch's p95
    assert percentile([7], 95) == 7
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 95) == 19
    assert metrics.median([3, 1, 2]) == 2
    assert metrics.bytes_ratio([50, 50], [100, 100]) == 0.5
    with pytest.raises(ValueError):
        metrics.bytes_ratio([1], [0])
    with pytest.raises(ValueError):
        percentile([], 50)


def test_camera_jpeg_is_rgb_q95_with_orientation_one():
    data = camera_jpeg(photo_image(64, 48, mode="L"))
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "RGB"
        assert img.getexif()[0x0112] == 1


def test_every_candidate_encoder_writes_a_decodable_jpeg_of_the_same_size():
    image = photo_image(80, 48)
    for name, (encode, _) in encoders.CANDIDATES.items():
        data = encode(image, 80)
        with Image.open(io.BytesIO(data)) as out:
            assert out.format == "JPEG", name
            assert out.size == image.size, name


def test_implied_lambda_memory_rounds_up_with_headroom():
    assert speed.implied_lambda_memory(100, 20) == 192  # (100 + 20) * 1.25 = 150 -> 192
    assert speed.implied_lambda_memory(10, 0) == 128  # Lambda's minimum


def test_report_judges_goals_and_renders_not_measured():
    figures = {key: None for key in report.KEYS}
    figures.update({"bytes_ratio_at_equal_ssim": 0.80, "min_ssim": 0.93, "codec_overhead_ratio": 1.2})
    details = {"e2e": {"burst": None}}
    doc = report.build_json(figures, {"e2e_p50_ms_12mp": "no terraform"}, details, {})
    assert doc["goals"]["bytes_ratio_at_equal_ssim"]["met"] is True
    assert doc["goals"]["min_ssim"]["met"] is False
    assert doc["goals"]["codec_overhead_ratio"]["met"] is False
    assert doc["goals"]["e2e_p50_ms_12mp"]["met"] is None
    assert doc["not_measured"] == {"e2e_p50_ms_12mp": "no terraform"}
    json.dumps(doc)  # JSON-ready
    table = report.results_table(doc)
    assert "not measured: no terraform" in table
    assert "**NO**" in table


def test_burst_goal_needs_every_upload_accounted_for():
    ok = {"e2e": {"burst": {"missing": 0}}}
    lost = {"e2e": {"burst": {"missing": 2}}}
    assert report.judge("burst_images_per_minute", 100.0, ok) is True
    assert report.judge("burst_images_per_minute", 100.0, lost) is False


def test_warm_local_up_goal_needs_the_snapshot_restored():
    restored = {"e2e": {"local_up": {"cold_s": 90.0, "warm_s": 4.0, "warm_restored": True, "build_s": 1.5}}}
    applied = {"e2e": {"local_up": {"cold_s": 90.0, "warm_s": 4.0, "warm_restored": False, "build_s": 1.5}}}
    assert report.judge("local_up_warm_s", 4.0, restored) is True
    assert report.judge("local_up_warm_s", 25.0, restored) is False
    assert report.judge("local_up_warm_s", 4.0, applied) is False  # fast but not the warm path
    assert report.judge("local_up_cold_s", 90.0, restored) is None  # reported, no goal
    figures = {key: None for key in report.KEYS} | {"local_up_cold_s": 90.0, "local_up_warm_s": 4.0}
    doc = report.build_json(figures, {}, restored, {})
    assert (doc["local_up_cold_s"], doc["local_up_warm_s"]) == (90.0, 4.0)
    assert "| `local_up_warm_s`<br>" in report.results_table(doc)


def test_overhead_ratio_is_end_to_end_over_the_functions_own_time():
    assert e2e.overhead_ratio(460.0, 400.0) == 1.15
    assert report.judge("e2e_overhead_ratio_12mp", 1.15, {}) is True
    assert report.judge("e2e_overhead_ratio_12mp", 1.16, {}) is False


def _burst(count: int, seconds: float, failed: int = 0, missing: int = 0) -> e2e.BurstResult:
    done = count - failed - missing
    return e2e.BurstResult(count, seconds, done / seconds * 60, done, failed, missing, 1.0, 8)


def test_burst_efficiency_compares_with_the_cores_running_compress_alone():
    # 2 cores, photos of 100 and 300 ms alternating: the ideal is 2 / 0.2 s = 10 images/s.
    assert e2e.burst_efficiency(_burst(10, 1.0), [100.0, 300.0], cores=2) == 1.0
    assert e2e.burst_efficiency(_burst(10, 2.0), [100.0, 300.0], cores=2) == 0.5
    # The mean follows the burst's own cycle through the photos: 3 images are 100, 300, 100 ms.
    assert e2e.burst_efficiency(_burst(3, 1.0), [100.0, 300.0], cores=1) == pytest.approx(0.5, abs=1e-3)
    # Failed copies are accounted for; missing ones are not.
    assert e2e.burst_efficiency(_burst(10, 1.0, failed=2), [100.0, 300.0], cores=2) == 1.0
    assert e2e.burst_efficiency(_burst(10, 1.0, missing=5), [100.0, 300.0], cores=2) == 0.5
    assert report.judge("burst_efficiency", 0.85, {}) is True and report.judge("burst_efficiency", 0.8, {}) is False


def test_plot_is_a_png(tmp_path):
    path = plots.e2e_latency(tmp_path / "lat.png", [("1mp", [100.0, 120.0]), ("12mp", [500.0, 650.0])], 600)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size == (plots.WIDTH, plots.HEIGHT)
    assert plots.nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_bare_reference_uses_the_core_default_encoder_and_quality():
    data = photo_jpeg(64, 48)
    description, bare = speed.bare_encoder()
    out = bare(data, 70)
    with Image.open(io.BytesIO(out)) as img:
        assert img.size == (64, 48)
    assert "quality as compress() reported" in description


def test_quality_run_and_report_on_tiny_photos(tmp_path):
    from bench import quality
    from bench.__main__ import write_report
    from bench.corpus import Photo

    photos = [Photo(f"p{i}.jpg", camera_jpeg(photo_image(96, 64, seed=i)), 96, 64) for i in (1, 2)]
    q = quality.run(photos, speed.core_compress, ["pillow-optprog"], [85])
    assert [r.name for r in q.images] == ["p1.jpg", "p2.jpg"]
    for r in q.images:
        assert 0.0 < r.ssim <= 1.0
        assert r.baseline_bytes > 0 and 1 <= r.baseline_quality <= 100
    assert q.summary["min_ssim"] <= q.summary["median_ssim"]
    assert q.candidates[0].encoder == "pillow-optprog"

    overhead, refs = speed.codec_overhead(photos[:1], repeats=1, min_seconds=0.0)
    assert overhead[0].pairs == 1 and "bare" in refs
    figures = {key: q.summary.get(key) for key in report.KEYS}
    figures["codec_overhead_ratio"] = overhead[0].ratio
    details = {
        "quality": q.to_dict(),
        "overhead": {"reference": refs["bare"], "repeats": 1, "images": [vars(r) for r in overhead]},
        "e2e": {"latency": [], "burst": None, "error": "skipped in the unit test"},
    }
    meta = {
        "date": report.now_utc(),
        "mode": "quick",
        "mode_note": "unit test",
        "seconds": 1.0,
        "machine": report.machine_info(),
        "defaults": {"options": "CompressionOptions()", "encoder": "test"},
        "burst_count": 0,
    }
    doc = report.build_json(figures, {"e2e_p50_ms_12mp": "skipped in the unit test"}, details, meta)
    drawn = write_report(json.loads(json.dumps(doc)), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "| metric | value | goal | met |" in text
    assert "p1.jpg" in text and "skipped in the unit test" in text
    assert all((tmp_path / name).is_file() for name in drawn.values())


# --- peers, SSIMULACRA2 and the corpus readers ------------------------------------------------------------------


def test_match_interpolates_bytes_between_the_qualities_around_the_target():
    from bench.perceptual import match

    # A made-up encoder whose score rises 0.5 per quality step and whose size is 100 bytes per step.
    found = match(80.25, lambda q: 100 * q, lambda q: 40.0 + 0.5 * q, guess=50)
    assert found.quality == pytest.approx(80.5)
    assert found.bytes == pytest.approx(8050)
    assert not found.capped
    assert found.evaluations <= 8


def test_match_reports_a_cap_when_even_the_top_quality_falls_short():
    from bench.perceptual import match

    found = match(99.0, lambda q: q, lambda q: q / 2, guess=80)
    assert found.capped and found.quality == 100 and found.bytes == 100


def test_ssimulacra2_sees_colour_that_luma_ssim_cannot():
    from bench.perceptual import reference_bytes, ssimulacra2

    image = photo_image(96, 64)
    y, cb, cr = image.convert("YCbCr").split()
    shifted = Image.merge("YCbCr", (y, cb.point(lambda v: min(255, v + 24)), cr)).convert("RGB")
    reference = reference_bytes(image)
    luma_ssim = metrics.ssim(metrics.luma(image), metrics.luma(shifted))
    assert ssimulacra2(reference, reference) == pytest.approx(100.0)
    assert ssimulacra2(reference, reference_bytes(shifted)) < 90.0
    assert luma_ssim > 0.98  # the colour cast is (nearly) invisible to luma SSIM


def test_peer_encoders_give_decodable_jpegs_that_shrink_with_quality():
    from bench import peers

    image = photo_image(96, 64)
    for name, (encode, _) in peers.PEERS.items():
        low, high = encode(image, 40), encode(image, 90)
        assert low[:3] == b"\xff\xd8\xff", name
        assert len(low) < len(high), name
        with Image.open(io.BytesIO(high)) as img:
            assert img.size == (96, 64)
    with Image.open(io.BytesIO(peers.mozjpeg(image, 80))) as img:
        assert img.info.get("progressive")  # sharp's preset is progressive
    out = peers.libvips_mozjpeg(camera_jpeg(image))
    assert out[:2] == b"\xff\xd8"


def test_deb_member_reads_a_file_out_of_an_ar_archive(tmp_path):
    import lzma
    import tarfile

    from bench.corpus import _deb_member

    payload = b"hello picture"
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        info = tarfile.TarInfo("./usr/share/backgrounds/a.jpg")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    data = lzma.compress(tar_buf.getvalue())

    def member(name: str, body: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode()
        return header + body + (b"\n" if len(body) % 2 else b"")

    deb = tmp_path / "x_1_all.deb"
    deb.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("data.tar.xz", data))
    assert _deb_member(deb, "usr/share/backgrounds/a.jpg") == payload


def test_missing_corpus_package_is_left_out_with_a_clear_message(tmp_path):
    from bench import corpus

    photos = corpus.load_photos(("text", "china"), cache_dir=None, packages_dir=tmp_path)
    assert [p.name for p in photos] == ["text"]
    assert corpus.missing_sources(("text", "china"), tmp_path) == ["china (scikit-learn==1.6.1)"]
    with pytest.raises(corpus.CorpusError, match="make bench-corpus"):
        corpus.load_photos(("china",), cache_dir=None, packages_dir=tmp_path, strict=True)


def test_corpus_has_at_least_25_photos_with_the_required_kinds():
    from bench import corpus

    assert len(corpus.SOURCES) >= 25
    tags = " ".join(s.tags for s in corpus.SOURCES)
    for kind in ("face", "foliage", "text", "screenshot", "night"):
        assert kind in tags
    assert sum(1 for s in corpus.SOURCES if "MP:" in s.tags and float(s.tags.split(" MP")[0]) >= 4) >= 10


def test_side_by_side_comparison_on_tiny_photos():
    from bench import quality, sidebyside
    from bench.corpus import Photo

    photos = [Photo(f"p{i}", camera_jpeg(photo_image(96, 64, seed=i)), 96, 64) for i in (1, 2)]
    q = quality.run(photos, speed.core_compress, [], [])
    side = sidebyside.compare(q.references, q.outputs, ["mozjpeg"], ["mozjpeg", "jpegli"], with_defaults=False)
    summary = side["summary"]
    assert summary["min_ssimulacra2"] <= summary["median_ssimulacra2"] <= 100
    ratio = summary["bytes_ratio_vs_mozjpeg_at_equal_ssimulacra2"]
    assert ratio == summary["ratios"]["mozjpeg"]["ssimulacra2"]["median"] and 0.2 < ratio < 5
    assert summary["ratios"]["jpegli"]["ssimulacra2"] is None  # jpegli was only matched at equal SSIM
    assert summary["ratios"]["jpegli"]["ssim"]["photos"] == 2
    row = side["photos"][0]
    assert row["peers"]["mozjpeg"]["ssimulacra2_bytes"] > 0 and row["defaults"] == {}
