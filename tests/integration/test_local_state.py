"""`make local-up`'s stack is the one Terraform sees in terraform/envs/local; `make local-down` forgets it.

The tests run `up` on a copy of the project's Terraform (the build artifacts linked), so the checkout's own
terraform/envs/local and a user's `make local-up` (and its snapshot) are left alone, and then drive Terraform there by
hand, the way a user would: `tflocal output`, `tflocal plan`, `tflocal apply`. A warm `up` (after `down`, nothing
changed) restores the snapshot of the first one instead of applying, and Terraform sees that stack just the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ops import local, procs, stackfile, statedir, terraform
from tests.jpegs import photo_jpeg
from tests.stacks import PROJECT_ROOT, make_client, poll


def by_hand(tf_root: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run tflocal in ``tf_root`` with only what a user exports (the endpoint, and S3 on localhost offline)."""
    env = {
        "PATH": os.pathsep.join([str(Path(terraform.tflocal_binary()).parent), os.environ.get("PATH", "")]),
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ENDPOINT_URL": endpoint,
        "S3_HOSTNAME": "localhost",
        "DISABLE_DEPRECATION_NOTICE": "1",
        "TF_CMD": terraform.terraform_binary(),
    }
    return subprocess.run(
        ["tflocal", *args], cwd=tf_root, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture
def project(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root holding a copy of terraform/ and a link to build/ (`make build` output)."""
    root = tmp_path / "project"
    shutil.copytree(
        PROJECT_ROOT / "terraform", root / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*")
    )
    (root / "build").symlink_to(built, target_is_directory=True)
    monkeypatch.delenv(stackfile.STATE_DIR_ENV, raising=False)  # the project's own state directory, <root>/.local
    monkeypatch.setenv("LOCALCLOUD_EXIT_WITH_PID", str(os.getpid()))  # the server stops if this test process dies
    return root


def test_the_stack_local_up_applies_is_the_one_terraform_sees_in_envs_local(project: Path) -> None:
    port = procs.free_port()
    tf_root = project / "terraform" / "envs" / "local"
    endpoint = f"http://localhost:{port}"
    try:
        state = local.up(backend="embedded", port=port, root=project, dashboard=False)
        assert (tf_root / "terraform.tfstate").is_file()  # where Terraform users look, not hidden in .local/
        assert not (project / ".local" / "tfstate").exists()
        assert json.loads((tf_root / statedir.LOCAL_UP_TFVARS).read_text()) == {"region": state.region}

        shown = by_hand(tf_root, endpoint, "output", "-json")
        assert shown.returncode == 0, shown.stderr
        assert stackfile.output_values(json.loads(shown.stdout)) == {
            name: value for name, value in state.outputs.items() if value is not None
        }

        planned = by_hand(tf_root, endpoint, "plan", "-detailed-exitcode", "-no-color", "-input=false")
        assert planned.returncode == 0, planned.stdout + planned.stderr  # 0: no changes (2 would be a diff)
        assert "No changes." in planned.stdout

        applied = by_hand(tf_root, endpoint, "apply", "-auto-approve", "-no-color", "-var", "jpeg_encoder=pillow")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        function = make_client(endpoint, state.region, "lambda").get_function_configuration(
            FunctionName=state.outputs["function_name"]
        )
        assert function["Environment"]["Variables"]["JPEG_ENCODER"] == "pillow"  # the same stack, updated
    finally:
        local.down(root=project)

    # Nothing left that would make the next `up` (on a fresh, empty emulator) believe its resources exist.
    left = sorted(p.name for p in tf_root.iterdir())
    assert not [name for name in left if name.startswith("terraform.tfstate") or name == statedir.LOCAL_UP_TFVARS]
    assert not procs.port_in_use(port)


def test_a_warm_up_restores_the_snapshot_terraform_agrees_and_uploads_are_compressed(project: Path) -> None:
    port = procs.free_port()
    tf_root = project / "terraform" / "envs" / "local"
    endpoint = f"http://localhost:{port}"
    said: list[str] = []
    try:
        cold = local.up(backend="embedded", port=port, root=project, dashboard=False, say=said.append)
        assert any(line.startswith("applying terraform/envs/local") for line in said), said
        assert any(line.startswith("saved a snapshot of the stack to .local/snapshot") for line in said), said
        local.down(root=project)
        assert not (tf_root / "terraform.tfstate").exists() and not procs.port_in_use(port)
        assert (project / ".local" / "snapshot" / "snapshot.json").is_file()  # kept for the next `up`

        said.clear()
        warm = local.up(backend="embedded", port=port, root=project, dashboard=False, say=said.append)
        assert any(line.startswith("restored the stack from .local/snapshot (apply skipped") for line in said), said
        assert not any(line.startswith("applying") for line in said), said
        assert warm.outputs == cold.outputs
        assert json.loads((tf_root / statedir.LOCAL_UP_TFVARS).read_text()) == {"region": warm.region}

        planned = by_hand(tf_root, endpoint, "plan", "-detailed-exitcode", "-no-color", "-input=false")
        assert planned.returncode == 0, planned.stdout + planned.stderr  # the restored stack is what Terraform has
        assert "No changes." in planned.stdout

        # The restored function runs, and the restored bucket notification fires it.
        s3 = make_client(endpoint, warm.region, "s3")
        s3.put_object(Bucket=warm.outputs["source_bucket"], Key="after restore.jpg", Body=photo_jpeg())
        head = poll(
            lambda: _head(s3, warm.outputs["destination_bucket"], "after restore.jpg"),
            timeout=180,
            what="the compressed upload in the destination bucket",
        )
        assert head["Metadata"]["status"] in ("compressed", "kept-original")
    finally:
        local.down(root=project)

    said.clear()
    assert local.reset(root=project, say=said.append) is True
    assert not (project / ".local" / "snapshot").exists()  # the next `up` applies from scratch


def _head(s3, bucket: str, key: str) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return None
