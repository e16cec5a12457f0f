# Shared lookups and names. Resource files are split by concern: s3.tf, lambda.tf, iam.tf, sns.tf, sqs.tf, logs.tf,
# notifications.tf, batch.tf.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # Bucket names are global: account id and region make them unique without the random provider.
  # "batch" (manifests and completion reports of S3 Batch Operations backfill jobs) only with batch_operations_enabled.
  bucket_names = {
    for role in concat(["source", "destination", "failed"], var.batch_operations_enabled ? ["batch"] : []) :
    role => "${var.name_prefix}-${role}-${local.account_id}-${local.region}"
  }

  # IAM role names are unique per account (not per region), so the region is part of the name.
  role_name = "${var.name_prefix}-lambda-${local.region}"

  log_group_name = "/aws/lambda/${var.function_name}"

  notifications_queue_name = "${var.name_prefix}-notifications"
  dlq_name                 = "${var.name_prefix}-dlq"
  # Built from the name so the role (and so the function) need not wait the ~25 s the provider spends creating a
  # queue; the event-invoke config still references the queue itself.
  dlq_arn = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.dlq_name}"

  use_kms_for_s3 = var.s3_kms_key_arn != null

  # Topic key: a key this module creates (readable by CloudWatch alarms) or the one given (default alias/aws/sns).
  sns_kms_key_id = var.create_sns_kms_key ? aws_kms_key.sns[0].arn : var.sns_kms_master_key_id

  # Customer-managed key of the topic, if any: the one created here, or a key ARN given in sns_kms_master_key_id.
  # AWS-managed keys (alias/aws/...) need no grant; an alias of a customer key cannot be granted by ARN, so pass the
  # key ARN instead.
  sns_given_key_arn    = can(regex("^arn:[^:]+:kms:.*:key/", var.sns_kms_master_key_id)) ? var.sns_kms_master_key_id : null
  sns_customer_key_arn = var.create_sns_kms_key ? aws_kms_key.sns[0].arn : local.sns_given_key_arn

  # KMS keys the function uses directly (S3 objects and SNS messages).
  function_kms_key_arns = compact([var.s3_kms_key_arn, local.sns_customer_key_arn])
}
