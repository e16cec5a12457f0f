"""The stack file, ``.local/stack.json`` (a local :class:`ops.stack.Stack` on disk), and the stack outputs.

One parser (:func:`read`, :func:`load`: a :class:`~ops.stack.Stack`) and one writer (:func:`save`).

``python -m ops up`` (``make local-up``) writes it after a successful apply; ``down`` deletes it. The dashboard, the
tests and the bench read it to find the stack (it holds the stack's Terraform outputs), so its shape is a contract::

    {
      "version": 1,
      "backend": "embedded",                       # or "localstack"
      "endpoint": "http://localhost:4566",         # AWS_ENDPOINT_URL for boto3 / the aws CLI
      "region": "eu-west-1",
      "outputs": {"source_bucket": "...", "destination_bucket": "...", "failed_bucket": "...",
                  "sns_topic_arn": "...", "notifications_queue_url": "...", "function_name": "...",
                  "log_group_name": "...", "dlq_url": "...", ...},       # null outputs left out
      "server": {"pid": 1234, "log": "/abs/.local/server.log"},      # embedded only, else null
      "dashboard": {"pid": 1240, "url": "http://localhost:8501", "log": "/abs/.local/dashboard.log"} | null,
      "hot_reload_dir": "/abs/lambda" | null,      # optional: the function runs live from this directory
      "updated_at": "2026-11-28T13:40:00Z"
    }

The directory is ``.local/`` in the project root, or ``LOCALCLOUD_STATE_DIR`` when set. Only version-1 files are
read: anything else is refused with the fix (``make local-down``), whoever reads it. ``hot_reload_dir`` came later
within version 1: a file without it is a stack without hot reload.

The stack outputs (:data:`STACK_OUTPUTS`) are the names every root in ``terraform/envs`` exports; all but
:data:`OPTIONAL_OUTPUTS` (``notifications_queue_url``, null on AWS without an inspection queue; ``batch_bucket`` and
``batch_role_arn``, null where S3 Batch Operations is off) must have a value (:data:`REQUIRED_OUTPUTS`).
:func:`output_values` turns ``terraform output -json`` (or an already plain mapping) into plain values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops import defaults
from ops.stack import AWS_BACKEND, Stack

STATE_VERSION = 1
STATE_FILE = "stack.json"
#: Environment variable naming the state directory (default ``<project>/.local``).
STATE_DIR_ENV = "LOCALCLOUD_STATE_DIR"
PROJECT_ROOT = defaults.ROOT

#: The stack outputs every Terraform root exports (the contract in DESIGN.md), in this order.
STACK_OUTPUTS = (
    "source_bucket",
    "destination_bucket",
    "failed_bucket",
    "sns_topic_arn",
    "notifications_queue_url",
    "function_name",
    "log_group_name",
    "dlq_url",
    "batch_bucket",
    "batch_role_arn",
)
#: Outputs that may be null: the AWS root creates the inspection queue only on request; the S3 Batch Operations bucket
#: and role of backfill jobs exist only with ``batch_operations_enabled`` (AWS; Batch Operations is not emulated).
OPTIONAL_OUTPUTS = ("notifications_queue_url", "batch_bucket", "batch_role_arn")
#: Outputs a usable stack must have a value for.
REQUIRED_OUTPUTS = tuple(name for name in STACK_OUTPUTS if name not in OPTIONAL_OUTPUTS)


def state_dir(root: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Return the state directory: ``LOCALCLOUD_STATE_DIR`` if set, else ``<root>/.local`` (root: the project)."""
    value = (os.environ if env is None else env).get(STATE_DIR_ENV, "").strip()
    if value:
        return Path(value).resolve()
    return (root or PROJECT_ROOT) / ".local"


def output_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``name -> value`` from Terraform's ``output -json`` entries (``{"value": ...}``) or plain values."""
    return {
        str(name): value["value"] if isinstance(value, dict) and "value" in value else value
        for name, value in raw.items()
    }


def plain_outputs(raw: Mapping[str, Any]) -> dict[str, str]:
    """Return the outputs as strings, null outputs left out (for display and boto3 parameters)."""
    return {name: str(value) for name, value in output_values(raw).items() if value is not None}


def missing_outputs(outputs: Mapping[str, Any]) -> list[str]:
    """Return the :data:`REQUIRED_OUTPUTS` that ``outputs`` lacks or has no value for."""
    values = output_values(outputs)
    return [name for name in REQUIRED_OUTPUTS if not values.get(name)]


def document(stack: Stack) -> dict[str, Any]:
    """Return the stack file's JSON document of ``stack`` (the module docstring's shape, ``version`` first)."""
    return {
        "version": STATE_VERSION,
        "backend": stack.backend,
        "endpoint": stack.endpoint or "",
        "region": stack.region,
        "outputs": dict(stack.outputs),
        "server": dict(stack.server) if stack.server else None,
        "dashboard": dict(stack.dashboard) if stack.dashboard else None,
        "hot_reload_dir": stack.hot_reload_dir,
        "updated_at": stack.updated_at,
    }


def save(stack: Stack, directory: Path) -> Path:
    """Write ``stack`` to ``directory/stack.json`` atomically, stamped with the time; return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamped = document(stack) | {"updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    path = directory / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(stamped, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def load(directory: Path) -> Stack | None:
    """Return the stack in ``directory/stack.json``, or ``None`` when there is none.

    Raises
    ------
    ValueError
        As :func:`read`.
    """
    path = directory / STATE_FILE
    if not path.exists():
        return None
    return read(path)


def read(path: Path) -> Stack:
    """Return the stack the stack file ``path`` describes: the one parser of the format.

    A file with an endpoint is a local stack; one without describes an AWS stack (a region it lacks stays empty:
    :func:`ops.stack.read_stack_file` fills it from the environment). Null outputs are left out.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        When the file exists but is not a state file this version understands (the message names the file and says
        to run ``make local-down``).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}); run `make local-down` and `make local-up` again") from exc
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is not a version-{STATE_VERSION} state file; run `make local-down` and try again")
    if not isinstance(data.get("outputs") or {}, dict):
        raise ValueError(f"{path} has no 'outputs' object; run `make local-down` and `make local-up` again")
    endpoint = str(data.get("endpoint") or "") or None
    return Stack(
        target="local" if endpoint else "aws",
        backend=str(data.get("backend") or ("embedded" if endpoint else AWS_BACKEND)),
        region=str(data.get("region") or ""),
        endpoint=endpoint,
        outputs=plain_outputs(data.get("outputs") or {}),
        source=str(path),
        stack_file=str(path),
        hot_reload_dir=str(data["hot_reload_dir"]) if data.get("hot_reload_dir") else None,
        server=data.get("server"),
        dashboard=data.get("dashboard"),
        updated_at=str(data.get("updated_at", "")),
    )
