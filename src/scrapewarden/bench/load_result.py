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

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0
