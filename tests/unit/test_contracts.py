"""The contracts several parts rely on are defined once: the copies that cannot import them are pinned here."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from image_compressor.identity import Identity
from image_compressor.outputs import output_metadata
from image_compressor.result import STATUSES, MetadataKey, Result, Status, read_metadata
from image_compressor.settings import OFF_WORDS, parse_target_ssim

from localcloud import asyncinvoke, guard, ministack, ministackasync, server, switches
from ops import backfill, batchjob, defaults, launch, stackfile
from tests import hcl
from tests.stacks import write_stack_file

ROOT = defaults.ROOT


def test_artifact_names_in_terraform_are_the_build_names():
    for env in ("local", "aws"):
        main = (ROOT / "terraform" / "envs" / env / "main.tf").read_text()
        assert f'"${{local.build_dir}}/{defaults.FUNCTION_ZIP}"' in main
        assert f'"${{local.build_dir}}/{defaults.LAYER_ZIP}"' in main


def _function_defaults() -> dict[str, object]:
    """The module variables that are settings of the function, each with the function's default (settings.py)."""
    from image_compressor import settings

    options = settings.CompressionOptions()
    return {
        "jpeg_encoder": settings.DEFAULT_ENCODER,
        "target_ssim": settings.DEFAULT_TARGET_SSIM,
        "min_quality": settings.DEFAULT_MIN_QUALITY,
        "max_scans": settings.DEFAULT_MAX_SCANS,
        "max_object_bytes": settings.DEFAULT_MAX_OBJECT_BYTES,
        "max_pixels": options.max_pixels,
        "keep_metadata": options.keep_metadata,
        "keep_gps": options.keep_gps,
        "progressive": options.progressive,
        "optimize": options.optimize,
    }


def _tfvars_example() -> tuple[dict[str, str], dict[str, str]]:
    """The AWS root's terraform.tfvars.example: its set assignments, and the commented-out ones (shown defaults)."""
    text = (hcl.ROOT_DIRS["aws"] / "terraform.tfvars.example").read_text()
    assignment = r"([a-z0-9_]+) = (\S.*?)[ \t]*(?:#.*)?$"  # `.` stops at the end of the line, `\s` would not
    return dict(re.findall(rf"^{assignment}", text, re.M)), dict(re.findall(rf"^# {assignment}", text, re.M))


def test_every_terraform_copy_of_a_function_default_is_the_function_default():
    # The module holds the one Terraform copy; a root that declares the variable defaults to null (the module's
    # default) or to the same value, and terraform.tfvars.example shows it commented out at that value.
    module = hcl.variables(hcl.MODULE_DIR)
    _, shown = _tfvars_example()
    for name, value in _function_defaults().items():
        expected = json.dumps(value)  # the HCL literal: "jpegli", 0.95, 78, true
        assert module[name].default == expected, f"module: {name} = {module[name].default}, the function's is {value}"
        for env, directory in hcl.ROOT_DIRS.items():
            if name in (root := hcl.variables(directory)):
                assert hcl.effective_default(root[name], module[name]) == expected, (env, name)
        assert shown.get(name, expected) == expected, f"terraform.tfvars.example shows {name} = {shown[name]}"


def test_the_tfvars_example_shows_every_variable_of_the_aws_root_at_its_default():
    module, root = hcl.variables(hcl.MODULE_DIR), hcl.variables(hcl.ROOT_DIRS["aws"])
    given, shown = _tfvars_example()
    named = set(given) | set(shown)
    assert named <= set(root), f"terraform.tfvars.example names {sorted(named - set(root))}: not in terraform/envs/aws"
    assert set(root) <= named, f"terraform.tfvars.example leaves out {sorted(set(root) - named)}"
    assert given["region"] == f'"{defaults.DEFAULT_REGION}"'
    for name, value in shown.items():
        default = hcl.effective_default(root[name], module[name]) if name in module else root[name].default
        assert value == default, f"terraform.tfvars.example shows {name} = {value}; its default is {default}"


