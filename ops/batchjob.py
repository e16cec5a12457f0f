"""The S3 Batch Operations job of a large AWS backfill: the CSV manifest, the ``CreateJob`` request, the job.

:func:`ops.backfill.run` sends the objects it queued here when there are at least ``--batch-threshold`` of them on
AWS: they become a CSV manifest in the stack's batch bucket (output ``batch_bucket``), and one job invokes the
function once per row with a schema-2.0 event (:mod:`image_compressor.batch`) under the role ``batch_role_arn``. No
local target emulates Batch Operations, so :func:`job_request` is pure and checked against botocore's s3control model.
"""

from __future__ import annotations

import csv
import tempfile
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote_plus

import botocore.exceptions as bx
import image_compressor.batch as batch
from image_compressor.result import unquote_etag

from ops.stack import OPERATION, Stack

#: The stack outputs a Batch Operations job needs (null where ``batch_operations_enabled`` is off).
BATCH_OUTPUTS = ("batch_bucket", "batch_role_arn")


class JobError(RuntimeError):
    """The job cannot be created; the message says what to do instead."""


def start(stack: Stack, source_bucket: str, keys: Iterable[str], count: int, *, force: bool) -> str:
    """Write ``keys`` of ``source_bucket`` as a manifest to the batch bucket, create the job, return its id.

    ``count`` is how many keys there are (for the message when the stack has no batch bucket). The job starts at
    once; its completion report lands in ``reports/`` of the batch bucket.

    Raises
    ------
    JobError
        When the stack has no batch bucket or role (the message says how to enable them, or to invoke per object), or
        S3 Batch Operations refused the job (the message names the manifest, which stays).
    """
    batch_bucket, role_arn = (stack.outputs.get(name) for name in BATCH_OUTPUTS)
    if not batch_bucket or not role_arn:
        raise JobError(
            f"{count} objects need a Batch Operations job, but the stack has no batch bucket or role: set "
            "batch_operations_enabled = true in terraform/envs/aws/terraform.tfvars and run `make deploy-aws`, or "
            f"pass --batch-threshold {count + 1} to invoke the function once per object instead"
        )
    s3 = stack.client("s3", OPERATION)
    run_id = uuid.uuid4().hex
    manifest_key = f"manifests/backfill-{run_id}.csv"
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".csv", newline="") as manifest:
        writer = csv.writer(manifest)
        for key in keys:
            writer.writerow(manifest_row(source_bucket, key))
        manifest.flush()
        s3.upload_file(manifest.name, batch_bucket, manifest_key)
    etag = unquote_etag(s3.head_object(Bucket=batch_bucket, Key=manifest_key)["ETag"]) or ""
    function_arn = (
        stack.outputs.get("function_arn")
        or stack.client("lambda", OPERATION).get_function_configuration(FunctionName=stack.output("function_name"))[
            "FunctionArn"
        ]
    )
    account_id = stack.outputs.get("account_id") or stack.client("sts", OPERATION).get_caller_identity()["Account"]
    request = job_request(
        account_id=account_id,
        function_arn=function_arn,
        role_arn=role_arn,
        report_bucket=batch_bucket,
        manifest_key=manifest_key,
        manifest_etag=etag,
        run_id=run_id,
        force=force,
    )
    try:
        return str(stack.client("s3control", OPERATION).create_job(**request)["JobId"])
    except bx.ClientError as exc:
        raise JobError(
            f"S3 Batch Operations did not create the job ({exc}); the manifest is s3://{batch_bucket}/{manifest_key}"
        ) from exc


def manifest_row(bucket: str, key: str) -> list[str]:
    """Return the CSV manifest row of ``s3://bucket/key`` (S3 Batch Operations wants the key URL-encoded)."""
    return [bucket, quote_plus(key, safe="/")]


def job_request(
    *,
    account_id: str,
    function_arn: str,
    role_arn: str,
    report_bucket: str,
    manifest_key: str,
    manifest_etag: str,
    run_id: str,
    force: bool,
    priority: int = 10,
) -> dict[str, Any]:
    """Return the ``s3control.create_job`` parameters of a backfill job (one LambdaInvoke per manifest row).

    The manifest is the CSV ``manifest_key`` (bucket, URL-encoded key) in ``report_bucket``; the completion report
    (all tasks) goes to ``reports/`` in the same bucket. Schema 2.0 carries ``backfillRun`` for a forced run. The job
    starts without confirmation (``ConfirmationRequired`` false): the command is the confirmation.
    """
    bucket_arn = f"arn:aws:s3:::{report_bucket}"
    user_arguments = {batch.ARG_RUN: run_id} if force else {}
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {
            "LambdaInvoke": {
                "FunctionArn": function_arn,
                "InvocationSchemaVersion": batch.SCHEMA_VERSION,
                "UserArguments": user_arguments,
            }
        },
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": f"{bucket_arn}/{manifest_key}", "ETag": manifest_etag},
        },
        "Report": {
            "Bucket": bucket_arn,
            "Prefix": "reports",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "AllTasks",
        },
        "Priority": priority,
        "RoleArn": role_arn,
        "ClientRequestToken": run_id,
        "Description": f"image-pipeline backfill {run_id}"[:256],
    }
