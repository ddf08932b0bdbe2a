"""One settings object: ``CPS_COVID_*`` environment variables over the Prefect variable ``cps_covid_settings``.

Buckets, ids and ARNs live only in configuration. pydantic-settings reads the
environment and converts every value; the Prefect variable (a JSON object) is
one more source, under the environment, so an operator can override one value
for one run. The standard AWS variables (``AWS_ENDPOINT_URL``, ``AWS_REGION``...)
are read by boto3 itself.

The fields are grouped by the program that reads them; ``Settings`` is all of
them, and each entry point names the ones it needs (``require``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from cps_covid.errors import CpsCovidError
from cps_covid.rules.season_calendar import DISTRICT_SEASONS, MAX_GAP_DAYS, SEASON_WINDOW_DAYS

PREFECT_VARIABLE = "cps_covid_settings"
ENV_PREFIX = "CPS_COVID_"
DEFAULT_IGNORE_IDS = frozenset({"610377", "610012", "609703"})
DEFAULT_TIMEZONE = "America/Chicago"
"""The district's: its days, the dashboard's day columns and the cron all run on Chicago time."""


FLOW_REQUIRES = ("bucket", "distribution_id", "topic_arn", "source_url")
"""What the case flow cannot run without: the default of ``require``."""


class SettingsError(CpsCovidError):
    """A required setting is missing or malformed."""


class _Base(BaseSettings):
    """What every part shares: the ``CPS_COVID_`` prefix, frozen values, unknown keys refused."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        coerce_numbers_to_str=True,
    )


class CaseFlowSettings(_Base):
    """The case update (``cps-covid-update``), its alarms and the local stack."""

    bucket: str = ""
    distribution_id: str = ""
    topic_arn: str = ""
    """The subscribers' SNS topic (also the subscription service's)."""
    source_url: str = ""
    profile_url: str = ""
    """Template with ``{school_id}`` and ``{school_year}``; empty: new schools are kept without a profile."""
    ignore_ids: Annotated[frozenset[str], NoDecode] = DEFAULT_IGNORE_IDS
    """Comma-separated school ids the feed carries but the dashboard never counted."""
    site_url: str = "https://cpscovid.com"
    timezone: str = DEFAULT_TIMEZONE
    """tz database name: the day a run updates, its name, the times on the page and in the mail."""
    fetch_timeout_seconds: float = 30.0
    fetch_max_bytes: int = 20_000_000
    fetch_backoff_seconds: float = 10.0
    """First retry delay of the feed fetch; doubles on each retry (a Retry-After longer than it is waited instead)."""
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
    heartbeat_namespace: str = "cps-covid"
    """CloudWatch namespace of the heartbeat every completed update puts (the stack's ``MetricNamespace``);
    empty: no heartbeat."""
    watch_window_seconds: float = 60.0
    """The update trigger's ``within`` (``prefect.yaml``): the feed watch signals no second change inside it,
    since the trigger would drop that event."""
    tags: Annotated[dict[str, str], NoDecode] = {"lifecycle": "true"}
    """S3 object tags of every published object (JSON object)."""


class ServiceSettings(_Base):
    """The subscription service (``cps-covid serve``)."""

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


class VaccinationSettings(_Base):
    """The vaccination and enrolment update (``cps-vaccination-update``)."""

    vaccination_source_url: str = ""
    """The district's daily vaccination feed: http(s) URL, ``file://`` URL or path."""


class SocialSettings(_Base):
    """Social summary posts: off by default, credentials only in Prefect Secret blocks."""

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


@dataclass(frozen=True)
class _Sources:
    """What one ``Settings(...)`` reads under its keyword arguments."""

    environ: Mapping[str, str] | None
    """The ``CPS_COVID_*`` variables; ``None``: no environment."""
    prefect: Callable[[], Mapping[str, object]] | None
    """Reads the Prefect variable; ``None``: no Prefect variable."""


_sources: ContextVar[_Sources | None] = ContextVar("settings_sources", default=None)
"""Set by ``load`` and ``from_mapping``; unset (a plain ``Settings(...)``): the process environment only."""


