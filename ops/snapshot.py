"""The warm path of ``make local-up``: a snapshot of the embedded stack, and the fingerprint that says it still fits.

A first ``up`` on a fresh embedded server applies ``terraform/envs/local`` (about a minute: the AWS provider waits
about 25 s after creating each SQS queue, client-side) and then saves, in ``<state dir>/snapshot/``:

- ``emulator.pickle``: the server's AWS state right after that apply (written by the server,
  :mod:`localcloud.snapshot`): infrastructure only, no uploads, messages or logs of a session;
- ``terraform.tfstate``: Terraform's state of exactly those resources;
- ``snapshot.json``: the :class:`Fingerprint` of everything the apply depended on, the outputs and the date. It is
  written last, so a snapshot without it is incomplete and never used.

The next ``up`` that starts a fresh embedded server computes the fingerprint again. When it equals the saved one,
the server starts with the saved state, the Terraform state is put back where Terraform looks, and the apply is
skipped; otherwise (or when the server cannot load the file) ``up`` applies as on a first start and saves a new
snapshot. ``down`` keeps the snapshot (the fingerprint keeps it from confusing a later ``up``); ``reset`` removes it.

The fingerprint covers: the Terraform sources of the local root and the modules (contents, not dates; Terraform's
own working files excluded), the provider lock file, the variables ``up`` applies, both build artifacts, the port
(queue URLs in the state carry it), and the versions of Terraform, tflocal, moto, Python and the local cloud's code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import defaults

#: Version of the snapshot layout and fingerprint; a snapshot of another format is never used.
FORMAT = 1
#: The snapshot's directory inside the state directory.
SNAPSHOT_DIR = "snapshot"
EMULATOR_FILE = "emulator.pickle"
TFSTATE_FILE = "terraform.tfstate"
META_FILE = "snapshot.json"

#: Files in the Terraform directories that are Terraform's own working data or ``up``'s variables (covered by
#: the ``variables`` part), not sources: they never change the fingerprint.
_IGNORED_NAMES = {"localstack_providers_override.tf", "local-up.auto.tfvars.json"}
_IGNORED_MARKERS = (".tfstate", ".tfplan")
_LOCK_FILE = ".terraform.lock.hcl"


def file_digest(path: Path) -> str:
    """Return the SHA-256 of the file at ``path`` (hex), or ``"missing"`` when there is no such file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return "missing"
    return digest.hexdigest()


def _ignored(relative: Path) -> bool:
    """Return True for Terraform's working files and hidden files or directories (editor files, ``.terraform/``)."""
    if any(part.startswith(".") for part in relative.parts):
        return True
    name = relative.name
    return name in _IGNORED_NAMES or any(marker in name for marker in _IGNORED_MARKERS)


