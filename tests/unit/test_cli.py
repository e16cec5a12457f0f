"""The image-compressor CLI on a folder of good and bad files: JSON rows, outputs, exit codes, summary, options."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from image_compressor.core import compress
from image_compressor.settings import DEFAULT_MIN_QUALITY, CompressionOptions
from image_compressor_cli.main import main
from PIL import Image

from tests.jpegs import photo_image, photo_jpeg

ROW_KEYS = [
    "source",
    "output",
    "status",
    "input_bytes",
    "output_bytes",
    "width",
    "height",
    "quality",
    "ms",
    "reason",
]
GOOD = {
    "big.jpg": (1200, 900),
    "small.jpg": (320, 240),
    "sub/nested.JPEG": (640, 480),
    "sub/deeper/tiny.jpeg": (64, 48),
}
KEPT = "low.jpg"
BAD = ["png-named.jpg", "empty.jpg", "truncated.jpg"]


def already_small() -> bytes:
    """A JPEG our own encoder already wrote at quality 20: re-encoding it at the default quality range grows it."""
    return compress(photo_jpeg(64, 48), CompressionOptions(quality=20, target_ssim=None)).data


def _png() -> bytes:
    buf = io.BytesIO()
    photo_image(40, 30).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of mixed inputs (see :func:`make_photos`)."""
    return make_photos(tmp_path)


