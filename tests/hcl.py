"""The Terraform files read as text: variable and output blocks, types, defaults (regular expressions, no HCL parser).

Enough for this project's house style (one ``variable``/``output`` block per name at the start of a line, single-line
``type``, ``default`` and ``description``); the unit tests pin Terraform's copies of Python contracts with it, and
the module README to the module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ops import defaults

TERRAFORM_DIR = defaults.ROOT / "terraform"
MODULE_DIR = TERRAFORM_DIR / "modules" / "image-pipeline"
ROOT_DIRS = {"local": TERRAFORM_DIR / "envs" / "local", "aws": TERRAFORM_DIR / "envs" / "aws"}


@dataclass(frozen=True)
class Variable:
    """One ``variable`` block: its ``type``, ``description`` and ``default`` as written (``None``: no default)."""

    name: str
    type: str
    description: str
    default: str | None
    nullable: bool

    @property
    def required(self) -> bool:
        """Whether a caller must set it (no ``default``)."""
        return self.default is None


@dataclass(frozen=True)
class Output:
    """One ``output`` block: its ``description`` and ``value`` expression as written."""

    name: str
    description: str
    value: str


def _blocks(text: str, kind: str) -> dict[str, str]:
    """Return each ``kind "name" {`` block's name and text (up to the next block of any kind)."""
    pieces = re.split(r'^(?=[a-z_]+ "[^"]*"(?: "[^"]*")? \{)', text, flags=re.MULTILINE)
    found = {}
    for piece in pieces:
        match = re.match(rf'{kind} "([A-Za-z0-9_-]+)" \{{', piece)
        if match:
            found[match.group(1)] = piece
    return found


def _attribute(block: str, name: str) -> str | None:
    """Return the text after ``name =`` on its first top-level line in ``block`` (two-space indent), or ``None``."""
    match = re.search(rf"^  {name}\s+=\s+(.+?)\s*$", block, re.MULTILINE)
    return match.group(1) if match else None


def _string(expression: str) -> str:
    """Return the value of a quoted HCL string literal (``\\"`` and ``\\\\`` unescaped)."""
    assert expression.startswith('"') and expression.endswith('"'), expression
    return re.sub(r"\\(.)", r"\1", expression[1:-1])


def variables(directory: Path) -> dict[str, Variable]:
    """Return the variables of ``directory/variables.tf`` by name, in file order."""
    text = (directory / "variables.tf").read_text()
    return {
        name: Variable(
            name=name,
            type=_attribute(block, "type") or "",
            description=_string(_attribute(block, "description") or '""'),
            default=_attribute(block, "default"),
            nullable=_attribute(block, "nullable") != "false",
        )
        for name, block in _blocks(text, "variable").items()
    }


def outputs(directory: Path) -> dict[str, Output]:
    """Return the outputs of ``directory/outputs.tf`` by name, in file order."""
    text = (directory / "outputs.tf").read_text()
    return {
        name: Output(name, _string(_attribute(block, "description") or '""'), _attribute(block, "value") or "")
        for name, block in _blocks(text, "output").items()
    }


def effective_default(variable: Variable, module_variable: Variable) -> str | None:
    """Return the default a root's ``variable`` gives the module input it is passed to, as written in Terraform.

    A root's ``null`` passed to a non-nullable module variable becomes the module's default (Terraform's rule for
    ``nullable = false``); any other default is the root's own.
    """
    if variable.default == "null" and not module_variable.nullable:
        return module_variable.default
    return variable.default
