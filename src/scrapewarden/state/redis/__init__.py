"""The Redis / Valkey state backend: ``redis://``, ``rediss://``, ``redis+cluster://``,
``redis+sentinel://`` (see :mod:`.config` for the URL options and :mod:`.store` for the design)."""

from .config import RedisConfig, parse_redis_url
from .store import RedisStore, StateUnavailableError

__all__ = ["RedisConfig", "RedisStore", "StateUnavailableError", "parse_redis_url"]
