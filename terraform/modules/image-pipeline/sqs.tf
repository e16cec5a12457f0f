# Dead-letter queue: asynchronous invocations that still fail after the retries (or grow too old) land here with the
# request and the error, so no upload is lost. The function's role sends to it (on-failure destination).
resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = 1209600 # 14 days, the SQS maximum
  sqs_managed_sse_enabled   = true
}

# Optional inspection queue subscribed to the topic (local stacks and the dashboard read notifications from it).
# Its policy is set inline rather than with aws_sqs_queue_policy: the provider waits about 25 s for each SQS
# attribute change to propagate, and one change is enough.
resource "aws_sqs_queue" "notifications" {
  count = var.create_notifications_queue ? 1 : 0

  name                      = local.notifications_queue_name
  message_retention_seconds = 345600 # 4 days
  sqs_managed_sse_enabled   = true
  policy                    = data.aws_iam_policy_document.notifications_queue[0].json
}

data "aws_iam_policy_document" "notifications_queue" {
  count = var.create_notifications_queue ? 1 : 0

  statement {
    sid       = "AllowThisTopicOnly"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = ["arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.notifications_queue_name}"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.this.arn]
    }
  }
}
