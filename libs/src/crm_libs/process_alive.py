"""Whether a process is still there, by its pid."""

import os


def alive(pid: int) -> bool:
    """True while a process with this pid exists (one of another user's counts: signal 0 is
    refused it, not sent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
