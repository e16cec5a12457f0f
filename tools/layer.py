"""The function's layer (Pillow, jpegli, mozjpeg's lossless pass, numpy, Powertools), built without Docker.

From manylinux wheels for the Lambda runtime python3.13.

``pip download``/``pip install --target`` with ``--platform manylinux_2_28_<machine> --implementation cp
--python-version 3.13 --only-binary=:all:`` fetch exactly the wheels AWS Lambda would need, whatever machine builds.
Wheels are cached (default ``~/.cache/jpeg-pipeline/wheels``), so a second build needs no network. The installed tree
is cleaned (no ``bin/``, no bytecode), checked (every package pinned, no boto3/botocore, native code for the right
CPU) and zipped under ``python/`` with :mod:`tools.detzip`. A manifest (``layer.json``) records what is in the
zip; when the inputs did not change and the zip still matches it, the build is skipped.
"""

from __future__ import annotations

import contextlib
import email.parser
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tools.detzip import DateTime, sha256_file, tree_entries, write_zip, zip_date_time

log = logging.getLogger("tools.build")

PYTHON_VERSION = "3.13"
RUNTIME = "python3.13"
MANYLINUX = "manylinux_2_28"
#: Bump when the layout rules change, so stamps of older builds stop matching.
LAYER_FORMAT = 1
#: Provided by the Lambda runtime; a layer that ships them shadows the runtime's copy and bloats the zip.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Lambda architecture name -> (machine in wheel tags and .so names, ELF e_machine).
ARCHITECTURES: dict[str, tuple[str, int]] = {"x86_64": ("x86_64", 62), "arm64": ("aarch64", 183)}

_REQ_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.!+_-]+)$")


class BuildError(RuntimeError):
    """The build cannot go on; the message says what went wrong and what to do next."""


def normalize_name(name: str) -> str:
    """Return the PEP 503 normalised form of a package name (``Typing_Extensions`` -> ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, slots=True)
class LayerTarget:
    """The platform a layer is built for.

    Attributes
    ----------
    arch : str
        Lambda architecture name: ``x86_64`` or ``arm64``.
    """

    arch: str

    def __post_init__(self) -> None:
        """Refuse architectures Lambda does not have."""
        if self.arch not in ARCHITECTURES:
            raise BuildError(f"unknown Lambda architecture {self.arch!r}; use one of: {', '.join(ARCHITECTURES)}")

    @property
    def machine(self) -> str:
        """CPU name used in wheel tags and extension file names (``x86_64`` or ``aarch64``)."""
        return ARCHITECTURES[self.arch][0]

    @property
    def platform(self) -> str:
        """The pip ``--platform`` tag, e.g. ``manylinux_2_28_x86_64``."""
        return f"{MANYLINUX}_{self.machine}"

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every wheel platform tag accepted: ``manylinux_2_28`` and the older manylinux tags it runs (glibc 2.17+).

        pip does not widen an explicit ``--platform manylinux_2_28_*`` to older tags, and some pinned wheels (cffi)
        are tagged ``manylinux_2_17``/``manylinux2014`` only; Lambda's python3.13 runtime has glibc 2.34.
        """
        return (self.platform, f"manylinux_2_17_{self.machine}", f"manylinux2014_{self.machine}")

    @property
    def extension_suffix(self) -> str:
        """File-name suffix of CPython 3.13 extension modules on this platform."""
        return f".cpython-{PYTHON_VERSION.replace('.', '')}-{self.machine}-linux-gnu.so"


