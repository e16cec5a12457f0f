"""Static checks of the Terraform stack (fmt, validate, checkov) and unit tests of localcloud/tf.py.

Offline: providers come from TF_PROVIDER_MIRROR when it is set (CI sets it). Without a mirror and without the
registry the validate tests fail with a message saying to set it; they are never skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from localcloud import tf

REPO = tf.REPO_ROOT
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = REPO / ".checkov.yaml"
MODULE = tf.TERRAFORM_DIR / "modules" / "image-pipeline"
CONTRACT_OUTPUTS = {
    "source_bucket",
    "destination_bucket",
    "failed_bucket",
    "sns_topic_arn",
    "notifications_queue_url",
    "function_name",
    "log_group_name",
    "dlq_url",
}


def _fake_mirror(root: Path) -> Path:
    """Lay out an (empty) provider mirror directory the way `terraform providers mirror` does."""
    (root / "registry.terraform.io" / "hashicorp" / "aws").mkdir(parents=True)
    return root


# ---------------------------------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------------------------------


def test_terraform_is_formatted():
    assert tf.fmt_check(tf.TERRAFORM_DIR) == [], "run `make fmt` (terraform fmt -recursive terraform)"


@pytest.mark.parametrize("root", [tf.LOCAL_ROOT, tf.AWS_ROOT], ids=["envs-local", "envs-aws"])
def test_root_validates(root: Path, tmp_path: Path):
    failure = output = ""
    try:
        output = tf.validate(root, data_dir=tmp_path / "tf-data")
    except tf.TerraformError as exc:
        failure = str(exc)  # says to set TF_PROVIDER_MIRROR when the registry is unreachable
    if failure:
        pytest.fail(failure, pytrace=False)
    assert "Success! The configuration is valid." in output
    assert (tmp_path / "tf-data" / "providers").is_dir()  # the data went to TF_DATA_DIR, not the root


def test_roots_export_the_contract_outputs():
    for root in (tf.LOCAL_ROOT, tf.AWS_ROOT):
        declared = set(re.findall(r'^output "([a-z_]+)"', (root / "outputs.tf").read_text(), re.MULTILINE))
        assert CONTRACT_OUTPUTS <= declared, f"{root} misses {CONTRACT_OUTPUTS - declared}"
    module_outputs = set(re.findall(r'^output "([a-z_]+)"', (MODULE / "outputs.tf").read_text(), re.MULTILINE))
    assert CONTRACT_OUTPUTS <= module_outputs


def test_every_module_variable_is_typed_and_described():
    text = (MODULE / "variables.tf").read_text()
    blocks = re.split(r'^variable "', text, flags=re.MULTILINE)[1:]
    assert len(blocks) > 10
    for block in blocks:
        name = block.split('"', 1)[0]
        assert re.search(r"^\s+type\s+=", block, re.MULTILINE), f"variable {name} has no type"
        assert re.search(r"^\s+description\s+=", block, re.MULTILINE), f"variable {name} has no description"
        assert not re.search(r"^\s+type\s+=\s+any\b", block, re.MULTILINE), f"variable {name} is type = any"


def test_checkov_passes_with_every_skip_explained(tmp_path: Path):
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} not found: run `make install` to create .venv-checkov", pytrace=False)
    config_lines = CHECKOV_CONFIG.read_text().splitlines()
    for index, line in enumerate(config_lines):
        if re.match(r"\s+- CKV", line):
            assert config_lines[index - 1].strip().startswith("#"), f"skip without a reason comment: {line.strip()}"

    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(CHECKOV), "--config-file", str(CHECKOV_CONFIG), "--output", "json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = {key: sum(report["summary"][key] for report in reports) for key in ("passed", "failed")}
    parsing_errors = sum(report["summary"].get("parsing_errors", 0) for report in reports)
    resources = sum(report["summary"].get("resource_count", 0) for report in reports)
    # checkov exits 0 on files it cannot parse: make sure it really read the stack.
    assert parsing_errors == 0
    assert resources >= 20
    assert summary["passed"] > 50
    assert summary["failed"] == 0


# ---------------------------------------------------------------------------------------------------------------------
# localcloud/tf.py
# ---------------------------------------------------------------------------------------------------------------------


def test_mirror_becomes_a_cli_config_file(tmp_path: Path):
    mirror = _fake_mirror(tmp_path / "mirror")
    env = tf.terraform_env(
        base={"TF_PROVIDER_MIRROR": str(mirror), "PATH": os.environ["PATH"]}, cli_config_dir=tmp_path
    )

    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config.parent == tmp_path
    text = config.read_text()
    assert f'path    = "{mirror.resolve()}"' in text
    assert 'include = ["registry.terraform.io/hashicorp/*"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/*"]' in text
    assert env["TF_IN_AUTOMATION"] == "1"
    assert env["TF_INPUT"] == "0"
    assert env["DISABLE_DEPRECATION_NOTICE"] == "1"

    # Terraform itself reads the file without complaint.
    result = subprocess.run(["terraform", "version"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "CLI configuration" not in result.stderr + result.stdout


def test_same_mirror_reuses_one_config_file(tmp_path: Path):
    mirror = _fake_mirror(tmp_path / "mirror")
    first = tf.write_cli_config(mirror, tmp_path / "cfg")
    second = tf.write_cli_config(str(mirror), tmp_path / "cfg")
    assert first == second
    assert [path.name for path in (tmp_path / "cfg").iterdir()] == [first.name]


def test_a_directory_that_is_no_mirror_is_refused(tmp_path: Path):
    with pytest.raises(tf.TerraformError, match="TF_PROVIDER_MIRROR=.*registry.terraform.io/hashicorp/aws"):
        tf.terraform_env(base={"TF_PROVIDER_MIRROR": str(tmp_path)}, cli_config_dir=tmp_path / "cfg")


def test_without_mirror_a_missing_cli_config_is_dropped(tmp_path: Path):
    existing = tmp_path / "user.tfrc"
    existing.write_text("")

    env = tf.terraform_env(base={"TF_CLI_CONFIG_FILE": str(tmp_path / "missing.tfrc")}, cli_config_dir=tmp_path)
    assert "TF_CLI_CONFIG_FILE" not in env
    assert env["TF_INPUT"] == "0"
    assert not list(tmp_path.glob("cli-*.tfrc"))

    env = tf.terraform_env(base={"TF_CLI_CONFIG_FILE": str(existing)}, cli_config_dir=tmp_path)
    assert env["TF_CLI_CONFIG_FILE"] == str(existing)


def test_local_target_env_points_tflocal_at_the_endpoint():
    base = {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "secret", "AWS_ENDPOINT_URL_S3": "http://elsewhere:1"}
    env = tf.terraform_env({"TF_DATA_DIR": "/tmp/x"}, endpoint="http://127.0.0.1:45123", base=base)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:45123"
    assert env["S3_ENDPOINT"] == "http://127.0.0.1:45123"
    assert env["AWS_ACCESS_KEY_ID"] == env["AWS_SECRET_ACCESS_KEY"] == "test"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["TF_DATA_DIR"] == "/tmp/x"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        assert name not in env


def test_aws_target_env_drops_local_endpoints():
    base = {
        "AWS_ENDPOINT_URL": "http://localhost:4566",
        "AWS_ENDPOINT_URL_SQS": "http://localhost:4566",
        "S3_ENDPOINT": "http://localhost:4566",
        "AWS_PROFILE": "prod",
    }
    env = tf.terraform_env(base=base)
    assert not {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "S3_ENDPOINT"} & env.keys()
    assert env["AWS_PROFILE"] == "prod"


def test_terraform_version_is_checked():
    version = tf.check_terraform()
    assert tf.parse_version(version) >= tf.MIN_TERRAFORM_VERSION
    assert tf.parse_version("Terraform v1.6.0-beta1") == (1, 6, 0)
    assert tf.parse_version("1.11") == (1, 11, 0)


def test_missing_terraform_says_how_to_install(tmp_path: Path):
    with pytest.raises(tf.TerraformError, match="install Terraform >= 1.6"):
        tf.check_terraform({"PATH": str(tmp_path)})


def test_unreachable_registry_asks_for_a_mirror(tmp_path: Path):
    # A CLI config that sends registry.terraform.io's provider service to a closed port: the registry is
    # "unreachable" whether or not this machine has internet access.
    cli_config = tmp_path / "offline.tfrc"
    cli_config.write_text(
        'host "registry.terraform.io" {\n  services = {\n    "providers.v1" = "https://127.0.0.1:9/"\n  }\n}\n'
    )
    root = tmp_path / "root"
    root.mkdir()
    (root / "versions.tf").write_text(
        'terraform {\n  required_providers {\n    aws = {\n      source = "hashicorp/aws"\n    }\n  }\n}\n'
    )
    env = tf.terraform_env(
        {"TF_CLI_CONFIG_FILE": str(cli_config), "TF_DATA_DIR": str(tmp_path / "data")},
        base={key: value for key, value in os.environ.items() if key != "TF_PROVIDER_MIRROR"},
    )
    with pytest.raises(tf.TerraformError, match=r"set TF_PROVIDER_MIRROR=<dir with registry\.terraform\.io"):
        tf.init(root, env=env, backend=False)


def test_local_apply_fails_fast_without_a_local_cloud(tmp_path: Path):
    with pytest.raises(tf.TerraformError, match="nothing answers on http://127.0.0.1:9"):
        tf.apply(tf.LOCAL_ROOT, {}, local=True, endpoint="http://127.0.0.1:9", state_dir=tmp_path)
    with pytest.raises(tf.TerraformError, match="needs the local cloud's endpoint"):
        tf.apply(tf.LOCAL_ROOT, {}, local=True, state_dir=tmp_path)


def test_outputs_of_a_stack_never_applied_are_empty(tmp_path: Path):
    assert tf.outputs(tf.LOCAL_ROOT, state_dir=tmp_path / "never-applied") == {}


def test_tflocal_runs_in_one_root_take_turns(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    (root / tf.TFLOCAL_OVERRIDE_FILE).write_text("# left by a killed run\n")
    locks = tmp_path / "locks"
    with tf._root_lock(root, "first run", lock_dir=locks):
        assert not (root / tf.TFLOCAL_OVERRIDE_FILE).exists()  # a stale override would make tflocal refuse
        with pytest.raises(tf.TerraformError, match=r"busy for 1 s with: pid \d+: first run"):
            with tf._root_lock(root, "second run", timeout=1, lock_dir=locks):
                pass
    with tf._root_lock(root, "third run", timeout=1, lock_dir=locks):
        pass
