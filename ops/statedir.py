"""Where a local stack's files are: every name in its state directory, and the project paths ``up`` uses.

This module is the one place that spells those names; :mod:`ops.local` (which decides what to start and stop) and
:mod:`ops.launch` (which starts the processes) both take them from here. The state directory (``.local/`` or
``LOCALCLOUD_STATE_DIR``) holds:

- ``stack.json``: the stack file the dashboard reads (:mod:`ops.stackfile`); ``.lock``: held by ``up``/``down``;
- ``server.pid``/``server.log``, ``lambda-cache/``: the embedded server;
- ``ministack.pid``/``ministack.log``, ``ministack-tmp/``: MiniStack;
- ``dashboard.pid``/``dashboard.log``: Streamlit;
- ``snapshot/``: the embedded stack as it was right after its last apply on a fresh server (:mod:`ops.snapshot`);
- ``persist/``: the data ``down`` saved with persistence on (``PERSIST=1``), for the next ``up`` (:mod:`ops.datadir`);
- ``tfstate/``: the Terraform data and state of an isolated stack (any state directory but the project's own
  ``.local/``: the tests, the bench), with ``tfstate/root/``, its private copy of the local root.

The project's own stack keeps its Terraform state where Terraform users look, in ``terraform/envs/local``, with
``up``'s variables in ``terraform/envs/local/local-up.auto.tfvars.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ops import datadir, defaults, procs, stackfile, terraform
from ops import snapshot as snapshots
from ops.procs import LocalCloudError

#: Held by every ``python -m ops up|down|reset`` on the state directory.
LOCK_FILE = ".lock"
SERVER_PID = "server.pid"
SERVER_LOG = "server.log"
#: The embedded server's extracted function and layer zips.
LAMBDA_CACHE = "lambda-cache"
MINISTACK_PID = "ministack.pid"
MINISTACK_LOG = "ministack.log"
#: MiniStack's temporary files (its functions' code, its own pid file).
MINISTACK_TMP = "ministack-tmp"
DASHBOARD_PID = "dashboard.pid"
DASHBOARD_LOG = "dashboard.log"
#: The data kept across ``down``/``up`` with persistence on.
PERSIST_DIR = "persist"
#: An isolated stack's Terraform data directory and state.
TFSTATE_DIR = "tfstate"
#: Folder of :data:`TFSTATE_DIR` that holds an isolated stack's private copy of the local root.
PRIVATE_ROOT_DIR = "root"
#: The variables ``make local-up`` applied, in the local root where every Terraform command there loads them.
LOCAL_UP_TFVARS = "local-up.auto.tfvars.json"


@dataclass(frozen=True, slots=True)
class StateFiles:
    """The files of one state directory: the processes' pid files and logs, the caches, the stack file."""

    state_dir: Path

    @property
    def stack_file(self) -> Path:
        """The stack file (``stack.json``)."""
        return self.state_dir / stackfile.STATE_FILE

    @property
    def server_pid(self) -> procs.PidFile:
        """The embedded server's pid file."""
        return procs.PidFile(self.state_dir / SERVER_PID)

    @property
    def server_log(self) -> Path:
        """The embedded server's log."""
        return self.state_dir / SERVER_LOG

    @property
    def lambda_cache(self) -> Path:
        """The embedded server's cache of extracted zips."""
        return self.state_dir / LAMBDA_CACHE

    @property
    def ministack_pid(self) -> procs.PidFile:
        """MiniStack's pid file."""
        return procs.PidFile(self.state_dir / MINISTACK_PID)

    @property
    def ministack_log(self) -> Path:
        """MiniStack's log."""
        return self.state_dir / MINISTACK_LOG

    @property
    def ministack_tmp(self) -> Path:
        """MiniStack's ``TMPDIR``."""
        return self.state_dir / MINISTACK_TMP

    @property
    def dashboard_pid(self) -> procs.PidFile:
        """The dashboard's pid file."""
        return procs.PidFile(self.state_dir / DASHBOARD_PID)

    @property
    def dashboard_log(self) -> Path:
        """The dashboard's log."""
        return self.state_dir / DASHBOARD_LOG

    @property
    def snapshot(self) -> snapshots.Snapshot:
        """The embedded stack's snapshot (``snapshot/``)."""
        return snapshots.Snapshot(self.state_dir / snapshots.SNAPSHOT_DIR)

    @property
    def persisted(self) -> datadir.Persisted:
        """The data kept across ``down``/``up`` with persistence on (``persist/``)."""
        return datadir.Persisted(self.state_dir / PERSIST_DIR)

    def emulator_logs(self) -> list[Path]:
        """Return the local cloud logs that exist (the embedded server's, MiniStack's), in that order."""
        return [log for log in (self.server_log, self.ministack_log) if log.is_file()]

    def forget_processes(self) -> None:
        """Remove the stack file and what the processes left (pid files, logs, caches); snapshot and data stay."""
        for path in (self.stack_file, self.server_pid.path, self.server_log, self.dashboard_pid.path):
            path.unlink(missing_ok=True)
        for path in (self.dashboard_log, self.ministack_pid.path, self.ministack_log):
            path.unlink(missing_ok=True)
        for directory in (self.lambda_cache, self.ministack_tmp):
            shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Paths(StateFiles):
    """The files of one local stack: its state directory's (:class:`StateFiles`) and the project's it uses."""

    root: Path

    @property
    def tf_root(self) -> Path:
        """The local Terraform root module of this project."""
        return self.root / terraform.LOCAL_ROOT.relative_to(terraform.REPO_ROOT)

    @property
    def tf_state(self) -> Path | None:
        """Terraform's data directory and state of an isolated stack; ``None`` for the project's own stack.

        ``None`` means the root module's defaults (``.terraform/`` and ``terraform.tfstate`` in :attr:`tf_root`),
        where ``tflocal output``/``plan``/``apply`` run by hand find the stack ``make local-up`` applied.
        """
        if self.state_dir == (self.root / ".local").resolve():
            return None
        return self.state_dir / TFSTATE_DIR

    @property
    def tf_state_file(self) -> Path:
        """The Terraform state file of this stack (where Terraform reads and writes it)."""
        if self.tf_state is None:
            return self.tf_root / "terraform.tfstate"
        return self.tf_state / "terraform.tfstate"

    @property
    def local_up_tfvars(self) -> Path:
        """``up``'s variables in :attr:`tf_root` (the project's own stack only)."""
        return self.tf_root / LOCAL_UP_TFVARS

    def shown(self, path: Path) -> str:
        """Return ``path`` relative to the project root when it is inside it (``.local/snapshot``), else absolute."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def compose_file(self) -> Path:
        """The LocalStack compose file."""
        return self.root / "docker-compose.yml"

    @property
    def build_dir(self) -> Path:
        """Where ``make build`` writes the artifacts."""
        return self.root / defaults.BUILD_DIR.name

    @property
    def function_dir(self) -> Path:
        """The function's sources (``lambda/``), which hot reload runs live."""
        return self.root / defaults.FUNCTION_SOURCE_DIR.name


