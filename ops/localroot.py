"""The local Terraform root (``terraform/envs/local``) as one local stack applies it: variables, state, apply, destroy.

The project's own stack (state directory ``<root>/.local``) applies in ``terraform/envs/local`` itself, with the root
module's own ``.terraform/`` and ``terraform.tfstate`` and ``up``'s variables in ``local-up.auto.tfvars.json`` there
(loaded by every Terraform command in that folder), so ``tflocal output``, ``tflocal plan`` and ``tflocal apply`` run
there by hand see and update the same stack. Any other state directory (the tests, the bench) keeps an isolated
Terraform state in its ``tfstate/`` and applies from a private copy of the root there, so stacks on other ports apply
side by side instead of queueing for the root's tflocal lock (:mod:`ops.terraform`). File names come from
:mod:`ops.statedir`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops import defaults, terraform
from ops.statedir import Paths, private_project


def up_variables(region: str = defaults.DEFAULT_REGION, hot_reload_dir: Path | None = None) -> dict[str, Any]:
    """Return the Terraform variables a local ``up`` applies: the region, and ``hot_reload_dir`` when given.

    With ``hot_reload_dir`` (an absolute directory, the repository's ``lambda/``) the function's code is that
    directory, run live; without it, the built zip.
    """
    found: dict[str, Any] = {"region": region}
    if hot_reload_dir is not None:
        found["hot_reload_dir"] = str(hot_reload_dir)
    return found


def apply(
    p: Paths,
    endpoint: str,
    variables: dict[str, Any],
    *,
    region: str = defaults.DEFAULT_REGION,
    on_output: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Apply the local root with tflocal to the local cloud at ``endpoint`` for the stack ``p``; return the outputs.

    The project's own stack writes ``variables`` to :attr:`Paths.local_up_tfvars` first and applies in the root
    itself; an isolated stack (:attr:`Paths.tf_state` set) applies from its private copy (:func:`apply_root`) with
    its data and state in :attr:`Paths.tf_state` and ``variables`` in a var file there.

    Raises
    ------
    ops.terraform.TerraformError
        When Terraform fails or nothing answers at ``endpoint``.
    """
    if p.tf_state is None:
        write_tfvars(p, variables)
    return terraform.apply(
        apply_root(p),
        variables if p.tf_state is not None else None,
        local=True,
        endpoint=endpoint,
        state_dir=p.tf_state,
        region=region,
        on_output=on_output,
    )


def destroy(endpoint: str, tf_state_dir: Path, *, region: str = defaults.DEFAULT_REGION) -> None:
    """Destroy what :func:`apply` made for an isolated stack whose Terraform state is in ``tf_state_dir``.

    Runs in the stack's private copy of the root when it has one, else in ``terraform/envs/local``, with the same
    state directory and region (the tests use it to check that the stack destroys cleanly).

    Raises
    ------
    ops.terraform.TerraformError
        When Terraform fails or nothing answers at ``endpoint``.
    """
    private = private_project(Path(tf_state_dir)) / terraform.LOCAL_ROOT.relative_to(terraform.REPO_ROOT)
    root = private if private.is_dir() else terraform.LOCAL_ROOT
    terraform.destroy(root, {"region": region}, local=True, endpoint=endpoint, state_dir=tf_state_dir, region=region)


def write_tfvars(p: Paths, variables: dict[str, Any]) -> None:
    """Write ``variables`` to :attr:`Paths.local_up_tfvars`, where every Terraform command in the root loads them."""
    p.local_up_tfvars.write_text(json.dumps(variables, indent=2) + "\n")


def restore(p: Paths, variables: dict[str, Any], saved: Any = None) -> None:
    """Put the Terraform state of ``saved`` (the snapshot, or kept data) in place, and ``variables`` as ``apply``."""
    (saved or p.snapshot).put_tfstate(p.tf_state_file)
    if p.tf_state is None:
        write_tfvars(p, variables)


def apply_root(p: Paths) -> Path:
    """Return the root module an apply of the stack ``p`` runs in: :attr:`Paths.tf_root`, or a private copy of it.

    tflocal writes its provider override file into the root for each command, so runs in one root take turns
    (``ops.terraform``'s root lock). The project's own stack applies in the root, where users run ``tflocal`` by
    hand. An isolated stack applies from a copy of its own (:func:`ops.statedir.private_project`): the root's ``*.tf``
    files and provider lock file are copied, and the folders they reach by relative path (``terraform/modules``,
    ``build``) are links to the project's.
    """
    if p.tf_state is None:
        return p.tf_root
    project = private_project(p.tf_state)
    copy = project / p.tf_root.relative_to(p.root)
    copy.mkdir(parents=True, exist_ok=True)
    wanted = {f.name for f in p.tf_root.iterdir() if f.suffix == ".tf" or f.name == ".terraform.lock.hcl"}
    wanted.discard(terraform.TFLOCAL_OVERRIDE_FILE)
    for stale in copy.iterdir():
        if stale.is_file() and stale.name not in wanted and stale.name != terraform.TFLOCAL_OVERRIDE_FILE:
            stale.unlink()
    for name in wanted:
        shutil.copyfile(p.tf_root / name, copy / name)
    for shared in (p.tf_root.parent.parent / "modules", p.build_dir):
        link = project / shared.relative_to(p.root)
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(shared, target_is_directory=True)
    return copy


def forget_state(p: Paths) -> None:
    """Remove the stack's Terraform state (its resources are gone with the emulator that held them).

    An isolated stack's whole ``tfstate/``; for the project's own stack, ``terraform.tfstate``, its backup and
    ``up``'s variables in the root.
    """
    if p.tf_state is not None:
        shutil.rmtree(p.tf_state, ignore_errors=True)
        return
    for path in (p.tf_root / "terraform.tfstate", p.tf_root / "terraform.tfstate.backup", p.local_up_tfvars):
        path.unlink(missing_ok=True)
