"""The files of persistence (``make local-up PERSIST=1``): the data kept across ``down``/``up``.

The steps that write and read them are :mod:`ops.persist`'s.

The state directory's ``persist/`` folder (names here, the folder from :mod:`ops.statedir`) holds:

- ``session.json``: written by an ``up`` with persistence on: the backend and the fingerprint of what that stack was
  applied with (:mod:`ops.snapshot`). It says "persistence is on" until ``down`` has saved the data.
- ``emulator.pickle`` (embedded): the local cloud's state saved by ``down`` (``POST /_localcloud/persist``,
  :mod:`localcloud.persistence`): the infrastructure with the data, and the asynchronous invocations not finished;
- ``ministack/`` (MiniStack): MiniStack's own persistence (``PERSIST_STATE``/``STATE_DIR``, ``S3_PERSIST``/
  ``S3_DATA_DIR``), written by MiniStack when it stops;
- ``terraform.tfstate``: Terraform's state of those resources, so the next ``up`` knows them;
- ``persisted.json``: written last by ``down``: when, which backend, the fingerprint, the outputs and how much data
  (objects, messages, log events, invocations not finished). Without it nothing is restored.

LocalStack keeps its data in its Docker volume (``PERSISTENCE=1`` passed through ``docker-compose.yml``): ``down``
then leaves the volume, ``reset`` removes it. ``reset`` removes this folder too; an ``up`` without persistence leaves
it alone and does not load it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops import defaults
from ops import snapshot as snapshots

#: LocalStack's name for the setting; ``make local-up PERSIST=1`` and ``PERSISTENCE=1`` both turn it on.
PERSIST_ENV = "PERSISTENCE"
FORMAT = 1
SESSION_FILE = "session.json"
META_FILE = "persisted.json"
MINISTACK_DIR = "ministack"
#: Seconds ``down`` lets running asynchronous invocations finish before saving them as unfinished (the default; the
#: environment variable below overrides it).
DRAIN_S = 30.0
DRAIN_ENV = "LOCALCLOUD_PERSIST_DRAIN_S"


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Return True when ``PERSISTENCE`` in ``env`` (default ``os.environ``) is one of ``1 true yes on``."""
    return (os.environ if env is None else env).get(PERSIST_ENV, "").strip().lower() in defaults.ON_WORDS


def drain_seconds(env: Mapping[str, str] | None = None) -> float:
    """Return how long ``down`` lets running invocations finish: ``LOCALCLOUD_PERSIST_DRAIN_S``, else :data:`DRAIN_S`.

    Raises
    ------
    ValueError
        When the variable is not a number of seconds (0 or more).
    """
    text = (os.environ if env is None else env).get(DRAIN_ENV, "").strip()
    seconds = float(text) if text else DRAIN_S
    if seconds < 0:
        raise ValueError(f"{DRAIN_ENV} must be 0 or more seconds, got {text!r}")
    return seconds


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


@dataclass(frozen=True, slots=True)
class Persisted(snapshots.Snapshot):
    """The ``persist/`` folder of one state directory: a snapshot's files and more.

    The emulator's and Terraform's state as in a snapshot, plus the session record, MiniStack's own folders and the
    metadata of a save (:attr:`meta_file`, written last).
    """

    @property
    def meta_file(self) -> Path:
        """What ``down`` saved and when; present only when the save is complete."""
        return self.directory / META_FILE

    @property
    def ministack_dir(self) -> Path:
        """MiniStack's own persistence folders (``state/`` and ``s3/``)."""
        return self.directory / MINISTACK_DIR

    def ministack_env(self) -> dict[str, str]:
        """Return the environment that turns MiniStack's own persistence on, with its files in :attr:`ministack_dir`."""
        return {
            "PERSIST_STATE": "1",
            "STATE_DIR": str(self.ministack_dir / "state"),
            "S3_PERSIST": "1",
            "S3_DATA_DIR": str(self.ministack_dir / "s3"),
        }

    def session(self) -> dict[str, Any] | None:
        """Return the running session's record (persistence is on), or ``None``."""
        return _read_json(self.directory / SESSION_FILE)

    def begin(self, backend: str, fingerprint: Mapping[str, str], outputs: Mapping[str, Any]) -> None:
        """Record that the stack ``up`` made on ``backend`` keeps its data: ``down`` saves it."""
        document = {"format": FORMAT, "backend": backend, "fingerprint": dict(fingerprint), "outputs": dict(outputs)}
        write_json(self.directory / SESSION_FILE, document)

    def end(self) -> None:
        """Forget the session record (``down`` is done, or the data is dropped)."""
        (self.directory / SESSION_FILE).unlink(missing_ok=True)

    def meta(self, backend: str | None = None) -> dict[str, Any] | None:
        """Return what ``down`` saved (``None``: nothing complete, or saved from another backend than ``backend``)."""
        meta = _read_json(self.meta_file)
        if meta is None or not self.tfstate_file.is_file():
            return None
        if backend is not None and meta.get("backend") != backend:
            return None
        if meta.get("backend") == "embedded" and not self.emulator_file.is_file():
            return None
        return meta

    def commit(self, session: Mapping[str, Any], tfstate: Path, saved: Mapping[str, Any]) -> dict[str, Any]:
        """Complete a save: Terraform's state, then the metadata (``saved``: the server's summary); return the meta.

        Raises
        ------
        OSError
            When a file cannot be written (the save stays incomplete and is not used).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tfstate, self.tfstate_file)
        meta = {
            "format": FORMAT,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "backend": session.get("backend"),
            "fingerprint": session.get("fingerprint") or {},
            "outputs": session.get("outputs") or {},
            "counts": dict(saved.get("counts") or {}),
            "pending_async": saved.get("pending_async"),
        }
        write_json(self.meta_file, meta)
        return meta

    def size_bytes(self) -> int:
        """Return the bytes the folder holds on disk (0 when there is none)."""
        if not self.directory.is_dir():
            return 0
        return sum(path.stat().st_size for path in self.directory.rglob("*") if path.is_file())

    def discard(self) -> bool:
        """Remove the folder; return True when there was saved data."""
        had = self.meta() is not None or self.ministack_dir.exists()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.directory)
        return had


def describe(meta: Mapping[str, Any] | None, size: int) -> str:
    """Return how much is stored, e.g. ``503 objects, 4 messages, 120 log events, 0 unfinished invocations, 3 MB``."""
    if meta is None:
        return "nothing stored"
    counts = dict(meta.get("counts") or {})
    labels = {"objects": "objects", "messages": "messages", "log_events": "log events"}
    parts = [f"{counts[name]} {label}" for name, label in labels.items() if name in counts]
    if meta.get("pending_async") is not None:
        parts.append(f"{meta['pending_async']} unfinished invocations")
    parts.append(f"{size / 1e6:.1f} MB")
    return f"{', '.join(parts)}; saved {meta.get('saved_at')} from {meta.get('backend')}"
