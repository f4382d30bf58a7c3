"""Which process listens on a TCP port, read from /proc (no tool or privilege beyond our own)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from crm_devstack.processes import describe

_LISTEN = "0A"


class PortTaken(RuntimeError):
    """A port the stack needs is held by a process that is not part of it."""


def listening_socket_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (any address, IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def listener_pids(port: int) -> set[int]:
    """Processes holding a socket that listens on ``port``."""
    wanted = {f"socket:[{inode}]" for inode in listening_socket_inodes(port)}
    if not wanted:
        return set()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) in wanted:
                    pids.add(int(entry.name))
                    break
            except OSError:
                continue
    return pids


def is_listening(port: int) -> bool:
    return bool(listening_socket_inodes(port))


def refuse_taken_ports(ports: Mapping[str, int]) -> None:
    """Fail at once, naming port and process, if anything already listens on one of ``ports``."""
    taken = []
    for name, port in ports.items():
        if not is_listening(port):
            continue
        owners = sorted(listener_pids(port))
        holder = ", ".join(describe(pid) for pid in owners) or "a process we cannot see"
        taken.append(f"port {port} ({name}) is taken by {holder}")
    if taken:
        raise PortTaken("; ".join(taken) + ". Stop it, or choose other ports (see crm-dev --help).")
