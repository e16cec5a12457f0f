"""Run Terraform and tflocal for the stack: init, validate, plan, apply, destroy, outputs, fmt.

Every ``terraform``/``tflocal`` command of the project (``make local-up``, ``make deploy-aws``, ``make check``, the
tests) runs through this module, in the environment :mod:`ops.tfenv` prepares (offline provider mirror, endpoints
of a local target, no prompts). A local target (``local=True``) runs tflocal against the local cloud's endpoint,
which must answer first; tflocal writes a fixed provider override file into the root for each command, so runs in
one root take turns under a lock. AWS runs plain ``terraform``.

Each stack keeps its Terraform data directory (``TF_DATA_DIR``) and state in a ``state_dir`` of its own, so the
end-to-end tests can apply a second local stack without touching the one ``make local-up`` made.

Public API: :func:`init`, :func:`validate`, :func:`plan`, :func:`apply`, :func:`destroy`, :func:`outputs`,
:func:`fmt_check`; from :mod:`ops.tfenv`, for the callers of this module: :func:`terraform_env`,
:func:`check_terraform`, :func:`terraform_binary`, :func:`tflocal_binary` and the error :class:`TerraformError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ops import defaults, procs, stackfile
from ops.tfenv import (
    CLI_CONFIG_DIR,
    MIRROR_HINT,
    TerraformError,
    check_terraform,
    terraform_binary,
    terraform_env,
    tflocal_binary,
)

log = logging.getLogger(__name__)

REPO_ROOT = defaults.ROOT
TERRAFORM_DIR = REPO_ROOT / "terraform"
LOCAL_ROOT = TERRAFORM_DIR / "envs" / "local"
AWS_ROOT = TERRAFORM_DIR / "envs" / "aws"


# tflocal writes this file into the root for the length of each command (see check_override_file in tflocal), so
# tflocal runs in one root take turns; a run waits this long for the one before it.
TFLOCAL_OVERRIDE_FILE = "localstack_providers_override.tf"
TFLOCAL_LOCK_TIMEOUT = 900.0

# Lines Terraform prints when it cannot reach the provider registry.
_REGISTRY_UNREACHABLE = re.compile(
    r"could not connect to registry\.terraform\.io|Failed to query available provider packages"
    r"|Failed to request discovery document|registry\.terraform\.io.*(no such host|i/o timeout|connection refused)",
    re.IGNORECASE,
)


OutputCallback = Callable[[str], None]


# ---------------------------------------------------------------------------------------------------------------------
# Running commands
# ---------------------------------------------------------------------------------------------------------------------


def _run(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_output: OutputCallback | None = None,
    timeout: float | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> tuple[int, str]:
    """Run a command, pass each output line to ``on_output``, and return its exit code and output (stdout + stderr).

    Raises
    ------
    TerraformError
        When the exit code is not in ``ok_codes``: the message names the command and holds Terraform's error text.
    """
    log.debug("running %s in %s", " ".join(args), cwd)
    lines: list[str] = []
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise TerraformError(f"cannot run {args[0]}: {exc}") from exc
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if on_output is not None:
                on_output(line)
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait()
        raise TerraformError(f"`{' '.join(args[:2])}` in {cwd} did not finish within {timeout} s") from None
    except BaseException:
        # Ctrl-C reaches terraform too (same process group); let it stop cleanly before we go.
        with contextlib.suppress(Exception):
            process.wait(timeout=120)
        raise
    output = "".join(lines)
    if returncode not in ok_codes:
        raise TerraformError(_failure_message(args, cwd, output, returncode))
    return returncode, output


def _failure_message(args: list[str], cwd: Path, output: str, returncode: int) -> str:
    """Build the error message of a failed command: the command, Terraform's errors and what to do next."""
    command = f"{Path(args[0]).name} {args[1] if len(args) > 1 else ''}".strip()
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "Error:" in line), max(0, len(lines) - 40))
    detail = "\n".join(lines[start : start + 60]).strip()
    message = f"`{command}` failed in {cwd} (exit code {returncode})"
    if detail:
        message += f":\n{detail}"
    if _REGISTRY_UNREACHABLE.search(output):
        message += f"\n\nThe Terraform registry is unreachable: {MIRROR_HINT}."
    return message