def test_the_default_region_and_ports_match_terraform_compose_and_the_emulator():
    for env in ("local", "aws"):
        variables = (ROOT / "terraform" / "envs" / env / "variables.tf").read_text()
        block = variables[variables.index('variable "region"') :]
        assert re.search(r'default\s*=\s*"([^"]+)"', block).group(1) == defaults.DEFAULT_REGION
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["localstack"]["ports"] == [f"127.0.0.1:${{LOCALSTACK_PORT:-{defaults.LOCAL_PORT}}}:4566"]
    assert server.DEFAULT_PORT == defaults.LOCAL_PORT
    assert guard.LOOPBACK_HOST == defaults.LOCAL_HOST
    assert (switches.ON_WORDS, switches.OFF_WORDS) == (defaults.ON_WORDS, defaults.OFF_WORDS)
    assert (
        server.build_parser().parse_args([]).host == ministack.build_parser().parse_args([]).host == guard.LOOPBACK_HOST
    )


def test_ministack_is_pinned_once_and_ops_knows_its_health_path_and_port():
    lock = (ROOT / "requirements" / "ministack.lock").read_text()
    assert f"ministack=={ministack.MINISTACK_VERSION}\n" in lock
    assert launch.MINISTACK_HEALTH == ministack.HEALTH_PATH
    assert ministack.build_parser().parse_args([]).port == defaults.LOCAL_PORT
    assert ministack.build_parser().parse_args([]).region == defaults.DEFAULT_REGION


def test_both_local_clouds_try_a_throttled_event_again_after_the_same_delays():
    assert ministackasync.THROTTLE_DELAYS == asyncinvoke.DEFAULT_THROTTLE_DELAYS


def test_every_terraform_root_exports_the_stack_outputs():
    for env in ("local", "aws"):
        outputs = (ROOT / "terraform" / "envs" / env / "outputs.tf").read_text()
        assert set(re.findall(r'^output "(\w+)"', outputs, re.M)) >= set(stackfile.STACK_OUTPUTS)
    assert set(stackfile.REQUIRED_OUTPUTS) | set(stackfile.OPTIONAL_OUTPUTS) == set(stackfile.STACK_OUTPUTS)


def test_every_root_re_exports_each_module_output_under_its_name():
    # Terraform cannot pass a module's outputs through: each root writes them out, and none may go missing or stray.
    module = hcl.outputs(hcl.MODULE_DIR)
    for env, directory in hcl.ROOT_DIRS.items():
        root = hcl.outputs(directory)
        assert list(root) == list(module), f"terraform/envs/{env}/outputs.tf: not the module's outputs in its order"
        for name, output in root.items():
            assert output.value == f"module.pipeline.{name}", (env, name)


def test_the_batch_operations_outputs_are_optional_and_only_the_local_root_leaves_them_null():
    # The backfill reads them; a local stack (no Batch Operations emulated) has them null, the AWS root by default not.
    assert set(batchjob.BATCH_OUTPUTS) <= set(stackfile.OPTIONAL_OUTPUTS)
    assert set(backfill.NEEDED_OUTPUTS) <= set(stackfile.REQUIRED_OUTPUTS)
    enabled = hcl.variables(hcl.ROOT_DIRS["aws"])["batch_operations_enabled"]
    assert hcl.effective_default(enabled, hcl.variables(hcl.MODULE_DIR)["batch_operations_enabled"]) == "true"
    local_root = (ROOT / "terraform" / "envs" / "local" / "main.tf").read_text()
    assert re.search(r"^\s+batch_operations_enabled\s+=\s+false\s*$", local_root, re.M)


def test_the_stack_file_round_trips_and_a_foreign_one_is_refused(tmp_path: Path):
    path = write_stack_file(
        tmp_path, "embedded", "http://localhost:4566", {"source_bucket": "src", "batch_bucket": None}
    )

    loaded = stackfile.load(tmp_path)

    assert loaded is not None and loaded.outputs == {"source_bucket": "src"} and loaded.updated_at  # nulls left out
    assert (loaded.target, loaded.backend, loaded.stack_file) == ("local", "embedded", str(path))
    assert json.loads(path.read_text())["version"] == stackfile.STATE_VERSION
    assert stackfile.read(path) == loaded
    path.write_text('{"backend": "embedded", "outputs": {}}')  # no version: refused by every reader
    with pytest.raises(ValueError, match="make local-down"):
        stackfile.load(tmp_path)
    assert stackfile.load(tmp_path / "none") is None


