"""The ``image-compressor`` command: compress local JPEG files with the very same core as the Lambda function.

Not part of the function: this package lives outside ``lambda/`` (it needs rich, which the layer does not ship); it
imports the function package's core, settings and result record like any other client. The commands that act on a
deployed stack have a module each (``backfill``, ``redrive``, ``reprocess``, ``invoke``, ``iamreport``) over the
operations layer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from image_compressor.core import compress
from image_compressor.result import Result, Status
from image_compressor.settings import (
    DEFAULT_FIXED_QUALITY,
    DEFAULT_MAX_OBJECT_BYTES,
    DEFAULT_QUALITY,
    ENCODERS,
    CompressionOptions,
    SettingsError,
    parse_target_ssim,
)
from image_compressor_cli import backfill as backfill_cli
from image_compressor_cli import iamreport as iamreport_cli
from image_compressor_cli import invoke as invoke_cli
from image_compressor_cli import redrive as redrive_cli
from image_compressor_cli import reprocess as reprocess_cli
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

JPEG_SUFFIXES = (".jpg", ".jpeg")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_DEFAULTS = CompressionOptions()


class UsageError(Exception):
    """The command line cannot be run as given; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Job:
    """One input file and where its output goes.

    Attributes
    ----------
    source : Path
        The input file, as the user named it (or the folder they named joined with the path found under it).
    output : Path | None
        Where the result goes; ``None`` when the input cannot be processed at all (see ``error``).
    error : str | None
        Why the input fails before it is read (missing path, unreadable folder, output clash), else ``None``.
    """

    source: Path
    output: Path | None
    error: str | None = None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``image-compressor``; return the exit code.

    ``compress`` exit codes: 0 when every input was compressed or kept, 1 when at least one input failed, 2 for a
    usage error (bad option, or an ``--out`` that would overwrite inputs), 130 when interrupted. ``backfill`` runs
    :func:`image_compressor_cli.backfill.run`, ``redrive`` :func:`image_compressor_cli.redrive.run`, ``reprocess``
    :func:`image_compressor_cli.reprocess.run`, ``invoke`` :func:`image_compressor_cli.invoke.run` and ``iam-report``
    :func:`image_compressor_cli.iamreport.run` (their own exit codes).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "backfill":
        return backfill_cli.run(args)
    if args.command == "redrive":
        return redrive_cli.run(args)
    if args.command == "reprocess":
        return reprocess_cli.run(args)
    if args.command == "invoke":
        return invoke_cli.run(args)
    if args.command == "iam-report":
        return iamreport_cli.run(args)
    if args.keep_gps and not args.keep_metadata:
        parser.error("--keep-gps keeps GPS inside kept metadata: add --keep-metadata, or drop --keep-gps")
    try:
        options = CompressionOptions(
            quality=args.quality,
            max_dimension=args.max_dimension,
            keep_metadata=args.keep_metadata,
            keep_gps=args.keep_gps,
            encoder=args.encoder,
            target_ssim=args.target_ssim,
            min_quality=args.min_quality,
        )
    except SettingsError as exc:
        parser.error(str(exc))
    try:
        return run_compress(args.paths, args.out, options, as_json=args.json)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; outputs written so far are complete, the rest were not written\n")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``image-compressor`` (its ``--help`` documents every option and default)."""
    parser = argparse.ArgumentParser(
        prog="image-compressor",
        description="Compress JPEG files locally with the same core as the image-compressor Lambda function.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser(
        "compress",
        help="compress JPEG files and folders into an output folder",
        description=(
            "Compress JPEG files into --out. A PATH may be a file (compressed whatever its name) or a folder, "
            "searched recursively for *.jpg and *.jpeg (any case; hidden files and folders are skipped). Each output "
            "keeps its input's file name, and its path relative to a folder that was named. Outputs are never "
            "larger than inputs: when re-encoding does not help, the original bytes are written (kept-original). "
            "An input that cannot be compressed is reported as failed and writes no output; the run goes on."
        ),
        epilog=(
            "Exit status: 0 when every input was compressed or kept, 1 when some input failed, 2 on a usage error. "
            "Progress is shown on stderr when it is a terminal. Example: "
            "image-compressor compress --target-ssim 0.95 --max-dimension 2048 --out small/ photos/"
        ),
    )
    sub.add_argument("paths", nargs="+", metavar="PATH", help="JPEG files and/or folders to compress")
    sub.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="output folder (created if missing; required)"
    )
    sub.add_argument(
        "--quality",
        type=_quality,
        default=None,
        metavar="Q",
        help=f"JPEG quality 1-95: the highest quality the search may pick (default: {DEFAULT_QUALITY}), or with "
        f"--target-ssim off the quality of every image (default: {DEFAULT_FIXED_QUALITY})",
    )
    sub.add_argument(
        "--target-ssim",
        type=_target_ssim,
        default=_DEFAULTS.target_ssim,
        metavar="S",
        help="luma SSIM each image is compressed to: the lowest quality between --min-quality and --quality that "
        f"reaches it is used; 'off' for a fixed --quality (default: {_DEFAULTS.target_ssim})",
    )
    sub.add_argument(
        "--min-quality",
        type=_quality,
        default=_DEFAULTS.min_quality,
        metavar="Q",
        help=f"lowest quality the SSIM search may pick (default: {_DEFAULTS.min_quality})",
    )
    sub.add_argument(
        "--encoder",
        choices=ENCODERS,
        default=_DEFAULTS.encoder,
        help="jpegli: Google's jpegli, smallest files; pillow: libjpeg-turbo, about as fast, more bytes "
        f"(default: {_DEFAULTS.encoder})",
    )
    sub.add_argument(
        "--max-dimension",
        type=_positive,
        default=_DEFAULTS.max_dimension,
        metavar="N",
        help="downscale so the longest side is at most N pixels (default: keep the size)",
    )
    sub.add_argument(
        "--keep-metadata",
        action="store_true",
        help="keep EXIF, XMP, IPTC and comments, GPS still dropped (default: drop them; orientation is always "
        "applied to the pixels and the ICC profile kept)",
    )
    sub.add_argument(
        "--keep-gps",
        action="store_true",
        help="with --keep-metadata, also keep the GPS location (default: drop it)",
    )
    sub.add_argument(
        "--json",
        action="store_true",
        help="print one JSON array to stdout, one object per input (default: a summary table)",
    )
    backfill_cli.add_parser(commands)
    redrive_cli.add_parser(commands)
    reprocess_cli.add_parser(commands)
    invoke_cli.add_parser(commands)
    iamreport_cli.add_parser(commands)
    return parser


