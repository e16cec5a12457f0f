# The function's log group, made before the function so Lambda never creates an unmanaged one (the role has no
# logs:CreateLogGroup).
resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
}

# Any failed invocation (the function raises when it cannot finish; S3 retries it).
resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.function_name}-errors"
  alarm_description   = "The ${var.function_name} Lambda function raised an error; see ${local.log_group_name}."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
}

# Events that exhausted their retries: each one is an upload that was not processed.
resource "aws_cloudwatch_metric_alarm" "dlq" {
  alarm_name          = "${var.function_name}-dead-letters"
  alarm_description   = "Events for ${var.function_name} reached the dead-letter queue ${aws_sqs_queue.dlq.name} after all retries."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
}

# Notifications that were not published (the function's EMF metric): a deleted topic, a missing sns:Publish
# permission, or SNS faults that outlived the retries (the event is then retried and publishes once).
resource "aws_cloudwatch_metric_alarm" "notifications_failed" {
  alarm_name          = "${var.function_name}-notifications-failed"
  alarm_description   = "The ${var.function_name} function could not publish notifications; see ${local.log_group_name}."
  namespace           = var.metrics_namespace
  metric_name         = "NotificationsFailed"
  dimensions          = { service = var.function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
}

# Invocations Lambda refused for want of concurrency (S3 events are retried by Lambda's async queue, but a sustained
# throttle delays every upload and can age events out).
resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${var.function_name}-throttles"
  alarm_description   = "Invocations of ${var.function_name} were throttled; raise reserved_concurrency or the account limit."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
}

# Async events Lambda dropped (too old, or retries exhausted with nowhere to go) and on-failure records it could not
# deliver to the dead-letter queue: each one is an upload that got no outcome and no record.
resource "aws_cloudwatch_metric_alarm" "async_delivery" {
  for_each = {
    dropped             = "AsyncEventsDropped"
    destination_failure = "DestinationDeliveryFailures"
  }

  alarm_name          = "${var.function_name}-${replace(each.key, "_", "-")}"
  alarm_description   = "Lambda reported ${each.value} for ${var.function_name}: an upload's event was lost, not even in ${aws_sqs_queue.dlq.name}."
  namespace           = "AWS/Lambda"
  metric_name         = each.value
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
}
