"""What one load run against one server measured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    """Responses received in full."""
    seconds: float
    """How long the load actually ran."""
    non_2xx: int
    """Responses whose status was not 2xx (wrk: not 2xx or 3xx; the benchmark app never redirects)."""
    errors: int
    """Connection failures, read/write errors and timeouts: requests that got no response."""
    p99_ms: float
    p50_ms: float = 0.0
    """The median latency (0.0 from a generator that did not measure it)."""

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0
