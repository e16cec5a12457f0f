# The function's settings: environment variables read by lambda/image_compressor/settings.py (Settings.from_env) and
# by Powertools. Only variables go in here, no resources, so tests/tooling/test_terraform.py can evaluate this map with
# `terraform console` offline and feed it to Settings.from_env (Terraform and the code cannot drift apart).
# lambda.tf adds the bucket names and the topic ARN.

locals {
  function_settings = merge(
    {
      JPEG_ENCODER = var.jpeg_encoder
      # "0" is one of the values that turn the quality search off; Terraform writes 0.96 as "0.96".
      TARGET_SSIM      = tostring(var.target_ssim)
      MIN_QUALITY      = tostring(var.min_quality)
      MAX_DIMENSION    = tostring(var.max_dimension)
      KEEP_METADATA    = tostring(var.keep_metadata)
      KEEP_GPS         = tostring(var.keep_gps)
      MAX_PIXELS       = tostring(var.max_pixels)
      MAX_SCANS        = tostring(var.max_scans)
      PROGRESSIVE      = tostring(var.progressive)
      OPTIMIZE         = tostring(var.optimize)
      MAX_OBJECT_BYTES = tostring(var.max_object_bytes)

      LOG_LEVEL                    = var.log_level
      POWERTOOLS_SERVICE_NAME      = var.function_name
      POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
    },
    # Unset unless given: the function then picks the mode's default (95 as the search's ceiling, 85 fixed).
    var.jpeg_quality == null ? {} : { JPEG_QUALITY = tostring(var.jpeg_quality) },
  )
}
