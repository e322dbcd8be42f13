"""Per-key token bucket (限流): ``rate`` tokens per second, up to ``burst`` saved up."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float = field(default=-1.0)
    stamp: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens at monotonic time ``now``: 0 when allowed, else seconds to wait."""
        if self.tokens < 0:
            self.tokens, self.stamp = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if cost > self.burst:
            cost = float(self.burst)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """One bucket per API key (in this replica)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(now, cost)
