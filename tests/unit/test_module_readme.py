"""The module's README.md is its reference: its tables are variables.tf, outputs.tf and versions.tf, row for row.

A failure names the row that is missing, invented or stale and prints the row as it should read.
"""

from __future__ import annotations

import re

from tests import hcl

README = hcl.MODULE_DIR / "README.md"


def _cell(text: str) -> str:
    """Text as a Markdown table cell: ``|`` escaped, ``<`` written so that ``<prefix>`` is not taken for HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def input_row(variable: hcl.Variable) -> str:
    """The README's row for ``variable``: name, description, type, default, required."""
    default = "n/a" if variable.default is None else f"`{variable.default}`"
    required = "yes" if variable.required else "no"
    return f"| `{variable.name}` | {_cell(variable.description)} | `{variable.type}` | {default} | {required} |"


def output_row(output: hcl.Output) -> str:
    """The README's row for ``output``: name, description."""
    return f"| `{output.name}` | {_cell(output.description)} |"


def _section(title: str) -> str:
    """The text of the README's ``## title`` section."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _rows(title: str) -> dict[str, str]:
    """The rows of the table in section ``title`` by the name in their first cell."""
    found = re.findall(r"^(\| `([A-Za-z0-9_]+)` \|.*)$", _section(title), re.MULTILINE)
    names = [name for _, name in found]
    assert len(set(names)) == len(names), f"README.md, {title}: a name has two rows"
    return {name: line for line, name in found}


def _check_table(title: str, rows: dict[str, str], expected: dict[str, str], source: str) -> None:
    missing, invented = set(expected) - set(rows), set(rows) - set(expected)
    assert not missing, f"README.md, {title}: no row for {sorted(missing)} of {source}"
    assert not invented, f"README.md, {title}: rows for {sorted(invented)}, which {source} does not declare"
    for name, row in expected.items():
        assert rows[name] == row, f"README.md, {title}: the row of {name} should read\n{row}"


def test_the_inputs_table_is_variables_tf():
    variables = hcl.variables(hcl.MODULE_DIR)
    expected = {name: input_row(variable) for name, variable in variables.items()}
    _check_table("Inputs", _rows("Inputs"), expected, "variables.tf")


def test_the_outputs_table_is_outputs_tf():
    outputs = hcl.outputs(hcl.MODULE_DIR)
    expected = {name: output_row(output) for name, output in outputs.items()}
    _check_table("Outputs", _rows("Outputs"), expected, "outputs.tf")


def test_the_requirements_are_versions_tf():
    versions = (hcl.MODULE_DIR / "versions.tf").read_text()
    terraform = re.search(r'required_version\s*=\s*"([^"]+)"', versions).group(1)
    aws = re.search(r'source\s*=\s*"hashicorp/aws"\s*version\s*=\s*"([^"]+)"', versions).group(1)
    requirements = _section("Requirements")
    assert f"| terraform | `{terraform}` |" in requirements
    assert f"| aws | `{aws}` |" in requirements
    assert f"| aws | `{aws}` |" in _section("Providers")


def test_the_usage_example_sets_every_required_input_and_only_inputs():
    usage = _section("Usage")
    example = usage[usage.index("```hcl") : usage.index("```\n", usage.index("```hcl") + 1)]
    assert 'module "' in example
    assigned = set(re.findall(r"^  ([a-z0-9_]+)\s+=", example, re.MULTILINE)) - {"source"}
    variables = hcl.variables(hcl.MODULE_DIR)
    assert assigned <= set(variables), f"the example sets {sorted(assigned - set(variables))}: not inputs"
    required = {name for name, variable in variables.items() if variable.required}
    assert required <= assigned, f"the example leaves out the required {sorted(required - assigned)}"
