"""Shared test helpers: tiny real Llama checkpoints (2 layers, 32 wide, safetensors), tiny-zoo
configs, and the CLI run in-process.

Use the checkpoints instead of mocking tensors: every test that needs a candidate set builds one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa
import torch
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

from soup_search.cli import main
from soup_search.objectives.toy import ToyObjective
from soup_search.service.process import free_port
from soup_search.io.checkpoint import CheckpointReader
from soup_search.zoo.tokenizer import build_char_tokenizer


#: a folder holding the vLLM stand-in package (``vllm``): put it on sys.path / PYTHONPATH
FAKE_VLLM = Path(__file__).parent / "fake_vllm"


def tiny_llama_config(**overrides) -> LlamaConfig:
    tok = build_char_tokenizer()
    kwargs = dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


def make_checkpoint(
    path: str | Path,
    seed: int = 0,
    max_shard_size: str | None = None,
    dtype: torch.dtype = torch.float32,
    **config_overrides,
) -> Path:
    """Write a randomly initialised tiny Llama checkpoint (config, safetensors, tokenizer) to ``path``.

    ``max_shard_size`` (e.g. ``"20KB"``) writes a sharded checkpoint with ``model.safetensors.index.json``.
    """
    path = Path(path)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(**config_overrides)).to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(path, **kwargs)
    build_char_tokenizer().save_pretrained(path)
    return path


def make_candidates(root: str | Path, n: int = 3, **kwargs) -> list[Path]:
    """``n`` compatible tiny checkpoints ``root/m0 .. root/m{n-1}`` with different seeds."""
    root = Path(root)
    return [make_checkpoint(root / f"m{i}", seed=i, **kwargs) for i in range(n)]


def read_config(path: str | Path) -> dict:
    return json.loads((Path(path) / "config.json").read_text())


def write_config(tmp_path: Path, name: str, seed: int, objective: str = "toy", objective_params=None,
                 **search) -> Path:
    """A tiny-zoo config; the objective seed keeps each test's scores out of the others' cache."""
    cfg = {
        "name": name,
        "candidates": {"zoo": "tiny"},
        "objective": {"name": objective, "params": {"seed": seed, "n_dev": 24, "n_test": 24,
                                                    **(objective_params or {})}},
        "analysis": {"tau": search.pop("tau", 0.5), "top_k": 2, "categories": search.pop("categories", None)},
        "search": {"sampler": "tpe", "n_trials": 5, "seed": 0, **search},
        "resources": {"shards": 2, "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_until_blocked(cmd: list[str], sock: Path, after: int = 2, block: bool = True, **popen) -> subprocess.Popen:
    """Start a search whose every trial after the ``after``-th blocks until the run ends (the
    ``SOUP_SEARCH_BLOCK_AFTER_TRIALS`` hook); return once one is blocked, so whatever the test does
    next always lands mid-search. The hook says so on the Unix socket ``sock``: no polling.

    ``block=False``: nothing blocks; return once ``after`` trials are logged (the
    ``SOUP_SEARCH_NOTIFY_AFTER_TRIALS`` hook), the search going on."""
    hook = "SOUP_SEARCH_BLOCK_AFTER_TRIALS" if block else "SOUP_SEARCH_NOTIFY_AFTER_TRIALS"
    env = {**os.environ, "RAY_ADDRESS": "", **popen.pop("env", {}),
           hook: str(after), "SOUP_SEARCH_BLOCKED_SOCKET": str(sock)}
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock))
        server.listen()
        server.settimeout(600)
        proc = subprocess.Popen(cmd, env=env, **popen)
        try:
            server.accept()[0].close()
        except TimeoutError:
            proc.kill()
            raise AssertionError(f"no trial {'blocked' if block else 'logged'} after {after} within 600 s "
                                 f"(the search exited {proc.wait()})") from None
    return proc


def kill_mid_search(cmd: list[str], sock: Path) -> None:
    """Run the search ``cmd`` until a trial after the 2nd blocks, then SIGKILL its whole process group."""
    proc = start_until_blocked(cmd, sock, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def cli(*args: str) -> None:
    """Run the CLI in-process; a clean finish is exit code 0."""
    try:
        main(list(args))
    except SystemExit as exc:
        assert exc.code in (0, None), f"exit code {exc.code}"


class SpyObjective(ToyObjective):
    """The toy objective that appends every split it is asked for ("dev False", "test True") to
    the file ``log``, from whichever process builds it (scorer actors too)."""

    name = "spy"

    def __init__(self, log: str, **params):
        super().__init__(**params)
        self.log = log

    def examples(self, split, categories=None, *, held_out=False):
        found = super().examples(split, categories, held_out=held_out)
        with open(self.log, "a") as fh:
            fh.write(f"{split} {held_out} {','.join(sorted({ex.category for ex in found}))}\n")
        return found


def spy_calls(log: str | Path) -> list[tuple[str, bool, frozenset]]:
    """(split, held_out, categories of the examples handed out) of every call, in order."""
    path = Path(log)
    if not path.exists():
        return []
    return [(s, h == "True", frozenset(c.split(","))) for s, h, c in (line.split() for line in path.read_text().splitlines())]


class LoopbackHTTP:
    """A real HTTP server on 127.0.0.1 (a leaderboard, a webhook receiver): GET answers ``text``
    with ``etag`` when set and counts ``gets``; POST keeps (headers, body) in ``posts`` and answers
    ``status``. ``url`` is its base URL; ``close()`` stops it."""

    def __init__(self, text: str = "", etag: str | None = None, status: int = 200):
        self.text, self.etag, self.status = text, etag, status
        self.gets, self.posts = 0, []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                me.gets += 1
                body = me.text.encode()
                self.send_response(200)
                if me.etag:
                    self.send_header("ETag", me.etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                me.posts.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(me.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServer:
    """A throwaway PostgreSQL 15 cluster in ``root``, on a free loopback port, trust auth.

    ``url(database, driver)`` is its SQLAlchemy URL; ``create_database(name)`` makes an empty
    database and returns its URL; ``stop()``, ``start()`` and ``restart()`` bounce the server
    (``-m fast``: open sessions are cut, as in a real restart); ``close()`` removes it all.
    As root, the server runs as the ``postgres`` user (PostgreSQL refuses to run as root)."""

    def __init__(self, root: Path):
        self.root, self.data, self.port = Path(root), Path(root) / "data", free_port()
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 is not installed at {PG_BIN}; install it (apt-get install postgresql-15)")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._pg("initdb", "-A", "trust", "-U", "postgres", "-D", str(self.data))
        self.start()

    def _pg(self, tool: str, *args: str) -> None:
        argv = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args[:2])} failed: {done.stderr.strip()}\n{tail}")

    def _ctl(self, action: str, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-m", mode,
                 "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}", action)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", mode)

    def restart(self, mode: str = "fast") -> None:
        self._ctl("restart", mode)

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def close(self) -> None:
        """Stop the server (if a test left it running) and remove its files."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def weights_of(path: str | Path) -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a checkpoint as ``(name, tensor)`` pairs, in its order."""
    with CheckpointReader(path) as reader:
        return [(n, reader.get(n)) for n in reader.tensor_names]
