"""The subscribers' (and operators') SNS topics: messages, and email subscriptions."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cps_covid.systems.aws import failed


def publish(client: Any, topic_arn: str, subject: str, message: str) -> str:
    try:
        answer = client.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    except (BotoCoreError, ClientError) as err:
        raise failed("SNS", f"Publish to {topic_arn}", err) from None
    return answer["MessageId"]


def subscribe_email(client: Any, topic_arn: str, address: str) -> str:
    """Subscribe an address (SNS mails it a confirmation link: double opt-in).

    Returns what SNS answers: ``pending confirmation`` for a new or unconfirmed
    address, the subscription ARN for one already confirmed.
    """
    answer = client.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=address, ReturnSubscriptionArn=False)
    return str(answer.get("SubscriptionArn", ""))


class Topic:
    """One topic (the subscribers' or the operators'): a ``resources.Topic``."""

    def __init__(self, client: Any, arn: str) -> None:
        self.client, self.arn = client, arn

    def publish(self, subject: str, message: str) -> str:
        return publish(self.client, self.arn, subject, message)
