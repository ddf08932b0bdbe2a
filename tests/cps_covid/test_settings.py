"""Settings: each entry point names what it needs; booleans and the new defaults."""

from __future__ import annotations

import os

import pytest

from cps_covid.settings import PREFECT_VARIABLE, Settings, SettingsError

FLOW = {"bucket": "b", "distribution_id": "d", "topic_arn": "t", "source_url": "s"}


def test_the_flow_still_needs_its_four_settings() -> None:
    with pytest.raises(SettingsError, match="CPS_COVID_BUCKET, CPS_COVID_DISTRIBUTION_ID, CPS_COVID_SOURCE_URL"):
        Settings.from_mapping({"topic_arn": "t"})


def test_the_service_needs_only_the_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("CPS_COVID_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CPS_COVID_TOPIC_ARN", "arn:t")
    settings = Settings.load(use_prefect=False, require=("topic_arn",))
    assert (settings.topic_arn, settings.bucket, settings.site_origin) == ("arn:t", "", "https://cpscovid.com")
    monkeypatch.delenv("CPS_COVID_TOPIC_ARN")
    with pytest.raises(SettingsError, match="CPS_COVID_TOPIC_ARN"):
        Settings.load(use_prefect=False, require=("topic_arn",))


def test_social_channels_are_off_by_default_and_switch_on_with_true() -> None:
    settings = Settings.from_mapping(FLOW)
    assert (settings.social_x_enabled, settings.social_facebook_enabled) == (False, False)
    on = Settings.from_mapping(FLOW | {"social_x_enabled": "True", "social_facebook_enabled": "1"})
    assert (on.social_x_enabled, on.social_facebook_enabled) == (True, True)
    with pytest.raises(SettingsError, match="social_x_enabled: 'sometimes' is not valid"):
        Settings.from_mapping(FLOW | {"social_x_enabled": "sometimes"})


def test_limits_are_numbers() -> None:
    settings = Settings.from_mapping(FLOW | {"subscribe_client_limit": "3", "subscribe_global_window_seconds": "30"})
    assert (settings.subscribe_client_limit, settings.subscribe_global_window_seconds) == (3, 30.0)


def test_values_are_converted_and_a_bad_one_is_named() -> None:
    settings = Settings.from_mapping(
        FLOW | {"ignore_ids": " 1, 2,,", "social_x_enabled": "", "tags": '{"a": "b"}', "lease_seconds": "0"}
    )
    assert (settings.ignore_ids, settings.social_x_enabled, settings.tags) == (frozenset({"1", "2"}), False, {"a": "b"})
    assert settings.lease_seconds == 0.0
    with pytest.raises(SettingsError, match=r"setting fetch_max_bytes: '1\.5' is not valid"):
        Settings.from_mapping(FLOW | {"fetch_max_bytes": "1.5"})
    with pytest.raises(SettingsError, match="unknown setting\\(s\\): buckett"):
        Settings.from_mapping(FLOW | {"buckett": "b"})


def test_a_misspelt_environment_variable_stops_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CPS_COVID_BUCKETT", "b")
    with pytest.raises(SettingsError, match="CPS_COVID_BUCKETT"):
        Settings.load(use_prefect=False, require=())


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
