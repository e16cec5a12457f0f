# Root for the local targets (embedded moto cloud, LocalStack). Apply it with tflocal: its generated
# localstack_providers_override.tf points the provider at AWS_ENDPOINT_URL with test credentials, so this file names
# no endpoint.

provider "aws" {
  region = var.region

  # The emulator does not throttle; few retries make a stopped emulator fail in seconds, not after minutes.
  max_retries = 3

  default_tags {
    tags = {
      app         = "image-pipeline"
      environment = "local"
      managed-by  = "terraform"
    }
  }
}

locals {
  build_dir = "${path.module}/../../../build"
}

module "pipeline" {
  source = "../../modules/image-pipeline"

  lambda_zip_path = "${local.build_dir}/lambda.zip"
  layer_zip_path  = "${local.build_dir}/layer.zip"
  hot_reload_dir  = var.hot_reload_dir

  jpeg_encoder     = var.jpeg_encoder
  target_ssim      = var.target_ssim
  jpeg_quality     = var.jpeg_quality
  min_quality      = var.min_quality
  max_dimension    = var.max_dimension
  keep_metadata    = var.keep_metadata
  keep_gps         = var.keep_gps
  max_pixels       = var.max_pixels
  max_object_bytes = var.max_object_bytes

  # Production's security locally: the topic under a customer-managed key whose key policy decides, as the AWS root
  # does (the role's UseEncryptionKeys grant and the key policy are enforced by the embedded cloud, docs/local-cloud.md).
  create_sns_kms_key = true

  # Local stacks come and go with `make local-up` / `make local-down` (no versioning, no e-mail: the module's defaults).
  force_destroy              = true
  create_notifications_queue = true
  log_retention_days         = 7
  # No multipart lifecycle rule: nothing uploads in parts here, and the provider waits about 55 s for each new rule
  # to settle, which would double the time of `make local-up`.
  abort_incomplete_multipart_upload_days = 0
  # No S3 Batch Operations bucket and role: no local target emulates Batch Operations, so a local backfill invokes
  # the function once per object (ops/backfill.py).
  batch_operations_enabled = false
  # No expiry of failed copies either (same 55 s wait; a local stack lives hours, not 30 days). The rule applies on
  # both local clouds (checked by hand, docs/terraform.md#production-defaults); AWS gets it by default.
  failed_object_expiration_days = 0
}
