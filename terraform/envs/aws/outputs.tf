# The module's outputs, re-exported under the same names (the contract the dashboard, tests and tools read).

output "source_bucket" {
  description = "Bucket that receives uploads."
  value       = module.pipeline.source_bucket
}

output "destination_bucket" {
  description = "Bucket with the compressed images."
  value       = module.pipeline.destination_bucket
}

output "failed_bucket" {
  description = "Bucket with the originals that could not be compressed."
  value       = module.pipeline.failed_bucket
}

output "sns_topic_arn" {
  description = "Notifications topic."
  value       = module.pipeline.sns_topic_arn
}

output "notifications_queue_url" {
  description = "Queue subscribed to the topic (SNS envelope); null without one."
  value       = module.pipeline.notifications_queue_url
}

output "function_name" {
  description = "Lambda function name."
  value       = module.pipeline.function_name
}

output "function_arn" {
  description = "Lambda function ARN."
  value       = module.pipeline.function_arn
}

output "layer_version_arn" {
  description = "Dependency layer version ARN."
  value       = module.pipeline.layer_version_arn
}

output "log_group_name" {
  description = "The function's log group."
  value       = module.pipeline.log_group_name
}

output "dlq_url" {
  description = "Dead-letter queue URL."
  value       = module.pipeline.dlq_url
}

output "dlq_arn" {
  description = "Dead-letter queue ARN."
  value       = module.pipeline.dlq_arn
}

output "region" {
  description = "Region of the stack."
  value       = module.pipeline.region
}

output "account_id" {
  description = "Account id of the stack."
  value       = module.pipeline.account_id
}

output "batch_bucket" {
  description = "Bucket of the S3 Batch Operations manifests and reports (backfill); null when disabled."
  value       = module.pipeline.batch_bucket
}

output "batch_role_arn" {
  description = "Role of the S3 Batch Operations backfill jobs; null when disabled."
  value       = module.pipeline.batch_role_arn
}
