"""ops.target against the running embedded stack: the stack file resolves to its endpoint and plain outputs."""

from __future__ import annotations

import pytest

from ops import target as stack_target
from tests.stacks import StackInfo


def test_the_local_target_is_the_running_stack_with_its_outputs(embedded_stack: StackInfo) -> None:
    where = stack_target.resolve(
        "local", required=("function_name", "dlq_url", "source_bucket"), state_dir=embedded_stack.state_dir
    )

    assert (where.name, where.endpoint, where.region) == ("local", embedded_stack.endpoint, embedded_stack.region)
    assert where.outputs["source_bucket"] == embedded_stack.outputs["source_bucket"]
    assert all(isinstance(value, str) for value in where.outputs.values())


def test_a_required_output_the_stack_lacks_says_to_apply_again(embedded_stack: StackInfo) -> None:
    with pytest.raises(stack_target.TargetError, match="outputs lack no_such_output: apply it again .*make local-up"):
        stack_target.resolve("local", required=("function_name", "no_such_output"), state_dir=embedded_stack.state_dir)
