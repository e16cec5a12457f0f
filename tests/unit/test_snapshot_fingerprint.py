"""The fingerprint that decides whether a warm ``up`` may restore the snapshot instead of applying (``ops.snapshot``).

Each test changes one input of a local apply in a small project tree and checks which part of the fingerprint moves,
or that Terraform's own working files, dates and hidden files move nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ops import defaults, snapshot

VERSIONS = {"terraform": "1.11.0", "tflocal": "0.27", "moto": "5.2.5", "python": "3.11.2"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project tree: terraform/envs/local, terraform/modules/m, build/ with both artifacts, localcloud/."""
    (tmp_path / "terraform" / "envs" / "local").mkdir(parents=True)
    (tmp_path / "terraform" / "modules" / "m").mkdir(parents=True)
    (tmp_path / "terraform" / "envs" / "local" / "main.tf").write_text('module "m" { source = "../../modules/m" }\n')
    (tmp_path / "terraform" / "envs" / "local" / ".terraform.lock.hcl").write_text('version = "5.100.0"\n')
    (tmp_path / "terraform" / "modules" / "m" / "sqs.tf").write_text('resource "aws_sqs_queue" "this" {}\n')
    (tmp_path / "build").mkdir()
    for name in defaults.ARTIFACTS:
        (tmp_path / "build" / name).write_bytes(b"zip " + name.encode())
    (tmp_path / "localcloud").mkdir()
    (tmp_path / "localcloud" / "server.py").write_text("PORT = 4566\n")
    return tmp_path


def print_of(project: Path, variables: dict | None = None, port: int = 4566, **versions: str) -> snapshot.Fingerprint:
    return snapshot.fingerprint(
        tf_root=project / "terraform" / "envs" / "local",
        build_dir=project / "build",
        variables=variables if variables is not None else {"region": "eu-west-1"},
        port=port,
        versions=VERSIONS | versions,
        localcloud_dir=project / "localcloud",
    )


def test_the_same_inputs_give_the_same_fingerprint_whatever_the_dates(project: Path) -> None:
    before = print_of(project)
    for path in project.rglob("*"):
        os.utime(path, (1, 1))
    after = print_of(project)
    assert after == before and after.digest == before.digest and after.changed(before.parts) == []


@pytest.mark.parametrize(
    ("path", "part"),
    [
        ("terraform/modules/m/sqs.tf", "terraform_modules"),
        ("terraform/modules/m/new.tf", "terraform_modules"),
        ("terraform/envs/local/main.tf", "terraform_root"),
        ("terraform/envs/local/terraform.tfvars", "terraform_root"),  # a user's own variables are loaded too
        ("terraform/envs/local/.terraform.lock.hcl", "provider_lock"),  # another provider version or hash
        ("build/lambda.zip", "lambda.zip"),
        ("build/layer.zip", "layer.zip"),
        ("localcloud/server.py", "localcloud"),  # the snapshot holds objects of the moto seam
    ],
)
def test_a_changed_input_file_invalidates_exactly_its_part(project: Path, path: str, part: str) -> None:
    before = print_of(project)
    target = project / path
    target.write_bytes((target.read_bytes() if target.exists() else b"") + b"\n# changed\n")
    after = print_of(project)
    assert after.changed(before.parts) == [part]
    assert after.digest != before.digest


def test_a_removed_artifact_invalidates_it_and_a_lock_file_coming_or_going_does_not(project: Path) -> None:
    """The first ``terraform init`` in a root writes its lock file (in a fresh clone, whichever stack ran first): the
    provider version is pinned by versions.tf, so only a lock file whose content changed counts (the test above)."""
    before = print_of(project)
    (project / "build" / "layer.zip").unlink()
    (project / "terraform" / "envs" / "local" / ".terraform.lock.hcl").unlink()
    gone = print_of(project)
    assert gone.changed(before.parts) == ["layer.zip"]
    assert before.changed(gone.parts) == ["layer.zip"]  # and the other way: the lock file appeared


