"""Which Python runs a function locally, and whether its layers can be used with it.

The truest local run uses an interpreter of the function's runtime version (python3.13 for ``python3.13``) with the
deployed layers on ``sys.path``, as on Lambda. That only works when the layer's compiled extensions were built for
this machine's interpreter version and CPU. Otherwise the function runs with the project's own interpreter and
installed packages, and the function's log says so.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

# Pure-Python packages that AWS's Python runtimes ship (boto3 and its dependencies). On Lambda they live in the
# runtime, not in a layer; locally they are linked from the project's environment into a directory placed after the
# layers on sys.path.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

_EXT_TAG = re.compile(r"\.cpython-(?P<ver>\d)(?P<minor>\d+)[a-z]*-(?P<arch>[a-z0-9_]+)-linux-(?P<libc>gnu|musl)\.so$")
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True, slots=True)
class RuntimeChoice:
    """How a function's worker is started.

    Attributes
    ----------
    python : str
        Interpreter executable for the worker.
    use_layers : bool
        Put the layers' ``python`` directories on ``sys.path`` (True) or rely on the interpreter's own packages.
    note : str | None
        A line for the function's log explaining a fallback; ``None`` when the run matches Lambda.
    """

    python: str
    use_layers: bool
    note: str | None = None


def runtime_version(runtime: str | None) -> tuple[int, int] | None:
    """Return ``(3, 13)`` for ``"python3.13"``; ``None`` for other runtimes or a missing runtime."""
    match = re.fullmatch(r"python(\d)\.(\d+)", runtime or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _candidates(version: tuple[int, int]) -> list[str]:
    name = f"python{version[0]}.{version[1]}"
    found: list[str] = []
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    pattern = str(Path.home() / ".pyenv" / "versions" / f"{version[0]}.{version[1]}*" / "bin" / name)
    found.extend(sorted(glob.glob(pattern), reverse=True))
    return found


_PROBED: dict[str, tuple[str, tuple[int, int]]] = {}
_PROBE_LOCK = threading.Lock()
PROBE_TIMEOUT_S = 60.0


def _interpreter_info(path: str) -> tuple[str, tuple[int, int]] | None:
    """Run ``path`` and return its real executable and version, or ``None`` when it does not start.

    pyenv shims exist on PATH even when the version is not active; running them is the only reliable check. Only
    an answer is remembered: a probe that failed (for instance timed out on a busy machine) is tried again next
    time, so one slow moment does not send every later worker to the fallback interpreter.
    """
    with _PROBE_LOCK:
        known = _PROBED.get(path)
    if known is not None:
        return known
    try:
        out = subprocess.run(
            [path, "-c", "import sys; print(sys.executable); print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=True,
        ).stdout.split("\n")
        major, minor = out[1].split()
        info = out[0], (int(major), int(minor))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    with _PROBE_LOCK:
        _PROBED[path] = info
    return info


def find_interpreter(version: tuple[int, int]) -> str | None:
    """Return the path of a working interpreter of ``version`` (PATH first, then ``~/.pyenv/versions``), or None."""
    for candidate in _candidates(version):
        info = _interpreter_info(candidate)
        if info and info[1] == version:
            return info[0]
    return None


def machine_arch() -> str:
    """Return this machine's CPU as Lambda names it in extension tags: ``x86_64`` or ``aarch64``."""
    machine = platform.machine().lower()
    return _MACHINE_ALIASES.get(machine, machine)


def layer_mismatch(layer_python_dirs: list[Path], version: tuple[int, int]) -> str | None:
    """Say why the layers' compiled extensions cannot load here, or return ``None`` when they can.

    Looks at every ``*.so`` file name in the layers (``_imaging.cpython-313-x86_64-linux-gnu.so``): each tagged
    extension must be for interpreter ``version``, this machine's CPU and glibc. Untagged and ``abi3`` extensions
    are accepted.
    """
    arch = machine_arch()
    libc = "gnu" if platform.libc_ver()[0] == "glibc" else "musl"
    for root in layer_python_dirs:
        for so in root.rglob("*.so"):
            match = _EXT_TAG.search(so.name)
            if not match:
                continue
            ext_version = (int(match.group("ver")), int(match.group("minor")))
            if ext_version != version:
                return (
                    f"the layer's {so.name} is built for Python {ext_version[0]}.{ext_version[1]}, "
                    f"not {version[0]}.{version[1]}"
                )
            if match.group("arch") != arch:
                return f"the layer's {so.name} is built for {match.group('arch')}, this machine is {arch}"
            if match.group("libc") != libc:
                return f"the layer's {so.name} needs {match.group('libc')} libc, this machine has {libc}"
    return None


def choose(runtime: str | None, layer_python_dirs: list[Path], project_python: str | None = None) -> RuntimeChoice:
    """Pick the interpreter for a function of ``runtime`` whose layers are extracted at ``layer_python_dirs``.

    Returns the runtime's own interpreter with the layers when one is installed, is not older than the Python
    running this code (whose pure-Python boto3 stands in for the one in Lambda's runtime) and the layers match
    this machine; otherwise ``project_python`` (default: the interpreter running this code) without the layers,
    with a note that says why.
    """
    fallback = project_python or sys.executable
    version = runtime_version(runtime)
    if version is None:
        return RuntimeChoice(
            fallback,
            False,
            f"local executor: running with {fallback} and project packages instead of the layers because "
            f"runtime {runtime!r} is not a Python runtime this executor knows",
        )
    if version < sys.version_info[:2]:
        return RuntimeChoice(
            fallback,
            False,
            f"local executor: running with {fallback} and project packages instead of the layers because "
            f"{runtime} is older than the project's Python {sys.version_info[0]}.{sys.version_info[1]}, whose "
            f"boto3 would stand in for the runtime's",
        )
    python = find_interpreter(version)
    if python is None:
        return RuntimeChoice(
            fallback,
            False,
            f"local executor: running with {fallback} and project packages instead of the layers because "
            f"no python{version[0]}.{version[1]} interpreter was found (on PATH or in ~/.pyenv/versions)",
        )
    mismatch = layer_mismatch(layer_python_dirs, version)
    if mismatch:
        return RuntimeChoice(
            fallback,
            False,
            f"local executor: running with {fallback} and project packages instead of the layers because {mismatch}",
        )
    return RuntimeChoice(python, True, None)


def link_runtime_packages(target: Path) -> Path:
    """Fill ``target`` with links to the project's copies of the packages AWS's Python runtime ships.

    Only pure-Python packages from :data:`RUNTIME_PACKAGES` that this interpreter can import are linked, so any
    Python 3 interpreter can use them. Returns ``target``. Safe to call repeatedly and from several threads.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        try:
            module = __import__(name)
        except ImportError:
            continue
        source = Path(module.__file__ or "")
        if source.name == "__init__.py":
            source = source.parent
        link = target / source.name
        if link.exists() or link.is_symlink():
            continue
        tmp = target / f".{source.name}.{os.getpid()}.tmp"
        try:
            tmp.symlink_to(source, target_is_directory=source.is_dir())
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)
    return target
