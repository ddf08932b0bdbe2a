"""The subscribers' (and operators') SNS topics."""

from __future__ import annotations

from typing import Any


def publish(client: Any, topic_arn: str, subject: str, message: str) -> str:
    answer = client.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    return answer["MessageId"]
