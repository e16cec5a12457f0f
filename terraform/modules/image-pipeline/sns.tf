# Topic for one notification per processed object (success and failure) and for the alarms.
resource "aws_sns_topic" "this" {
  name              = "${var.name_prefix}-notifications"
  kms_master_key_id = local.sns_kms_key_id
}

resource "aws_sns_topic_subscription" "email" {
  count = var.admin_email != "" ? 1 : 0

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = var.admin_email
}

# The queue receives the SNS envelope (raw delivery off): Subject, Timestamp and MessageAttributes (status) stay
# with the message, and the pipeline's JSON is the envelope's "Message" string.
resource "aws_sns_topic_subscription" "queue" {
  count = var.create_notifications_queue ? 1 : 0

  topic_arn            = aws_sns_topic.this.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.notifications[0].arn
  raw_message_delivery = false
}

# Optional customer-managed key for the topic. The AWS-managed alias/aws/sns key does not let CloudWatch alarms
# publish; this key's policy does (and the account keeps full control of it).
data "aws_iam_policy_document" "sns_key" {
  # A key policy's Resource is always "*" (the key it is attached to), which checkov's IAM checks cannot tell apart:
  #checkov:skip=CKV_AWS_109:key policy; "*" is this key and the account root administers it
  #checkov:skip=CKV_AWS_111:key policy; "*" is this key and the account root administers it
  #checkov:skip=CKV_AWS_356:key policy; "*" is this key
  count = var.create_sns_kms_key ? 1 : 0

  statement {
    sid       = "AccountAdministersTheKey"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy "*" means this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToTheTopic"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"] # in a key policy "*" means this key

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "sns" {
  count = var.create_sns_kms_key ? 1 : 0

  description             = "Encrypts the ${var.name_prefix} notifications topic; lets CloudWatch alarms publish to it"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.sns_key[0].json
}

resource "aws_kms_alias" "sns" {
  count = var.create_sns_kms_key ? 1 : 0

  name          = "alias/${var.name_prefix}-notifications"
  target_key_id = aws_kms_key.sns[0].key_id
}
