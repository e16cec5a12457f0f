"""Reproducible build of the two Lambda artifacts: ``python -m tools.build`` (what ``make build`` runs).

Writes into ``build/`` (or ``--out``):

- ``lambda.zip``: the function code only: ``index.py`` at the root and the ``image_compressor`` package, without
  tests, images or bytecode; ``lambda.json`` beside it (handler, runtime, SHA-256).
- ``layer.zip``: ``python/...`` with Pillow, aws-lambda-powertools and their dependencies for python3.13
  on the chosen architecture (``LAMBDA_ARCH`` or ``--arch``, default x86_64); ``layer.json`` beside it.
  With several architectures (``--arch both``) each also gets ``layer-<arch>.zip``/``.json``; the first
  one listed is the one in ``layer.zip``.

Same inputs, same bytes: see :mod:`tools.detzip`. ``--from-docker-zip`` re-packs a layer made by
``make layer-docker`` with the same rules.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from ops.defaults import BUILD_DIR, FUNCTION_SOURCE_DIR, FUNCTION_ZIP, LAYER_ZIP, ROOT
from tools.detzip import DateTime, ZipEntry, ZipError, tree_entries, write_zip, zip_date_time
from tools.layer import (
    ARCHITECTURES,
    RUNTIME,
    BuildError,
    LayerTarget,
    build_layer,
    default_cache_dir,
    manifest_path,
    repack_layer,
    write_json,
)

log = logging.getLogger("tools.build")

LAMBDA_DIR = FUNCTION_SOURCE_DIR
REQUIREMENTS = ROOT / "layer" / "requirements.txt"
PACKAGE = "image_compressor"
HANDLER = "index.handler"

_EXCLUDED_DIRS = {"__pycache__", "tests", "test"}
_EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".jpg", ".jpeg"}


def _exclude_from_function(rel: PurePosixPath, is_dir: bool) -> bool:
    name = rel.name
    if name.startswith(".") or name.endswith(".egg-info"):
        return True
    if is_dir:
        return name in _EXCLUDED_DIRS
    return (
        rel.suffix.lower() in _EXCLUDED_SUFFIXES
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def function_entries(lambda_dir: Path = LAMBDA_DIR) -> list[ZipEntry]:
    """Return the zip entries of the function: ``index.py`` and the ``image_compressor`` package.

    Left out: ``__pycache__``/bytecode, tests (``tests/``, ``test_*.py``, ``*_test.py``, ``conftest.py``), JPEG
    files and hidden files. The package holds the function only (the CLI lives in ``cli/``); what it may import is
    pinned by ``tests/unit/test_architecture.py``.

    Raises
    ------
    BuildError
        When ``index.py`` or the package is missing.
    """
    index = lambda_dir / "index.py"
    package = lambda_dir / PACKAGE
    if not index.is_file():
        raise BuildError(f"{index} is missing; it holds the function's entry point {HANDLER}")
    if not (package / "__init__.py").is_file():
        raise BuildError(f"{package}/__init__.py is missing; the function's code lives in the {PACKAGE} package")
    entries = [ZipEntry("index.py", index.read_bytes())]
    entries += tree_entries(package, PACKAGE, exclude=_exclude_from_function)
    return entries


def build_function(
    out_dir: Path, *, lambda_dir: Path = LAMBDA_DIR, date_time: DateTime | None = None
) -> dict[str, Any]:
    """Write ``lambda.zip`` and ``lambda.json`` into ``out_dir`` and return the manifest.

    The manifest holds ``handler``, ``runtime``, ``sha256``, ``size`` and ``files`` (the zip's file names).
    """
    entries = function_entries(lambda_dir)
    out_zip = out_dir / FUNCTION_ZIP
    sha = write_zip(out_zip, entries, date_time=date_time)
    manifest = {
        "files": sorted(e.name for e in entries if not e.is_dir),
        "handler": HANDLER,
        "runtime": RUNTIME,
        "sha256": sha,
        "size": out_zip.stat().st_size,
    }
    write_json(manifest_path(out_zip), manifest)
    log.info("wrote %s (%d files, sha256 %s)", out_zip, len(manifest["files"]), sha[:12])
    return manifest


def build_layers(
    out_dir: Path,
    arches: Sequence[str],
    *,
    requirements: Path = REQUIREMENTS,
    cache_dir: Path | None = None,
    force: bool = False,
    date_time: DateTime | None = None,
) -> dict[str, dict[str, Any]]:
    """Build the layer for each of ``arches`` into ``out_dir`` and return their manifests by architecture.

    One architecture: ``layer.zip``/``.json``. Several: ``layer-<arch>.zip``/``.json`` for each, and
    a copy of the first as ``layer.zip``/``.json``. See :func:`tools.layer.build_layer` for the stamp rules.
    """
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    manifests: dict[str, dict[str, Any]] = {}
    primary = out_dir / LAYER_ZIP
    for arch in arches:
        out_zip = primary if len(arches) == 1 else out_dir / f"layer-{arch}.zip"
        manifests[arch] = build_layer(
            out_zip,
            target=LayerTarget(arch),
            requirements=requirements,
            cache_dir=cache_dir,
            force=force,
            date_time=date_time,
        )
    if len(arches) > 1:
        first = out_dir / f"layer-{arches[0]}.zip"
        shutil.copyfile(first, primary)
        shutil.copyfile(manifest_path(first), manifest_path(primary))
    return manifests


def parse_arches(value: str) -> list[str]:
    """Turn ``x86_64``, ``arm64``, ``both`` or a comma list into a list of Lambda architectures (order kept).

    Raises
    ------
    BuildError
        When a name is not a Lambda architecture.
    """
    if value.strip().lower() in {"both", "all"}:
        return list(ARCHITECTURES)
    arches: list[str] = []
    for part in value.split(","):
        arch = part.strip().lower()
        arch = {"amd64": "x86_64", "aarch64": "arm64"}.get(arch, arch)
        if arch not in ARCHITECTURES:
            raise BuildError(
                f"unknown architecture {part.strip()!r} (LAMBDA_ARCH or --arch); use x86_64, arm64 or both"
            )
        if arch not in arches:
            arches.append(arch)
    return arches


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.build",
        description="Build build/lambda.zip and build/layer.zip reproducibly, without Docker.",
    )
    parser.add_argument("--out", type=Path, default=BUILD_DIR, help="output folder (default: build/)")
    parser.add_argument(
        "--arch",
        default=os.environ.get("LAMBDA_ARCH") or "x86_64",
        help="layer architecture: x86_64, arm64, both, or a comma list; the first goes to layer.zip "
        "(default: $LAMBDA_ARCH or x86_64)",
    )
    parser.add_argument(
        "--only", choices=("function", "layer"), help="build just one artifact (default: both artifacts)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="wheel cache (default: $BUILD_CACHE_DIR or ~/.cache/jpeg-pipeline/wheels)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild the layer even if its inputs did not change")
    parser.add_argument(
        "--from-docker-zip",
        type=Path,
        metavar="ZIP",
        help="instead of pip, re-pack this layer zip (from make layer-docker) deterministically into "
        "<out>/layer.zip and write its manifest",
    )
    return parser


#: Lock file in the output directory: one build at a time writes there (two `make build`s, parallel test workers).
LOCK_FILE = ".build.lock"


@contextlib.contextmanager
def build_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` for the length of a build; a second build waits, then finds it current.

    Parameters
    ----------
    out : Path
        The output directory (created when missing); the lock file :data:`LOCK_FILE` lives in it.
    """
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another build in %s to finish", out)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the build from the command line; return 0 on success, 1 on a build error (message on stderr)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="build: %(message)s", stream=sys.stderr)
    try:
        date_time = zip_date_time()
        arches = parse_arches(args.arch)
        out: Path = args.out
        with build_lock(out):
            if args.from_docker_zip is not None:
                if len(arches) != 1:
                    raise BuildError("--from-docker-zip re-packs one layer: pass a single --arch")
                repack_layer(
                    args.from_docker_zip,
                    out / LAYER_ZIP,
                    target=LayerTarget(arches[0]),
                    requirements=REQUIREMENTS,
                    date_time=date_time,
                )
                return 0
            if args.only in (None, "function"):
                build_function(out, date_time=date_time)
            if args.only in (None, "layer"):
                build_layers(out, arches, cache_dir=args.cache_dir, force=args.force, date_time=date_time)
    except (BuildError, ZipError) as exc:
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
