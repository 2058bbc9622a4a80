"""The embedded Ray head: a local ``ray start --head`` with the job server, kept apart from the service.

The head runs in its own session (``start_new_session``) so that it outlives the service: a
service stopped by SIGTERM or killed leaves its searches running, and the next service started
on the same data dir finds the head through ``ray/head.json`` and reconciles with it. It binds
to loopback on free ports and uses Ray's token auth (``RAY_AUTH_MODE=token``).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from soup_search.engine.cluster import TRIAL_SLOT
from soup_search.errors import SoupSearchError

#: seconds a new head has to answer before the service gives up
START_TIMEOUT_S = 180.0
#: Ray's token auth, for the head and every client of it
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
#: the trial slots the head offers (Tune reuses trial actors; see engine.cluster.TRIAL_SLOT)
HEAD_TRIAL_SLOTS = 3
PORT_FLAGS = ("port", "dashboard-port", "ray-client-server-port", "node-manager-port", "object-manager-port",
              "metrics-export-port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port",
              "runtime-env-agent-port")


def temp_dir(data_dir: Path) -> Path:
    """The head's own Ray temp dir, one per data dir. Not Ray's shared /tmp/ray: a job's driver
    finds its cluster through the temp dir's "current cluster" file, which the latest Ray started
    on the machine overwrites. Short, because Ray's Unix socket paths live below it."""
    return Path(tempfile.gettempdir()) / f"soup-ray-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Head:
    address: str  # GCS host:port
    dashboard: str  # the job server's URL
    pid: int  # the `ray start --block` process (its process group is the head)


def head_file(data_dir: Path) -> Path:
    return data_dir / "ray" / "head.json"


def use_ray_env() -> None:
    """Token auth for this process's Ray clients (the job SDK reads ~/.ray/auth_token)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)


def answers(dashboard: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{dashboard}/api/version", timeout=timeout).status_code < 500
    except httpx.HTTPError:
        return False


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_command() -> list[str]:
    exe = Path(sys.executable).with_name("ray")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ray.scripts.scripts"]


def _alive(pid: int) -> bool:
    """Whether ``pid`` is still a Ray process (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"ray" in cmdline.read_bytes()


def running_head(data_dir: Path) -> Head | None:
    """The head a previous service on this data dir started, while its process lives.

    A live head that is slow to answer (a loaded machine) is waited for, never replaced: a second
    head would not know the first one's jobs, and their searches would run twice."""
    path = head_file(data_dir)
    if not path.is_file():
        return None
    try:
        head = Head(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    if not _alive(head.pid):
        return None
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(head.dashboard):
        if not _alive(head.pid):
            return None
        if time.monotonic() > deadline:
            raise SoupSearchError(f"the Ray head of {data_dir} (pid {head.pid}) runs but its job server "
                                  f"{head.dashboard} does not answer; stop it (kill {head.pid}) or retry")
        time.sleep(0.5)
    return head


#: attempts at starting a head: a port drawn free can be taken by another process before Ray binds it
START_ATTEMPTS = 3


def start_head(data_dir: Path, num_cpus: int | None = None) -> Head:
    """Reuse this data dir's head if it answers, else start one and wait until its job server answers.

    A head that exits while starting (most often: one of its free ports was taken meanwhile by
    another process) is started again on new ports, up to ``START_ATTEMPTS`` times."""
    use_ray_env()
    head = running_head(data_dir)
    if head is not None:
        return head
    log_path = head_file(data_dir).with_name("head.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(START_ATTEMPTS):
        head = _launch(data_dir, num_cpus, log_path)
        if head is not None:
            head_file(data_dir).write_text(json.dumps(asdict(head)))
            return head
    raise SoupSearchError(f"the embedded Ray head exited while starting, {START_ATTEMPTS} times; "
                          f"see {log_path}: {_tail(log_path)}")


def _launch(data_dir: Path, num_cpus: int | None, log_path: Path) -> Head | None:
    """One start of the head on fresh ports: the head once its job server answers, None if it exited."""
    ports = {flag: free_port() for flag in PORT_FLAGS}
    argv = [*_ray_command(), "start", "--head", "--block", "--disable-usage-stats",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1",
            f"--temp-dir={temp_dir(data_dir)}",
            f"--num-cpus={num_cpus or os.cpu_count() or 1}", f"--resources={json.dumps({TRIAL_SLOT: HEAD_TRIAL_SLOTS})}",
            *[f"--{flag}={port}" for flag, port in ports.items()]]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **RAY_ENV})
    head = Head(address=f"127.0.0.1:{ports['port']}", dashboard=f"http://127.0.0.1:{ports['dashboard-port']}", pid=proc.pid)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(head.dashboard, timeout=1.0):
        if proc.poll() is not None:
            _kill_group(proc.pid)  # what the failed start left behind (a GCS server, a raylet)
            return None
        if time.monotonic() > deadline:
            stop_head(head)
            raise SoupSearchError(f"the embedded Ray head did not answer within {START_TIMEOUT_S:.0f} s; see {log_path}")
        time.sleep(0.5)
    return head


def _tail(path: Path) -> str:
    """The log's last error line (or its last line), shortened."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    errors = [line for line in lines if "Error" in line]
    return (errors or lines or ["(empty log)"])[-1][:400]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_head(head: Head, timeout: float = 10.0) -> None:
    """Stop a head and everything it started: SIGTERM to its process group, SIGKILL after ``timeout``.

    After SIGTERM the GCS exits at once, but the raylet, the autoscaler monitor and ``ray start
    --block`` itself can spend a minute retrying the lost GCS; they hold nothing by then."""
    try:
        os.killpg(head.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group(head.pid):
            return
        time.sleep(0.2)
    _kill_group(head.pid)


def _group(pgid: int) -> set[int]:
    """The live (not zombie) processes of a process group."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.add(int(stat.parent.name))
    return members
