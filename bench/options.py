"""How much the bench measures, and the error it stops with."""

from __future__ import annotations

from dataclasses import dataclass

# Contention: duplicates waiting on one held owner. 500 is issue 12's hot key; it takes minutes offline.
CONTENTION_SIZES = (1, 25, 100, 500)
QUICK_CONTENTION_SIZES = (1, 25)
# The longest task token the Step Functions API allows: waiters' bookkeeping is sized with it.
TASK_TOKEN_LENGTH = 2048
# Results of a hit: 1 KiB, and 250 KiB (about the most Step Functions can carry in a state).
RESULT_SIZES = (1024, 250 * 1024)


@dataclass(frozen=True)
class BenchOptions:
    """How much to measure: ``quick`` trades precision and the long contention runs for seconds."""

    quick: bool = False
    # Wait states last time_scale x their declared seconds; history timestamps have millisecond
    # precision, so a millisecond spent in a Wait is 0.001 / time_scale declared seconds.
    time_scale: float = 0.01
    # Declared seconds the two priced waiters wait before their owner is released.
    waiter_waits: tuple[float, float] = (30.0, 120.0)
    # None: CONTENTION_SIZES, or QUICK_CONTENTION_SIZES when quick.
    contention: tuple[int, ...] | None = None
    # Contention runs on a stack of its own at real time: hundreds of registrations on a busy
    # machine take longer than a scaled task timeout, and waiters would look again on their own
    # before their owner is even released (on AWS they register in milliseconds).
    contention_time_scale: float = 1.0
    task_token_length: int = TASK_TOKEN_LENGTH
    result_sizes: tuple[int, ...] = RESULT_SIZES
    express: bool = True

    @property
    def contention_sizes(self) -> tuple[int, ...]:
        if self.contention is not None:
            return self.contention
        return QUICK_CONTENTION_SIZES if self.quick else CONTENTION_SIZES

    @property
    def extra_latency_samples(self) -> int:
        """More waiters, released at other points of a poll interval, for the latency figure."""
        return 1 if self.quick else 3

    @property
    def import_runs(self) -> int:
        return 3 if self.quick else 9

    @property
    def hash_runs(self) -> int:
        return 20 if self.quick else 200


class BenchError(RuntimeError):
    """The bench itself could not measure (a path did not run as the contract says), so its figures would mean
    nothing."""
