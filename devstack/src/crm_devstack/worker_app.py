"""The app factory the devstack gives uvicorn when a service runs several worker processes.

uvicorn's workers are its children, not the supervisor's: without this, a master killed with
SIGKILL (a crash the supervisor then restarts) would leave its workers serving the old socket and
holding the port. Each worker asks the kernel for SIGTERM when its master dies, then builds the
service's own app (``CRM_APP_FACTORY``, ``module:function``).
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import os
import signal
from typing import Any

from crm_devstack.processes import PR_SET_PDEATHSIG

APP_FACTORY_VARIABLE = "CRM_APP_FACTORY"


def create_app() -> Any:
    """Arm the parent-death signal (in a worker), then build the app the variable names."""
    master = multiprocessing.parent_process()
    if master is not None and master.pid is not None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # The master may have died before the call: then no signal would ever come.
        if os.getppid() != master.pid:
            os.kill(os.getpid(), signal.SIGTERM)
    module, _, function = os.environ[APP_FACTORY_VARIABLE].partition(":")
    return getattr(importlib.import_module(module), function)()
