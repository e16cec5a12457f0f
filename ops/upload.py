"""Upload: put an image into a stack's source bucket, as a user's ``aws s3 cp`` would (the dashboard's Upload page).

The upload is the event: S3 notifies the function, which writes the outcome and its notification.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from boto3.s3.transfer import TransferConfig
from image_compressor.result import unquote_etag

from ops.stack import INTERACTIVE, Stack

#: One request per upload below this size (a dashboard upload is one image; multipart starts at 64 MiB).
MULTIPART_THRESHOLD = 64 * 1024 * 1024


def upload(stack: Stack, key: str, data: bytes, progress: Callable[[int], None] | None = None) -> str:
    """Put ``data`` into the source bucket of ``stack`` under ``key``; return the new object's ETag (unquoted).

    ``progress`` is called with the number of bytes sent so far as the upload proceeds. The ETag names exactly this
    upload, so the caller can wait for *its* outcome (not an older one of the same key).
    """
    sent = 0

    def tick(n: int) -> None:
        nonlocal sent
        sent += n
        if progress is not None:
            progress(min(sent, len(data)))

    s3 = stack.client("s3", INTERACTIVE)
    bucket = stack.output("source_bucket")
    s3.upload_fileobj(
        io.BytesIO(data),
        bucket,
        key,
        ExtraArgs={"ContentType": "image/jpeg"},
        Callback=tick,
        Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, use_threads=False),
    )
    return unquote_etag(s3.head_object(Bucket=bucket, Key=key)["ETag"]) or ""
