"""The local stack's state file, ``.local/stack.json``: which backend is up, where, and the Terraform outputs.

``python -m localcloud up`` writes it after a successful apply; ``down`` deletes it. The dashboard and other tools
read it to find the stack (it holds the stack's Terraform outputs), so its shape is a contract::

    {
      "version": 1,
      "backend": "embedded",                       # or "localstack"
      "endpoint": "http://localhost:4566",         # AWS_ENDPOINT_URL for boto3 / the aws CLI
      "region": "eu-west-1",
      "outputs": {"source_bucket": "...", "destination_bucket": "...", "failed_bucket": "...",
                  "sns_topic_arn": "...", "notifications_queue_url": "...", "function_name": "...",
                  "log_group_name": "...", "dlq_url": "...", ...},
      "server": {"pid": 1234, "log": "/abs/.local/server.log"},      # embedded only, else null
      "dashboard": {"pid": 1240, "url": "http://localhost:8501", "log": "/abs/.local/dashboard.log"} | null,
      "updated_at": "2026-11-28T13:40:00Z"
    }

The directory is ``.local/`` in the project root, or ``LOCALCLOUD_STATE_DIR`` when set.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_VERSION = 1
STATE_FILE = "stack.json"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Outputs every local stack has (the contract in DESIGN.md).
REQUIRED_OUTPUTS = (
    "source_bucket",
    "destination_bucket",
    "failed_bucket",
    "sns_topic_arn",
    "notifications_queue_url",
    "function_name",
    "log_group_name",
    "dlq_url",
)


def state_dir(root: Path | None = None) -> Path:
    """Return the state directory: ``LOCALCLOUD_STATE_DIR`` if set, else ``<root>/.local`` (root: the project)."""
    env = os.environ.get("LOCALCLOUD_STATE_DIR")
    if env:
        return Path(env).resolve()
    return (root or PROJECT_ROOT) / ".local"


@dataclass(slots=True)
class StackState:
    """Contents of ``stack.json`` (see the module docstring)."""

    backend: str
    endpoint: str
    region: str
    outputs: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] | None = None
    dashboard: dict[str, Any] | None = None
    updated_at: str = ""
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready document, ``version`` first."""
        data = asdict(self)
        return {"version": data.pop("version"), **data}


def save(state: StackState, directory: Path) -> Path:
    """Write ``state`` to ``directory/stack.json`` atomically (stamping ``updated_at``); return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    state.updated_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = directory / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load(directory: Path) -> StackState | None:
    """Return the state in ``directory/stack.json``, or ``None`` when there is none.

    Raises
    ------
    ValueError
        When the file exists but is not a state file this version understands (the message says to run
        ``make local-down``).
    """
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}); run `make local-down` and `make local-up` again") from exc
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is not a version-{STATE_VERSION} state file; run `make local-down` and try again")
    return StackState(
        backend=str(data.get("backend", "")),
        endpoint=str(data.get("endpoint", "")),
        region=str(data.get("region", "")),
        outputs=dict(data.get("outputs") or {}),
        server=data.get("server"),
        dashboard=data.get("dashboard"),
        updated_at=str(data.get("updated_at", "")),
    )