@contextlib.contextmanager
def _root_lock(root: Path, what: str, timeout: float | None = None, lock_dir: Path = CLI_CONFIG_DIR) -> Iterator[None]:
    """Hold an exclusive lock for tflocal in ``root``: it writes a fixed override file there for each command.

    Waits up to ``timeout`` seconds (default ``TFLOCAL_LOCK_TIMEOUT``) for another run to finish, then raises
    :class:`TerraformError` naming the process that holds the lock. The lock file lives in ``lock_dir``.
    """
    timeout = TFLOCAL_LOCK_TIMEOUT if timeout is None else timeout
    lock_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    with open(lock_dir / f"tflocal-{digest}.lock", "a+") as handle:
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise TerraformError(
                        f"tflocal in {root} has been busy for {timeout:.0f} s with: {holder}. Wait for it to finish, "
                        "or stop that process if it hangs, then run again"
                    ) from None
                if not waiting:
                    log.info("Waiting for another tflocal run in %s to finish (%s)", root, holder)
                    waiting = True
                time.sleep(0.5)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}: {what}\n")
            handle.flush()
            stale = root / TFLOCAL_OVERRIDE_FILE
            if stale.exists():
                # Whoever wrote it did not hold this lock any more: a killed run. tflocal refuses to start beside it.
                log.warning("Removing %s left behind by an interrupted tflocal run", stale)
                stale.unlink()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _paths(state_dir: Path | None) -> tuple[dict[str, str], Path | None]:
    """Return the ``TF_DATA_DIR`` setting and the state file for ``state_dir`` (nothing for the root's defaults)."""
    if state_dir is None:
        return {}, None
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    return {"TF_DATA_DIR": str(state_dir / ".terraform")}, state_dir / "terraform.tfstate"


@contextlib.contextmanager
def _var_file(variables: Mapping[str, Any] | None, state_dir: Path | None) -> Iterator[list[str]]:
    """Write ``variables`` to a JSON var file (in ``state_dir`` or a temporary one) and yield the ``-var-file`` args."""
    if not variables:
        yield []
        return
    text = json.dumps(dict(variables), indent=2, default=str)
    if state_dir is not None:
        path = Path(state_dir).resolve() / "variables.tfvars.json"
        path.write_text(text)
        yield [f"-var-file={path}"]
        return
    fd, tmp = tempfile.mkstemp(prefix="tfvars-", suffix=".tfvars.json")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        yield [f"-var-file={tmp}"]
    finally:
        Path(tmp).unlink(missing_ok=True)


def init(
    root: Path,
    *,
    env: Mapping[str, str],
    state_file: Path | None = None,
    backend_config: Path | None = None,
    backend: bool = True,
    on_output: OutputCallback | None = None,
) -> None:
    """Run ``terraform init`` in ``root`` (providers from the mirror when ``env`` has its CLI config).

    Parameters
    ----------
    root : Path
        The root module directory.
    env : Mapping[str, str]
        From :func:`terraform_env`, with ``TF_DATA_DIR`` when the stack has its own data directory.
    state_file : Path | None
        For a root with ``backend "local" {}``: keep the state in this file (``-backend-config=path=...``,
        ``-reconfigure``, as each state directory has its own data directory).
    backend_config : Path | None
        A partial backend configuration file passed as ``-backend-config`` (the S3 backend of the AWS root).
    backend : bool
        ``False`` runs ``init -backend=false`` (enough for ``validate``).
    on_output : Callable[[str], None] | None
        Receives each output line (for example to show progress).

    Raises
    ------
    TerraformError
        When init fails; if the registry is unreachable the message says to set ``TF_PROVIDER_MIRROR``.
    """
    args = [terraform_binary(env), "init", "-input=false", "-no-color"]
    if not backend:
        args.append("-backend=false")
    if state_file is not None:
        args += [f"-backend-config=path={state_file}", "-reconfigure"]
    if backend_config is not None:
        args.append(f"-backend-config={Path(backend_config).resolve()}")
    _run(args, cwd=root, env=env, on_output=on_output)


