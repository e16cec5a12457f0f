# Set these in terraform.tfvars (copy terraform.tfvars.example; *.tfvars is git-ignored). The module validates the
# values; see docs/terraform.md for every input.

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
  description = "Prefix of every resource name; bucket names become <prefix>-<role>-<account>-<region>."
  type        = string
  default     = "image-pipeline"
}

variable "function_name" {
  description = "Name of the Lambda function."
  type        = string
  default     = "image-compressor"
}

variable "lambda_zip_path" {
  description = "Function package; null means build/lambda.zip of this repository (from `make build`)."
  type        = string
  default     = null
}

variable "layer_zip_path" {
  description = "Layer package; null means build/layer.zip of this repository (from `make build`)."
  type        = string
  default     = null
}

variable "architecture" {
  description = "x86_64 or arm64 (must match the layer's wheels)."
  type        = string
  default     = "x86_64"
}

variable "memory_size" {
  description = "Memory of the function in MB."
  type        = number
  default     = 1769
}

variable "timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 60
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of the function (at most this many run at once; the account's other functions keep the rest); null leaves it unreserved, which new accounts (limit 10) need."
  type        = number
  default     = 25
}

variable "tracing_mode" {
  description = "X-Ray tracing: PassThrough or Active."
  type        = string
  default     = "PassThrough"
}

variable "log_level" {
  description = "LOG_LEVEL of the function."
  type        = string
  default     = "INFO"
}

variable "jpeg_encoder" {
  description = "JPEG_ENCODER of the function: jpegli (smallest files) or pillow (libjpeg-turbo, about as fast, bigger files)."
  type        = string
  default     = "jpegli"
}

variable "target_ssim" {
  description = "TARGET_SSIM of the function: luma SSIM each image must reach (0.5-0.999), or 0 for a fixed jpeg_quality."
  type        = number
  default     = 0.95
}

variable "jpeg_quality" {
  description = "JPEG_QUALITY of the function (1-95): the search's ceiling, or the fixed quality with target_ssim = 0. null leaves it to the function (95 as the ceiling, 85 fixed)."
  type        = number
  default     = null
}

variable "min_quality" {
  description = "MIN_QUALITY of the function (1-95): the lowest quality the search may pick."
  type        = number
  default     = 78
}

variable "max_dimension" {
  description = "MAX_DIMENSION of the function (0 keeps the size)."
  type        = number
  default     = 0
}

variable "keep_metadata" {
  description = "KEEP_METADATA of the function."
  type        = bool
  default     = false
}

variable "keep_gps" {
  description = "KEEP_GPS of the function: with keep_metadata, also keep the GPS location."
  type        = bool
  default     = false
}

variable "max_pixels" {
  description = "MAX_PIXELS of the function (decompression-bomb guard)."
  type        = number
  default     = 50000000
}

variable "max_scans" {
  description = "MAX_SCANS of the function: JPEGs with more scans (SOS markers) fail before decoding (CPU-bomb guard)."
  type        = number
  default     = 100
}

variable "max_object_bytes" {
  description = "MAX_OBJECT_BYTES of the function: larger source objects go to the failed bucket undownloaded (52428800 = 50 MiB)."
  type        = number
  default     = 52428800
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation before the dead-letter queue (0-2)."
  type        = number
  default     = 2
}

variable "maximum_event_age_in_seconds" {
  description = "Maximum age of an event before it goes to the dead-letter queue (60-21600 s)."
  type        = number
  default     = 3600
}

variable "force_destroy" {
  description = "Let `make destroy-aws` delete buckets that still hold objects (their images are lost)."
  type        = bool
  default     = false
}

variable "versioning_enabled" {
  description = "Turn on S3 versioning for the three buckets."
  type        = bool
  default     = false
}

variable "failed_object_expiration_days" {
  description = "Days after which copies in the failed bucket expire (0 keeps them); the originals stay in the source bucket."
  type        = number
  default     = 30
}

variable "s3_kms_key_arn" {
  description = "KMS key ARN for bucket encryption; null uses SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "admin_email" {
  description = "Address that receives the notifications by e-mail (AWS first sends a confirmation link); empty for none."
  type        = string
  default     = ""
}

variable "create_notifications_queue" {
  description = "Also subscribe an SQS queue to the topic (for the dashboard or other tools)."
  type        = bool
  default     = false
}

variable "create_sns_kms_key" {
  description = "Encrypt the topic with a customer-managed key that CloudWatch alarms may use (about 1 USD a month); false uses sns_kms_master_key_id, and alarms cannot publish under alias/aws/sns."
  type        = bool
  default     = true
}

variable "sns_kms_master_key_id" {
  description = "Topic key when create_sns_kms_key is false."
  type        = string
  default     = "alias/aws/sns"
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the function's log."
  type        = number
  default     = 30
}

variable "dlq_age_alarm_seconds" {
  description = "Alarm when the oldest event in the dead-letter queue is older than this (seconds; default one day)."
  type        = number
  default     = 86400
}

variable "batch_operations_enabled" {
  description = "Create the bucket and role of S3 Batch Operations backfill jobs (`make backfill TARGET=aws` of many objects)."
  type        = bool
  default     = true
}
