"""Deploy the stack to real AWS with plain Terraform: ``python -m ops.deploy_aws deploy|destroy``.

``make deploy-aws`` and ``make destroy-aws`` run this. Before Terraform touches anything it checks what a deployment
needs and says how to fix what is missing: Terraform >= 1.6, AWS credentials (STS ``GetCallerIdentity``), the build
artifacts, and ``terraform/envs/aws/terraform.tfvars``. It then plans, shows the plan, asks before changing the
account (``--auto-approve`` or ``AUTO_APPROVE=1`` skips the question), applies the saved plan, prints the outputs and
the e-mail confirmation step.

State stays in ``terraform/envs/aws/terraform.tfstate`` unless ``--backend-config FILE`` (or ``BACKEND_CONFIG=FILE``,
which ``make deploy-aws BACKEND_CONFIG=...`` passes) names an S3 backend configuration; see
``terraform/envs/aws/backend.hcl.example``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ops import defaults
from ops import terraform as tf
from ops.stack import AWS_BACKEND, INTERACTIVE, OPERATION, Stack

log = logging.getLogger("ops.deploy_aws")

ROOT = tf.AWS_ROOT
TFVARS = ROOT / "terraform.tfvars"
TFVARS_EXAMPLE = ROOT / "terraform.tfvars.example"
BACKEND_OVERRIDE = ROOT / "backend_override.tf"
PLAN_FILE = ROOT / "deploy.tfplan"
BUILD_DIR = defaults.BUILD_DIR
ARTIFACTS = tuple(BUILD_DIR / name for name in defaults.ARTIFACTS)
DEFAULT_REGION = defaults.DEFAULT_REGION

BACKEND_OVERRIDE_TEXT = """\
# Written by `python -m ops.deploy_aws` because a backend configuration (BACKEND_CONFIG) was given: the state of
# this root lives in S3. Delete this file and terraform/envs/aws/.terraform to go back to local state.
terraform {
  backend "s3" {}
}
"""

console = Console(stderr=True, highlight=False, soft_wrap=True)


class DeployError(RuntimeError):
    """A deployment cannot go ahead; the message says what to do."""


# ---------------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------------


def read_tfvars_string(path: Path, name: str) -> str | None:
    """Return the value of a top-level ``name = "..."`` assignment in a ``.tfvars`` file, or ``None``.

    Only plain one-line string assignments are read (enough for ``region`` and ``admin_email``); Terraform itself
    reads the file for the deployment.
    """
    if not path.is_file():
        return None
    pattern = re.compile(rf'^\s*{re.escape(name)}\s*=\s*"([^"]*)"', re.MULTILINE)
    match = pattern.search(path.read_text())
    return match[1] if match else None


def check_tfvars(path: Path = TFVARS) -> dict[str, str]:
    """Check that the AWS root has its ``terraform.tfvars`` and return its ``region`` and ``admin_email``.

    Raises
    ------
    DeployError
        When the file is missing (the message says how to create it from the example) or still holds the example's
        e-mail address.
    """
    if not path.is_file():
        raise DeployError(
            f"{_rel(path)} is missing. Create it from the example and set your e-mail address:\n"
            f"  cp {_rel(TFVARS_EXAMPLE)} {_rel(path)}\n"
            f'  $EDITOR {_rel(path)}    # admin_email = "you@yours.example", region = "eu-west-1"'
        )
    email = read_tfvars_string(path, "admin_email") or ""
    if email.endswith("@example.com"):
        raise DeployError(
            f"admin_email in {_rel(path)} is still the example address {email}: put your own address there "
            '(or admin_email = "" for no e-mail)'
        )
    region = read_tfvars_string(path, "region") or DEFAULT_REGION
    return {"region": region, "admin_email": email}


def check_artifacts(paths: Sequence[Path] = ARTIFACTS) -> None:
    """Check that the build artifacts exist.

    Raises
    ------
    DeployError
        When one is missing: run ``make build``.
    """
    missing = [_rel(path) for path in paths if not path.is_file()]
    if missing:
        raise DeployError(f"{', '.join(missing)} not found: run `make build` first")


def check_credentials(region: str) -> dict[str, str]:
    """Ask AWS STS who the current credentials belong to, ignoring any local endpoint settings.

    Parameters
    ----------
    region : str
        Region of the STS endpoint to ask.

    Returns
    -------
    dict[str, str]
        ``Account``, ``Arn`` and ``UserId`` of the caller.

    Raises
    ------
    DeployError
        When there are no credentials, they are rejected or expired, or AWS cannot be reached; the message says
        what to do.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, TokenRetrievalError

    how = (
        "configure credentials: `aws configure`, or `aws sso login --profile NAME` and `export AWS_PROFILE=NAME`, "
        "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    try:
        identity = _aws(region).client("sts", INTERACTIVE).get_caller_identity()
    except NoCredentialsError:
        raise DeployError(f"No AWS credentials found: {how}") from None
    except TokenRetrievalError as exc:
        raise DeployError(f"Your AWS SSO session has expired ({exc}): run `aws sso login` and try again") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise DeployError(f"AWS rejected the credentials ({code}: {exc}): {how}") from None
    except BotoCoreError as exc:
        raise DeployError(f"Cannot reach AWS STS in {region} ({exc}): check your network or proxy settings") from None
    return {key: identity[key] for key in ("Account", "Arn", "UserId")}


def prepare_backend(backend_config: Path | None) -> Path | None:
    """Set up the AWS root's state backend and return the backend configuration file to pass to ``init``.

    With ``backend_config``, write ``backend_override.tf`` (``backend "s3" {}``) so Terraform uses the S3 backend
    configured by that file. Without it, the state stays local; if the root was switched to S3 before, refuse
    rather than silently starting a second, empty state.

    Raises
    ------
    DeployError
        When ``backend_config`` does not exist, or the root uses S3 but no configuration was given.
    """
    if backend_config is None:
        if BACKEND_OVERRIDE.exists():
            raise DeployError(
                f"{_rel(ROOT)} keeps its state in S3 ({_rel(BACKEND_OVERRIDE)} exists): pass the same backend "
                "configuration again, e.g. `make deploy-aws BACKEND_CONFIG=terraform/envs/aws/backend.hcl`, or "
                f"delete {_rel(BACKEND_OVERRIDE)} and {_rel(ROOT / '.terraform')} to go back to local state"
            )
        return None
    path = _resolve(backend_config)
    if not path.is_file():
        raise DeployError(
            f"backend configuration {backend_config} not found: copy {_rel(ROOT / 'backend.hcl.example')} to "
            f"{_rel(ROOT / 'backend.hcl')}, fill in your state bucket, and pass BACKEND_CONFIG=<that file>"
        )
    if not BACKEND_OVERRIDE.is_file() or BACKEND_OVERRIDE.read_text() != BACKEND_OVERRIDE_TEXT:
        BACKEND_OVERRIDE.write_text(BACKEND_OVERRIDE_TEXT)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------------


def deploy(*, backend_config: Path | None = None, auto_approve: bool = False) -> dict[str, Any]:
    """Check, plan, confirm and apply the AWS root, then print the outputs and the e-mail step.

    Returns
    -------
    dict[str, Any]
        The stack outputs (unchanged stack: its current outputs).

    Raises
    ------
    DeployError
        When a check fails or the user declines.
    ops.terraform.TerraformError
        When Terraform fails.
    """
    version = tf.check_terraform()
    settings = check_tfvars()
    check_artifacts()
    identity = check_credentials(settings["region"])
    console.print(
        Text(
            f"Terraform {version}; deploying to AWS account {identity['Account']} as {identity['Arn']}, "
            f"region {settings['region']}"
        )
    )
    backend_file = prepare_backend(backend_config)

    changes = _plan(backend_file, destroy=False)
    if changes:
        _confirm(f"Apply this plan to account {identity['Account']} in {settings['region']}?", auto_approve)
        result = tf.apply(ROOT, local=False, backend_config=backend_file, plan_file=PLAN_FILE, on_output=_echo)
    else:
        console.print("No changes: the stack in AWS matches the configuration.")
        result = tf.outputs(ROOT)
    PLAN_FILE.unlink(missing_ok=True)

    _print_outputs(result)
    _print_email_step(settings["admin_email"], result)
    return result


def destroy(*, backend_config: Path | None = None, auto_approve: bool = False) -> None:
    """Plan the destruction of the AWS stack, confirm it and carry it out.

    Raises
    ------
    DeployError
        When a check fails or the user declines; a bucket that still holds objects gets an explanation of how to
        empty it or allow force_destroy.
    ops.terraform.TerraformError
        When Terraform fails otherwise.
    """
    tf.check_terraform()
    region = read_tfvars_string(TFVARS, "region") or DEFAULT_REGION
    identity = check_credentials(region)
    backend_file = prepare_backend(backend_config)

    if not _plan(backend_file, destroy=True):
        console.print("Nothing to destroy.")
        PLAN_FILE.unlink(missing_ok=True)
        return
    _confirm(
        f"[bold red]Destroy[/] the stack in account {identity['Account']} ({region})? Images in its buckets are lost.",
        auto_approve,
    )
    try:
        tf.apply(ROOT, local=False, backend_config=backend_file, plan_file=PLAN_FILE, on_output=_echo)
    except tf.TerraformError as exc:
        if "BucketNotEmpty" in str(exc):
            raise DeployError(
                f"{exc}\n\nThe buckets still hold images and force_destroy is off. Empty them first "
                "(`aws s3 rm s3://<bucket> --recursive`), or set force_destroy = true in "
                f"{_rel(TFVARS)}, run `make deploy-aws` to apply it, then `make destroy-aws` again."
            ) from None
        raise
    finally:
        PLAN_FILE.unlink(missing_ok=True)
    console.print("[green]Destroyed.[/]")


def _plan(backend_file: Path | None, *, destroy: bool) -> bool:
    """Plan into PLAN_FILE (showing Terraform's output) and return whether anything would change."""
    try:
        return tf.plan(ROOT, PLAN_FILE, local=False, backend_config=backend_file, destroy=destroy, on_output=_echo)
    except tf.TerraformError as exc:
        if "-migrate-state" in str(exc) or "Backend configuration changed" in str(exc):
            raise DeployError(
                f"{exc}\n\nThe state backend changed. To move existing state once, run:\n"
                f"  terraform -chdir={_rel(ROOT)} init -migrate-state"
                + (f" -backend-config={backend_file}" if backend_file else "")
            ) from None
        raise


def _confirm(question: str, auto_approve: bool) -> None:
    """Ask ``question`` on the terminal; raise DeployError unless the answer is yes or auto-approve is on."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise DeployError("Not a terminal, so nobody can confirm: run again with AUTO_APPROVE=1 (or --auto-approve)")
    answer = console.input(f"{question} Type [bold]yes[/] to continue: ").strip().lower()
    if answer != "yes":
        PLAN_FILE.unlink(missing_ok=True)
        raise DeployError("Cancelled: nothing was changed.")


def _print_outputs(result: dict[str, Any]) -> None:
    """Write the stack outputs as a table."""
    table = Table(title="Stack outputs", show_header=True)
    table.add_column("output")
    table.add_column("value")
    for name in sorted(result):
        table.add_row(name, Text("" if result[name] is None else str(result[name])))
    Console(highlight=False).print(table)


def _print_email_step(admin_email: str, result: dict[str, Any]) -> None:
    """Tell the user to confirm the e-mail subscription (and whether AWS still waits for that)."""
    if not admin_email:
        console.print("No admin_email set: notifications go to the topic only (set admin_email to get e-mails).")
        return
    status = _subscription_status(result.get("sns_topic_arn"), admin_email, result.get("region") or DEFAULT_REGION)
    if status == "confirmed":
        console.print(Text(f"E-mail notifications go to {admin_email} (subscription confirmed)."))
        return
    console.print(
        Text(
            f"AWS sent a confirmation e-mail to {admin_email}: click the link in it, or no notifications arrive.",
            "bold yellow",
        ),
        Text(
            '(Look in the spam folder too. The link expires after 3 days; for a new one, choose "Request '
            'confirmation" on the subscription in the SNS console.)'
        ),
    )


def _aws(region: str) -> Stack:
    """The AWS account in ``region`` before (or while) the stack exists there: its clients, with no outputs yet."""
    return Stack(target="aws", backend=AWS_BACKEND, region=region, source="deploy-aws", profile=None)


def _subscription_status(topic_arn: str | None, email: str, region: str) -> str:
    """Return ``confirmed``, ``pending`` or ``unknown`` for the e-mail subscription of the topic."""
    if not topic_arn:
        return "unknown"
    try:
        sns = _aws(region).client("sns", OPERATION)
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for subscription in page["Subscriptions"]:
                if subscription["Protocol"] == "email" and subscription["Endpoint"].lower() == email.lower():
                    arn = subscription["SubscriptionArn"]
                    return "pending" if arn in ("PendingConfirmation", "Deleted") or ":" not in arn else "confirmed"
    except Exception as exc:  # only decides which sentence to print
        log.debug("cannot read the subscription status: %s", exc)
    return "unknown"


def _echo(line: str) -> None:
    """Show a line of Terraform's output."""
    sys.stderr.write(line)
    sys.stderr.flush()


def _resolve(path: Path) -> Path:
    """Resolve a user-given path against the current directory, else against the repository."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (tf.REPO_ROOT / path).resolve()


def _rel(path: Path) -> str:
    """Show ``path`` relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(tf.REPO_ROOT))
    except ValueError:
        return str(path)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in defaults.ON_WORDS


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``deploy`` or ``destroy`` from the command line and return the exit code (1 with a message on error)."""
    parser = argparse.ArgumentParser(
        prog="python -m ops.deploy_aws",
        description="Deploy the image pipeline to real AWS with Terraform (terraform/envs/aws), or destroy it.",
    )
    parser.add_argument("command", choices=["deploy", "destroy"])
    parser.add_argument(
        "--backend-config",
        type=Path,
        default=os.environ.get("BACKEND_CONFIG") or None,
        help="S3 backend configuration file (see terraform/envs/aws/backend.hcl.example); default $BACKEND_CONFIG. "
        "Without one the state stays in terraform/envs/aws/terraform.tfstate.",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        default=_truthy(os.environ.get("AUTO_APPROVE")),
        help="Apply without asking (default $AUTO_APPROVE).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug details.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")

    try:
        if args.command == "deploy":
            deploy(backend_config=args.backend_config, auto_approve=args.auto_approve)
        else:
            destroy(backend_config=args.backend_config, auto_approve=args.auto_approve)
    except (DeployError, tf.TerraformError) as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return 1
    except KeyboardInterrupt:
        console.print("Interrupted.")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
