"""Settings: each entry point names what it needs; the sources' order; values converted or named as bad."""

from __future__ import annotations

import os

import pytest

from cps_covid.settings import PREFECT_VARIABLE, Settings, SettingsError

FLOW = {"bucket": "b", "distribution_id": "d", "topic_arn": "t", "source_url": "s"}


def test_the_flow_still_needs_its_four_settings() -> None:
    with pytest.raises(SettingsError, match="CPS_COVID_BUCKET, CPS_COVID_DISTRIBUTION_ID, CPS_COVID_SOURCE_URL"):
        Settings.from_mapping({"topic_arn": "t"})


def test_the_service_needs_only_the_topic() -> None:
    settings = Settings.load({"CPS_COVID_TOPIC_ARN": "arn:t"}, use_prefect=False, require=("topic_arn",))
    assert (settings.topic_arn, settings.bucket, settings.site_origin) == ("arn:t", "", "https://cpscovid.com")
    with pytest.raises(SettingsError, match="CPS_COVID_TOPIC_ARN"):
        Settings.load({}, use_prefect=False, require=("topic_arn",))


def test_the_environment_is_read_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("CPS_COVID_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CPS_COVID_TOPIC_ARN", "arn:env")
    assert Settings.load(use_prefect=False, require=("topic_arn",)).topic_arn == "arn:env"


def test_the_environment_wins_over_the_prefect_variable_and_the_variable_over_the_defaults() -> None:
    variable = {"bucket": "from-variable", "site_url": "https://variable.example", "subscribe_client_limit": 7}
    env = {"CPS_COVID_SITE_URL": "https://env.example", "OTHER": "x"}
    settings = Settings.load(env, require=("bucket",), prefect_values=variable)
    assert (settings.bucket, settings.site_url, settings.subscribe_client_limit) == (
        "from-variable",
        "https://env.example",
        7,
    )
    assert settings.timezone == "America/Chicago"
    assert Settings.load(env, use_prefect=False, require=(), prefect_values=variable).bucket == ""


def test_social_channels_are_off_by_default_and_switch_on_with_true() -> None:
    settings = Settings.from_mapping(FLOW)
    assert (settings.social_x_enabled, settings.social_facebook_enabled) == (False, False)
    on = Settings.from_mapping(FLOW | {"social_x_enabled": "True", "social_facebook_enabled": "1"})
    assert (on.social_x_enabled, on.social_facebook_enabled) == (True, True)
    env = {"CPS_COVID_SOCIAL_X_ENABLED": "yes", "CPS_COVID_SOCIAL_FACEBOOK_ENABLED": ""}
    from_env = Settings.load(env, use_prefect=False, require=())
    assert (from_env.social_x_enabled, from_env.social_facebook_enabled) == (True, False)
    with pytest.raises(SettingsError, match="setting social_x_enabled: 'sometimes' is not valid"):
        Settings.from_mapping(FLOW | {"social_x_enabled": "sometimes"})


def test_limits_are_numbers() -> None:
    settings = Settings.from_mapping(FLOW | {"subscribe_client_limit": "3", "subscribe_global_window_seconds": "30"})
    assert (settings.subscribe_client_limit, settings.subscribe_global_window_seconds) == (3, 30.0)
    with pytest.raises(SettingsError, match=r"setting fetch_max_bytes: '1\.5' is not valid \(.*integer"):
        Settings.from_mapping(FLOW | {"fetch_max_bytes": "1.5"})
    with pytest.raises(SettingsError, match="setting lease_seconds: 'soon' is not valid"):
        Settings.load({"CPS_COVID_LEASE_SECONDS": "soon"}, use_prefect=False, require=())


def test_lists_and_tags_from_text_or_values() -> None:
    env = {"CPS_COVID_IGNORE_IDS": " 1, 2,,", "CPS_COVID_TAGS": '{"a": "b"}'}
    settings = Settings.load(env, use_prefect=False, require=())
    assert (settings.ignore_ids, settings.tags) == (frozenset({"1", "2"}), {"a": "b"})
    listed = Settings.from_mapping(FLOW | {"ignore_ids": ["3", " 4 "], "tags": {"c": "d"}})
    assert (listed.ignore_ids, listed.tags) == (frozenset({"3", "4"}), {"c": "d"})
    assert Settings.from_mapping(FLOW).ignore_ids == frozenset({"610377", "610012", "609703"})
    with pytest.raises(SettingsError, match=r"setting tags: '\{bad' is not valid"):
        Settings.load({"CPS_COVID_TAGS": "{bad"}, use_prefect=False, require=())


def test_an_unknown_setting_stops_the_load() -> None:
    with pytest.raises(SettingsError, match=r"unknown setting\(s\): buckett"):
        Settings.from_mapping(FLOW | {"buckett": "b"})
    with pytest.raises(SettingsError, match="CPS_COVID_BUCKETT"):  # pydantic-settings alone would ignore it
        Settings.load({"CPS_COVID_BUCKETT": "b"}, use_prefect=False, require=())
    with pytest.raises(SettingsError, match=r"unknown setting\(s\): topic"):
        Settings.load({}, require=(), prefect_values={"topic": "t"})


def test_settings_are_frozen_hashable_and_copied_with_changes() -> None:
    settings = Settings.from_mapping(FLOW)
    with pytest.raises(ValueError, match="frozen"):
        settings.bucket = "other"  # type: ignore[misc]
    assert hash(settings) == hash(Settings.from_mapping(FLOW))
    changed = settings.model_copy(update={"bucket": "other"})
    assert (changed.bucket, settings.bucket, changed.topic_arn) == ("other", "b", "t")


def test_the_environment_wins_over_the_prefect_variable(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.variables import Variable

    for name in [n for n in os.environ if n.startswith("CPS_COVID_")]:
        monkeypatch.delenv(name)
    Variable.set(PREFECT_VARIABLE, {"bucket": "from-variable", "site_url": "https://variable.example"}, overwrite=True)
    try:
        monkeypatch.setenv("CPS_COVID_SITE_URL", "https://env.example")
        settings = Settings.load(require=("bucket",))
        assert (settings.bucket, settings.site_url) == ("from-variable", "https://env.example")
        assert Settings.load(use_prefect=False, require=()).bucket == ""
    finally:
        Variable.unset(PREFECT_VARIABLE)
