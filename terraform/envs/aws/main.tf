# Root for real AWS, applied with plain terraform by `make deploy-aws` (python -m ops.deploy_aws deploy).

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        app         = "image-pipeline"
        environment = var.environment
        managed-by  = "terraform"
      },
      var.tags,
    )
  }
}

locals {
  build_dir = "${path.module}/../../../build"
}

module "pipeline" {
  source = "../../modules/image-pipeline"

  name_prefix     = var.name_prefix
  lambda_zip_path = "${local.build_dir}/lambda.zip"
  layer_zip_path  = "${local.build_dir}/layer.zip"
  architecture    = var.architecture

  function_name                = var.function_name
  memory_size                  = var.memory_size
  timeout                      = var.timeout
  reserved_concurrency         = var.reserved_concurrency
  log_level                    = var.log_level
  tracing_mode                 = var.tracing_mode
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_in_seconds

  jpeg_encoder     = var.jpeg_encoder
  target_ssim      = var.target_ssim
  jpeg_quality     = var.jpeg_quality
  min_quality      = var.min_quality
  max_dimension    = var.max_dimension
  keep_metadata    = var.keep_metadata
  keep_gps         = var.keep_gps
  max_pixels       = var.max_pixels
  max_object_bytes = var.max_object_bytes

  force_destroy                 = var.force_destroy
  versioning_enabled            = var.versioning_enabled
  failed_object_expiration_days = var.failed_object_expiration_days
  s3_kms_key_arn                = var.s3_kms_key_arn
  batch_operations_enabled      = var.batch_operations_enabled

  admin_email                = var.admin_email
  create_notifications_queue = var.create_notifications_queue
  create_sns_kms_key         = var.create_sns_kms_key
  sns_kms_master_key_id      = var.sns_kms_master_key_id
  dlq_age_alarm_seconds      = var.dlq_age_alarm_seconds
  log_retention_days         = var.log_retention_days
}
