"""OAuth 1.0a signing against the published examples (X's documentation, OAuth Core 1.0, RFC 5849)."""

from __future__ import annotations

from cps_covid import oauth1

TWITTER = [
    ("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
    ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
    ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
    ("oauth_signature_method", "HMAC-SHA1"),
    ("oauth_timestamp", "1318622958"),
    ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
    ("oauth_version", "1.0"),
]
PHOTOS = "http://photos.example.net/photos?file=vacation.jpg&size=original"


def test_xs_documented_example() -> None:
    base = oauth1.signature_base(
        "POST", "https://api.twitter.com/1.1/statuses/update.json?include_entities=true", TWITTER
    )
    assert base.startswith("POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue")
    assert "status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C" in base
    signed = oauth1.signature(
        base, "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
    )
    assert signed == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="


def test_the_specifications_examples() -> None:
    common = [
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
    ]
    core = oauth1.signature_base(
        "GET",
        PHOTOS,
        [*common, ("oauth_timestamp", "1191242096"), ("oauth_nonce", "kllo9940pd9333jh"), ("oauth_version", "1.0")],
    )
    rfc = oauth1.signature_base("GET", PHOTOS, [*common, ("oauth_timestamp", "137131202"), ("oauth_nonce", "chapoH")])
    assert oauth1.signature(core, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00") == "tR3+Ty81lMeYAr/Fid0kMTYa/WM="
    assert oauth1.signature(rfc, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00") == "MdpQcU8iPSUjWoN/UDMsK2sui9I="


def test_the_header_carries_every_oauth_parameter_encoded() -> None:
    header = oauth1.authorization(
        "POST",
        "https://API.x.com:443/2/tweets",
        consumer_key="key",
        consumer_secret="s",
        token="t/1",
        token_secret="ts",
        nonce="abc",
        timestamp=1700000000,
    )
    assert header.startswith('OAuth oauth_consumer_key="key", oauth_nonce="abc"')
    assert 'oauth_token="t%2F1"' in header and 'oauth_version="1.0"' in header and "oauth_signature=" in header
    assert oauth1.base_url("https://API.x.com:443/2/tweets") == "https://api.x.com/2/tweets"
    assert oauth1.base_url("http://127.0.0.1:8080/2/tweets?x=1") == "http://127.0.0.1:8080/2/tweets"
