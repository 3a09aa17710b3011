"""What every phase shares: the server, the savers, the sizes and the progress bar."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .measure import OpRecord
from .savers import SaverAdapter

MODES = ("sync", "async")


@dataclass(frozen=True)
class Sizes:
    """Sample counts of one kind of run (``--quick`` or full)."""

    levels: tuple[int, ...]
    rounds: int  # interleaved rounds of the operation benchmark
    batch: dict[str, int]  # samples per saver per round, per operation
    warmup: int  # untimed samples per operation before the rounds
    count_calls: int  # calls per operation counted on the wire and in commandstats
    victims: dict[int, int]  # delete_thread samples per level and mode
    floor_rounds: int
    floor_batch: int
    e2e_rounds: int  # rounds of the end-to-end chatbot; one thread per saver per round
    e2e_turns: int  # turns per thread
    conc_levels: tuple[int, ...]
    conc_turns: int
    conc_reps: int
    conversation_turns: int  # the memory-per-conversation chatbot
    cost_rounds: int  # interleaved rounds of the cost phase's operations
    cost_conversations: int  # its rounds of conversations (one per saver and chatbot each)
    cost_batch: int  # calls per operation per saver per round, measured as one batch
    cost_history: int  # checkpoints in each thread the operations run on
    cost_memory_turns: tuple[int, ...]  # conversation lengths whose memory is read

    def put_samples(self) -> int:
        return self.rounds * self.batch["put"] + self.warmup + self.count_calls


FULL = Sizes(
    levels=(10, 1000, 10000),
    rounds=30,
    batch={"put": 40, "get_latest": 40, "get_by_id": 40, "list": 13, "list_filter": 13},
    warmup=10,
    count_calls=3,
    victims={10: 20, 1000: 8, 10000: 1},
    floor_rounds=10,
    floor_batch=300,
    e2e_rounds=150,
    e2e_turns=5,
    conc_levels=(50, 200),
    conc_turns=5,
    conc_reps=3,
    conversation_turns=100,
    cost_rounds=3,
    cost_conversations=3,
    cost_batch=100,
    cost_history=100,
    cost_memory_turns=(10, 100, 200),
)

QUICK = Sizes(
    levels=(10, 1000),
    rounds=3,
    batch={"put": 20, "get_latest": 20, "get_by_id": 20, "list": 6, "list_filter": 6},
    warmup=5,
    count_calls=2,
    victims={10: 6, 1000: 1},
    floor_rounds=3,
    floor_batch=200,
    e2e_rounds=8,
    e2e_turns=4,
    conc_levels=(50, 200),
    conc_turns=2,
    conc_reps=1,
    conversation_turns=100,
    cost_rounds=3,
    cost_conversations=1,
    cost_batch=30,
    cost_history=20,
    cost_memory_turns=(10, 100, 200),
)


def _records() -> defaultdict[str, OpRecord]:
    return defaultdict(OpRecord)


@dataclass
class Context:
    url: str
    run: str
    admin: Any
    adapters: dict[str, SaverAdapter]
    sizes: Sizes
    quick: bool
    user_server: bool
    progress: Any
    notes: list[str] = field(default_factory=list)
    #: records[saver][mode][level][op]
    records: dict[str, dict[str, dict[int, defaultdict[str, OpRecord]]]] = field(
        default_factory=dict
    )
    #: counts[saver][mode][level][op] -> OpCounts.summary()
    counts: dict[str, dict[str, dict[int, dict[str, Any]]]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def ops_records(self, saver: str, mode: str, level: int) -> defaultdict[str, OpRecord]:
        by_mode = self.records.setdefault(saver, {}).setdefault(mode, {})
        return by_mode.setdefault(level, _records())

    def order(self, round_no: int, keys: list[str] | None = None) -> list[str]:
        """Savers in the order of one round: rotated every round, so none always goes
        first (or always runs right after the same neighbour)."""
        keys = list(self.adapters) if keys is None else keys
        if not keys:
            return keys
        shift = round_no % len(keys)
        rotated = keys[shift:] + keys[:shift]
        return rotated if round_no % 2 == 0 else rotated[::-1]

    def thread(self, name: str) -> str:
        return f"{self.run}-{name}"
