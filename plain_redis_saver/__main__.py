"""``python -m plain_redis_saver``: the ``plain-redis-saver`` command line."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