@pytest.mark.parametrize(
    "path",
    [
        "terraform/envs/local/terraform.tfstate",
        "terraform/envs/local/terraform.tfstate.backup",
        "terraform/envs/local/local-up.auto.tfvars.json",  # up's own variables: the `variables` part covers them
        "terraform/envs/local/localstack_providers_override.tf",  # tflocal's file, there while it runs
        "terraform/envs/local/.terraform/terraform.tfstate",
        "terraform/envs/local/.terraform/providers/p/terraform-provider-aws",
        "terraform/modules/m/.sqs.tf.swp",
        "localcloud/README.txt",
        "localcloud/__pycache__/server.cpython-311.pyc",
    ],
)
def test_terraforms_working_files_hidden_files_and_non_sources_change_nothing(project: Path, path: str) -> None:
    before = print_of(project)
    target = project / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("whatever Terraform or an editor writes\n")
    assert print_of(project).changed(before.parts) == []


def test_variables_port_and_versions_are_parts(project: Path) -> None:
    base = print_of(project)
    hot = print_of(project, {"region": "eu-west-1", "hot_reload_dir": "/src/lambda"})
    assert hot.changed(base.parts) == ["variables"]
    assert print_of(project, {"region": "us-east-1"}).changed(base.parts) == ["variables"]
    assert print_of(project, port=4600).changed(base.parts) == ["port"]  # queue URLs in the state carry the port
    assert print_of(project, moto="5.2.6").changed(base.parts) == ["moto"]
    assert print_of(project, terraform="1.12.0").changed(base.parts) == ["terraform"]
    assert print_of(project, python="3.12.1").changed(base.parts) == ["python"]
    assert print_of(project, tflocal="0.28").changed(base.parts) == ["tflocal"]


def test_tool_versions_name_what_the_snapshot_depends_on() -> None:
    versions = snapshot.tool_versions("1.11.0")
    assert set(versions) == {"terraform", "tflocal", "moto", "python"}
    assert versions["terraform"] == "1.11.0"
    assert versions["moto"] == "5.2.5"  # the pinned moto of the embedded cloud


def complete(directory: Path, current: snapshot.Fingerprint, tmp_path: Path) -> snapshot.Snapshot:
    """A complete snapshot: the emulator file (as the server writes it), then commit."""
    saved = snapshot.Snapshot(directory)
    directory.mkdir(parents=True, exist_ok=True)
    saved.emulator_file.write_bytes(b"pickle")
    state = tmp_path / "terraform.tfstate"
    state.write_text('{"version": 4}')
    saved.commit(current, state, {"source_bucket": "src"})
    return saved


def test_a_snapshot_is_used_only_when_complete_and_its_fingerprint_matches(project: Path, tmp_path: Path) -> None:
    current = print_of(project)
    saved = snapshot.Snapshot(tmp_path / "state" / snapshot.SNAPSHOT_DIR)
    assert saved.why_not(current) == "no snapshot yet"

    saved = complete(saved.directory, current, tmp_path)
    assert saved.why_not(current) is None
    meta = saved.meta()
    assert meta is not None and meta["outputs"] == {"source_bucket": "src"} and meta["fingerprint"] == current.parts

    (project / "build" / "lambda.zip").write_bytes(b"new code")
    assert saved.why_not(print_of(project)) == "changed since the snapshot: lambda.zip"

    target = tmp_path / "root" / "terraform.tfstate"
    saved.put_tfstate(target)
    assert target.read_text() == '{"version": 4}'

    saved.emulator_file.unlink()  # an incomplete snapshot is never used
    assert saved.why_not(current) == "no snapshot yet"
    saved = complete(saved.directory, current, tmp_path)
    saved.invalidate()  # before its files are replaced: unusable until the next commit
    assert saved.meta() is None

    saved = complete(saved.directory, current, tmp_path)
    meta_doc = json.loads(saved.meta_file.read_text())
    saved.meta_file.write_text(json.dumps(meta_doc | {"format": snapshot.FORMAT + 1}))
    assert saved.why_not(current) == "no snapshot yet"  # another layout is never read

    assert saved.discard() is True
    assert not saved.directory.exists()
    assert saved.discard() is False
