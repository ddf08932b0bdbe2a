"""One settings object: Prefect variable ``cps_covid_settings`` under ``CPS_COVID_*`` environment variables.

Buckets, ids and ARNs live only in configuration. Environment variables win
over the Prefect variable, so an operator can override one value for one run.
The standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``...) are read
by boto3 itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields

from cps_covid.errors import CpsCovidError

PREFECT_VARIABLE = "cps_covid_settings"
ENV_PREFIX = "CPS_COVID_"
DEFAULT_IGNORE_IDS = frozenset({"610377", "610012", "609703"})


class SettingsError(CpsCovidError):
    """A required setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    bucket: str
    distribution_id: str
    topic_arn: str
    source_url: str
    profile_url: str = ""
    """Template with ``{school_id}`` and ``{school_year}``; empty: new schools are kept without a profile."""
    ignore_ids: frozenset[str] = DEFAULT_IGNORE_IDS
    site_url: str = "https://cpscovid.com"
    timezone: str = "America/Chicago"
    fetch_timeout_seconds: float = 30.0
    fetch_max_bytes: int = 20_000_000
    fetch_backoff_seconds: float = 10.0
    """First retry delay of the feed fetch; doubles on each retry (with jitter)."""
    aws_credentials_block: str = ""
    """Name of a prefect-aws ``AwsCredentials`` block; empty: boto3's default chain."""
    alarm_topic_arn: str = ""
    """The operators' SNS topic (failure automations); separate from the subscribers' topic."""
    school_year: str = "08-15/06-20"
    """MM-DD/MM-DD: when a missing update is worth an alarm."""
    prefect_ui_url: str = ""
    tags: Mapping[str, str] = field(default_factory=lambda: {"lifecycle": "true"})

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Settings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        missing = [n for n in required if not values.get(n)]
        if missing:
            names = ", ".join(ENV_PREFIX + n.upper() for n in missing)
            raise SettingsError(
                f"missing setting(s): {names} (or the same keys in the Prefect variable {PREFECT_VARIABLE})"
            )
        parsed: dict[str, object] = {}
        for name, value in values.items():
            parsed[name] = _convert(name, known[name].type, value)
        return cls(**parsed)  # type: ignore[arg-type]

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, *, use_prefect: bool = True) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = dict(_prefect_values()) if use_prefect else {}
        values |= {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        return cls.from_mapping(values)


def _convert(name: str, kind: object, value: object) -> object:
    try:
        if kind in ("float", float):
            return float(value)  # type: ignore[arg-type]
        if kind in ("int", int):
            return int(value)  # type: ignore[arg-type]
        if "frozenset" in str(kind):
            items = value.split(",") if isinstance(value, str) else value
            return frozenset(str(i).strip() for i in items if str(i).strip())  # type: ignore[union-attr]
        if "Mapping" in str(kind):
            return json.loads(value) if isinstance(value, str) else dict(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise SettingsError(f"setting {name}: {value!r} is not valid ({err})") from None
    return str(value)


def _prefect_values() -> Mapping[str, object]:
    """The Prefect variable, when a Prefect API is configured and holds it."""
    from prefect.variables import Variable

    value = Variable.get(PREFECT_VARIABLE, default=None)
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise SettingsError(f"Prefect variable {PREFECT_VARIABLE} must be a JSON object")
    return value
