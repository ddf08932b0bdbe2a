"""The subscription app: ``POST /subscribe`` puts an address on the subscribers' SNS topic, ``GET /healthz``.

SNS mails the address a confirmation link (double opt-in), so a subscription
made by someone else only costs the owner one mail; the rate limits bound how
many such mails anyone can cause. Every valid address gets the same answer,
subscribed before or not, so the service cannot be used to find out who is.
Errors are JSON, name the problem and never carry a stack trace or the input.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cps_covid.rules.ratelimit import RateLimiter
from cps_covid.rules.subscription import (
    ACCEPTED_MESSAGE,
    InvalidAddress,
    InvalidRequest,
    UnsupportedBody,
    address_from_body,
    client_tag,
    mask_address,
    normalise_address,
    subscription_state,
)
from cps_covid.service.logs import log_event
from cps_covid.settings import Settings
from cps_covid.systems import sns

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]


class BodyTooLarge(Exception):
    pass


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read_capped(request: Request, cap: int) -> bytes:
    """The body, refused as soon as it is known to exceed ``cap`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge
    return bytes(body)


class SecurityHeaders:
    """Headers that keep browsers from sniffing, framing or caching the answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings, sns_client: Any, *, clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The app for one topic; ``sns_client`` is a boto3 SNS client (the emulator's in tests)."""
    if not settings.topic_arn:
        raise ValueError("the subscription service needs the subscribers' topic (CPS_COVID_TOPIC_ARN)")
    limiter = RateLimiter(
        settings.subscribe_client_limit,
        settings.subscribe_client_window_seconds,
        settings.subscribe_global_limit,
        settings.subscribe_global_window_seconds,
    )
    salt = os.urandom(32)

    async def subscribe(request: Request) -> JSONResponse:
        client = client_tag(request.client.host if request.client else "unknown", salt)
        decision = limiter.check(client, clock())
        if not decision.allowed:
            wait = max(1, math.ceil(decision.retry_after))
            log_event("subscribe", outcome="rate-limited", status=429, client=client, scope=decision.scope)
            return _error(429, f"too many requests: retry in {wait} s", {"Retry-After": str(wait)})
        origin = request.headers.get("origin")
        if origin is not None and origin != settings.site_origin:
            log_event("subscribe", outcome="origin-refused", status=403, client=client)
            return _error(403, "subscriptions are only taken from the dashboard's own pages")
        try:
            body = await _read_capped(request, settings.subscribe_max_body_bytes)
            address = normalise_address(address_from_body(request.headers.get("content-type", ""), body))
        except BodyTooLarge:
            log_event("subscribe", outcome="too-large", status=413, client=client)
            return _error(413, f"the request body is larger than {settings.subscribe_max_body_bytes} bytes")
        except UnsupportedBody as err:
            log_event("subscribe", outcome="unsupported-content-type", status=415, client=client)
            return _error(415, str(err))
        except (InvalidRequest, InvalidAddress) as err:
            log_event("subscribe", outcome="invalid", status=400, client=client, reason=str(err))
            return _error(400, str(err))
        try:
            answer = await run_in_threadpool(sns.subscribe_email, sns_client, settings.topic_arn, address)
        except (ClientError, BotoCoreError) as err:
            code = err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else type(err).__name__
            log_event("subscribe", level=40, outcome="sns-error", status=503, client=client, error=code)
            return _error(503, "subscriptions are unavailable right now: try again later", {"Retry-After": "60"})
        state = subscription_state(answer)
        log_event(
            "subscribe", outcome="accepted", status=202, client=client, address=mask_address(address), state=state
        )
        return JSONResponse({"status": "accepted", "message": ACCEPTED_MESSAGE}, status_code=202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail).lower(), dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log_event("unhandled-error", level=40, path=request.url.path, error=type(exc).__name__, exc_info=True)
        return _error(500, "internal error")

    return Starlette(
        routes=[Route("/subscribe", subscribe, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                CORSMiddleware,
                allow_origins=[settings.site_origin],
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type"],
                max_age=600,
            ),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
