output "source_bucket" {
  description = "Name of the bucket that receives uploads (each .jpg/.jpeg invokes the function)."
  value       = aws_s3_bucket.this["source"].bucket
}

output "destination_bucket" {
  description = "Name of the bucket with the compressed images (same key as the upload)."
  value       = aws_s3_bucket.this["destination"].bucket
}

output "failed_bucket" {
  description = "Name of the bucket with the originals that could not be compressed (reason in the object metadata)."
  value       = aws_s3_bucket.this["failed"].bucket
}

output "sns_topic_arn" {
  description = "ARN of the notifications topic (one message per processed object, plus alarms)."
  value       = aws_sns_topic.this.arn
}

output "notifications_queue_url" {
  description = "URL of the SQS queue subscribed to the topic (SNS envelope, raw delivery off); null without one."
  value       = try(aws_sqs_queue.notifications[0].url, null)
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "layer_version_arn" {
  description = "ARN of the published dependency layer version."
  value       = aws_lambda_layer_version.this.arn
}

output "log_group_name" {
  description = "Name of the function's CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue (asynchronous invocations that failed after all retries)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "region" {
  description = "AWS region of the stack."
  value       = local.region
}

output "account_id" {
  description = "AWS account id of the stack."
  value       = local.account_id
}

output "batch_bucket" {
  description = "Name of the bucket with S3 Batch Operations manifests (manifests/) and completion reports (reports/); null unless batch_operations_enabled."
  value       = try(aws_s3_bucket.this["batch"].bucket, null)
}

output "batch_role_arn" {
  description = "ARN of the role S3 Batch Operations backfill jobs run as; null unless batch_operations_enabled."
  value       = try(aws_iam_role.batch_operations[0].arn, null)
}
