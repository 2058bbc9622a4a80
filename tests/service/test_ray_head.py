"""The embedded Ray head starts again on new ports when a port drawn free is taken before Ray binds it."""

from __future__ import annotations

import socket

import pytest

from soup_search.errors import SoupSearchError
from soup_search.service import ray_head


def _held_port(stack: list[socket.socket]) -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    stack.append(s)
    return s.getsockname()[1]


def test_a_taken_port_is_retried_on_new_ports(tmp_path, monkeypatch):
    held: list[socket.socket] = []
    taken = _held_port(held)
    real = ray_head.free_port
    calls = []

    def drawn() -> int:  # the first start's dashboard port (the 2nd flag) is already taken
        calls.append(1)
        return taken if len(calls) == 2 else real()

    monkeypatch.setattr(ray_head, "free_port", drawn)
    try:
        head = ray_head.start_head(tmp_path, num_cpus=1)
        try:
            assert len(calls) == 2 * len(ray_head.PORT_FLAGS)  # two starts, fresh ports each
            assert head.dashboard != f"http://127.0.0.1:{taken}" and ray_head.answers(head.dashboard)
            assert "already occupied" in (tmp_path / "ray" / "head.log").read_text()
            assert ray_head.running_head(tmp_path) == head
        finally:
            ray_head.stop_head(head)
    finally:
        for s in held:
            s.close()


def test_a_head_that_never_starts_names_its_log(tmp_path, monkeypatch):
    held: list[socket.socket] = []
    real = ray_head.free_port
    calls = []

    def drawn() -> int:  # every start's dashboard port is taken
        calls.append(1)
        return _held_port(held) if len(calls) % len(ray_head.PORT_FLAGS) == 2 else real()

    monkeypatch.setattr(ray_head, "free_port", drawn)
    try:
        with pytest.raises(SoupSearchError, match=r"exited while starting, 3 times; see .*head\.log: ValueError: Failed to bind to .* already occupied"):
            ray_head.start_head(tmp_path, num_cpus=1)
    finally:
        for s in held:
            s.close()
    assert not ray_head.head_file(tmp_path).exists()