def validate(root: Path, *, data_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """Run ``terraform init -backend=false`` and ``terraform validate`` in ``root`` with its own data directory.

    Parameters
    ----------
    root : Path
        The root module directory.
    data_dir : Path
        ``TF_DATA_DIR`` for this check (a temporary directory keeps the root clean).
    env : Mapping[str, str] | None
        Base environment (default :func:`terraform_env`).

    Returns
    -------
    str
        The output of ``terraform validate``.

    Raises
    ------
    TerraformError
        When init or validation fails; the message holds Terraform's errors.
    """
    run_env = dict(terraform_env() if env is None else env)
    run_env["TF_DATA_DIR"] = str(Path(data_dir).resolve())
    init(root, env=run_env, backend=False)
    return _run([terraform_binary(run_env), "validate", "-no-color"], cwd=root, env=run_env)[1]


def apply(
    root: Path,
    variables: Mapping[str, Any] | None = None,
    *,
    local: bool,
    endpoint: str | None = None,
    state_dir: Path | None = None,
    backend_config: Path | None = None,
    region: str = defaults.DEFAULT_REGION,
    on_output: OutputCallback | None = None,
    plan_file: Path | None = None,
) -> dict[str, Any]:
    """Initialise ``root`` and apply it without prompting, then return its outputs.

    Parameters
    ----------
    root : Path
        The root module (``LOCAL_ROOT`` or ``AWS_ROOT``).
    variables : Mapping[str, Any] | None
        Input variables, written to a JSON var file (in ``state_dir`` when given).
    local : bool
        ``True`` runs ``tflocal`` against ``endpoint``; ``False`` runs plain ``terraform`` against AWS.
    endpoint : str | None
        The local cloud's endpoint; required when ``local`` is true.
    state_dir : Path | None
        Directory of this stack's ``TF_DATA_DIR`` (``.terraform``) and state file (``terraform.tfstate``, via the
        root's ``backend "local" {}``). ``None`` keeps the root's own ``.terraform`` and backend.
    backend_config : Path | None
        Partial backend configuration for ``init`` (the AWS root's S3 backend).
    region : str
        Region of a local target.
    on_output : Callable[[str], None] | None
        Receives each output line of init and apply.
    plan_file : Path | None
        Apply this saved plan (from :func:`plan`) instead of planning again; ``variables`` are then ignored.

    Returns
    -------
    dict[str, Any]
        The root's outputs, name to value.

    Raises
    ------
    TerraformError
        When a step fails; the message holds Terraform's errors and what to do next.
    """
    env, state_file = _prepare(local=local, endpoint=endpoint, state_dir=state_dir, region=region)
    init(root, env=env, state_file=state_file, backend_config=backend_config, on_output=on_output)
    if plan_file is not None:
        _terraform(root, ["apply", "-input=false", "-no-color", str(plan_file)], env, local=local, on_output=on_output)
    else:
        with _var_file(variables, state_dir) as var_args:
            _terraform(
                root,
                ["apply", "-input=false", "-no-color", "-auto-approve", *var_args],
                env,
                local=local,
                on_output=on_output,
            )
    return _outputs(root, env)


def plan(
    root: Path,
    plan_file: Path,
    variables: Mapping[str, Any] | None = None,
    *,
    local: bool,
    endpoint: str | None = None,
    state_dir: Path | None = None,
    backend_config: Path | None = None,
    destroy: bool = False,
    region: str = defaults.DEFAULT_REGION,
    on_output: OutputCallback | None = None,
) -> bool:
    """Initialise ``root``, save a plan to ``plan_file`` and say whether it changes anything.

    Parameters are those of :func:`apply`; ``destroy`` plans the removal of everything.

    Returns
    -------
    bool
        ``True`` when the plan has changes (``-detailed-exitcode`` 2), ``False`` when there is nothing to do.

    Raises
    ------
    TerraformError
        When init or plan fails.
    """
    env, state_file = _prepare(local=local, endpoint=endpoint, state_dir=state_dir, region=region)
    init(root, env=env, state_file=state_file, backend_config=backend_config, on_output=on_output)
    with _var_file(variables, state_dir) as var_args:
        args = ["plan", "-input=false", "-no-color", "-detailed-exitcode", f"-out={plan_file}", *var_args]
        if destroy:
            args.append("-destroy")
        code, _ = _terraform(root, args, env, local=local, on_output=on_output, ok_codes=(0, 2))
    return code == 2


def destroy(
    root: Path,
    variables: Mapping[str, Any] | None = None,
    *,
    local: bool,
    endpoint: str | None = None,
    state_dir: Path | None = None,
    backend_config: Path | None = None,
    region: str = defaults.DEFAULT_REGION,
    on_output: OutputCallback | None = None,
) -> None:
    """Initialise ``root`` and destroy everything in its state without prompting.

    Parameters are those of :func:`apply` (pass the same ``variables`` and ``state_dir`` that made the stack).

    Raises
    ------
    TerraformError
        When a step fails; the message holds Terraform's errors.
    """
    env, state_file = _prepare(local=local, endpoint=endpoint, state_dir=state_dir, region=region)
    init(root, env=env, state_file=state_file, backend_config=backend_config, on_output=on_output)
    with _var_file(variables, state_dir) as var_args:
        _terraform(
            root,
            ["destroy", "-input=false", "-no-color", "-auto-approve", *var_args],
            env,
            local=local,
            on_output=on_output,
        )


def outputs(root: Path, *, state_dir: Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the outputs of the stack whose state is in ``state_dir`` (or the root's own), name to value.

    Reading outputs needs no provider, so this runs plain ``terraform output -json`` and no cloud has to be running.
    A stack that was never initialised or applied gives ``{}``; outputs whose value is null are left out.

    Raises
    ------
    TerraformError
        When the state exists but cannot be read.
    """
    extra, _ = _paths(state_dir)
    run_env = terraform_env(extra) if env is None else {**env, **extra}
    return _outputs(root, run_env)


def fmt_check(path: Path = TERRAFORM_DIR, env: Mapping[str, str] | None = None) -> list[str]:
    """Run ``terraform fmt -check -recursive`` on ``path`` and return the files that need formatting (empty: clean).

    tflocal's ``localstack_providers_override.tf``, which exists while a local apply runs, is left out.

    Raises
    ------
    TerraformError
        On a syntax error (exit code 2), with Terraform's message.
    """
    run_env = terraform_env() if env is None else dict(env)
    args = [terraform_binary(run_env), "fmt", "-check", "-recursive", "-no-color", str(path)]
    result = subprocess.run(args, env=run_env, capture_output=True, text=True, check=False)
    if result.returncode == 3 or (result.returncode == 0 and result.stdout.strip()):
        # tflocal's generated override file (present while a local apply runs) is not ours to format.
        return [
            line
            for line in result.stdout.splitlines()
            if line.strip() and Path(line.strip()).name != TFLOCAL_OVERRIDE_FILE
        ]
    if result.returncode != 0:
        raise TerraformError(f"`terraform fmt -check` failed on {path}:\n{result.stderr.strip() or result.stdout}")
    return []


def _prepare(
    *, local: bool, endpoint: str | None, state_dir: Path | None, region: str
) -> tuple[dict[str, str], Path | None]:
    """Return the environment and state file for a command on a local (tflocal) or AWS (terraform) target."""
    if local and not endpoint:
        raise TerraformError("a local apply needs the local cloud's endpoint, such as http://127.0.0.1:4566")
    if not local and endpoint:
        raise TerraformError("an endpoint only makes sense for a local target: pass local=True")
    if local:
        _check_endpoint(endpoint)
    extra, state_file = _paths(state_dir)
    env = terraform_env(extra, endpoint=endpoint if local else None, region=region)
    check_terraform(env)
    return env, state_file


def _check_endpoint(endpoint: str) -> None:
    """Fail fast when nothing listens on the local cloud's endpoint (the provider would retry for minutes)."""
    parsed = urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TerraformError(f"endpoint {endpoint!r} is not a URL such as http://127.0.0.1:4566")
    error = procs.probe_url(endpoint, timeout=5)
    if error is not None:
        raise TerraformError(
            f"nothing answers on {endpoint} ({error.strerror or error}): start the local cloud first (`make local-up`)"
        )


def _terraform(
    root: Path,
    args: list[str],
    env: dict[str, str],
    *,
    local: bool,
    on_output: OutputCallback | None,
    ok_codes: tuple[int, ...] = (0,),
) -> tuple[int, str]:
    """Run a provider-using command: through tflocal (under the root's lock) for local targets, else terraform."""
    if not local:
        return _run([terraform_binary(env), *args], cwd=root, env=env, on_output=on_output, ok_codes=ok_codes)
    run_env = {**env, "TF_CMD": terraform_binary(env)}
    with _root_lock(root, f"tflocal {' '.join(args[:1])} (state in {env.get('TF_DATA_DIR', root / '.terraform')})"):
        return _run([tflocal_binary(env), *args], cwd=root, env=run_env, on_output=on_output, ok_codes=ok_codes)


def _outputs(root: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Run ``terraform output -json`` and return name to value (``{}`` for a stack that was never initialised)."""
    data_dir = Path(env.get("TF_DATA_DIR") or root / ".terraform")
    if not data_dir.is_absolute():
        data_dir = root / data_dir
    if not data_dir.is_dir():
        return {}
    args = [terraform_binary(env), "output", "-json", "-no-color"]
    result = subprocess.run(args, cwd=root, env=dict(env), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TerraformError(_failure_message(args, root, result.stdout + result.stderr, result.returncode))
    try:
        data = json.loads(result.stdout or "{}")
    except ValueError as exc:
        raise TerraformError(f"`terraform output -json` in {root} printed no JSON: {result.stdout[:500]}") from exc
    return stackfile.output_values(data)
