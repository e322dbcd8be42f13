"""Per-key token bucket (限流): ``rate`` tokens per second, up to ``burst`` saved up."""

from __future__ import annotations

from collections import OrderedDict
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

    def give_back(self, cost: float = 1.0) -> None:
        """Return tokens taken for a request that turned out not to count."""
        if self.tokens >= 0:
            self.tokens = min(float(self.burst), self.tokens + cost)


class RateLimiter:
    """One bucket per key (an API key, a client address) in this replica.

    At most ``tracked`` buckets are kept: the least recently used one goes first, so a flood
    from many addresses cannot grow memory without bound (a forgotten bucket starts full).
    """

    def __init__(self, rate: float, burst: int, tracked: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.tracked = tracked
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
            while len(self._buckets) > self.tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)

    def give_back(self, key: str, cost: float = 1.0) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.give_back(cost)

    def __len__(self) -> int:
        return len(self._buckets)
