"""The execution environment of a worker, as Lambda sets it up: ``sys.path`` and environment variables.

On Lambda the function code is ``/var/task`` and each layer is unpacked into ``/opt`` (``/opt/python`` and
``/opt/python/lib/python3.X/site-packages`` on ``sys.path``); the runtime sets ``AWS_LAMBDA_*``, ``_HANDLER``,
``LAMBDA_TASK_ROOT`` and friends, which the function's own configuration cannot override (:data:`RESERVED_ENV`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from localcloud import runtime
from localcloud.invocation import Credentials, FunctionSpec

# Variables Lambda sets itself and does not let a function override.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
        # Not reserved on AWS, but the executor owns it: it is how the function finds the local cloud.
        "AWS_ENDPOINT_URL",
    }
)


def layer_python_dirs(spec: FunctionSpec) -> list[Path]:
    """Return the ``python`` directory of each of ``spec``'s layers that has one, in configuration order."""
    return [d / "python" for d in spec.layer_dirs if (d / "python").is_dir()]


def worker_sys_path(
    spec: FunctionSpec, choice: runtime.RuntimeChoice, layer_python: list[Path], runtime_packages: Path
) -> list[str]:
    """Return the directories put in front of the worker's ``sys.path``.

    The code directory first; with ``choice.use_layers`` then each layer's ``site-packages`` and ``python``
    directories and last ``runtime_packages`` (the runtime's boto3, linked from the project's environment).
    """
    sys_path = [str(spec.code_dir)]
    if choice.use_layers:
        version = runtime.runtime_version(spec.runtime)
        assert version is not None
        for layer in layer_python:
            site = layer / "lib" / f"python{version[0]}.{version[1]}" / "site-packages"
            if site.is_dir():
                sys_path.append(str(site))
            sys_path.append(str(layer))
        sys_path.append(str(runtime.link_runtime_packages(runtime_packages)))
    return sys_path


def worker_environment(
    spec: FunctionSpec,
    stream: str,
    sys_path: list[str],
    notes: list[str],
    endpoint_url: str,
    pycache_dir: Path,
    runtime_dir: Path,
    credentials: Credentials | None = None,
) -> dict[str, str]:
    """Return the whole environment of a worker of ``spec`` writing to log stream ``stream``.

    The function's variables (reserved names left out) plus what Lambda sets, the credentials (a session of the
    function's role; without one the administrator's ``test`` keys), ``AWS_ENDPOINT_URL``
    (``endpoint_url``), bytecode in ``pycache_dir``, and the bootstrap's own ``LOCALCLOUD_SYS_PATH`` and
    ``LOCALCLOUD_INIT_NOTES`` (lines written to the log before the handler is imported).
    """
    env = {k: v for k, v in spec.environment if k not in RESERVED_ENV}
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONUNBUFFERED": "1",
            # Bytecode goes to the cache (not into the extracted code), so cold starts after the first are faster.
            "PYTHONPYCACHEPREFIX": str(pycache_dir),
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(runtime_dir),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_ACCESS_KEY_ID": credentials.access_key_id if credentials else "test",
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key if credentials else "test",
            "AWS_SESSION_TOKEN": credentials.session_token if credentials else "test",
            "AWS_ENDPOINT_URL": endpoint_url,
            # Keep the developer's own AWS profile and credentials away from the function.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "LOCALCLOUD_SYS_PATH": json.dumps(sys_path),
            "LOCALCLOUD_INIT_NOTES": json.dumps(notes),
        }
    )
    return env


def drop_bytecode(pycache_dir: Path, code_dir: Path) -> None:
    """Remove the cached bytecode of the sources under ``code_dir`` (``PYTHONPYCACHEPREFIX`` is ``pycache_dir``).

    For hot reload: Python trusts a ``.pyc`` whose recorded source mtime (whole seconds) and size match, so an edit
    within the same second that keeps the file's size would otherwise run the old bytecode.
    """
    # The mirror tree follows the path as it is on sys.path (not resolved): clear both spellings.
    for path in {code_dir.absolute(), code_dir.resolve()}:
        shutil.rmtree(pycache_dir / path.relative_to(path.anchor), ignore_errors=True)
