# The image-compressor function and its dependency layer (Pillow, pyjpegli, mozjpeg-lossless-optimization, numpy,
# Powertools), both from `make build`. Its environment is in environment.tf, where its code comes from in code.tf.

resource "aws_lambda_layer_version" "this" {
  layer_name               = "${var.function_name}-deps"
  description              = "Pillow, jpegli, mozjpeg, numpy and Powertools for ${var.function_name}"
  filename                 = var.layer_zip_path
  source_code_hash         = local.layer_zip_hash
  compatible_runtimes      = ["python3.13"]
  compatible_architectures = [var.architecture]

  lifecycle {
    precondition {
      condition     = local.layer_zip_hash != null
      error_message = "${var.layer_zip_path} does not exist: run `make build` to create build/layer.zip."
    }
  }
}

resource "aws_lambda_function" "this" {
  function_name = var.function_name
  description   = "Compresses JPEG uploads from ${aws_s3_bucket.this["source"].bucket}"
  role          = aws_iam_role.this.arn

  runtime          = "python3.13"
  handler          = "index.handler"
  filename         = local.function_code.filename
  source_code_hash = local.function_code.source_code_hash
  s3_bucket        = local.function_code.s3_bucket
  s3_key           = local.function_code.s3_key
  layers           = [aws_lambda_layer_version.this.arn]
  architectures    = [var.architecture]

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  tracing_config {
    mode = var.tracing_mode
  }

  environment {
    # The settings (JPEG_QUALITY, TARGET_SSIM, ..., LOG_LEVEL) are in environment.tf.
    variables = merge(
      {
        DEST_BUCKET   = aws_s3_bucket.this["destination"].bucket
        FAILED_BUCKET = aws_s3_bucket.this["failed"].bucket
        SNS_TOPIC_ARN = aws_sns_topic.this.arn
      },
      local.function_settings,
    )
  }

  lifecycle {
    precondition {
      condition     = local.hot_reload || local.lambda_zip_hash != null
      error_message = "${var.lambda_zip_path} does not exist: run `make build` to create build/lambda.zip."
    }
  }

  # The log group (with its retention) must exist before the first invocation, and the role's permissions before
  # the function can use them.
  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
  ]
}

# Retries and the dead-letter destination of asynchronous (S3) invocations.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_in_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}