def tree_digest(directory: Path, suffixes: Iterable[str] | None = None) -> str:
    """Return one SHA-256 over the relative paths and contents of the source files under ``directory``.

    Terraform's working files (``.terraform/``, ``*.tfstate*``, plans, tflocal's override, the lock file, ``up``'s
    own variables file) are left out, and so is any file whose suffix is not in ``suffixes`` (when given).
    Modification times do not count. A missing directory has the digest of an empty one.
    """
    wanted = tuple(suffixes) if suffixes is not None else None
    digest = hashlib.sha256()
    files = sorted(path for path in directory.rglob("*") if path.is_file()) if directory.is_dir() else []
    for path in files:
        relative = path.relative_to(directory)
        if _ignored(relative) or (wanted is not None and path.suffix not in wanted):
            continue
        digest.update(relative.as_posix().encode() + b"\0" + file_digest(path).encode() + b"\n")
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def tool_versions(terraform_version: str) -> dict[str, str]:
    """Return the versions the snapshot depends on: Terraform (as given), tflocal, moto and this Python."""
    return {
        "terraform": terraform_version,
        "tflocal": _version("terraform-local"),
        "moto": _version("moto"),
        "python": ".".join(str(part) for part in sys.version_info[:3]),
    }


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a local apply depended on, part by part (name -> digest or version)."""

    parts: dict[str, str]

    @property
    def digest(self) -> str:
        """One SHA-256 over all parts."""
        return hashlib.sha256(json.dumps(self.parts, sort_keys=True).encode()).hexdigest()

    def changed(self, saved: Mapping[str, str]) -> list[str]:
        """Return the names of the parts that differ from ``saved`` (sorted; parts on one side only count).

        The provider lock file appearing (``missing`` on one side) is no change: the first ``terraform init`` in the
        root writes it, in whichever checkout or test ran first, and the provider's version is pinned by
        ``versions.tf`` anyway. A lock file whose content changed (another provider build) still counts.
        """
        return sorted(
            name
            for name in set(self.parts) | set(saved)
            if self.parts.get(name) != saved.get(name)
            and not (name == "provider_lock" and "missing" in (self.parts.get(name), saved.get(name)))
        )


def fingerprint(
    *,
    tf_root: Path,
    build_dir: Path,
    variables: Mapping[str, Any],
    port: int,
    versions: Mapping[str, str],
    localcloud_dir: Path = defaults.ROOT / "localcloud",
) -> Fingerprint:
    """Return the fingerprint of a local apply of ``tf_root`` with ``variables`` to an embedded cloud on ``port``.

    Parameters
    ----------
    tf_root : Path
        The local root module (``terraform/envs/local``); the modules are read from ``tf_root/../../modules``.
    build_dir : Path
        Where the artifacts are (``build/``): ``lambda.zip`` and ``layer.zip`` are hashed.
    variables : Mapping[str, Any]
        The variables ``up`` applies (region, ``hot_reload_dir``).
    port : int
        The embedded cloud's port.
    versions : Mapping[str, str]
        Tool versions (:func:`tool_versions`).
    localcloud_dir : Path
        The local cloud's sources (a snapshot holds objects of its moto seam).
    """
    parts = {
        "format": str(FORMAT),
        "terraform_root": tree_digest(tf_root),
        "terraform_modules": tree_digest(tf_root.parent.parent / "modules"),
        "provider_lock": file_digest(tf_root / _LOCK_FILE),
        "variables": json.dumps(dict(variables), sort_keys=True, default=str),
        "port": str(port),
        "localcloud": tree_digest(localcloud_dir, suffixes=(".py",)),
    }
    parts |= {name: file_digest(build_dir / name) for name in defaults.ARTIFACTS}
    parts |= {name: str(value) for name, value in versions.items()}
    return Fingerprint(parts)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The snapshot directory of one state directory (``<state dir>/snapshot``)."""

    directory: Path

    @property
    def emulator_file(self) -> Path:
        """The server's pickled AWS state."""
        return self.directory / EMULATOR_FILE

    @property
    def tfstate_file(self) -> Path:
        """Terraform's state of the snapshot's resources."""
        return self.directory / TFSTATE_FILE

    @property
    def meta_file(self) -> Path:
        """Fingerprint, outputs and date; present only when the snapshot is complete."""
        return self.directory / META_FILE

    def meta(self) -> dict[str, Any] | None:
        """Return the saved metadata, or ``None`` when there is no complete, readable snapshot."""
        try:
            data = json.loads(self.meta_file.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        if not (self.emulator_file.is_file() and self.tfstate_file.is_file()):
            return None
        return data

    def why_not(self, current: Fingerprint) -> str | None:
        """Return why this snapshot cannot stand in for an apply with ``current``, or ``None`` when it can."""
        meta = self.meta()
        if meta is None:
            return "no snapshot yet"
        changed = current.changed(meta.get("fingerprint") or {})
        if changed:
            return f"changed since the snapshot: {', '.join(changed)}"
        return None

    def invalidate(self) -> None:
        """Make the snapshot unusable (its metadata goes first) before its files are replaced."""
        self.meta_file.unlink(missing_ok=True)

    def commit(self, current: Fingerprint, tfstate: Path, outputs: Mapping[str, Any]) -> None:
        """Complete a snapshot whose emulator file the server has just written: Terraform state, then metadata.

        Raises
        ------
        OSError
            When the files cannot be written (the snapshot stays invalid).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tfstate, self.tfstate_file)
        meta = {
            "format": FORMAT,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fingerprint": current.parts,
            "outputs": dict(outputs),
        }
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".meta-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(meta, handle, indent=2)
        os.replace(tmp, self.meta_file)

    def put_tfstate(self, target: Path) -> None:
        """Copy the snapshot's Terraform state to ``target`` (where Terraform reads it)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.tfstate_file, target)

    def discard(self) -> bool:
        """Remove the snapshot; return True when there was one."""
        existed = self.directory.exists()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.directory)
        return existed
