"""Terraform's environment: the provider mirror's CLI config, endpoint variables, the binaries and their version.

Every ``terraform``/``tflocal`` process of the project (run by :mod:`ops.terraform`) gets its environment from
:func:`terraform_env`:

* ``TF_PROVIDER_MIRROR=<dir>`` (a directory holding ``registry.terraform.io/hashicorp/aws/...``, as made by
  ``terraform providers mirror``) becomes a CLI config file under ``.local/terraform/`` that installs hashicorp
  providers from that directory only, and ``TF_CLI_CONFIG_FILE`` points at it. Without a mirror, a
  ``TF_CLI_CONFIG_FILE`` that names a missing file is dropped (Terraform would warn on every command).
* ``TF_IN_AUTOMATION``, ``TF_INPUT=0`` and ``DISABLE_DEPRECATION_NOTICE=1`` keep the output plain and never prompt.
* For a local target (``endpoint`` given) tflocal gets ``AWS_ENDPOINT_URL``, ``S3_ENDPOINT`` (path-style S3 on the
  same port), test credentials and the region; for AWS those endpoint variables are removed so a shell left set up
  for local work cannot send a real deployment to an emulator.

It also finds the binaries (:func:`terraform_binary`, :func:`tflocal_binary`) and checks Terraform's version
(:func:`check_terraform`). :class:`TerraformError` is the error of both modules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ops import defaults

log = logging.getLogger(__name__)

#: Where the mirror's CLI config (and ``ops.terraform``'s tflocal locks) are written; git-ignored.
CLI_CONFIG_DIR = defaults.ROOT / ".local" / "terraform"

MIN_TERRAFORM_VERSION = (1, 6, 0)

INSTALL_HINT = "install Terraform >= 1.6 (https://developer.hashicorp.com/terraform/install) and put it on PATH"
MIRROR_HINT = (
    "set TF_PROVIDER_MIRROR=<dir with registry.terraform.io/hashicorp/aws/...> (a provider mirror, e.g. made "
    "with `terraform providers mirror <dir>` on a machine with internet access) and run again"
)


# Variables that send AWS SDK calls somewhere other than AWS; removed for real deployments.
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "S3_ENDPOINT", "S3_HOSTNAME", "LOCALSTACK_HOSTNAME", "EDGE_PORT")


class TerraformError(RuntimeError):
    """A Terraform command could not run or failed; the message says what to do next."""


# ---------------------------------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------------------------------


def cli_config_text(mirror: Path) -> str:
    """Return a Terraform CLI config that installs hashicorp providers from ``mirror`` and never from the network.

    Parameters
    ----------
    mirror : Path
        Absolute path of a filesystem mirror (it holds ``registry.terraform.io/hashicorp/<provider>/...``).

    Returns
    -------
    str
        The HCL text of a ``provider_installation`` block with a ``filesystem_mirror`` for
        ``registry.terraform.io/hashicorp/*`` and a ``direct`` block that excludes them.
    """
    path = json.dumps(str(mirror))  # an HCL string literal: quotes and backslashes escaped
    return (
        "# Written by ops/tfenv.py from TF_PROVIDER_MIRROR; safe to delete.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {path}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )


def write_cli_config(mirror: str | os.PathLike[str], directory: Path = CLI_CONFIG_DIR) -> Path:
    """Write the CLI config for a provider mirror under ``directory`` and return its path.

    The file name depends on the mirror path, and the file is replaced atomically, so parallel runs with the same
    mirror share one file without tearing it.

    Parameters
    ----------
    mirror : str | os.PathLike[str]
        The provider mirror directory (the value of ``TF_PROVIDER_MIRROR``).
    directory : Path
        Where to write the config (default ``.local/terraform`` in the repository, git-ignored).

    Returns
    -------
    Path
        The CLI config file.

    Raises
    ------
    TerraformError
        When the mirror holds no ``registry.terraform.io/hashicorp/aws`` directory.
    """
    mirror_path = Path(mirror).expanduser().resolve()
    if not (mirror_path / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
        raise TerraformError(
            f"TF_PROVIDER_MIRROR={mirror} holds no registry.terraform.io/hashicorp/aws directory: point it at the "
            "directory that contains registry.terraform.io/ (for example one made with `terraform providers mirror "
            "<dir>`), or unset it to download providers from the registry"
        )
    text = cli_config_text(mirror_path)
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(mirror_path).encode()).hexdigest()[:12]
    target = directory / f"cli-{digest}.tfrc"
    if not target.is_file() or target.read_text() != text:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".cli-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, target)
    return target


def terraform_env(
    extra: Mapping[str, str] | None = None,
    *,
    endpoint: str | None = None,
    region: str = defaults.DEFAULT_REGION,
    base: Mapping[str, str] | None = None,
    cli_config_dir: Path = CLI_CONFIG_DIR,
) -> dict[str, str]:
    """Return the environment for a ``terraform`` or ``tflocal`` process.

    Parameters
    ----------
    extra : Mapping[str, str] | None
        Variables set last, over everything else (for example ``TF_DATA_DIR``).
    endpoint : str | None
        The local cloud's endpoint (``http://127.0.0.1:4566``) for tflocal: sets ``AWS_ENDPOINT_URL`` and
        ``S3_ENDPOINT`` to it, test credentials and ``AWS_DEFAULT_REGION``/``AWS_REGION`` to ``region``, and removes
        session tokens and profiles. ``None`` means real AWS: endpoint variables (``AWS_ENDPOINT_URL*``,
        ``S3_ENDPOINT``, ...) are removed, with a warning, and credentials are left as they are.
    region : str
        Region for a local target (ignored for AWS, where the root's ``region`` variable decides).
    base : Mapping[str, str] | None
        The environment to start from (default ``os.environ``); it is not modified.
    cli_config_dir : Path
        Where the mirror's CLI config is written when ``TF_PROVIDER_MIRROR`` is set.

    Returns
    -------
    dict[str, str]
        A new environment.

    Raises
    ------
    TerraformError
        When ``TF_PROVIDER_MIRROR`` is set but is not a provider mirror.
    """
    env = dict(os.environ if base is None else base)

    mirror = env.get("TF_PROVIDER_MIRROR", "").strip()
    if mirror:
        env["TF_CLI_CONFIG_FILE"] = str(write_cli_config(mirror, cli_config_dir))
    else:
        for name in ("TF_CLI_CONFIG_FILE", "TERRAFORM_CONFIG"):
            if name in env and not Path(env[name]).expanduser().is_file():
                del env[name]  # a config file that does not exist only makes every command warn

    env["TF_IN_AUTOMATION"] = "1"
    env["TF_INPUT"] = "0"
    env["DISABLE_DEPRECATION_NOTICE"] = "1"

    if endpoint is not None:
        for name in [key for key in env if key.startswith("AWS_ENDPOINT_URL_")]:
            del env[name]  # service-specific endpoints would win over the one local endpoint
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            env.pop(name, None)
        env.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "S3_ENDPOINT": endpoint,  # tflocal: S3 on the same host and port, path-style
                "AWS_ACCESS_KEY_ID": defaults.LOCAL_CREDENTIAL,
                "AWS_SECRET_ACCESS_KEY": defaults.LOCAL_CREDENTIAL,
                "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region,
            }
        )
    else:
        removed = [key for key in env if key in _ENDPOINT_VARIABLES or key.startswith("AWS_ENDPOINT_URL_")]
        for name in removed:
            del env[name]
        if removed:
            log.warning("Ignoring %s for a real AWS deployment", ", ".join(sorted(removed)))

    if extra:
        env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------------------------------------


def terraform_binary(env: Mapping[str, str] | None = None) -> str:
    """Return the path of ``terraform`` on the ``PATH`` of ``env`` (default ``os.environ``).

    Raises
    ------
    TerraformError
        When there is none; the message says how to install it.
    """
    env = os.environ if env is None else env
    found = shutil.which("terraform", path=env.get("PATH"))
    if not found:
        raise TerraformError(f"terraform was not found on PATH: {INSTALL_HINT}")
    return found


def tflocal_binary(env: Mapping[str, str] | None = None) -> str:
    """Return the path of ``tflocal``: the one next to this Python first (the project venv), else on ``PATH``.

    Raises
    ------
    TerraformError
        When there is none; the message says to run ``make install``.
    """
    env = os.environ if env is None else env
    beside = Path(sys.executable).parent / "tflocal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("tflocal", path=env.get("PATH"))
    if not found:
        raise TerraformError("tflocal was not found: run `make install` (terraform-local is a dev dependency)")
    return found


def parse_version(text: str) -> tuple[int, int, int]:
    """Return ``(major, minor, patch)`` of a version string such as ``1.11.4`` or ``v1.6.0-beta1``.

    Raises
    ------
    TerraformError
        When ``text`` holds no version number.
    """
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        raise TerraformError(f"cannot read a version number from {text!r}: {INSTALL_HINT}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def check_terraform(env: Mapping[str, str] | None = None) -> str:
    """Check that ``terraform`` is installed and at least version 1.6, and return its version.

    Parameters
    ----------
    env : Mapping[str, str] | None
        Environment to run it in (default: :func:`terraform_env` of the current one).

    Returns
    -------
    str
        The version, such as ``"1.11.4"``.

    Raises
    ------
    TerraformError
        When terraform is missing, does not run, or is older than 1.6; the message says how to install it.
    """
    env = terraform_env() if env is None else dict(env)
    binary = terraform_binary(env)
    try:
        result = subprocess.run(
            [binary, "version", "-json"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise TerraformError(f"cannot run {binary}: {exc}; {INSTALL_HINT}") from exc
    try:
        version = json.loads(result.stdout)["terraform_version"]
    except (ValueError, KeyError, TypeError):
        version = result.stdout.strip() or result.stderr.strip()
    if parse_version(version) < MIN_TERRAFORM_VERSION:
        raise TerraformError(f"{binary} is Terraform {version}, older than 1.6: {INSTALL_HINT}")
    return version
