"""Latest-only savers under the names langgraph-checkpoint-redis gives them.

``ShallowRedisSaver`` there keeps only the newest checkpoint of each thread and
namespace; here that is ``max_checkpoints=1`` (which still keeps the ancestors a
DeltaChannel needs), so code written for that package runs unchanged.
"""

from __future__ import annotations

from typing import Any

from .aio import AsyncPlainRedisSaver
from .base import BaseRedisSaver
from .errors import InvalidConfigError
from .saver import PlainRedisSaver


class _LatestOnly(BaseRedisSaver):
    def __init__(self, client: Any, **options: Any) -> None:
        if options.get("max_checkpoints", 1) != 1:
            raise InvalidConfigError(
                f"{type(self).__name__} keeps only the latest checkpoint (max_checkpoints=1); "
                f"for max_checkpoints={options['max_checkpoints']!r} use "
                f"{type(self).__mro__[2].__name__}"
            )
        super().__init__(client, **{**options, "max_checkpoints": 1})


class ShallowRedisSaver(_LatestOnly, PlainRedisSaver):
    """:class:`PlainRedisSaver` with ``max_checkpoints=1``: each namespace of a thread
    keeps its latest checkpoint only (plus the ancestors its DeltaChannels need)."""


class AsyncShallowRedisSaver(_LatestOnly, AsyncPlainRedisSaver):
    """:class:`AsyncPlainRedisSaver` with ``max_checkpoints=1``."""
