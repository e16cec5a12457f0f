# Only what a user of the local targets sets: `make local-up` passes region and hot_reload_dir; the compression
# settings are set with TF_VAR_<name> or `tflocal apply -var` (docs/terraform.md). Every other input of the module
# keeps the module's default (terraform/modules/image-pipeline/README.md). A null default here means "the module's
# default": those module variables are non-nullable, so Terraform uses their default for a null. The module validates
# every value.

variable "region" {
  description = "Region of the local stack (the emulator accepts any; keep it equal to AWS_DEFAULT_REGION)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "hot_reload_dir" {
  description = "Hot reload: absolute path of the function's code directory (this repository's lambda/) to run live instead of the zip; null deploys build/lambda.zip. `make local-up HOT_RELOAD=1` sets it."
  type        = string
  default     = null
}

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
