# ---------------------------------------------------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every name (buckets, topic, queues, role). Bucket names become <prefix>-<source|destination|failed>-<account id>-<region>, so keep it short."
  type        = string
  default     = "image-pipeline"
  nullable    = false

  validation {
    # 20 characters leave room for "-destination-" + a 12-digit account id + the longest region name within S3's 63.
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lower-case letters, digits and hyphens, starting and ending with a letter or digit (it becomes part of S3 bucket names)."
  }
}

variable "function_name" {
  description = "Name of the Lambda function; its log group is /aws/lambda/<function_name>."
  type        = string
  default     = "image-compressor"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 characters of letters, digits, hyphens and underscores."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Artifacts (made by `make build`)
# ---------------------------------------------------------------------------------------------------------------------

variable "lambda_zip_path" {
  description = "Path of the function's deployment package (build/lambda.zip from `make build`), holding index.py at its root."
  type        = string

  validation {
    # Whether the file exists is checked when the function is created or updated (lambda.tf), so that
    # `terraform destroy` still works after `make clean`.
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must name a .zip file such as build/lambda.zip (made by `make build`)."
  }
}

variable "layer_zip_path" {
  description = "Path of the dependency layer package (build/layer.zip from `make build`), holding python/ at its root."
  type        = string

  validation {
    # Whether the file exists is checked when the function is created or updated (lambda.tf), so that
    # `terraform destroy` still works after `make clean`.
    condition     = endswith(var.layer_zip_path, ".zip")
    error_message = "layer_zip_path must name a .zip file such as build/layer.zip (made by `make build`)."
  }
}

variable "hot_reload_dir" {
  description = "Local targets only: absolute path of a directory holding the function's code (the repository's lambda/) to run live instead of lambda_zip_path, through LocalStack's hot-reload convention (bucket \"hot-reload\", the path as the key). null (the default, and always on AWS) deploys the zip."
  type        = string
  default     = null

  validation {
    condition     = var.hot_reload_dir == null || try(startswith(var.hot_reload_dir, "/") && !endswith(var.hot_reload_dir, "/"), false)
    error_message = "hot_reload_dir must be null or an absolute directory path without a trailing slash, such as /home/me/image-pipeline/lambda."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------------------------------------

variable "architecture" {
  description = "Instruction set of the function and its layer: x86_64 or arm64 (the layer's wheels must match)."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB. Default 1769 = one full vCPU (bench: 24 MP needs ~212 MB peak; CPU, not memory, sets the latency)."
  type        = number
  default     = 1769
  nullable    = false

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout" {
  description = "Function timeout in seconds, 1-900 as Lambda accepts. The function keeps part of every invocation for writing the outcome and notifying (twice its slowest recent write, at most a third of the timeout and 10 s): with a short timeout (a few seconds) only small images fit in the rest, and larger ones go to the failed bucket with the time they need; 60 s suits 12 MP photos."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds between 1 and 900 (Lambda's range)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function: at most this many copies run at once, so a burst of uploads cannot take the whole account's concurrency from its other functions (the rest queue in Lambda's async queue). null leaves it unreserved: needed on new accounts, whose concurrency limit of 10 leaves nothing to reserve (Lambda keeps 10 unreserved)."
  type        = number
  default     = 25

  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 0 && floor(var.reserved_concurrency) == var.reserved_concurrency, false)
    error_message = "reserved_concurrency must be null or a whole number >= 0 (0 stops the function from running)."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: PassThrough (off unless the caller traces) or Active (attaches AWSXRayDaemonWriteAccess)."
  type        = string
  default     = "PassThrough"
  nullable    = false

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be PassThrough or Active."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of the function's structured logger."
  type        = string
  default     = "INFO"
  nullable    = false

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "metrics_namespace" {
  description = "POWERTOOLS_METRICS_NAMESPACE: CloudWatch namespace of the function's metrics."
  type        = string
  default     = "ImagePipeline"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Compression settings (environment of the function; see lambda/image_compressor/settings.py)
# ---------------------------------------------------------------------------------------------------------------------

variable "jpeg_encoder" {
  description = "JPEG_ENCODER: jpegli (Google's jpegli, progressive, the smallest files) or pillow (libjpeg-turbo, about as fast, about 10% bigger at the same SSIM)."
  type        = string
  default     = "jpegli"
  nullable    = false

  validation {
    condition     = contains(["jpegli", "pillow"], var.jpeg_encoder)
    error_message = "jpeg_encoder must be jpegli or pillow."
  }
}

variable "target_ssim" {
  description = "TARGET_SSIM: luma SSIM each image must reach; the lowest quality between min_quality and jpeg_quality that reaches it is used (with the defaults nearly always min_quality; the search lifts noisy images). 0 turns the search off (every image at the fixed jpeg_quality)."
  type        = number
  default     = 0.95
  nullable    = false

  validation {
    condition     = var.target_ssim == 0 || (var.target_ssim >= 0.5 && var.target_ssim <= 0.999)
    error_message = "target_ssim must be between 0.5 and 0.999 (for example 0.96; 0.95 gives smaller files, 0.97 better quality), or 0 to turn the quality search off."
  }
}

variable "jpeg_quality" {
  description = "JPEG_QUALITY, 1-95 on the encoder's scale: the highest quality the search may pick (with target_ssim), or the fixed quality of every image (target_ssim = 0). null leaves JPEG_QUALITY unset, so the function uses its default for the mode: 95 as the ceiling, 85 as the fixed quality."
  type        = number
  default     = null

  validation {
    condition     = var.jpeg_quality == null || try(var.jpeg_quality >= 1 && var.jpeg_quality <= 95 && floor(var.jpeg_quality) == var.jpeg_quality, false)
    error_message = "jpeg_quality must be null (the function's default: 95 with target_ssim, 85 without) or a whole number between 1 and 95."
  }
}

variable "min_quality" {
  description = "MIN_QUALITY: the lowest quality the search may pick, 1-95 (when above jpeg_quality, jpeg_quality wins). Ignored with target_ssim = 0."
  type        = number
  default     = 78
  nullable    = false

  validation {
    condition     = var.min_quality >= 1 && var.min_quality <= 95 && floor(var.min_quality) == var.min_quality
    error_message = "min_quality must be a whole number between 1 and 95."
  }
}

variable "max_dimension" {
  description = "MAX_DIMENSION: longest output side in pixels; larger images are downscaled. 0 keeps the size."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.max_dimension >= 0 && floor(var.max_dimension) == var.max_dimension
    error_message = "max_dimension must be a whole number of pixels >= 0 (0 keeps the size)."
  }
}

variable "keep_metadata" {
  description = "KEEP_METADATA: keep EXIF (orientation applied), XMP, IPTC and comments; false drops them. GPS is dropped unless keep_gps is also true."
  type        = bool
  default     = false
  nullable    = false
}

variable "keep_gps" {
  description = "KEEP_GPS: with keep_metadata, also keep the GPS location. Ignored without keep_metadata."
  type        = bool
  default     = false
  nullable    = false
}

variable "max_pixels" {
  description = "MAX_PIXELS: refuse images with more pixels than this before decoding (decompression-bomb guard)."
  type        = number
  default     = 50000000
  nullable    = false

  validation {
    condition     = var.max_pixels >= 1 && floor(var.max_pixels) == var.max_pixels
    error_message = "max_pixels must be a whole number >= 1."
  }
}

variable "max_scans" {
  description = "MAX_SCANS: refuse JPEGs with more scans (SOS markers) than this before decoding; each scan is another pass of the decoder over the whole image (CPU-bomb guard). Progressive photos have about 10."
  type        = number
  default     = 100
  nullable    = false

  validation {
    condition     = var.max_scans >= 1 && floor(var.max_scans) == var.max_scans
    error_message = "max_scans must be a whole number >= 1."
  }
}

variable "max_object_bytes" {
  description = "MAX_OBJECT_BYTES: source objects larger than this are not downloaded; they go to the failed bucket with a reason. The default, 50 MiB, is far above any camera JPEG and well inside the function's memory."
  type        = number
  default     = 52428800
  nullable    = false

  validation {
    condition     = var.max_object_bytes >= 1 && floor(var.max_object_bytes) == var.max_object_bytes
    error_message = "max_object_bytes must be a whole number of bytes >= 1 (52428800 = 50 MiB)."
  }
}

variable "progressive" {
  description = "PROGRESSIVE: write progressive JPEG."
  type        = bool
  default     = true
  nullable    = false
}

variable "optimize" {
  description = "OPTIMIZE: optimise the Huffman tables."
  type        = bool
  default     = true
  nullable    = false
}

# ---------------------------------------------------------------------------------------------------------------------
# Asynchronous invocation (S3 events)
# ---------------------------------------------------------------------------------------------------------------------

variable "maximum_retry_attempts" {
  description = "Retries Lambda makes after a failed asynchronous invocation before the event goes to the dead-letter queue."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = contains([0, 1, 2], var.maximum_retry_attempts)
    error_message = "maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "How long Lambda keeps retrying an event before it goes to the dead-letter queue (60-21600 seconds)."
  type        = number
  default     = 3600
  nullable    = false

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 21600 && floor(var.maximum_event_age_in_seconds) == var.maximum_event_age_in_seconds
    error_message = "maximum_event_age_in_seconds must be a whole number between 60 and 21600."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Buckets
# ---------------------------------------------------------------------------------------------------------------------

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects. True for local stacks; keep false in AWS."
  type        = bool
  default     = false
  nullable    = false
}

variable "versioning_enabled" {
  description = "Turn on S3 versioning for the three buckets."
  type        = bool
  default     = false
  nullable    = false
}

variable "batch_operations_enabled" {
  description = "Create what S3 Batch Operations backfill jobs need: a private encrypted bucket for their manifests and completion reports, and the role the jobs run as (invokes the function, reads manifests, writes reports). The local root turns it off: no local target emulates Batch Operations."
  type        = bool
  default     = true
  nullable    = false
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which S3 deletes the parts of unfinished multipart uploads (a lifecycle rule on each bucket); 0 adds no rule. The provider waits about 55 s for a new rule to settle."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 0 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number of days >= 0 (0 adds no rule)."
  }
}

variable "failed_object_expiration_days" {
  description = "Days after which S3 deletes the copies in the failed bucket (a lifecycle rule; with versioning, their noncurrent versions too). The original stays in the source bucket and the reason was notified; a copy is what the dashboard's Failed page lists and reprocesses. 0 keeps them forever."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.failed_object_expiration_days >= 0 && floor(var.failed_object_expiration_days) == var.failed_object_expiration_days
    error_message = "failed_object_expiration_days must be a whole number of days >= 0 (0 keeps failed copies forever)."
  }
}

variable "s3_kms_key_arn" {
  description = "ARN of a KMS key for bucket encryption (SSE-KMS with a bucket key). null uses SSE-S3 (AES256)."
  type        = string
  default     = null

  validation {
    condition     = var.s3_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.s3_kms_key_arn))
    error_message = "s3_kms_key_arn must be null or a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

# ---------------------------------------------------------------------------------------------------------------------
# Notifications
# ---------------------------------------------------------------------------------------------------------------------

variable "admin_email" {
  description = "Address subscribed to the topic by email; empty for none. AWS sends a confirmation link first."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.admin_email == "" || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.admin_email))
    error_message = "admin_email must be empty or an e-mail address such as admin@example.com."
  }
}

