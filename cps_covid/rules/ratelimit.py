"""Token buckets per client and for everyone together (pure: the clock is passed in).

A bucket holds ``limit`` tokens and refills at ``limit / window`` per second, so
a client may burst up to ``limit`` requests and then one per ``window / limit``
seconds. The per-client table is bounded: the least recently seen clients are
forgotten first, so a flood of spoofed addresses cannot exhaust memory (a
forgotten client only gets a fresh bucket, the overall bucket still holds).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class Bucket:
    limit: int
    window_seconds: float
    tokens: float
    updated: float

    @property
    def rate(self) -> float:
        return self.limit / self.window_seconds

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.limit), self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0: available now)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0
    scope: str = ""
    """``client`` or ``overall``: which limit refused the request."""


class RateLimiter:
    def __init__(
        self,
        client_limit: int,
        client_window_seconds: float,
        global_limit: int,
        global_window_seconds: float,
        *,
        max_clients: int = 10_000,
    ) -> None:
        if min(client_limit, global_limit) < 1 or min(client_window_seconds, global_window_seconds) <= 0:
            raise ValueError("rate limits need a limit of at least 1 and a positive window")
        self.client_limit = client_limit
        self.client_window = client_window_seconds
        self.max_clients = max_clients
        self.global_limit = global_limit
        self.global_window = global_window_seconds
        self.overall: Bucket | None = None
        self.clients: OrderedDict[str, Bucket] = OrderedDict()

    def _client(self, client: str, now: float) -> Bucket:
        bucket = self.clients.pop(client, None)
        if bucket is None:
            bucket = Bucket(self.client_limit, self.client_window, float(self.client_limit), now)
            while len(self.clients) >= self.max_clients:
                self.clients.popitem(last=False)
        self.clients[client] = bucket
        return bucket

    def check(self, client: str, now: float) -> Decision:
        """Take one token from the client's bucket and the overall one, or say how long to wait."""
        if self.overall is None:
            self.overall = Bucket(self.global_limit, self.global_window, float(self.global_limit), now)
        mine = self._client(client, now)
        wait = mine.wait(now)
        if wait:
            return Decision(False, wait, "client")
        wait = self.overall.wait(now)
        if wait:
            return Decision(False, wait, "overall")
        mine.take()
        self.overall.take()
        return Decision(True)
