"""Rules of the email subscription (pure: no I/O, no web framework).

The service takes one address from an untrusted page, so the rules are strict
and the answers say what is wrong without ever repeating the input: a sane,
plain address (no quoted local parts, no IP literals, no control characters, so
nothing can be smuggled into a mail header), at most 254 characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import parse_qs

from cps_covid.errors import InputError

MAX_ADDRESS = 254
MAX_LOCAL = 64
MAX_LABEL = 63
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATOM}(\.{_ATOM})*$")
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$")
_TLD = re.compile(r"^([A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")

ACCEPTED_MESSAGE = (
    "Thank you. Unless this address is subscribed already, a confirmation mail is on its way: "
    "follow its link to receive the updates."
)
"""The one answer to every valid address, new or already subscribed: no address enumeration."""


class InvalidAddress(InputError):
    """The address cannot be subscribed; the message never contains the address."""


class InvalidRequest(InputError):
    """The request body is not a subscription request."""


class UnsupportedBody(InvalidRequest):
    """Neither JSON nor an urlencoded form (answered 415)."""

    def __init__(self, kind: str) -> None:
        shown = kind if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", kind or "") else "missing or unknown"
        super().__init__(
            f"content type {shown} is not accepted: send application/json or application/x-www-form-urlencoded"
        )


def normalise_address(value: object) -> str:
    """The address to subscribe (domain lower-cased, IDNA-encoded), or ``InvalidAddress`` saying why not."""
    if not isinstance(value, str):
        raise InvalidAddress("the email field must be a text value")
    text = value.strip()
    if not text:
        raise InvalidAddress("an email address is required")
    if _CONTROL.search(text):
        raise InvalidAddress("the address contains line breaks or control characters")
    if len(text) > MAX_ADDRESS:
        raise InvalidAddress(f"the address is longer than {MAX_ADDRESS} characters")
    if text.count("@") != 1:
        raise InvalidAddress("the address must contain exactly one @")
    local, domain = text.split("@")
    if not local or len(local) > MAX_LOCAL:
        raise InvalidAddress(f"the part before @ must have 1 to {MAX_LOCAL} characters")
    if not _LOCAL.match(local):
        raise InvalidAddress("the part before @ has characters that are not allowed in an address")
    ascii_domain = _ascii_domain(domain)
    address = f"{local}@{ascii_domain}"
    if len(address) > MAX_ADDRESS:
        raise InvalidAddress(f"the address is longer than {MAX_ADDRESS} characters")
    return address


def _ascii_domain(domain: str) -> str:
    if not domain:
        raise InvalidAddress("the domain after @ is missing")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise InvalidAddress("the domain after @ is not a valid domain name") from None
    labels = ascii_domain.lower().split(".")
    if len(labels) < 2:
        raise InvalidAddress("the domain after @ needs a dot (like example.org)")
    for label in labels:
        if len(label) > MAX_LABEL or not _LABEL.match(label):
            raise InvalidAddress("the domain after @ is not a valid domain name")
    if not _TLD.match(labels[-1]):
        raise InvalidAddress("the domain after @ does not end in a valid top-level domain")
    return ".".join(labels)


def address_from_body(content_type: str, body: bytes) -> object:
    """The ``email`` field of a JSON object or an urlencoded form (not yet validated)."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8 text") from None
    if kind == "application/json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidRequest(f"the body is not valid JSON (line {err.lineno}, column {err.colno})") from None
        if not isinstance(document, dict):
            raise InvalidRequest('the JSON body must be an object like {"email": "..."}')
        if "email" not in document:
            raise InvalidRequest("the JSON object has no email field")
        return document["email"]
    if kind == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=20)
        except ValueError:
            raise InvalidRequest("the form body is malformed") from None
        values = fields.get("email", [])
        if len(values) != 1:
            raise InvalidRequest("the form must have exactly one email field")
        return values[0]
    raise UnsupportedBody(kind)


def subscription_state(answer: str) -> str:
    """SNS answers ``pending confirmation`` for a new address, a subscription ARN for a confirmed one."""
    if answer.strip().lower() == "pending confirmation":
        return "pending-confirmation"
    if answer.startswith("arn:"):
        return "already-confirmed"
    return "unknown"


def mask_address(address: str) -> str:
    """What the logs show: first character of the local part and the domain (``j***@example.org``)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def client_tag(client: str, salt: bytes) -> str:
    """A short, salted, per-process pseudonym of a client address for the logs."""
    return hashlib.blake2s(client.encode(), key=salt[:32], digest_size=6).hexdigest()
