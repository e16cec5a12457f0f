# S3 -> Lambda: the source bucket invokes the function for every created .jpg/.jpeg object in any letter case. S3
# suffix filters are case-sensitive, so every spelling gets its own block: 2^3 of ".jpg" and 2^4 of ".jpeg", 24
# suffixes that never overlap (none is a suffix of another), so no other upload invokes the function (no cost for
# non-JPEGs; see docs/terraform.md).

locals {
  jpeg_suffixes = concat(
    flatten([for j in ["j", "J"] : [for p in ["p", "P"] : [for g in ["g", "G"] : ".${j}${p}${g}"]]]),
    flatten([for j in ["j", "J"] : [for p in ["p", "P"] : [for e in ["e", "E"] : [for g in ["g", "G"] : ".${j}${p}${e}${g}"]]]]),
  )
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
