"""Persistence's steps in ``up`` and ``down`` (``make local-up PERSIST=1``, LocalStack's ``PERSISTENCE=1``).

:mod:`ops.local` decides when; this module does each step and says what it did. The files are
:mod:`ops.datadir`'s (the state directory's ``persist/`` folder).

- :func:`decide` (``up``): is persistence on for this ``up``; a stack already up keeps its setting.
- :func:`restore` (``up``, a fresh emulator): the saved Terraform state goes back; the embedded cloud was started
  from the saved file (MiniStack and LocalStack load their own), and the apply is skipped when nothing it depends on
  changed since (embedded), else it runs on top of the data.
- :func:`save` (``down``, before anything stops): the embedded cloud drains and saves its data
  (``POST /_localcloud/persist``, :mod:`localcloud.persistence`). MiniStack saves as it stops; LocalStack's volume
  is kept.
- :func:`commit` (``down``, once stopped): Terraform's state and the metadata complete the save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localcloud.server import PERSIST_PATH
from ops import launch, localroot
from ops import snapshot as snapshots
from ops.datadir import describe, drain_seconds
from ops.procs import LocalCloudError
from ops.stack import Stack
from ops.statedir import Paths

Say = Callable[[str], None]


def decide(p: Paths, requested: bool, existing: Stack | None, say: Say) -> bool:
    """Return whether this ``up`` keeps data: as requested, or as the stack already up does; say so.

    Raises
    ------
    LocalCloudError
        When persistence is asked of a stack that is up without it (its emulator cannot save).
    """
    running = existing is not None and p.persisted.session() is not None
    if existing is not None and requested and not running:
        raise LocalCloudError(
            "the local cloud is up without persistence; run `make local-down`, then `make local-up PERSIST=1`"
        )
    if running and not requested:
        say("persistence stays on (this stack was started with PERSIST=1): `make local-down` saves its data")
    stored = p.persisted.meta()
    where = p.shown(p.persisted.directory)
    if requested or running:
        kept = describe(stored, p.persisted.size_bytes()) if stored else "nothing stored yet"
        say(f"persistence on: `make local-down` keeps the data in {where} ({kept})")
    elif stored is not None:
        say(f"persistence off: the data kept in {where} is not loaded (PERSIST=1 loads it, `make local-reset` forgets "
            "it)")  # fmt: skip
    return requested or running


def restore(
    p: Paths,
    backend: str,
    port: int,
    variables: dict[str, Any],
    data: dict[str, Any],
    current: Callable[[], snapshots.Fingerprint],
    say: Say,
) -> tuple[dict[str, Any] | None, bool]:
    """Finish starting from the data ``down`` saved (``data``: its metadata): put its Terraform state in place.

    Returns the outputs when the apply can be skipped (embedded, nothing changed since), else ``None``; and whether
    the data was loaded (the embedded cloud refuses a file of another moto or Python, and starts empty).
    """
    if backend == "embedded":
        restored, error = launch.restored_from(port)
        if restored != str(p.persisted.emulator_file):
            say(f"warning: the local cloud could not load the saved data ({error}); it starts empty")
            return None, False
    localroot.restore(p, variables, saved=p.persisted)
    say(f"restored the data from {p.shown(p.persisted.directory)} ({describe(data, p.persisted.size_bytes())})")
    changed = current().changed(data.get("fingerprint") or {})
    if backend != "embedded" or changed:
        why = f"changed since the data was saved: {', '.join(changed)}" if changed else f"{backend} loads its own data"
        say(f"applying on top of the data ({why})")
        return None, True
    return dict(data.get("outputs") or {}), True


def save(port: int, say: Say, drain_s: float | None = None) -> dict[str, Any]:
    """Make the embedded cloud on ``port`` drain and save its data; return its summary.

    ``drain_s``: how long running invocations may finish (default :func:`ops.datadir.drain_seconds`).

    Raises
    ------
    LocalCloudError
        When it could not save: nothing has been stopped, so nothing is lost.
    """
    try:
        drain_s = drain_seconds() if drain_s is None else drain_s
    except ValueError as exc:
        raise LocalCloudError(f"{exc}; nothing was stopped") from None
    say("saving the data (persistence on): running invocations finish, new requests wait ...")
    try:
        return launch.snapshot_localcloud(port, timeout=drain_s + 300, path=PERSIST_PATH, document={"drain_s": drain_s})
    except LocalCloudError as exc:
        raise LocalCloudError(
            f"{exc}; nothing was stopped: run `make local-down` again, or `make local-reset` to stop without keeping "
            "the data"
        ) from None


def commit(p: Paths, session: dict[str, Any], saved: dict[str, Any], say: Say) -> None:
    """Complete the data ``down`` saved with Terraform's state and the metadata; end the persistence session.

    ``saved`` is the embedded cloud's summary (:func:`save`; empty for MiniStack and LocalStack).
    """
    if session.get("backend") == "embedded" and not saved:
        say("warning: the embedded cloud was not running, so no data was saved; the data saved before is kept")
    elif p.tf_state_file.is_file():
        p.persisted.invalidate()
        try:
            meta = p.persisted.commit(session, p.tf_state_file, saved)
        except OSError as exc:
            say(f"warning: the data could not be kept ({exc}); the next local-up PERSIST=1 starts without it")
        else:
            say(f"kept the data in {p.shown(p.persisted.directory)} ({describe(meta, p.persisted.size_bytes())}): "
                "the next `make local-up PERSIST=1` restores it; `make local-reset` forgets it")  # fmt: skip
    p.persisted.end()
