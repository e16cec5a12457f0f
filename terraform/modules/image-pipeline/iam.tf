# Execution role of the function: exactly what the handler does, on exactly these resources.

data "aws_iam_policy_document" "assume_role" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.role_name
  description        = "Execution role of the ${var.function_name} Lambda function"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
}

data "aws_iam_policy_document" "function" {
  statement {
    sid = "ReadUploads"
    # GetObjectTagging is not needed: copies to the failed bucket replace the tags (TaggingDirective=REPLACE).
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this["source"].arn}/*"]
  }

  statement {
    sid = "WriteResults"
    # GetObject is HeadObject: the event identity and ordering recorded on the current outcome (duplicates, latest
    # wins) and CopyObject of an output onto itself (a re-used output gets the new event's record);
    # PutObjectTagging/GetObjectTagging: the "notified" tag written after publishing and read by a retry.
    actions = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging", "s3:GetObjectTagging"]
    resources = [
      "${aws_s3_bucket.this["destination"].arn}/*",
      "${aws_s3_bucket.this["failed"].arn}/*",
    ]
  }

  statement {
    sid = "RemoveSupersededOutputs"
    # Latest wins: when the newest upload of a key fails, the older output leaves the destination (If-Match on its
    # ETag); and an output written for a source replaced meanwhile is taken back. Destination only.
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.this["destination"].arn}/*"]
  }

  statement {
    sid = "MissingKeysAre404Not403"
    # Without ListBucket, S3 answers 403 for a missing key; the idempotency check and a source object deleted before
    # the function ran both need a plain "not found".
    actions = ["s3:ListBucket"]
    resources = [
      aws_s3_bucket.this["source"].arn,
      aws_s3_bucket.this["destination"].arn,
      aws_s3_bucket.this["failed"].arn,
    ]
  }

  statement {
    sid       = "Notify"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
  }

  statement {
    sid       = "WriteOwnLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [local.dlq_arn]
  }

  dynamic "statement" {
    for_each = length(local.function_kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "UseEncryptionKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.function_kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.function_name}-permissions"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.function.json
}

# X-Ray needs "*" (it has no resource-level permissions), so it is only attached when tracing is on.
resource "aws_iam_role_policy_attachment" "xray" {
  count = var.tracing_mode == "Active" ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}
