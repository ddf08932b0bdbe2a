"""CloudWatch: the heartbeat a watchdog outside Prefect alarms on.

Every completed update run puts one datapoint (value 1) of ``HEARTBEAT_METRIC`` in the
configured namespace. The stack's alarm (``deployments/cloudformation.yaml``,
``UpdateHeartbeatAlarm``) treats missing data as breaching, so it fires when nothing
completes for whatever reason: the Prefect server or Cloud unreachable, the scheduler
stopped, both workers gone, the automations deleted.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cps_covid.systems.aws import failed

HEARTBEAT_METRIC = "UpdatesCompleted"
WATCH_METRIC = "WatchPolls"
"""One datapoint per completed poll of the feed watch: the watchdog's sign that the pipeline is alive."""


class Heartbeat:
    """One metric in one namespace: a ``resources.Heartbeat``."""

    def __init__(self, client: Any, namespace: str, metric: str = HEARTBEAT_METRIC) -> None:
        self.client, self.namespace, self.metric = client, namespace, metric

    def beat(self) -> str:
        """Put one datapoint; what was put, for the log."""
        try:
            self.client.put_metric_data(
                Namespace=self.namespace, MetricData=[{"MetricName": self.metric, "Value": 1.0, "Unit": "Count"}]
            )
        except (BotoCoreError, ClientError) as err:
            raise failed("CloudWatch", f"PutMetricData {self.namespace}/{self.metric}", err) from None
        return f"{self.namespace}/{self.metric} +1"
