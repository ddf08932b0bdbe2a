"""Social post text and the per-channel plan that keeps one post per update (pure)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from cps_covid.rules import social

DAY = date(2021, 9, 23)


def changes(**cases: int) -> pd.DataFrame:
    return pd.DataFrame({"School": list(cases), "new_cases": list(cases.values())})


def test_the_text_names_totals_schools_and_the_list() -> None:
    text = social.post_text(changes(ADDAMS=2, AGASSIZ=3, BLAIR=-1), DAY, "https://cpscovid.com/")
    assert text == (
        "CPS COVID update, Sep. 23, 2021: 5 new cases at 2 schools: AGASSIZ (3), ADDAMS (2).\n"
        "List: https://cpscovid.com/newcases.html"
    )
    assert social.post_text(changes(ADDAMS=1), DAY, "https://cpscovid.com").startswith(
        "CPS COVID update, Sep. 23, 2021: 1 new case at 1 school: ADDAMS (1)."
    )


def test_a_long_update_is_cut_to_280_weighted_characters() -> None:
    many = changes(**{f"SCHOOL NUMBER {i:03d} ACADEMY": 1 + i % 4 for i in range(60)})
    text = social.post_text(many, DAY, "https://cpscovid.com")
    assert social.x_length(text) <= 280 and len(text) > 200
    assert text.count("(4)") >= 3 and " more.\nList: https://cpscovid.com/newcases.html" in text
    assert "150 new cases at 60 schools" in text


def test_corrections_only_make_no_post() -> None:
    assert social.post_text(changes(ADDAMS=-2), DAY, "https://cpscovid.com") is None


@pytest.mark.parametrize(
    ("text", "length"),
    [("abc", 3), ("see https://cpscovid.com/a/very/long/path/newcases.html now", 31), ("日本", 4), ("é", 1), ("😷", 2)],
)
def test_x_counts_urls_and_wide_characters_like_x(text: str, length: int) -> None:
    assert social.x_length(text) == length


def test_plan_posts_a_new_update_once() -> None:
    first = social.plan(None, '"etag-1"', "text")
    assert first.action == "post" and first.state.update == '"etag-1"' and first.state.status == "pending"
    posted = first.state.attempted("t").posted("42", "t")
    assert social.plan(posted, '"etag-1"', "text").action == "nothing"
    assert social.plan(posted, '"etag-1"', None).action == "nothing"
    assert social.plan(posted, '"etag-2"', "newer").state.text == "newer"


def test_plan_retries_a_refused_post_but_never_one_that_may_be_out() -> None:
    pending = social.ChannelState('"e"', "pending", "text").attempted("t").failed(social.PostFailed("HTTP 503"), "t")
    assert pending.status == "pending" and pending.attempts == 1
    retry = social.plan(pending, '"e"', None)
    assert (retry.action, retry.state.attempts) == ("post", 1)
    uncertain = pending.attempted("t").failed(social.PostFailed("timed out", uncertain=True), "t")
    assert social.plan(uncertain, '"e"', None).action == "nothing"
    interrupted = social.plan(pending.attempted("t"), '"e"', "text")
    assert interrupted.action == "interrupted" and "not resent" in interrupted.reason


def test_plan_drops_a_pending_post_a_newer_update_replaced() -> None:
    pending = social.ChannelState('"old"', "pending", "old text", attempts=2)
    assert social.plan(pending, '"new"', None).action == "nothing"
    assert social.plan(pending, None, "text").action == "nothing"


def test_state_round_trips_and_a_broken_one_is_named() -> None:
    state = social.ChannelState('"e"', "posted", "text", 1, "42", None, "2021-09-23T12:00:00+00:00")
    assert social.ChannelState.parse(state.dumps()) == state
    with pytest.raises(social.PostFailed, match="unreadable"):
        social.ChannelState.parse(b"{not json")
