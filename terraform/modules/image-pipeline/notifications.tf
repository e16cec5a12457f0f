# S3 -> Lambda: the source bucket invokes the function for every created .jpg/.jpeg object. S3 suffix filters are
# case-sensitive, so the usual spellings each get a block (a mixed-case ".Jpg" is not matched).

locals {
  jpeg_suffixes = [".jpg", ".jpeg", ".JPG", ".JPEG"]
}

resource "aws_lambda_permission" "this" {
  statement_id   = "AllowInvokeFromSourceBucket"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.this["source"].arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "this" {
  bucket = aws_s3_bucket.this["source"].id

  dynamic "lambda_function" {
    for_each = local.jpeg_suffixes

    content {
      id                  = "jpeg${lambda_function.value}"
      lambda_function_arn = aws_lambda_function.this.arn
      events              = ["s3:ObjectCreated:*"]
      filter_suffix       = lambda_function.value
    }
  }

  depends_on = [aws_lambda_permission.this]
}
