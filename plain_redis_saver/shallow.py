"""Latest-only savers under the names langgraph-checkpoint-redis gives them.

``ShallowRedisSaver`` there keeps only the newest checkpoint of each thread and
namespace; here that is ``max_checkpoints=1`` (which still keeps the ancestors a
DeltaChannel needs), so code written for that package runs unchanged.
"""

from __future__ import annotations

from .aio import AsyncPlainRedisSaver
from .saver import PlainRedisSaver


class ShallowRedisSaver(PlainRedisSaver):
    """:class:`PlainRedisSaver` with ``max_checkpoints=1``: each namespace of a thread
    keeps its latest checkpoint only (plus the ancestors its DeltaChannels need)."""

    _LATEST_ONLY = True


class AsyncShallowRedisSaver(AsyncPlainRedisSaver):
    """:class:`AsyncPlainRedisSaver` with ``max_checkpoints=1``."""

    _LATEST_ONLY = True
