variable "region" {
  description = "Region of the local stack (the emulator accepts any; keep it equal to AWS_DEFAULT_REGION)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (see the module)."
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

variable "hot_reload_dir" {
  description = "Hot reload: absolute path of the function's code directory (this repository's lambda/) to run live instead of the zip; null deploys build/lambda.zip. `make local-up HOT_RELOAD=1` sets it."
  type        = string
  default     = null
}

variable "architecture" {
  description = "x86_64 or arm64 (must match the layer's wheels)."
  type        = string
  default     = "x86_64"
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

variable "log_level" {
  description = "LOG_LEVEL of the function."
  type        = string
  default     = "INFO"
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
