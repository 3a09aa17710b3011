"""How the command line ends: exit codes, the one-line error, and wording shared by
every command's messages."""

from __future__ import annotations

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A failure reported as one line on stderr, without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def plural(count: int, noun: str) -> str:
    """``1 checkpoint``, ``2 checkpoints``, ``1 pending write``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe(exc: BaseException) -> str:
    """An error's message with what to do about the usual causes."""
    text = str(exc).strip() or type(exc).__name__
    if "WRONGTYPE" in text:
        text += (
            " (keys under this prefix were not written by plain-redis-saver: "
            "is --key-prefix right?)"
        )
    if "Unknown serialization type" in text:
        text += " (written with another serializer: name it with --serde module:name)"
    if text.startswith("NOPERM") or "has no permissions" in text:
        text += " (the user lacks this permission: see plain_redis_saver.acl)"
    return text


def cannot_decode(exc: BaseException) -> bool:
    """Whether a read failed because the data was written with another serializer
    (an ``EncryptedSerializer``, say): a wrong --serde, not damage."""
    seen: BaseException | None = exc
    while seen is not None:
        if "Unknown serialization type" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