def make_photos(tmp_path: Path) -> Path:
    """A folder of mixed inputs: good JPEGs of several sizes (two nested), one already small, bad ones, non-JPEGs."""
    root = tmp_path / "photos"
    for rel, (w, h) in GOOD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(photo_jpeg(w, h, quality=95))
    (root / KEPT).write_bytes(already_small())
    (root / "png-named.jpg").write_bytes(_png())
    (root / "empty.jpg").write_bytes(b"")
    whole = photo_jpeg(400, 300)
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "notes.txt").write_text("not an image")
    (root / "picture.png").write_bytes(_png())
    (root / ".hidden.jpg").write_bytes(photo_jpeg(32, 32))
    return root


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    code = main(["compress", "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)  # the whole of stdout is one JSON document


def test_json_rows_for_a_mixed_folder(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, rows = run_json(capsys, "--out", str(out), str(photos))

    assert code == 1  # some inputs failed
    assert isinstance(rows, list)
    by_name = {Path(r["source"]).relative_to(photos).as_posix(): r for r in rows}
    assert set(by_name) == set(GOOD) | {KEPT} | set(BAD)  # no .txt, .png or hidden files
    # folders are searched top-down, each folder's files in name order
    top = sorted(["big.jpg", "small.jpg", KEPT, *BAD])
    assert [r["source"] for r in rows] == [str(photos / n) for n in [*top, "sub/nested.JPEG", "sub/deeper/tiny.jpeg"]]
    for row in rows:
        assert list(row) == ROW_KEYS
        assert isinstance(row["ms"], float) and row["ms"] >= 0

    for rel, (w, h) in GOOD.items():
        row = by_name[rel]
        source = photos / rel
        target = out / rel  # the relative path under the folder is kept, file name and case too
        assert row["status"] == "compressed"
        assert row["source"] == str(source)
        assert row["output"] == str(target)
        assert row["input_bytes"] == source.stat().st_size
        assert row["output_bytes"] == target.stat().st_size < row["input_bytes"]
        assert (row["width"], row["height"]) == (w, h)
        assert row["quality"] == compress(source.read_bytes()).result.quality  # the quality the search chose
        assert row["reason"] is None
        with Image.open(target) as img:
            assert img.format == "JPEG" and img.size == (w, h)

    kept = by_name[KEPT]
    assert kept["status"] == "kept-original"
    assert kept["reason"]
    assert (out / KEPT).read_bytes() == (photos / KEPT).read_bytes()
    assert kept["output_bytes"] == kept["input_bytes"]

    for rel in BAD:
        row = by_name[rel]
        assert row["status"] == "failed"
        assert row["output"] is None
        assert row["output_bytes"] == 0
        assert row["reason"]
        assert not (out / rel).exists()  # a failed input writes nothing
    assert by_name["empty.jpg"]["input_bytes"] == 0
    assert "PNG" in by_name["png-named.jpg"]["reason"]
    assert "truncated" in by_name["truncated.jpg"]["reason"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted([*GOOD, KEPT])


def test_all_good_inputs_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = tmp_path / "a.jpg", tmp_path / "b.jpeg"
    one.write_bytes(photo_jpeg(200, 100))
    two.write_bytes(photo_jpeg(100, 200))
    code, rows = run_json(capsys, "--out", str(tmp_path / "out"), str(one), str(two))
    assert code == 0
    assert [r["output"] for r in rows] == [str(tmp_path / "out" / "a.jpg"), str(tmp_path / "out" / "b.jpeg")]
    assert {r["status"] for r in rows} == {"compressed"}


def test_options_reach_the_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCamera"  # EXIF Make
    buf = io.BytesIO()
    photo_image(900, 600).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    source = tmp_path / "camera.jpg"
    source.write_bytes(buf.getvalue())

    args = ["--quality", "55", "--max-dimension", "300", "--out", str(tmp_path / "q"), str(source)]
    code, rows = run_json(capsys, *args)
    assert code == 0
    assert (rows[0]["quality"], rows[0]["width"], rows[0]["height"]) == (55, 300, 200)
    expected = compress(source.read_bytes(), CompressionOptions(quality=55, max_dimension=300)).data
    assert (tmp_path / "q" / "camera.jpg").read_bytes() == expected  # the very same core, same options
    with Image.open(tmp_path / "q" / "camera.jpg") as img:
        assert img.size == (300, 200)
        assert 0x010F not in img.getexif()  # metadata dropped by default

    code, rows = run_json(capsys, "--keep-metadata", "--out", str(tmp_path / "m"), str(source))
    searched = compress(source.read_bytes(), CompressionOptions(keep_metadata=True)).result.quality
    assert code == 0 and rows[0]["quality"] == searched and rows[0]["width"] == 900
    with Image.open(tmp_path / "m" / "camera.jpg") as img:
        assert img.getexif().get(0x010F) == "TestCamera"


def test_summary_table_in_plain_mode(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    by_reason = {rel: compress((photos / rel).read_bytes()).result.reason for rel in BAD}
    code = main(["compress", "--out", str(tmp_path / "out"), str(photos)])
    text = capsys.readouterr().out
    assert code == 1
    assert "Summary" in text and "Failed inputs" in text
    header = next(line for line in text.splitlines() if "Files" in line and "Saved" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "Files",
        "Compressed",
        "Kept original",
        "Failed",
        "Before",
        "After",
        "Saved",
    ]
    cells = next(line for line in text.splitlines() if line.startswith("│") and "%" in line)
    values = [c.strip() for c in cells.strip("│ ").split("│")]
    assert values[:4] == ["8", "4", "1", "3"]
    assert values[6].endswith("%") and 0 < float(values[6][:-1]) < 100
    for rel in BAD:
        assert f"  {photos / rel}: {by_reason[rel]}" in text.splitlines()


def test_missing_path_and_unreadable_file_are_failed_rows(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photos / "broken-link.jpg").symlink_to(photos / "gone.jpg")
    code, rows = run_json(capsys, "--out", str(tmp_path / "out"), str(tmp_path / "nothere.jpg"), str(photos))
    assert code == 1
    assert rows[0]["source"] == str(tmp_path / "nothere.jpg")
    assert rows[0]["status"] == "failed" and "no such file" in rows[0]["reason"]
    link = next(r for r in rows if r["source"].endswith("broken-link.jpg"))
    assert link["status"] == "failed" and "cannot read the file" in link["reason"]


def test_same_name_from_two_places_does_not_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg"
    first.write_bytes(photo_jpeg(200, 100))
    second.write_bytes(photo_jpeg(100, 200))
    code, rows = run_json(capsys, "--out", str(tmp_path / "out"), str(first), str(second))
    assert code == 1
    assert rows[0]["status"] == "compressed"
    assert rows[1]["status"] == "failed" and "already writes" in rows[1]["reason"]
    with Image.open(tmp_path / "out" / "x.jpg") as img:
        assert img.size == (200, 100)


def test_out_must_not_overwrite_inputs(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exc:
        main(["compress", "--out", str(photos), str(photos)])
    assert exc.value.code == 2
    assert "overwrite the originals" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exc:
        main(["compress", "--out", str(photos / "sub"), str(photos / "sub" / "nested.JPEG")])
    assert exc.value.code == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in photos.rglob("*") if p.is_file()} == before


def test_out_inside_an_input_folder_is_not_searched(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = photos / "compressed"
    code, rows = run_json(capsys, "--out", str(out), str(photos / "sub"))
    assert code == 0 and len(rows) == 2
    code = main(["compress", "--json", "--out", str(out), str(photos)])
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert not [r for r in rows if str(out) in r["source"]]  # earlier outputs are not compressed again
    assert f"not searching {out}: it is the --out folder" in captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compress", "--quality", "0", "--out", "o", "x.jpg"], "quality must be between 1 and 95"),
        (["compress", "--quality", "high", "--out", "o", "x.jpg"], "whole number"),
        (["compress", "--max-dimension", "-5", "--out", "o", "x.jpg"], "positive"),
        (["compress", "x.jpg"], "--out"),
        (["compress", "--out", "o"], "PATH"),
        (["compress", "--keep-gps", "--out", "o", "x.jpg"], "--keep-metadata"),
        (["resize", "x.jpg"], "invalid choice"),
        ([], "COMMAND"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_options_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compress", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in (
        "--quality Q",
        "(default: 95)",
        "--target-ssim S",
        "(default: 0.95)",
        "--min-quality Q",
        f"(default: {DEFAULT_MIN_QUALITY})",
        "--encoder {jpegli,pillow}",
        "(default: jpegli)",
        "--max-dimension N",
        "keep the size",
        "--keep-metadata",
        "--json",
    ):
        assert needle in text, needle


def test_target_ssim_min_quality_and_encoder_reach_the_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(photo_jpeg(500, 400, quality=95))
    cases = {
        "fixed": (["--target-ssim", "off", "--quality", "70"], CompressionOptions(target_ssim=None, quality=70)),
        "fixed-default": (["--target-ssim", "off"], CompressionOptions(target_ssim=None)),
        "target": (
            ["--target-ssim", "0.9", "--min-quality", "30"],
            CompressionOptions(target_ssim=0.9, min_quality=30),
        ),
        "pillow": (
            ["--encoder", "pillow", "--target-ssim", "off"],
            CompressionOptions(encoder="pillow", target_ssim=None),
        ),
    }
    quality = {}
    for name, (args, options) in cases.items():
        code, rows = run_json(capsys, *args, "--out", str(tmp_path / name), str(source))
        assert code == 0
        expected = compress(source.read_bytes(), options)
        assert rows[0]["quality"] == expected.result.quality
        assert (tmp_path / name / "photo.jpg").read_bytes() == expected.data  # the very same core, same options
        quality[name] = rows[0]["quality"]
    assert (quality["fixed"], quality["fixed-default"], quality["pillow"]) == (70, 85, 85)
    assert 30 <= quality["target"] < compress(source.read_bytes()).result.quality  # a lower target, a lower quality
    assert (tmp_path / "pillow" / "photo.jpg").read_bytes() != (tmp_path / "fixed-default" / "photo.jpg").read_bytes()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--target-ssim", "1.5"], "target SSIM must be above 0 and below 1"),
        (["--target-ssim", "high"], "target SSIM must be above 0 and below 1"),
        (["--encoder", "guetzli"], "invalid choice: 'guetzli'"),
        (["--min-quality", "0"], "quality must be between 1 and 95"),
    ],
)
def test_bad_search_options_are_usage_errors(
    args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compress", *args, "--out", str(tmp_path / "out"), str(tmp_path)])
    assert exc.value.code == 2
    assert words in capsys.readouterr().err
