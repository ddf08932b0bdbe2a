"""What the operators are told, in words (pure): a failed run, a stale deployment, a run that healed.

Each failing run is alarmed at most once: its own failure hook and the
automation's alert flow both first write ``state/alarms/<flow run id>.json``
with a conditional put (``alarm_key``), and whichever comes second sends
nothing. The first run of that deployment to complete afterwards sends the
recovery notice.
"""

from __future__ import annotations

import re
from datetime import date

from cps_covid.rules.labels import SUBJECT_LIMIT

ALARMS_PREFIX = "state/alarms/"


def in_school_year(day: date, window: str) -> bool:
    """``window`` is ``MM-DD/MM-DD``; it may wrap over the new year (08-15/06-20)."""
    start, end = (tuple(int(p) for p in part.split("-")) for part in window.split("/"))
    here = (day.month, day.day)
    return start <= here <= end if start <= end else here >= start or here <= end


def alert_text(
    reason: str,
    deployment: str,
    flow_run_name: str,
    state: str,
    ui_url: str,
    why: str = "",
    as_of: str = "",
    window: str = "2 hours",
) -> tuple[str, str]:
    """Subject and body; ``why`` is the first line of the run's final state message, ``as_of`` the day it updated,
    ``window`` how long a stale deployment has not completed (its automation's ``within``)."""
    if reason == "stale":
        subject = f"cps-covid: no completed {deployment} run for {window}"
        body = (
            f"No run of the deployment {deployment} has completed in the last {window} during the school year.\n"
            "The dashboard may not be updated: check the work pools, the workers and the last runs.\n"
        )
    else:
        # SNS takes 100 characters: the deployment names the project, the error's class and URL are in the body
        short = re.sub(r"^([A-Z]\w*(Error|Exception|Failed): )?(\w+://\S+: )?", "", why)  # the URL is in the body
        subject = f"{deployment} {flow_run_name} {state}" + (f": {short}" if short else "")
        body = f"The flow run {flow_run_name} of the deployment {deployment} ended in state {state}.\n"
        if as_of:
            body += f"It was updating {as_of}.\n"
        if why:
            body += f"\nWhy: {why}\n"
    if ui_url:
        body += f"\nOpen the run in the Prefect UI: {ui_url}\n"
    return subject[:SUBJECT_LIMIT], body


def alarm_key(flow_run_id: str) -> str:
    """The marker that an alarm for this run was sent (its existence is the guard against a second one)."""
    return f"{ALARMS_PREFIX}{flow_run_id}.json"


def recovery_text(
    deployment: str, flow_run_name: str, failed_run_name: str, failed_state: str, ui_url: str
) -> tuple[str, str]:
    """The notice that a deployment completed again after the run the operators were alarmed about."""
    subject = f"{deployment} recovered: {flow_run_name} Completed"
    body = (
        f"The flow run {flow_run_name} of the deployment {deployment} completed.\n"
        f"The previous run, {failed_run_name}, ended {failed_state}: the deployment has healed, nothing to do.\n"
    )
    if ui_url:
        body += f"\nOpen the run in the Prefect UI: {ui_url}\n"
    return subject[:SUBJECT_LIMIT], body
