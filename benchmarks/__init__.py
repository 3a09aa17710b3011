"""Performance suite of plain_redis_saver: ``python -m benchmarks.run [--quick]``.

See ``benchmarks/README.md`` for what is measured and how to read the results.
"""