def test_the_stack_file_records_hot_reload_and_older_version_1_files_still_read(tmp_path: Path):
    path = write_stack_file(tmp_path, "embedded", "http://localhost:4566", {}, hot_reload_dir="/src/lambda")
    assert stackfile.read(path).hot_reload_dir == "/src/lambda"

    document = json.loads(path.read_text())
    del document["hot_reload_dir"]  # a file written before the field existed
    path.write_text(json.dumps(document))
    assert stackfile.read(path).hot_reload_dir is None


def test_hot_reload_runs_the_sources_of_the_function_zip():
    assert defaults.FUNCTION_SOURCE_DIR == ROOT / "lambda"
    assert (defaults.FUNCTION_SOURCE_DIR / "index.py").is_file()


def test_terraform_outputs_unwrap_to_plain_values_and_required_ones_are_checked():
    raw = {"source_bucket": {"value": "src", "type": "string"}, "notifications_queue_url": {"value": None}}
    assert stackfile.output_values(raw) == {"source_bucket": "src", "notifications_queue_url": None}
    assert stackfile.plain_outputs(raw) == {"source_bucket": "src"}
    missing = stackfile.missing_outputs(raw)
    assert "notifications_queue_url" not in missing and "source_bucket" not in missing
    assert "dlq_url" in missing


def test_metadata_written_by_the_function_reads_back_as_the_same_record():
    result = Result(Status.COMPRESSED, 2000, 1500, 64, 48, 80, 12.34)
    identity = Identity("e" * 32, "0A", 1_800_000_000, "v1")
    metadata = output_metadata(result, "etag-1", "fp", identity)
    assert set(metadata) <= {key.value for key in MetadataKey}
    assert {MetadataKey.SOURCE_EVENT, MetadataKey.SOURCE_SEQUENCER, MetadataKey.SOURCE_MODIFIED} <= set(metadata)
    stored = read_metadata(metadata, object_bytes=1500, failed_copy=False)
    assert (stored.status, stored.input_bytes, stored.output_bytes) == ("compressed", 2000, 1500)
    assert (stored.width, stored.height, stored.quality, stored.ms) == (64, 48, 80, 12.3)
    assert stored.source_etag == "etag-1" and stored.saved_bytes == 500
    assert STATUSES == ("compressed", "kept-original", "failed")
    legacy = read_metadata({"Reason": "not a JPEG"}, object_bytes=10, failed_copy=True)
    assert (legacy.status, legacy.input_bytes, legacy.output_bytes) == ("failed", 10, None)


@pytest.mark.parametrize("word", sorted(OFF_WORDS) + ["OFF", " None "])
def test_every_off_word_turns_the_search_off_in_settings_and_cli(word: str):
    from image_compressor.settings import Settings
    from image_compressor_cli.main import _target_ssim

    assert parse_target_ssim(word) is None
    assert _target_ssim(word) is None
    env = {"DEST_BUCKET": "d", "FAILED_BUCKET": "f", "TARGET_SSIM": word}
    assert Settings.from_env(env).compression.target_ssim is None


def test_docs_reliability_lists_every_fault_scenario_in_its_table_and_scenarios() -> None:
    """docs/reliability.md publishes a row and a description for each scenario of tests/faults/test_reliability.py."""

    suite = ast.parse((ROOT / "tests" / "faults" / "test_reliability.py").read_text())
    scenarios = [
        node.name.removeprefix("test_")
        for node in suite.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    doc = (ROOT / "docs" / "reliability.md").read_text()
    assert scenarios
    for name in scenarios:
        assert doc.count(f"| {name} |") == 2, f"docs/reliability.md: {name} needs a table row and a scenario row"