def paths(root: Path | None = None, state_dir: Path | None = None) -> Paths:
    """Return the :class:`Paths` of the stack of project ``root`` (default: this checkout).

    ``state_dir`` defaults to ``LOCALCLOUD_STATE_DIR`` or ``<root>/.local`` (:func:`ops.stackfile.state_dir`); both
    are resolved.
    """
    root = (root or stackfile.PROJECT_ROOT).resolve()
    return Paths(state_dir=(state_dir or stackfile.state_dir(root)).resolve(), root=root)


def private_project(tf_state: Path) -> Path:
    """Return the folder of an isolated stack's private copy of the local root, given its Terraform state directory.

    The copy sits at the root's path relative to the project (``terraform/envs/local``) inside it, so the relative
    paths of the root's ``*.tf`` files reach the links beside it.
    """
    return tf_state / PRIVATE_ROOT_DIR


@contextlib.contextmanager
def locked(p: StateFiles) -> Iterator[None]:
    """Hold an exclusive lock on the state directory, so two ``up``/``down`` runs do not interleave.

    Raises
    ------
    LocalCloudError
        At once, when another ``python -m ops`` command holds it.
    """
    p.state_dir.mkdir(parents=True, exist_ok=True)
    with open(p.state_dir / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalCloudError(
                f"another `python -m ops` command is working on {p.state_dir}; wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