def parse_requirements(path: Path) -> dict[str, str]:
    """Read a requirements file in which every package is pinned with ``==``.

    Returns
    -------
    dict[str, str]
        Normalised package name -> version.

    Raises
    ------
    BuildError
        When the file is missing, a line is not ``name==version``, or a package is listed twice.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror}; it lists the layer's pinned packages") from None
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _REQ_LINE.match(line)
        if not match:
            raise BuildError(
                f"{path}:{number}: {raw.strip()!r} is not a pin; write every package as name==version "
                "(no ranges, options or URLs) so the layer is reproducible"
            )
        name = normalize_name(match.group(1))
        if name in pins:
            raise BuildError(f"{path}:{number}: {name} is listed twice; keep one pin")
        pins[name] = match.group(2)
    if not pins:
        raise BuildError(f"{path} pins no package; list at least pillow==<version>")
    return pins


def inputs_sha256(requirements: bytes, target: LayerTarget, date_time: DateTime) -> str:
    """Return the hash of everything that decides the layer's bytes (the stamp compared on the next build)."""
    key = json.dumps(
        {
            "requirements": hashlib.sha256(requirements).hexdigest(),
            "platform": target.platform,
            "python": PYTHON_VERSION,
            "format": LAYER_FORMAT,
            "date_time": list(date_time),
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Return the wheel cache: ``$BUILD_CACHE_DIR``, else ``$XDG_CACHE_HOME/jpeg-pipeline/wheels`` (~/.cache)."""
    env = os.environ if env is None else env
    if env.get("BUILD_CACHE_DIR"):
        return Path(env["BUILD_CACHE_DIR"]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "jpeg-pipeline" / "wheels"


def manifest_path(zip_path: Path) -> Path:
    """Return the manifest written beside a layer zip (``layer.zip`` -> ``layer.json``)."""
    return zip_path.with_suffix(".json")


def read_manifest(zip_path: Path) -> dict[str, Any] | None:
    """Return the manifest beside ``zip_path``, or ``None`` when it is missing or unreadable."""
    try:
        data = json.loads(manifest_path(zip_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_layer(
    out_zip: Path,
    *,
    target: LayerTarget,
    requirements: Path,
    cache_dir: Path,
    force: bool = False,
    date_time: DateTime | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Build the layer zip for ``target`` from pinned manylinux wheels, or keep the existing one if it is current.

    The existing zip is kept when its manifest records the same inputs (requirements file, platform, Python version,
    layout format, timestamp) and the zip's SHA-256 still matches; otherwise the wheels are installed from the cache
    (downloaded first when missing) and zipped. Either way the result has the same bytes for the same inputs.

    Parameters
    ----------
    out_zip : Path
        Where the zip goes; its manifest goes beside it with the suffix ``.json``.
    target : LayerTarget
        Lambda architecture to build for.
    requirements : Path
        Pinned requirements (``layer/requirements.txt``).
    cache_dir : Path
        Wheel cache shared by builds.
    force : bool
        Rebuild even when the stamp matches.
    date_time : tuple, optional
        Timestamp of every zip entry (default: :func:`tools.detzip.zip_date_time`).
    python : str
        Interpreter whose pip does the work.

    Returns
    -------
    dict
        The manifest (also written to disk).

    Raises
    ------
    BuildError
        When the wheels cannot be fetched, a package is unpinned, boto3/botocore sneak in, or the native code is
        not for ``target``.
    """
    date_time = zip_date_time() if date_time is None else date_time
    pins = parse_requirements(requirements)
    stamp = inputs_sha256(requirements.read_bytes(), target, date_time)
    current = read_manifest(out_zip)
    if (
        not force
        and current is not None
        and current.get("inputs_sha256") == stamp
        and out_zip.is_file()
        and sha256_file(out_zip) == current.get("sha256")
    ):
        log.info("%s is up to date (%s, inputs unchanged); --force rebuilds it", out_zip, target.arch)
        return current

    with tempfile.TemporaryDirectory(prefix="layer-") as tmp:
        staging = Path(tmp) / "python"
        install_wheels(staging, target=target, requirements=requirements, cache_dir=cache_dir, python=python)
        return finish_layer(staging, out_zip, target=target, pins=pins, stamp=stamp, date_time=date_time, builder="pip")


def repack_layer(
    source_zip: Path,
    out_zip: Path,
    *,
    target: LayerTarget,
    requirements: Path,
    date_time: DateTime | None = None,
) -> dict[str, Any]:
    """Check and re-zip a layer built elsewhere (``make layer-docker``) with the same rules as the pip build.

    The zip must hold ``python/...``. Its content is cleaned and checked like :func:`build_layer`'s, written
    deterministically to ``out_zip`` (which may be ``source_zip``) with a manifest marked ``"builder": "docker"``.
    Its stamp is the same as the pip build's, so ``make build`` keeps it until the inputs change.

    Raises
    ------
    BuildError
        When the zip is missing or unreadable, has no ``python/`` folder, or fails the layer checks.
    """
    date_time = zip_date_time() if date_time is None else date_time
    pins = parse_requirements(requirements)
    stamp = inputs_sha256(requirements.read_bytes(), target, date_time)
    with tempfile.TemporaryDirectory(prefix="layer-") as tmp:
        try:
            with zipfile.ZipFile(source_zip) as zf:
                _extract_keeping_modes(zf, Path(tmp))
        except (OSError, zipfile.BadZipFile) as exc:
            raise BuildError(
                f"cannot read layer zip {source_zip}: {exc}; build it again with make layer-docker"
            ) from None
        staging = Path(tmp) / "python"
        if not staging.is_dir():
            raise BuildError(f"{source_zip} has no python/ folder; a Lambda Python layer keeps its packages there")
        return finish_layer(
            staging, out_zip, target=target, pins=pins, stamp=stamp, date_time=date_time, builder="docker"
        )


def install_wheels(staging: Path, *, target: LayerTarget, requirements: Path, cache_dir: Path, python: str) -> None:
    """Install the pinned wheels for ``target`` into ``staging`` from the cache, downloading what is missing first.

    Raises
    ------
    BuildError
        When pip is missing or the wheels can be neither found in the cache nor downloaded.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    platform_args = [
        *(arg for tag in target.platforms for arg in ("--platform", tag)),
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--abi",
        f"cp{PYTHON_VERSION.replace('.', '')}",
        "--only-binary=:all:",
        "--progress-bar",
        "off",
        "--requirement",
        str(requirements),
    ]
    install = [
        *_pip(python),
        "install",
        "--no-index",
        "--find-links",
        str(cache_dir),
        "--target",
        str(staging),
        "--no-compile",
        "--no-warn-script-location",
        *platform_args,
    ]
    with _locked(cache_dir):
        if _run(install).returncode == 0:
            log.info("layer %s: installed from the wheel cache %s", target.arch, cache_dir)
            return
        shutil.rmtree(staging, ignore_errors=True)
        log.info("layer %s: downloading wheels for %s/cp313 into %s", target.arch, target.platform, cache_dir)
        download = _run([*_pip(python), "download", "--dest", str(cache_dir), *platform_args])
        if download.returncode != 0:
            raise BuildError(
                f"pip could not download the layer's wheels for {target.platform} / CPython {PYTHON_VERSION}.\n"
                f"pip said:\n{_tail(download)}\n"
                "What to do: if PyPI is unreachable, check the network or proxy (HTTPS_PROXY, PIP_INDEX_URL) and run "
                "`make build` again; once downloaded, the wheels stay cached in "
                f"{cache_dir} and later builds work offline (BUILD_CACHE_DIR moves the cache; copying the .whl files "
                "there works too). If a version has no wheel for this platform, change its pin in "
                f"{requirements}. With a Docker engine, `make layer-docker` builds the layer instead."
            )
        result = _run(install)
        if result.returncode != 0:
            raise BuildError(
                f"pip could not install the layer's wheels for {target.platform} from {cache_dir}.\n"
                f"pip said:\n{_tail(result)}\nWhat to do: delete {cache_dir} and run `make build` again."
            )


def finish_layer(
    staging: Path,
    out_zip: Path,
    *,
    target: LayerTarget,
    pins: dict[str, str],
    stamp: str,
    date_time: DateTime,
    builder: str,
) -> dict[str, Any]:
    """Clean and check an installed tree, zip it under ``python/`` and write the manifest beside the zip.

    Cleaning removes ``bin/`` (console scripts carry the building machine's interpreter path), bytecode, and the
    lines for those scripts in ``RECORD`` files. Checks: the installed packages are exactly the pins, none of boto3,
    botocore or s3transfer is present, Pillow's ``_imaging`` extension exists for ``target``, and every ELF file is
    a 64-bit binary for ``target``'s CPU.

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    BuildError
        When a check fails; the message names the package or file.
    """
    _clean(staging)
    installed = _installed_versions(staging)
    for name in RUNTIME_PROVIDED:
        if name in installed or (staging / name).exists():
            raise BuildError(
                f"the layer would contain {name}, which the Lambda runtime already provides; remove it (and whatever "
                "pulls it in) from layer/requirements.txt"
            )
    extra = sorted(set(installed) - set(pins))
    if extra:
        listed = ", ".join(f"{n}=={installed[n]}" for n in extra)
        raise BuildError(f"unpinned dependencies were installed: {listed}; add them to layer/requirements.txt")
    wrong = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    if wrong:
        listed = ", ".join(f"{n}: pinned {v}, installed {got}" for n, (v, got) in sorted(wrong.items()))
        raise BuildError(f"installed versions differ from layer/requirements.txt ({listed}); rebuild the layer")
    imaging = staging / "PIL" / f"_imaging{target.extension_suffix}"
    if not imaging.is_file():
        found = sorted(p.name for p in (staging / "PIL").glob("_imaging.*")) if (staging / "PIL").is_dir() else []
        raise BuildError(
            f"the layer has no PIL/{imaging.name} (found: {', '.join(found) or 'no Pillow'}); "
            f"it must hold Pillow built for CPython {PYTHON_VERSION} on {target.platform}"
        )
    _check_elf(staging, target)

    sha = write_zip(out_zip, tree_entries(staging, "python"), date_time=date_time)
    manifest = {
        "architecture": target.arch,
        "builder": builder,
        "inputs_sha256": stamp,
        "machine": target.machine,
        "packages": dict(sorted(installed.items())),
        "platform": target.platform,
        "python_version": PYTHON_VERSION,
        "runtime": RUNTIME,
        "sha256": sha,
        "size": out_zip.stat().st_size,
    }
    write_json(manifest_path(out_zip), manifest)
    log.info("wrote %s (%s, %d bytes, sha256 %s)", out_zip, target.arch, manifest["size"], sha[:12])
    return manifest


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as sorted, indented JSON (stable bytes) to ``path`` atomically, unless it already holds it."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return  # unchanged: keep the file and its mtime
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _clean(staging: Path) -> None:
    shutil.rmtree(staging / "bin", ignore_errors=True)
    for cache in sorted(staging.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    for pyc in staging.rglob("*.py[co]"):
        pyc.unlink()
    for record in staging.glob("*.dist-info/RECORD"):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(("../", "bin/")) and "__pycache__" not in line]
        if kept != lines:
            record.write_text("".join(kept), encoding="utf-8")


def _extract_keeping_modes(zf: zipfile.ZipFile, dest: Path) -> None:
    """Extract ``zf`` into ``dest``, keeping each file's executable bit (``extractall`` drops Unix modes)."""
    for info in zf.infolist():
        path = Path(zf.extract(info, dest))
        mode = (info.external_attr >> 16) & 0o777
        if not info.is_dir() and mode:
            path.chmod(0o755 if mode & 0o111 else 0o644)


def _installed_versions(staging: Path) -> dict[str, str]:
    versions: dict[str, str] = {}
    for meta in sorted(staging.glob("*.dist-info/METADATA")):
        headers = email.parser.Parser().parsestr(meta.read_text(encoding="utf-8"), headersonly=True)
        versions[normalize_name(headers["Name"])] = headers["Version"]
    return versions


def _check_elf(staging: Path, target: LayerTarget) -> None:
    expected = ARCHITECTURES[target.arch][1]
    for path in sorted(staging.rglob("*.so*")):
        if not path.is_file():
            continue
        with path.open("rb") as fh:
            head = fh.read(20)
        if head[:4] != b"\x7fELF":
            continue
        machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
        if head[4] != 2 or machine != expected:
            rel = PurePosixPath(path.relative_to(staging).as_posix())
            raise BuildError(
                f"python/{rel} is native code for another CPU (ELF machine {machine}, expected {expected} for "
                f"{target.arch}); rebuild the layer for {target.arch}"
            )


def _pip(python: str) -> list[str]:
    return [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    except OSError as exc:
        raise BuildError(f"cannot run {cmd[0]}: {exc.strerror}; run `make install` to create the venv") from None


def _tail(result: subprocess.CompletedProcess[str], lines: int = 12) -> str:
    text = (result.stderr or "") + (result.stdout or "")
    if "No module named pip" in text:
        return "  pip is not installed in this interpreter; run `make install`"
    useful = [line for line in text.splitlines() if line.strip() and "is ignored: it is neither a file" not in line]
    return "\n".join(f"  {line}" for line in useful[-lines:]) or f"  (no output; exit code {result.returncode})"


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache so parallel builds do not read half-downloaded wheels."""
    with (cache_dir / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
