# S3 Batch Operations for backfills (`make backfill TARGET=aws`, ops/backfill.py): the role a job runs as. Its bucket
# (manifests/ and reports/) is the "batch" entry of local.bucket_names in s3.tf: private, encrypted, TLS-only.
# Everything here exists only with batch_operations_enabled.

data "aws_iam_policy_document" "batch_operations_assume_role" {
  count = var.batch_operations_enabled ? 1 : 0

  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["batchoperations.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "batch_operations" {
  count = var.batch_operations_enabled ? 1 : 0

  name               = "${var.name_prefix}-batch-operations-${local.region}"
  description        = "Role of the S3 Batch Operations backfill jobs of ${var.function_name}"
  assume_role_policy = data.aws_iam_policy_document.batch_operations_assume_role[0].json
}

data "aws_iam_policy_document" "batch_operations" {
  count = var.batch_operations_enabled ? 1 : 0

  statement {
    sid       = "InvokeTheFunction"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this.arn, "${aws_lambda_function.this.arn}:*"]
  }

  statement {
    sid = "ReadManifests"
    # GetObjectVersion: a job names its manifest by ETag, and S3 reads it by version when the bucket is versioned.
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${aws_s3_bucket.this["batch"].arn}/manifests/*"]
  }

  statement {
    sid       = "WriteReports"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this["batch"].arn}/reports/*"]
  }

  statement {
    sid       = "LocateReportBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [aws_s3_bucket.this["batch"].arn]
  }

  dynamic "statement" {
    for_each = local.use_kms_for_s3 ? [1] : []

    content {
      sid       = "UseBucketKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.s3_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "batch_operations" {
  count = var.batch_operations_enabled ? 1 : 0

  name   = "${var.name_prefix}-batch-operations"
  role   = aws_iam_role.batch_operations[0].id
  policy = data.aws_iam_policy_document.batch_operations[0].json
}
