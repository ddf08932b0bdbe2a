"""One settings object: Prefect variable ``cps_covid_settings`` under ``CPS_COVID_*`` environment variables.

Buckets, ids and ARNs live only in configuration. Environment variables win
over the Prefect variable, so an operator can override one value for one run.
The standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``...) are read
by boto3 itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields

from cps_covid.errors import CpsCovidError

PREFECT_VARIABLE = "cps_covid_settings"
ENV_PREFIX = "CPS_COVID_"
DEFAULT_IGNORE_IDS = frozenset({"610377", "610012", "609703"})
DISTRICT_SEASONS = "SY2122:2021-08-30,Summer_22:2022-06-14,SY2223:2022-08-18"
"""The district's seasons as the dashboard counted them (its front end counts Summer 22 from 2022-06-14)."""
SEASON_WINDOW_DAYS = 7
MAX_GAP_DAYS = 14


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
    lease_seconds: float = 900.0
    """How long a claimed update is left to its run before the next run resumes it as crashed."""
    alarm_topic_arn: str = ""
    """The operators' SNS topic (failure automations); separate from the subscribers' topic."""
    seasons: str = DISTRICT_SEASONS
    """NAME:YYYY-MM-DD of each season's first day; a reset near one closes the season before it by itself."""
    season_window_days: int = SEASON_WINDOW_DAYS
    """How near a season's first day (before or after) a reset is closed by the calendar; elsewhere it stops."""
    max_gap_days: int = MAX_GAP_DAYS
    """A run more days than this after the history's last day column stops unless confirmed (``fill_gap``)."""
    school_year: str = "08-15/06-20"
    """MM-DD/MM-DD: when a missing update is worth an alarm."""
    prefect_ui_url: str = ""
    replay_clock: str = ""
    """Local stack only (``make up``): ``FIRST_DAY@START_UTC/MINUTES`` plays a past season forward, one day per
    MINUTES, for runs without ``as_of``; empty (production): today in ``timezone``."""
    tags: Mapping[str, str] = field(default_factory=lambda: {"lifecycle": "true"})

    # --- the subscription service (``cps-covid serve``) ---
    site_origin: str = "https://cpscovid.com"
    """The only origin whose pages may call the service from a browser (CORS)."""
    trusted_proxies: str = "127.0.0.1"
    """Peers whose ``X-Forwarded-For`` names the client (uvicorn's ``forwarded_allow_ips``; ``*`` behind an ALB)."""
    subscribe_client_limit: int = 5
    """Subscription requests one client may make per ``subscribe_client_window_seconds``."""
    subscribe_client_window_seconds: float = 600.0
    subscribe_global_limit: int = 100
    """Subscription requests from everyone together per ``subscribe_global_window_seconds``."""
    subscribe_global_window_seconds: float = 60.0
    subscribe_max_body_bytes: int = 2048
    """A subscription request body is one address: anything larger is refused unread."""

    # --- the vaccination and enrolment update (``cps-vaccination-update``) ---
    vaccination_source_url: str = ""
    """The district's daily vaccination feed: http(s) URL, ``file://`` URL or path."""

    # --- social summary posts: off by default, credentials only in Prefect Secret blocks ---
    social_x_enabled: bool = False
    x_secret_block: str = "cps-covid-x"
    """Secret block (JSON): ``api_key``, ``api_secret``, ``access_token``, ``access_token_secret`` (OAuth 1.0a)."""
    x_api_url: str = "https://api.x.com"
    social_facebook_enabled: bool = False
    facebook_secret_block: str = "cps-covid-facebook"
    """Secret block (JSON): ``page_access_token`` and optionally ``app_secret`` (for ``appsecret_proof``)."""
    facebook_page_id: str = ""
    facebook_graph_url: str = "https://graph.facebook.com/v21.0"
    social_timeout_seconds: float = 15.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], *, require: Iterable[str] | None = None) -> Settings:
        """``require``: the settings this entry point needs (default: every field without a default).

        The subscription service needs a topic but no bucket, the vaccination flow a
        bucket but no topic: each names what it needs, the others default to empty.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        required = [n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING]
        needed = required if require is None else list(require)
        missing = [n for n in needed if not values.get(n)]
        if missing:
            names = ", ".join(ENV_PREFIX + n.upper() for n in missing)
            raise SettingsError(
                f"missing setting(s): {names} (or the same keys in the Prefect variable {PREFECT_VARIABLE})"
            )
        parsed: dict[str, object] = {n: "" for n in required if n not in values}
        for name, value in values.items():
            parsed[name] = _convert(name, known[name].type, value)
        return cls(**parsed)  # type: ignore[arg-type]

    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, *, use_prefect: bool = True, require: Iterable[str] | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = dict(_prefect_values()) if use_prefect else {}
        values |= {k[len(ENV_PREFIX) :].lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)}
        return cls.from_mapping(values, require=require)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _convert(name: str, kind: object, value: object) -> object:
    try:
        if kind in ("bool", bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return text in _TRUE
        if kind in ("float", float):
            return float(value)  # type: ignore[arg-type]
        if kind in ("int", int):
            return int(value)  # type: ignore[call-overload]
        if "frozenset" in str(kind):
            items = value.split(",") if isinstance(value, str) else value
            return frozenset(str(i).strip() for i in items if str(i).strip())  # type: ignore[attr-defined]
        if "Mapping" in str(kind):
            return json.loads(value) if isinstance(value, str) else dict(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as err:
        raise SettingsError(f"setting {name}: {value!r} is not valid ({err})") from None
    return str(value)


def _prefect_values() -> Mapping[str, object]:
    """The Prefect variable, when a Prefect API is configured and holds it."""
    from prefect.variables import Variable

    # _sync: the update flow is async and loads settings in its body, where Prefect would hand back a coroutine
    value = Variable.get(PREFECT_VARIABLE, default=None, _sync=True)  # type: ignore[call-overload]
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise SettingsError(f"Prefect variable {PREFECT_VARIABLE} must be a JSON object")
    return value
