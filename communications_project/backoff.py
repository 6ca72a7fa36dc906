"""How long a long-running process (the ARI events listener, the events relay) waits before it
reconnects: exponential, capped, with jitter (half fixed, half random) so that many processes
that lost the same server do not come back at the same instant."""

import random


def backoff(failures: int, *, initial: float, maximum: float) -> float:
    """Seconds to wait after `failures` consecutive failures (0 for the first)."""
    ceiling = min(maximum, initial * 2**failures)
    return ceiling / 2 + random.uniform(0, ceiling / 2)