variable "create_notifications_queue" {
  description = "Subscribe an SQS queue to the topic so tools (the dashboard) can read notifications. Messages keep the SNS envelope (raw delivery off)."
  type        = bool
  default     = false
  nullable    = false
}

variable "sns_kms_master_key_id" {
  description = "KMS key (id, ARN or alias) encrypting the topic when create_sns_kms_key is false. CloudWatch alarms cannot publish to a topic under the AWS-managed alias/aws/sns."
  type        = string
  default     = "alias/aws/sns"
  nullable    = false

  validation {
    condition     = length(trimspace(var.sns_kms_master_key_id)) > 0
    error_message = "sns_kms_master_key_id must not be empty: use alias/aws/sns or a customer-managed key."
  }
}

variable "create_sns_kms_key" {
  description = "Create a customer-managed KMS key for the topic whose policy lets CloudWatch alarms publish (about 1 USD a month). Needed for alarm e-mails in AWS."
  type        = bool
  default     = false
  nullable    = false
}

# ---------------------------------------------------------------------------------------------------------------------
# Logs and alarms
# ---------------------------------------------------------------------------------------------------------------------

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the function's log (0 = never expire)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of 0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "alarm_period_seconds" {
  description = "Period of every alarm (errors, throttles, dead letters, ...), in seconds (a multiple of 60)."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60, at least 60."
  }
}

variable "dlq_age_alarm_seconds" {
  description = "Alarm when the oldest event in the dead-letter queue is older than this many seconds (it waits to be replayed with `make redrive`; SQS deletes it after 14 days). The default is one day."
  type        = number
  default     = 86400
  nullable    = false

  validation {
    condition     = var.dlq_age_alarm_seconds >= 60 && var.dlq_age_alarm_seconds < 1209600 && floor(var.dlq_age_alarm_seconds) == var.dlq_age_alarm_seconds
    error_message = "dlq_age_alarm_seconds must be a whole number of seconds from 60 to 1209599 (the queue keeps messages 14 days)."
  }
}
