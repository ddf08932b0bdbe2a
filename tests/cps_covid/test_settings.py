"""Settings: each entry point names what it needs; booleans and the new defaults."""

from __future__ import annotations

import pytest

from cps_covid.settings import Settings, SettingsError

FLOW = {"bucket": "b", "distribution_id": "d", "topic_arn": "t", "source_url": "s"}


def test_the_flow_still_needs_its_four_settings() -> None:
    with pytest.raises(SettingsError, match="CPS_COVID_BUCKET, CPS_COVID_DISTRIBUTION_ID, CPS_COVID_SOURCE_URL"):
        Settings.from_mapping({"topic_arn": "t"})


def test_the_service_needs_only_the_topic() -> None:
    settings = Settings.load({"CPS_COVID_TOPIC_ARN": "arn:t"}, use_prefect=False, require=("topic_arn",))
    assert (settings.topic_arn, settings.bucket, settings.site_origin) == ("arn:t", "", "https://cpscovid.com")
    with pytest.raises(SettingsError, match="CPS_COVID_TOPIC_ARN"):
        Settings.load({}, use_prefect=False, require=("topic_arn",))


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
