"""ops.stack against the running embedded stack: the stack file resolves to its endpoint, plain outputs and clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import procs
from ops.stack import StackError, resolve
from tests.stacks import StackInfo, write_stack_file


def test_the_local_target_is_the_running_stack_with_its_outputs(embedded_stack: StackInfo) -> None:
    stack = resolve("local", required=("function_name", "dlq_url", "source_bucket"), state_dir=embedded_stack.state_dir)

    assert (stack.target, stack.endpoint, stack.region) == ("local", embedded_stack.endpoint, embedded_stack.region)
    assert stack.outputs["source_bucket"] == embedded_stack.outputs["source_bucket"]
    assert all(isinstance(value, str) for value in stack.outputs.values())
    assert (
        stack.client("s3").head_bucket(Bucket=stack.output("source_bucket"))["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )


def test_a_required_output_the_stack_lacks_says_to_apply_again(embedded_stack: StackInfo) -> None:
    with pytest.raises(StackError, match="outputs lack no_such_output: apply it again .*make local-up"):
        resolve("local", required=("function_name", "no_such_output"), state_dir=embedded_stack.state_dir)


def test_a_local_stack_whose_cloud_does_not_answer_says_to_start_it(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "embedded", f"http://127.0.0.1:{procs.free_port()}", {"function_name": "f"})
    with pytest.raises(StackError, match="embedded local cloud at http://127.0.0.1:.* does not answer.*make local-up"):
        resolve("local", state_dir=tmp_path)
