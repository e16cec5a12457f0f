# The function's log group, made before the function so Lambda never creates an unmanaged one (the role has no
# logs:CreateLogGroup).
resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
}

# Alarms, each notifying the topic when it fires and when it clears. One block for all of them: each entry says what it
# watches and why; every alarm fires when its statistic over one alarm_period_seconds goes above the threshold, and
# missing data (no invocations, an empty queue) is not a breach. The keys are the alarm names' suffixes.
locals {
  function_dimensions = { FunctionName = aws_lambda_function.this.function_name }
  dlq_dimensions      = { QueueName = aws_sqs_queue.dlq.name }

  alarms = {
    # Any failed invocation (the function raises when it cannot finish; Lambda retries the event).
    errors = {
      description = "The ${var.function_name} Lambda function raised an error; see ${local.log_group_name}."
      namespace   = "AWS/Lambda"
      metric      = "Errors"
      dimensions  = local.function_dimensions
      statistic   = "Sum"
      threshold   = 0
    }
    # Events that exhausted their retries: each one is an upload that was not processed (replay: make redrive).
    dead-letters = {
      description = "Events for ${var.function_name} reached the dead-letter queue ${aws_sqs_queue.dlq.name} after all retries; fix the cause, then run `make redrive TARGET=aws`."
      namespace   = "AWS/SQS"
      metric      = "ApproximateNumberOfMessagesVisible"
      dimensions  = local.dlq_dimensions
      statistic   = "Maximum"
      threshold   = 0
    }
    # Dead letters left waiting: SQS deletes them after 14 days, and the uploads with them.
    dead-letter-age = {
      description = "The oldest event in the dead-letter queue ${aws_sqs_queue.dlq.name} is older than ${var.dlq_age_alarm_seconds} s; SQS deletes it after 14 days. Run `make redrive TARGET=aws`."
      namespace   = "AWS/SQS"
      metric      = "ApproximateAgeOfOldestMessage"
      dimensions  = local.dlq_dimensions
      statistic   = "Maximum"
      threshold   = var.dlq_age_alarm_seconds
    }
    # Notifications that were not published (the function's EMF metric): a deleted topic, a missing sns:Publish
    # permission, or SNS faults that outlived the retries (the event is then retried and publishes once).
    notifications-failed = {
      description = "The ${var.function_name} function could not publish notifications; see ${local.log_group_name}."
      namespace   = var.metrics_namespace
      metric      = "NotificationsFailed"
      dimensions  = { service = var.function_name }
      statistic   = "Sum"
      threshold   = 0
    }
    # Invocations Lambda refused for want of concurrency (S3 events are retried by Lambda's async queue, but a
    # sustained throttle delays every upload and can age events out).
    throttles = {
      description = "Invocations of ${var.function_name} were throttled; raise reserved_concurrency or the account limit."
      namespace   = "AWS/Lambda"
      metric      = "Throttles"
      dimensions  = local.function_dimensions
      statistic   = "Sum"
      threshold   = 0
    }
    # Async events Lambda dropped (too old, or retries exhausted with nowhere to go) and on-failure records it could
    # not deliver to the dead-letter queue: each one is an upload that got no outcome and no record.
    dropped = {
      description = "Lambda reported AsyncEventsDropped for ${var.function_name}: an upload's event was lost, not even in ${aws_sqs_queue.dlq.name}."
      namespace   = "AWS/Lambda"
      metric      = "AsyncEventsDropped"
      dimensions  = local.function_dimensions
      statistic   = "Sum"
      threshold   = 0
    }
    destination-failure = {
      description = "Lambda reported DestinationDeliveryFailures for ${var.function_name}: an upload's event was lost, not even in ${aws_sqs_queue.dlq.name}."
      namespace   = "AWS/Lambda"
      metric      = "DestinationDeliveryFailures"
      dimensions  = local.function_dimensions
      statistic   = "Sum"
      threshold   = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.function_name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = var.alarm_period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.this.arn]
  ok_actions          = [aws_sns_topic.this.arn]
}

# The alarms were separate resources before; these keep a deployed stack's alarms (no destroy and re-create).
moved {
  from = aws_cloudwatch_metric_alarm.errors
  to   = aws_cloudwatch_metric_alarm.this["errors"]
}

moved {
  from = aws_cloudwatch_metric_alarm.dlq
  to   = aws_cloudwatch_metric_alarm.this["dead-letters"]
}

moved {
  from = aws_cloudwatch_metric_alarm.notifications_failed
  to   = aws_cloudwatch_metric_alarm.this["notifications-failed"]
}

moved {
  from = aws_cloudwatch_metric_alarm.throttles
  to   = aws_cloudwatch_metric_alarm.this["throttles"]
}

moved {
  from = aws_cloudwatch_metric_alarm.async_delivery["dropped"]
  to   = aws_cloudwatch_metric_alarm.this["dropped"]
}

moved {
  from = aws_cloudwatch_metric_alarm.async_delivery["destination_failure"]
  to   = aws_cloudwatch_metric_alarm.this["destination-failure"]
}
