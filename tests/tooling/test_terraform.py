"""Static checks of the Terraform stack (fmt, validate, checkov), its contract with the function's settings, and unit
tests of ops/terraform.py and ops/tfenv.py.

Offline: providers come from TF_PROVIDER_MIRROR when it is set (CI sets it). Without a mirror and without the
registry the validate tests fail with a message saying to set it; they are never skipped. The settings tests need no
provider: they evaluate the module's environment.tf with `terraform console`/`plan` and parse it with
Settings.from_env.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.shared import constants as powertools_constants
from image_compressor.settings import CompressionOptions, Settings

from localcloud import hotreload
from ops import stackfile, tfenv
from ops import terraform as tf
from tests import hcl

REPO = tf.REPO_ROOT
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = REPO / ".checkov.yaml"
MODULE = tf.TERRAFORM_DIR / "modules" / "image-pipeline"
CONTRACT_OUTPUTS = set(stackfile.STACK_OUTPUTS)


# Read by Powertools, not by Settings.from_env.
POWERTOOLS_VARIABLES = {
    powertools_constants.POWERTOOLS_LOG_LEVEL_LEGACY_ENV,  # LOG_LEVEL
    powertools_constants.SERVICE_NAME_ENV,
    powertools_constants.METRICS_NAMESPACE_ENV,
}
# Module files that make the function's settings: variables only, so they evaluate without a provider.
SETTINGS_FILES = ("variables.tf", "environment.tf")
# Root variables whose default deliberately differs from the module's (reason beside each).
ROOT_DEFAULT_DIFFERS = {
    # AWS: a customer-managed key so CloudWatch alarms can e-mail (docs/terraform.md); the module stays free.
    (tf.AWS_ROOT, "create_sns_kms_key"),
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


@pytest.mark.parametrize("directory", [MODULE, tf.LOCAL_ROOT, tf.AWS_ROOT], ids=["module", "envs-local", "envs-aws"])
def test_every_variable_is_typed_and_described(directory: Path):
    variables = hcl.variables(directory)
    assert len(variables) > 5
    for name, variable in variables.items():
        assert variable.type, f"variable {name} has no type"
        assert variable.description, f"variable {name} has no description"
        assert variable.type != "any", f"variable {name} is type = any"


@pytest.mark.parametrize("root", [tf.LOCAL_ROOT, tf.AWS_ROOT], ids=["envs-local", "envs-aws"])
def test_roots_pass_every_variable_on_with_the_module_default(root: Path):
    """A root variable is passed on as it is, and defaults to null (the module's default) or to the module's value."""
    module_variables = hcl.variables(MODULE)
    main = (root / "main.tf").read_text()
    module_block = main[main.index('module "pipeline" {') :]
    for name, variable in hcl.variables(root).items():
        if name not in module_variables:
            # Provider settings (region, tags, ...): used outside the module.
            assert f"var.{name}" in main, f"{root.name}: variable {name} is declared but never used"
            continue
        assert f"var.{name}" in module_block, f"{root.name}: variable {name} is not passed to the module"
        passed_as_is = re.search(rf"^\s+{name}\s+=\s+var\.{name}\s*$", module_block, re.MULTILINE)
        if passed_as_is and (root, name) not in ROOT_DEFAULT_DIFFERS:
            module_variable = module_variables[name]
            assert hcl.effective_default(variable, module_variable) == module_variable.default, (
                f"{root.name}: default of {name} ({variable.default}) differs from the module's "
                f"({module_variable.default}); null passes the module's default on only where the module's variable "
                "is nullable = false"
            )


def test_a_null_from_a_root_means_the_module_default():
    """Every module variable with a default takes it for a null, except where null means something of its own."""
    null_has_a_meaning = {"reserved_concurrency"}  # null: unreserved
    for name, variable in hcl.variables(MODULE).items():
        if variable.default not in (None, "null") and name not in null_has_a_meaning:
            assert not variable.nullable, f"module variable {name} needs nullable = false (a root passes null for it)"


# ---------------------------------------------------------------------------------------------------------------------
# The function's environment against lambda/image_compressor/settings.py
# ---------------------------------------------------------------------------------------------------------------------


class _RecordingEnv(Mapping[str, str]):
    """A read-only environment that records every variable name looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.read.add(name)
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.fixture
def settings_module(tmp_path: Path) -> Path:
    """A copy of the module's variables.tf and environment.tf: all `terraform console` needs for the settings."""
    directory = tmp_path / "settings-module"
    directory.mkdir()
    for name in SETTINGS_FILES:
        shutil.copyfile(MODULE / name, directory / name)
    return directory


def _terraform(directory: Path, args: list[str], variables: Mapping[str, Any], stdin: str = "") -> tuple[int, str]:
    """Run terraform in ``directory`` with ``variables`` (plus the required zip paths); return exit code and output."""
    var_file = directory / "test.tfvars.json"
    var_file.write_text(json.dumps({"lambda_zip_path": "lambda.zip", "layer_zip_path": "layer.zip", **variables}))
    env = tf.terraform_env({"TF_DATA_DIR": str(directory / ".terraform")})
    result = subprocess.run(
        [tf.terraform_binary(env), *args, f"-var-file={var_file}"],
        cwd=directory,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def _function_settings(directory: Path, variables: Mapping[str, Any]) -> dict[str, str]:
    """Evaluate the module's ``local.function_settings`` for ``variables``: the environment the function gets."""
    code, output = _terraform(directory, ["console"], variables, stdin="jsonencode(local.function_settings)\n")
    assert code == 0, output
    return json.loads(json.loads(output.strip().splitlines()[-1]))  # an HCL string holding the JSON


def _function_env(directory: Path, variables: Mapping[str, Any]) -> dict[str, str]:
    """The settings plus the names lambda.tf fills in from resources (bucket names, topic ARN)."""
    return {
        **_function_settings(directory, variables),
        "DEST_BUCKET": "dest",
        "FAILED_BUCKET": "failed",
        "SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:topic",
    }


def test_function_env_names_are_those_settings_reads(settings_module: Path):
    lambda_tf = (MODULE / "lambda.tf").read_text()
    environment = lambda_tf[lambda_tf.index("  environment {") :]
    environment = environment[: environment.index("\n  }\n")]
    assert "local.function_settings" in environment, "lambda.tf must merge environment.tf's local.function_settings"
    from_resources = set(re.findall(r"^\s+([A-Z][A-Z0-9_]*)\s+=", environment, re.MULTILINE))
    assert from_resources == {"DEST_BUCKET", "FAILED_BUCKET", "SNS_TOPIC_ARN"}

    # Every optional variable set (jpeg_quality is only exported when it is).
    module_names = from_resources | set(_function_settings(settings_module, {"jpeg_quality": 80}))

    recording = _RecordingEnv({"DEST_BUCKET": "dest", "FAILED_BUCKET": "failed"})
    Settings.from_env(recording)
    assert recording.read == module_names - POWERTOOLS_VARIABLES, (
        f"Terraform sets but the function never reads: {sorted(module_names - POWERTOOLS_VARIABLES - recording.read)};"
        f" the function reads but Terraform never sets: {sorted(recording.read - module_names)}"
    )
    assert POWERTOOLS_VARIABLES <= module_names


def test_module_defaults_are_the_function_defaults(settings_module: Path):
    env = _function_env(settings_module, {})
    assert "JPEG_QUALITY" not in env  # the function picks the mode's default
    settings = Settings.from_env(env)
    assert settings.compression == CompressionOptions()
    assert settings.compression.quality == 95  # the ceiling of the SSIM search, not a cap at 80
    assert settings.max_object_bytes == Settings("d", "f").max_object_bytes
    assert env["LOG_LEVEL"] == "INFO"
    assert env["POWERTOOLS_SERVICE_NAME"] == "image-compressor"


@pytest.mark.parametrize(
    ("variables", "expected", "max_object_bytes"),
    [
        pytest.param({"target_ssim": 0}, CompressionOptions(target_ssim=None), 52428800, id="search-off"),
        pytest.param(
            {"target_ssim": 0, "jpeg_quality": 70, "jpeg_encoder": "pillow"},
            CompressionOptions(target_ssim=None, quality=70, encoder="pillow"),
            52428800,
            id="fixed-quality-pillow",
        ),
        pytest.param(
            {
                "target_ssim": 0.999,
                "jpeg_quality": 95,
                "min_quality": 1,
                "max_dimension": 2048,
                "keep_metadata": True,
                "keep_gps": True,
                "max_pixels": 1,
                "progressive": False,
                "optimize": False,
                "max_object_bytes": 1,
            },
            CompressionOptions(
                target_ssim=0.999,
                quality=95,
                min_quality=1,
                max_dimension=2048,
                keep_metadata=True,
                keep_gps=True,
                max_pixels=1,
                progressive=False,
                optimize=False,
            ),
            1,
            id="every-setting-at-an-edge",
        ),
        pytest.param(
            {"target_ssim": 0.5, "jpeg_quality": 1, "min_quality": 95, "max_object_bytes": 10 * 2**30},
            CompressionOptions(target_ssim=0.5, quality=1, min_quality=95),
            10 * 2**30,
            id="lowest-target-and-quality",
        ),
    ],
)
def test_every_value_terraform_accepts_parses_in_the_function(
    settings_module: Path, variables: dict[str, Any], expected: CompressionOptions, max_object_bytes: int
):
    settings = Settings.from_env(_function_env(settings_module, variables))
    assert settings.compression == expected
    assert settings.max_object_bytes == max_object_bytes


REFUSED = [
    ({"jpeg_quality": 96}, "jpeg_quality must be null"),
    ({"jpeg_quality": 0}, "jpeg_quality must be null"),
    ({"jpeg_quality": 80.5}, "jpeg_quality must be null"),
    ({"target_ssim": 1}, "target_ssim must be between 0.5 and 0.999"),
    ({"target_ssim": 0.3}, "target_ssim must be between 0.5 and 0.999"),
    ({"target_ssim": -0.96}, "target_ssim must be between 0.5 and 0.999"),
    ({"min_quality": 0}, "min_quality must be a whole number between 1 and 95"),
    ({"min_quality": 96}, "min_quality must be a whole number between 1 and 95"),
    ({"jpeg_encoder": "mozjpeg"}, "jpeg_encoder must be jpegli or pillow"),
    ({"jpeg_encoder": "Pillow"}, "jpeg_encoder must be jpegli or pillow"),
    ({"max_object_bytes": 0}, "max_object_bytes must be a whole number of bytes >= 1"),
]


@pytest.mark.parametrize(
    ("variables", "message"),
    REFUSED,
    ids=[",".join(f"{name}={value}" for name, value in variables.items()) for variables, _ in REFUSED],
)
def test_values_the_function_would_refuse_are_refused_by_terraform(
    settings_module: Path, variables: dict[str, Any], message: str
):
    code, output = _terraform(settings_module, ["plan", "-no-color", "-input=false"], variables)
    assert code == 1
    assert "Invalid value for variable" in output
    assert message in " ".join(output.split())  # Terraform wraps long messages


# ---------------------------------------------------------------------------------------------------------------------
# Where the function's code comes from: the zip, or with hot_reload_dir the working tree (code.tf)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def code_module(tmp_path: Path) -> Path:
    """A copy of the module's variables.tf and code.tf: all `terraform console` needs for the code source."""
    directory = tmp_path / "code-module"
    directory.mkdir()
    for name in ("variables.tf", "code.tf"):
        shutil.copyfile(MODULE / name, directory / name)
    return directory


def _function_code(directory: Path, variables: Mapping[str, Any]) -> dict[str, Any]:
    code, output = _terraform(directory, ["console"], variables, stdin="jsonencode(local.function_code)\n")
    assert code == 0, output
    return json.loads(json.loads(output.strip().splitlines()[-1]))


def test_the_function_runs_the_zip_unless_hot_reload_dir_names_a_directory(code_module: Path, tmp_path: Path):
    zip_path = tmp_path / "lambda.zip"
    zip_path.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()

    built = _function_code(code_module, {"lambda_zip_path": str(zip_path)})
    live = _function_code(code_module, {"lambda_zip_path": str(zip_path), "hot_reload_dir": "/src/app/lambda"})

    assert built == {"filename": str(zip_path), "source_code_hash": digest, "s3_bucket": None, "s3_key": None}
    # LocalStack's convention, which the embedded local cloud follows too (localcloud/hotreload.py).
    assert live == {
        "filename": None,
        "source_code_hash": None,
        "s3_bucket": hotreload.HOT_RELOAD_BUCKET,
        "s3_key": "/src/app/lambda",
    }


@pytest.mark.parametrize("value", ["lambda", "./lambda", "/src/app/lambda/", ""])
def test_hot_reload_dir_must_be_an_absolute_directory_path(code_module: Path, value: str):
    code, output = _terraform(code_module, ["plan", "-no-color", "-input=false"], {"hot_reload_dir": value})
    assert code == 1
    assert "hot_reload_dir must be null or an absolute directory path" in " ".join(output.split())


def test_lambda_tf_takes_the_code_from_code_tf():
    lambda_tf = (MODULE / "lambda.tf").read_text()
    for argument in ("filename", "source_code_hash", "s3_bucket", "s3_key"):
        assert re.search(rf"^\s+{argument}\s+=\s+local\.function_code\.{argument}$", lambda_tf, re.MULTILINE), argument


def test_only_the_local_root_offers_hot_reload():
    assert "hot_reload_dir" in hcl.variables(tf.LOCAL_ROOT)
    assert "hot_reload_dir = var.hot_reload_dir" in " ".join((tf.LOCAL_ROOT / "main.tf").read_text().split())
    for path in tf.AWS_ROOT.glob("*"):
        if path.is_file():
            assert "hot_reload" not in path.read_text(), f"{path.name}: AWS always deploys the built zip"


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
# ops/tfenv.py (the environment) and ops/terraform.py (running commands)
# ---------------------------------------------------------------------------------------------------------------------


def test_mirror_becomes_a_cli_config_file(tmp_path: Path):
    mirror = _fake_mirror(tmp_path / "mirror")
    env = tfenv.terraform_env(
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
    first = tfenv.write_cli_config(mirror, tmp_path / "cfg")
    second = tfenv.write_cli_config(str(mirror), tmp_path / "cfg")
    assert first == second
    assert [path.name for path in (tmp_path / "cfg").iterdir()] == [first.name]


def test_a_directory_that_is_no_mirror_is_refused(tmp_path: Path):
    with pytest.raises(tfenv.TerraformError, match="TF_PROVIDER_MIRROR=.*registry.terraform.io/hashicorp/aws"):
        tfenv.terraform_env(base={"TF_PROVIDER_MIRROR": str(tmp_path)}, cli_config_dir=tmp_path / "cfg")


def test_without_mirror_a_missing_cli_config_is_dropped(tmp_path: Path):
    existing = tmp_path / "user.tfrc"
    existing.write_text("")

    env = tfenv.terraform_env(base={"TF_CLI_CONFIG_FILE": str(tmp_path / "missing.tfrc")}, cli_config_dir=tmp_path)
    assert "TF_CLI_CONFIG_FILE" not in env
    assert env["TF_INPUT"] == "0"
    assert not list(tmp_path.glob("cli-*.tfrc"))

    env = tfenv.terraform_env(base={"TF_CLI_CONFIG_FILE": str(existing)}, cli_config_dir=tmp_path)
    assert env["TF_CLI_CONFIG_FILE"] == str(existing)


def test_local_target_env_points_tflocal_at_the_endpoint():
    base = {"AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "secret", "AWS_ENDPOINT_URL_S3": "http://elsewhere:1"}
    env = tfenv.terraform_env({"TF_DATA_DIR": "/tmp/x"}, endpoint="http://127.0.0.1:45123", base=base)
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
    env = tfenv.terraform_env(base=base)
    assert not {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "S3_ENDPOINT"} & env.keys()
    assert env["AWS_PROFILE"] == "prod"


def test_terraform_version_is_checked():
    version = tfenv.check_terraform()
    assert tfenv.parse_version(version) >= tfenv.MIN_TERRAFORM_VERSION
    assert tfenv.parse_version("Terraform v1.6.0-beta1") == (1, 6, 0)
    assert tfenv.parse_version("1.11") == (1, 11, 0)


def test_missing_terraform_says_how_to_install(tmp_path: Path):
    with pytest.raises(tfenv.TerraformError, match="install Terraform >= 1.6"):
        tfenv.check_terraform({"PATH": str(tmp_path)})


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
