"""Every boto3 call of the function (S3 and SNS), behind small functions that speak the project's words.

Clients are created lazily, once per container, with the region from ``AWS_REGION``/``AWS_DEFAULT_REGION``.
There is no endpoint code: boto3 reads ``AWS_ENDPOINT_URL`` itself, which is how the local targets reach the code.
Every AWS error leaves this module as :class:`AwsError`, so callers never import botocore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from image_compressor.notification import ascii_safe, truncate

#: S3 limits user-defined metadata to 2 KB: the UTF-8 bytes of every key and value added up.
MAX_METADATA_BYTES = 2048
#: The metadata value that is shortened when the whole set would not fit.
_SHRINKABLE = "reason"

_clients: dict[str, Any] = {}


class AwsError(Exception):
    """An S3 or SNS call failed.

    Attributes
    ----------
    operation : str
        The API operation, e.g. ``PutObject``.
    target : str
        What it was called on, e.g. ``s3://bucket/key`` or a topic ARN.
    code : str
        The AWS error code (``AccessDenied``, ``NoSuchBucket``, ``404``, ...) or the botocore error class name.
    """

    def __init__(self, operation: str, target: str, code: str, detail: str) -> None:
        super().__init__(f"{operation} on {target} failed: {code}: {detail}")
        self.operation = operation
        self.target = target
        self.code = code


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What HeadObject/GetObject told about an object.

    Attributes
    ----------
    size : int
        Content length in bytes.
    etag : str
        ETag without the surrounding quotes.
    content_type : str | None
        The object's Content-Type.
    metadata : dict[str, str]
        User metadata (keys lower-case, without ``x-amz-meta-``).
    """

    size: int
    etag: str
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def client(service: str) -> Any:
    """Return the boto3 client for ``service``, created on first use and reused for the container's lifetime."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    created = boto3.client(service, region_name=region)
    _clients[service] = created
    return created


def reset_clients() -> None:
    """Forget the cached clients so the next call creates new ones (tests; a changed region or credentials)."""
    _clients.clear()


def head_object(bucket: str, key: str) -> ObjectInfo | None:
    """Return size, ETag, content type and user metadata of ``s3://bucket/key``, or ``None`` if it does not exist.

    Raises
    ------
    AwsError
        For any other failure (``403`` included: without ``s3:ListBucket`` S3 answers 403 for a missing key too).
    """
    try:
        response = client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _http_status(exc) == 404:
            return None
        raise _wrap("HeadObject", f"s3://{bucket}/{key}", exc) from exc
    except BotoCoreError as exc:
        raise _wrap("HeadObject", f"s3://{bucket}/{key}", exc) from exc
    return _info(response)


def get_object(bucket: str, key: str) -> tuple[bytes, ObjectInfo]:
    """Download ``s3://bucket/key`` fully into memory and return its bytes and what S3 said about it.

    Raises
    ------
    AwsError
        When the object cannot be read.
    """
    target = f"s3://{bucket}/{key}"
    try:
        response = client("s3").get_object(Bucket=bucket, Key=key)
        data = response["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("GetObject", target, exc) from exc
    return data, _info(response)


def put_object(bucket: str, key: str, data: bytes, metadata: dict[str, str], content_type: str = "image/jpeg") -> None:
    """Write ``data`` to ``s3://bucket/key`` with user ``metadata`` made to fit S3's rules (see :func:`fit_metadata`).

    Raises
    ------
    AwsError
        When the write fails (missing bucket, access denied, ...).
    """
    try:
        client("s3").put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=fit_metadata(metadata)
        )
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("PutObject", f"s3://{bucket}/{key}", exc) from exc


def copy_object(
    source_bucket: str,
    key: str,
    bucket: str,
    metadata: dict[str, str],
    content_type: str | None = None,
) -> None:
    """Copy ``s3://source_bucket/key`` server-side to ``s3://bucket/key``, replacing its user metadata.

    Nothing is downloaded: this is one CopyObject call with ``MetadataDirective=REPLACE`` (objects up to 5 GB).
    ``content_type`` keeps the original's Content-Type, which REPLACE would otherwise reset.

    Raises
    ------
    AwsError
        When the copy fails.
    """
    extra = {"ContentType": content_type} if content_type else {}
    try:
        client("s3").copy_object(
            CopySource={"Bucket": source_bucket, "Key": key},
            Bucket=bucket,
            Key=key,
            MetadataDirective="REPLACE",
            Metadata=fit_metadata(metadata),
            **extra,
        )
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("CopyObject", f"s3://{source_bucket}/{key} -> s3://{bucket}/{key}", exc) from exc


def publish(topic_arn: str, subject: str, message: str, attributes: dict[str, str]) -> str:
    """Publish ``message`` with ``subject`` and String message ``attributes`` to the SNS topic; return the MessageId.

    Raises
    ------
    AwsError
        When SNS refuses or cannot be reached (bad ARN, deleted topic, no permission, ...).
    """
    message_attributes = {
        name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
    }
    try:
        response = client("sns").publish(
            TopicArn=topic_arn, Subject=subject, Message=message, MessageAttributes=message_attributes
        )
    except (ClientError, BotoCoreError) as exc:
        raise _wrap("Publish", topic_arn, exc) from exc
    return str(response["MessageId"])


def fit_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Return ``metadata`` as S3 accepts it: ASCII one-line values, within the 2 KB user-metadata limit.

    Values go through :func:`~image_compressor.notification.ascii_safe`; when the whole set is too large the
    ``reason`` value is shortened (ending in ``...``) so that every other entry is kept intact.
    """
    fitted = {key.lower(): ascii_safe(str(value)) for key, value in metadata.items()}
    others = sum(len(k) + len(v) for k, v in fitted.items() if k != _SHRINKABLE)
    if _SHRINKABLE in fitted:
        room = MAX_METADATA_BYTES - others - len(_SHRINKABLE)
        fitted[_SHRINKABLE] = truncate(fitted[_SHRINKABLE], max(room, 0))
    return fitted


def _info(response: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(
        size=int(response.get("ContentLength", 0)),
        etag=str(response.get("ETag", "")).strip('"'),
        content_type=response.get("ContentType"),
        metadata={k.lower(): v for k, v in (response.get("Metadata") or {}).items()},
    )


def _http_status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _wrap(operation: str, target: str, exc: Exception) -> AwsError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or _http_status(exc) or "Unknown")
        detail = str(error.get("Message") or exc)
    else:
        code, detail = type(exc).__name__, str(exc)
    return AwsError(operation, target, code, detail)
