"""The savers' options as one frozen object, validated once and shared by a saver and
its core (:class:`~plain_redis_saver.core.Core`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from .errors import InvalidConfigError

#: Default of ``max_value_size``: a put or a read of a value this large kept the
#: server's script under 50 ms on a loaded 2-core machine (benchmarks/value_size.py).
DEFAULT_MAX_VALUE_SIZE = 8 * 2**20

#: Longest duration accepted (100 years): the server refuses expiries that overflow.
MAX_SECONDS = 100 * 365 * 24 * 3600


def _ms(duration: Any, name: str) -> int:
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_SECONDS
    ):
        raise InvalidConfigError(
            f"{name} must be a number of seconds > 0 (at most 100 years) or a timedelta, "
            f"got {duration!r}"
        )
    return max(1, round(seconds * 1000))


def _check_limit(value: Any, rule: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidConfigError(f"{rule}, got {value!r}")


#: Default of ``content_cache_bytes``: the composed content a saver keeps to read
#: with (see compose.Composer).
DEFAULT_CONTENT_CACHE_BYTES = 32 * 2**20


@dataclass(frozen=True)
class SaverOptions:
    """Expiry, retention, size limit and replication of a saver; the savers' constructor
    documents each (``help(PlainRedisSaver)``). Invalid values raise
    :class:`~plain_redis_saver.errors.InvalidConfigError` here, once."""

    ttl: float | timedelta | None = None
    refresh_on_read: bool = True
    max_checkpoints: int | None = None
    max_value_size: int | None = DEFAULT_MAX_VALUE_SIZE
    wait_replicas: int = 0
    wait_timeout: float | timedelta = 1.0
    compose_values: bool = True
    content_cache_bytes: int = DEFAULT_CONTENT_CACHE_BYTES
    reference_counts: bool | None = None

    def __post_init__(self) -> None:
        if self.ttl is not None:
            _ms(self.ttl, "ttl (None: never expire)")
        if not isinstance(self.refresh_on_read, bool):
            raise InvalidConfigError(
                f"refresh_on_read must be True or False, got {self.refresh_on_read!r}"
            )
        _check_limit(self.max_checkpoints, "max_checkpoints must be None (keep all) or an int >= 1")
        _check_limit(
            self.max_value_size, "max_value_size must be None (no limit) or a number of bytes >= 1"
        )
        if (
            isinstance(self.wait_replicas, bool)
            or not isinstance(self.wait_replicas, int)
            or self.wait_replicas < 0
        ):
            raise InvalidConfigError(
                f"wait_replicas must be an int >= 0 (0: do not wait), got {self.wait_replicas!r}"
            )
        _ms(self.wait_timeout, "wait_timeout")
        if not isinstance(self.compose_values, bool):
            raise InvalidConfigError(
                f"compose_values must be True or False, got {self.compose_values!r}"
            )
        if self.reference_counts is None:
            # Whole-value threads are release 0.1's layout, which counts.
            object.__setattr__(self, "reference_counts", not self.compose_values)
        elif not isinstance(self.reference_counts, bool):
            raise InvalidConfigError(
                f"reference_counts must be True or False, got {self.reference_counts!r}"
            )
        elif not self.reference_counts and not self.compose_values:
            raise InvalidConfigError(
                "reference_counts=False needs compose_values=True: a saver with "
                "compose_values=False writes the layout release 0.1 shares, which counts "
                "references (leave reference_counts out, or set compose_values=True)"
            )
        if (
            isinstance(self.content_cache_bytes, bool)
            or not isinstance(self.content_cache_bytes, int)
            or self.content_cache_bytes < 0
        ):
            raise InvalidConfigError(
                "content_cache_bytes must be a number of bytes >= 0 (0: no cache), got "
                f"{self.content_cache_bytes!r}"
            )

    @property
    def counts_new_threads(self) -> bool:
        """Whether threads this saver creates keep reference counts (see UNCOUNTED in
        lua/includes/common.lua)."""
        return self.reference_counts is not False

    @property
    def ttl_ms(self) -> int | None:
        """The ttl in milliseconds, None for never."""
        return None if self.ttl is None else _ms(self.ttl, "ttl")

    @property
    def wait_timeout_ms(self) -> int:
        return _ms(self.wait_timeout, "wait_timeout")


#: The option names, which from_conn_string passes to the saver rather than the client.
SAVER_OPTIONS = tuple(field.name for field in fields(SaverOptions))