def run_compress(paths: Sequence[str], out_dir: Path, options: CompressionOptions, *, as_json: bool) -> int:
    """Compress every JPEG under ``paths`` into ``out_dir`` and report on stdout; return the exit code.

    Raises
    ------
    UsageError
        When ``out_dir`` is an input folder or a planned output would overwrite an input file.
    """
    jobs = plan_jobs(paths, out_dir)
    rows: list[dict[str, Any]] = []
    with _progress(len(jobs)) as advance:
        for job in jobs:
            rows.append(process(job, options))
            advance(job.source.name)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        _print_report(rows, sys.stdout)
    if not jobs:
        sys.stderr.write("no .jpg or .jpeg files found in the given paths\n")
    return EXIT_FAILED if any(row["status"] == Status.FAILED.value for row in rows) else EXIT_OK


def plan_jobs(paths: Sequence[str], out_dir: Path) -> list[Job]:
    """Expand ``paths`` into one job per input file, in the order given (folders sorted), with their outputs.

    A file goes to ``out_dir/<name>``; a JPEG found under a folder goes to ``out_dir/<path relative to the folder>``.
    ``out_dir`` itself is skipped while searching a folder that contains it. A missing path, an unreadable folder or
    a second input that would write the same output becomes a job with an ``error``.

    Raises
    ------
    UsageError
        When ``out_dir`` is one of the input folders, or an output would overwrite an input file.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a folder; name a folder (it is created if missing)")
    out_resolved = out_dir.resolve()
    jobs: list[Job] = []
    inputs: set[Path] = set()
    claimed: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if path.resolve() == out_resolved:
                raise UsageError(
                    f"--out {out_dir} is the input folder {raw}; compressing in place would overwrite the originals. "
                    "Choose another output folder."
                )
            found = list(_walk(path, out_dir, out_resolved))
        elif path.exists():
            found = [Job(path, out_dir / path.name)]
        else:
            found = [Job(path, None, "no such file or folder; check the path")]
        for job in found:
            if job.output is None:
                jobs.append(job)
                continue
            inputs.add(job.source.resolve())
            target = job.output.resolve()
            owner = claimed.get(target)
            if owner is None:
                claimed[target] = job.source.resolve()
                jobs.append(job)
            elif owner != job.source.resolve():
                jobs.append(
                    Job(
                        job.source,
                        None,
                        f"another input already writes {job.output}; compress files with the same name into "
                        "different --out folders",
                    )
                )
    for job in jobs:
        if job.output is not None and job.output.resolve() in inputs:
            raise UsageError(
                f"writing {job.output} would overwrite the input {job.output}; choose an --out folder that holds no "
                "input files"
            )
    return jobs


def process(job: Job, options: CompressionOptions) -> dict[str, Any]:
    """Compress one input with :func:`image_compressor.core.compress` and write its output; return its report row.

    The row holds ``source``, ``output`` (``None`` unless a file was written), then the result record's fields
    (``status``, ``input_bytes``, ``output_bytes``, ``width``, ``height``, ``quality``, ``ms``, ``reason``).
    Nothing raised by reading, compressing or writing escapes: it becomes a ``failed`` row with the reason.
    """
    start = time.perf_counter()

    def failed(reason: str, input_bytes: int = 0) -> dict[str, Any]:
        ms = (time.perf_counter() - start) * 1000.0
        return _row(job.source, None, Result(Status.FAILED, input_bytes, 0, 0, 0, 0, ms, reason))

    if job.error is not None or job.output is None:
        return failed(job.error or "no output path")
    try:
        size = job.source.stat().st_size
        if size > DEFAULT_MAX_OBJECT_BYTES:
            return failed(
                f"file is {size} bytes, more than the {DEFAULT_MAX_OBJECT_BYTES} byte limit of the function; "
                "such a file is not a usable JPEG upload",
                size,
            )
        data = job.source.read_bytes()
    except IsADirectoryError:
        return failed("is a folder, not a file")
    except OSError as exc:
        return failed(f"cannot read the file: {exc.strerror or exc}; check that it exists and is readable")
    try:
        compressed = compress(data, options)
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the run
        return failed(f"unexpected error while compressing: {type(exc).__name__}: {exc}; please report it", len(data))
    result = compressed.result
    if result.status is Status.FAILED or compressed.data is None:
        return _row(job.source, None, result)
    try:
        _write_atomic(job.output, compressed.data)
    except OSError as exc:
        return failed(
            f"cannot write {job.output}: {exc.strerror or exc}; check that --out is a writable folder", len(data)
        )
    return _row(job.source, job.output, result)


def _row(source: Path, output: Path | None, result: Result) -> dict[str, Any]:
    return {"source": str(source), "output": None if output is None else str(output), **result.to_dict()}


def _walk(folder: Path, out_dir: Path, out_resolved: Path) -> Iterator[Job]:
    errors: list[OSError] = []
    found: list[Job] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=errors.append):
        here = Path(dirpath)
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if (here / d).resolve() == out_resolved:
                sys.stderr.write(f"note: not searching {here / d}: it is the --out folder\n")
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(JPEG_SUFFIXES):
                continue
            source = here / name
            found.append(Job(source, out_dir / source.relative_to(folder)))
    for exc in errors:
        where = Path(exc.filename) if exc.filename else folder
        found.append(Job(where, None, f"cannot read the folder: {exc.strerror or exc}; check its permissions"))
    yield from found


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _progress(total: int) -> Iterator[Callable[[str], None]]:
    """Yield ``advance(name)``; draws a rich progress bar on stderr when stderr is a terminal and files > 1."""
    if total < 2 or not sys.stderr.isatty():
        yield lambda _name: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("compressing", total=total)
        yield lambda name: bar.update(task, advance=1, description=f"compressing {name}")


def _print_report(rows: list[dict[str, Any]], stream: TextIO) -> None:
    console = Console(file=stream, highlight=False, soft_wrap=True)
    failed = [r for r in rows if r["status"] == Status.FAILED.value]
    ok = [r for r in rows if r["status"] != Status.FAILED.value]
    if failed:
        console.print(f"Failed inputs ({len(failed)}, no output written):")
        for row in failed:
            console.print(f"  {row['source']}: {row['reason']}", markup=False)
    before = sum(r["input_bytes"] for r in ok)
    after = sum(r["output_bytes"] for r in ok)
    saved = (1.0 - after / before) * 100.0 if before else 0.0
    summary = Table(title="Summary", title_justify="left")
    for name in ("Files", "Compressed", "Kept original", "Failed", "Before", "After", "Saved"):
        summary.add_column(name, justify="right")
    summary.add_row(
        str(len(rows)),
        str(sum(r["status"] == Status.COMPRESSED.value for r in rows)),
        str(sum(r["status"] == Status.KEPT_ORIGINAL.value for r in rows)),
        str(len(failed)),
        _human(before),
        _human(after),
        f"{saved:.1f}%",
    )
    console.print(summary)
    if ok:
        files = "file" if len(ok) == 1 else "files"
        console.print(f"Before/After count the bytes of the {len(ok)} {files} written to the output folder.")


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def _quality(text: str) -> int:
    value = _int(text, "quality")
    if not 1 <= value <= 95:
        raise argparse.ArgumentTypeError(f"quality must be between 1 and 95, got {value}")
    return value


def _target_ssim(text: str) -> float | None:
    try:
        return parse_target_ssim(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"target SSIM must be above 0 and below 1 (for example 0.96), or off for a fixed --quality; got {text!r}"
        ) from None


def _positive(text: str) -> int:
    value = _int(text, "max-dimension")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {value}")
    return value


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
