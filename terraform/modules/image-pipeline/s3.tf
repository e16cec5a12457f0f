# Three private, encrypted, TLS-only buckets: source (uploads), destination (compressed, same key) and failed
# (originals that could not be compressed, with the reason in their metadata).

resource "aws_s3_bucket" "this" {
  for_each = local.bucket_names

  bucket        = each.value
  force_destroy = var.force_destroy

  lifecycle {
    precondition {
      condition     = length(each.value) <= 63
      error_message = "Bucket name ${each.value} is longer than S3's 63 characters: shorten name_prefix."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.use_kms_for_s3 ? "aws:kms" : "AES256"
      kms_master_key_id = var.s3_kms_key_arn
    }
    bucket_key_enabled = local.use_kms_for_s3 ? true : null
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = var.versioning_enabled ? aws_s3_bucket.this : {}

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

# Lifecycle rules, one configuration per bucket (S3 keeps one per bucket): unfinished multipart uploads are aborted
# in every bucket; failed copies expire (their originals stay in the source bucket, the reason was notified).
locals {
  lifecycle_buckets = {
    for role, bucket in aws_s3_bucket.this : role => bucket
    if var.abort_incomplete_multipart_upload_days > 0 || (role == "failed" && var.failed_object_expiration_days > 0)
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.lifecycle_buckets

  bucket = each.value.id

  dynamic "rule" {
    for_each = var.abort_incomplete_multipart_upload_days > 0 ? [var.abort_incomplete_multipart_upload_days] : []

    content {
      id     = "abort-incomplete-multipart-uploads"
      status = "Enabled"

      filter {}

      abort_incomplete_multipart_upload {
        days_after_initiation = rule.value
      }
    }
  }

  dynamic "rule" {
    for_each = each.key == "failed" && var.failed_object_expiration_days > 0 ? [var.failed_object_expiration_days] : []

    content {
      id     = "expire-failed-copies"
      status = "Enabled"

      filter {}

      expiration {
        days = rule.value
      }

      # With versioning on, an expired copy becomes a noncurrent version: delete those after the same time.
      noncurrent_version_expiration {
        noncurrent_days = rule.value
      }
    }
  }

  # Versioning must be configured before noncurrent-version rules.
  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_iam_policy_document" "bucket" {
  for_each = aws_s3_bucket.this

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  # S3 rejects a bucket policy while the public access block is still being applied.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