class MappingEnvSource(EnvSettingsSource):
    """``CPS_COVID_*`` names read from a given mapping (``load(env)``) instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}


class PrefectVariableSource(PydanticBaseSettingsSource):
    """The Prefect variable ``cps_covid_settings`` (a JSON object), as ``read`` returns it."""

    def __init__(self, settings_cls: type[BaseSettings], read: Callable[[], Mapping[str, object]]) -> None:
        super().__init__(settings_cls)
        self._read = read

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole object

    def __call__(self) -> dict[str, Any]:
        return dict(self._read())


def read_prefect_variable() -> Mapping[str, object]:
    """The Prefect variable, when a Prefect API is configured and holds it; ``{}`` otherwise."""
    from prefect.variables import Variable

    # _sync: the update flow is async and loads settings in its body, where Prefect would hand back a coroutine
    value = Variable.get(PREFECT_VARIABLE, default=None, _sync=True)  # type: ignore[call-overload]
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise SettingsError(f"Prefect variable {PREFECT_VARIABLE} is not JSON ({err})") from None
    if not isinstance(value, dict):
        raise SettingsError(f"Prefect variable {PREFECT_VARIABLE} must be a JSON object")
    return value


class Settings(CaseFlowSettings, ServiceSettings, VaccinationSettings, SocialSettings):
    """Every setting; an entry point names the ones it needs in ``load(require=...)``."""

    def __hash__(self) -> int:  # tags is a dict: hashed as its items
        return hash(tuple((n, frozenset(v.items()) if isinstance(v, dict) else v) for n, v in self))

    @field_validator("ignore_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, Iterable):
            return frozenset(str(i).strip() for i in items if str(i).strip())
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("social_x_enabled", "social_facebook_enabled", mode="before")
    @classmethod
    def _empty_is_false(cls, value: object) -> object:
        return False if isinstance(value, str) and not value.strip() else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments over the environment over the Prefect variable, then the defaults."""
        chosen = _sources.get()
        if chosen is None:
            return init_settings, env_settings
        sources = [init_settings]
        if chosen.environ is not None:
            sources.append(MappingEnvSource(settings_cls, chosen.environ))
        if chosen.prefect is not None:
            sources.append(PrefectVariableSource(settings_cls, chosen.prefect))
        return tuple(sources)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        use_prefect: bool = True,
        require: Iterable[str] | None = None,
        prefect_values: Mapping[str, object] | None = None,
    ) -> Settings:
        """``env`` (default ``os.environ``) over the Prefect variable (``use_prefect``).

        ``require``: what this entry point needs (default ``FLOW_REQUIRES``); the
        subscription service needs a topic but no bucket, the vaccination flow a
        bucket but no topic. ``prefect_values`` stands in for the Prefect variable
        (tests): the same source, without a server.
        """
        environ = os.environ if env is None else env
        unknown = [
            k for k in environ if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :].lower() not in cls.model_fields
        ]
        if unknown:  # pydantic-settings ignores them: a misspelt name would silently do nothing
            raise SettingsError(f"unknown setting(s) in the environment: {', '.join(sorted(unknown))}")
        read = read_prefect_variable if prefect_values is None else lambda: prefect_values
        return _built(cls, _Sources(environ, read if use_prefect else None), {})._requiring(require)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], *, require: Iterable[str] | None = None) -> Settings:
        """Exactly these values (no environment, no Prefect variable), then the defaults."""
        return _built(cls, _Sources(None, None), dict(values))._requiring(require)

    def _requiring(self, names: Iterable[str] | None) -> Settings:
        missing = [n for n in (FLOW_REQUIRES if names is None else names) if not getattr(self, n)]
        if missing:
            listed = ", ".join(ENV_PREFIX + n.upper() for n in missing)
            raise SettingsError(
                f"missing setting(s): {listed} (or the same keys in the Prefect variable {PREFECT_VARIABLE})"
            )
        return self


def _built(cls: type[Settings], sources: _Sources, values: dict[str, Any]) -> Settings:
    """``cls(**values)`` over these sources, pydantic's errors said as settings errors: the setting, its value, why."""
    token = _sources.set(sources)
    try:
        return cls(**values)
    except SourceError as err:  # a source could not parse a value (not expected with NoDecode on the complex fields)
        raise SettingsError(str(err)) from None
    except ValidationError as err:
        errors = err.errors()
        unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}") from None
        raise SettingsError(
            "; ".join(
                f"setting {e['loc'][0] if e['loc'] else '?'}: {e['input']!r} is not valid ({e['msg']})" for e in errors
            )
        ) from None
    finally:
        _sources.reset(token)
