"""What every worker process of ours does first: die with its parent.

Why: the synthetic factory and the multi-view scan write shards from pool workers, and a killed run is resumed
by running the same command again. A worker orphaned by the kill would still be writing the shards the resumed
run writes, so on Linux each worker asks the kernel for SIGKILL when its parent dies (elsewhere it is a no-op).
"""

from __future__ import annotations

import ctypes
import signal

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the process that started it dies; elsewhere nothing."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
