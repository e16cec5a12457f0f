# Set these in terraform.tfvars (copy terraform.tfvars.example; *.tfvars is git-ignored). Only what a user of the AWS
# target sets is declared here; every other input of the module keeps the module's default
# (terraform/modules/image-pipeline/README.md: add a variable here, passed on in main.tf, to change one). A null
# default here means "the module's default": those module variables are non-nullable, so Terraform uses their default
# for a null. The module validates every value.

# ---------------------------------------------------------------------------------------------------------------------
# Where and under which names
# ---------------------------------------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "environment" {
  description = "Value of the environment tag on every resource."
  type        = string
  default     = "production"
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "name_prefix" {
  description = "Prefix of every resource name (3-20 characters); bucket names become <prefix>-<role>-<account>-<region>; null: the module's default."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------------------------------------

variable "architecture" {
  description = "x86_64 or arm64: must match the layer's wheels (`make build LAMBDA_ARCH=arm64`); null: the module's default."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Memory of the function in MB; null: the module's default."
  type        = number
  default     = null
}

variable "function_name" {
  description = "Name of the Lambda function (its log group is /aws/lambda/<function_name>); null: the module's default."
  type        = string
  default     = null
}

variable "timeout" {
  description = "Function timeout in seconds; null: the module's default. See the module's variable for what short timeouts mean."
  type        = number
  default     = null
}

variable "log_level" {
  description = "LOG_LEVEL of the function's structured logger (DEBUG, INFO, WARNING, ERROR); null: the module's default."
  type        = string
  default     = null
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: PassThrough or Active; null: the module's default."
  type        = string
  default     = null
}

variable "maximum_retry_attempts" {
  description = "Retries Lambda makes after a failed asynchronous invocation before the dead-letter queue; null: the module's default."
  type        = number
  default     = null
}

variable "maximum_event_age_in_seconds" {
  description = "How long Lambda keeps retrying an event before the dead-letter queue (60-21600 s); null: the module's default."
  type        = number
  default     = null
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of the function (at most this many run at once; the account's other functions keep the rest); null leaves it unreserved, which new accounts (limit 10) need."
  type        = number
  # null means "unreserved" here, so the module's default is repeated (pinned by tests/tooling/test_terraform.py).
  default = 25
}

# ---------------------------------------------------------------------------------------------------------------------
# Compression settings (docs/compression.md)
# ---------------------------------------------------------------------------------------------------------------------

variable "jpeg_encoder" {
  description = "JPEG_ENCODER of the function: jpegli (smallest files) or pillow (libjpeg-turbo, about as fast, bigger files); null: the module's default."
  type        = string
  default     = null
}

variable "target_ssim" {
  description = "TARGET_SSIM of the function: luma SSIM each image must reach (0.5-0.999), or 0 for a fixed jpeg_quality; null: the module's default."
  type        = number
  default     = null
}

variable "jpeg_quality" {
  description = "JPEG_QUALITY of the function (1-95): the search's ceiling, or the fixed quality with target_ssim = 0. null leaves it to the function (95 as the ceiling, 85 fixed)."
  type        = number
  default     = null
}

variable "min_quality" {
  description = "MIN_QUALITY of the function (1-95): the lowest quality the search may pick; null: the module's default."
  type        = number
  default     = null
}

variable "max_dimension" {
  description = "MAX_DIMENSION of the function (0 keeps the size); null: the module's default."
  type        = number
  default     = null
}

variable "keep_metadata" {
  description = "KEEP_METADATA of the function; null: the module's default."
  type        = bool
  default     = null
}

variable "keep_gps" {
  description = "KEEP_GPS of the function: with keep_metadata, also keep the GPS location; null: the module's default."
  type        = bool
  default     = null
}

variable "max_pixels" {
  description = "MAX_PIXELS of the function (decompression-bomb guard); null: the module's default."
  type        = number
  default     = null
}

variable "max_object_bytes" {
  description = "MAX_OBJECT_BYTES of the function: larger source objects go to the failed bucket undownloaded; null: the module's default."
  type        = number
  default     = null
}

# ---------------------------------------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------------------------------------

variable "force_destroy" {
  description = "Let `make destroy-aws` delete buckets that still hold objects (their images are lost); null: the module's default."
  type        = bool
  default     = null
}

variable "versioning_enabled" {
  description = "Turn on S3 versioning for the three buckets; null: the module's default."
  type        = bool
  default     = null
}

variable "failed_object_expiration_days" {
  description = "Days after which copies in the failed bucket expire (0 keeps them; the originals stay in the source bucket); null: the module's default."
  type        = number
  default     = null
}

variable "s3_kms_key_arn" {
  description = "KMS key ARN for bucket encryption (SSE-KMS); null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "batch_operations_enabled" {
  description = "Create the bucket and role of S3 Batch Operations backfill jobs (`make backfill TARGET=aws` of many objects); null: the module's default."
  type        = bool
  default     = null
}

# ---------------------------------------------------------------------------------------------------------------------
# Notifications and alarms
# ---------------------------------------------------------------------------------------------------------------------

variable "admin_email" {
  description = "Address that receives the notifications by e-mail (AWS first sends a confirmation link); empty or null for none."
  type        = string
  default     = null
}

variable "create_notifications_queue" {
  description = "Also subscribe an SQS queue to the topic (for the dashboard or other tools); null: the module's default."
  type        = bool
  default     = null
}

variable "create_sns_kms_key" {
  description = "Encrypt the topic with a customer-managed key that CloudWatch alarms may use (about 1 USD a month); false uses sns_kms_master_key_id, and alarms cannot publish under alias/aws/sns."
  type        = bool
  # Differs from the module's default (false) on purpose: alarm e-mails need it in AWS (docs/terraform.md).
  default = true
}

variable "sns_kms_master_key_id" {
  description = "Topic key when create_sns_kms_key is false; null: the module's default."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the function's log (0 = never expire); null: the module's default."
  type        = number
  default     = null
}

variable "dlq_age_alarm_seconds" {
  description = "Alarm when the oldest event in the dead-letter queue is older than this (seconds); null: the module's default."
  type        = number
  default     = null
}
