"""Checkpoints behind URLs: a real S3-compatible server (moto) and a real HTTP server on loopback.

s3fs finds the endpoint through ``AWS_ENDPOINT_URL`` (botocore's standard variable) and the
dummy credentials through ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``. Byte counts are
exact: headers are read as 8 bytes + the JSON header, tensors as their own byte ranges.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import s3fs

from soup_search.candidates import load_candidates
from soup_search.config import parse_config
from soup_search.engine import shard as shard_module
from soup_search.engine.shard import Shard, partition_by_bytes
from soup_search.errors import CandidateError, ConfigError
from soup_search.io import remote
from soup_search.io.checkpoint import CheckpointReader, fingerprint_of
from soup_search.io.checkpoint_files import read_header
from soup_search.merge import MergeRecipe
from tests.helpers import make_checkpoint

pytestmark = pytest.mark.slow  # a moto server and S3 round trips: about a minute on 2 cores

BUCKET = "models"
WEIGHTS = {"m0": 0.2, "m1": 0.5, "m2": 0.3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with three tiny checkpoints (m1 split into several files)
    uploaded to s3://models/m0..m2; yields (s3fs filesystem, local dirs by name)."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    deadline = time.monotonic() + 60
    while True:  # wait until it answers
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the moto server did not start")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(BUCKET)
    root = tmp_path_factory.mktemp("s3-candidates")
    local = {f"m{i}": make_checkpoint(root / f"m{i}", seed=i, max_shard_size="40KB" if i == 1 else None)
             for i in range(3)}
    for name, path in local.items():
        for file in sorted(path.iterdir()):
            fs.put_file(str(file), f"{BUCKET}/{name}/{file.name}")
    yield fs, local
    server.terminate()
    server.wait(timeout=30)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _urls(names=("m0", "m1", "m2")) -> list[str]:
    return [f"s3://{BUCKET}/{n}" for n in names]


def _header_bytes(folder: Path) -> int:
    """8 + header length of every weight file of a local checkpoint."""
    return sum(read_header(f).data_start for f in sorted(folder.glob("*.safetensors")))


def _reader_bytes(folder: Path) -> int:
    """What a CheckpointReader fetches: the headers, config.json and the index (if any)."""
    return _header_bytes(folder) + sum(f.stat().st_size for f in (folder / "config.json", *folder.glob("*.index.json")))


def _fetched_since(before: dict[str, int]) -> dict[str, int]:
    now = remote.fetched_bytes()
    return {url: n - before.get(url, 0) for url, n in now.items() if n != before.get(url, 0)}


def _by_candidate(fetched: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for url, n in fetched.items():
        name = url.removeprefix(f"s3://{BUCKET}/").split("/")[0]
        out[name] = out.get(name, 0) + n
    return out


def _small_files(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if not f.name.startswith("model"))


def test_loading_url_candidates_fetches_headers_and_small_files_only(s3, tmp_path):
    _, local = s3
    before = remote.fetched_bytes()
    candidates = load_candidates(_urls(), cache_dir=tmp_path)
    fetched = _by_candidate(_fetched_since(before))
    for name, folder in local.items():
        # what the reader reads, and config + tokenizer files copied for the scorer
        assert fetched[name] == _reader_bytes(folder) + _small_files(folder)
        weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
        assert _header_bytes(folder) < weights / 10
    assert candidates.names == ("m0", "m1", "m2")
    assert candidates.paths == tuple(_urls())
    assert candidates.tensor_infos.keys() == load_candidates(list(local.values())).tensor_infos.keys()
    assert candidates.config == json.loads((local["m0"] / "config.json").read_text())
    assert (candidates.tokenizer_dir / "tokenizer.json").read_bytes() == (local["m0"] / "tokenizer.json").read_bytes()
    assert (candidates.template_dir / "config.json").is_file()
    assert not list(candidates.template_dir.glob("*.safetensors"))


def test_url_fingerprints_equal_local_ones(s3):
    _, local = s3
    assert [fingerprint_of(u) for u in _urls()] == [fingerprint_of(p) for p in local.values()]


def test_shards_fetch_exactly_their_tensors_and_merge_bit_for_bit(s3, tmp_path):
    _, local = s3
    candidates = load_candidates(_urls(), cache_dir=tmp_path)
    parts = partition_by_bytes(candidates.tensor_infos, 2)
    recipe = MergeRecipe.soup(WEIGHTS)
    overhead = {n: _reader_bytes(p) for n, p in local.items()}
    per_shard = []
    for names in parts:
        before = remote.fetched_bytes()
        shard = Shard(list(zip(candidates.names, candidates.paths)), names)
        fetched = _by_candidate(_fetched_since(before))
        tensor_bytes = sum(candidates.tensor_infos[n].nbytes for n in names)
        assert fetched == {n: tensor_bytes + overhead[n] for n in local}
        per_shard.append(sum(fetched.values()))
        ref = Shard(list(local.items()), names)
        ours, theirs = shard.merge(recipe), ref.merge(recipe)
        assert ours.keys() == theirs.keys() == set(names)
        for n in names:
            assert ours[n].dtype == theirs[n].dtype and np.array_equal(ours[n].view(np.uint8), theirs[n].view(np.uint8))
    pool = sum(info.nbytes for info in candidates.tensor_infos.values()) * len(local)
    assert sum(per_shard) - 2 * sum(overhead.values()) == pool  # together: one copy of the pool


def test_cache_dir_serves_a_second_shard_and_is_keyed_by_content(s3, tmp_path):
    fs, local = s3
    cache = tmp_path / "cache"
    candidates = load_candidates(_urls(("m0", "m2")), cache_dir=cache)
    names = list(candidates.tensor_infos)
    specs = list(zip(candidates.names, candidates.paths))
    Shard = functools.partial(shard_module.Shard, cache_dir=cache)  # noqa: N806
    recipe = MergeRecipe.soup({"m0": 0.5, "m2": 0.5})
    overhead = {n: _reader_bytes(local[n]) for n in ("m0", "m2")}
    tensor_bytes = sum(candidates.tensor_infos[n].nbytes for n in names)

    first = Shard(specs, names)
    before = remote.fetched_bytes()
    second = Shard(specs, names)
    assert _by_candidate(_fetched_since(before)) == overhead  # headers and config only: 0 tensor bytes
    merged = second.merge(recipe)
    assert all(np.array_equal(merged[n], first.merge(recipe)[n]) for n in names)

    # a changed object (same layout, same header, other weights) gets a new key: fetched again
    changed = make_checkpoint(tmp_path / "m2-new", seed=7)
    assert read_header(changed / "model.safetensors").raw == read_header(local["m2"] / "model.safetensors").raw
    fs.put_file(str(changed / "model.safetensors"), f"{BUCKET}/m2/model.safetensors")
    try:
        before = remote.fetched_bytes()
        third = Shard(specs, names)
        assert _by_candidate(_fetched_since(before)) == {"m0": overhead["m0"], "m2": overhead["m2"] + tensor_bytes}
        ref = Shard([("m0", local["m0"]), ("m2", changed)], names).merge(recipe)
        assert all(np.array_equal(third.merge(recipe)[n], ref[n]) for n in names)
        assert len(list((cache / "ranges").iterdir())) == 3  # m0, the old m2, the new m2
    finally:
        fs.put_file(str(local["m2"] / "model.safetensors"), f"{BUCKET}/m2/model.safetensors")


SHARD_ACTORS_PROBE = """
import json, numpy as np, torch
from soup_search.candidates import load_candidates
from soup_search.engine.cluster import start_ray
from soup_search.engine.shard import Shard
from soup_search.engine.shard_group import ShardGroup
from soup_search.merge import MergeRecipe

start_ray(num_cpus=2)
cands = load_candidates(URLS, cache_dir=CACHE)
recipe = MergeRecipe.soup(WEIGHTS)
with ShardGroup(cands, n_shards=2) as group:
    merged = group.merged_state_dict(recipe)
    stats = group.stats()
    parts = group.parts
alone = Shard(list(LOCAL.items()), list(cands.tensor_infos)).merge(recipe)
print(json.dumps({"fetched": [s["fetched_bytes"] for s in stats], "pids": [s["pid"] for s in stats],
                  "tensor_bytes": [sum(cands.tensor_infos[n].nbytes for n in part) for part in parts],
                  "equal": all(torch.equal(merged[n], torch.from_numpy(alone[n])) for n in merged)}))
"""


def test_shard_actors_fetch_their_own_tensors_from_s3(s3, tmp_path):
    """Two shard actors (Ray worker processes) built from s3:// URLs: each fetches its tensors'
    bytes plus the headers, together one copy of the pool, and they merge as local files do."""
    _, local = s3
    code = (SHARD_ACTORS_PROBE.replace("URLS", repr(_urls())).replace("CACHE", repr(str(tmp_path)))
            .replace("WEIGHTS", repr(WEIGHTS)).replace("LOCAL", repr({n: str(p) for n, p in local.items()})))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    overhead = sum(_reader_bytes(p) for p in local.values())
    print(f"FIGURE S3 bytes fetched per shard actor: {seen['fetched']} (tensor bytes {seen['tensor_bytes']} "
          f"per candidate, {len(local)} candidates, headers and config {overhead})")
    assert len(set(seen["pids"])) == 2 and seen["equal"]
    assert seen["fetched"] == [tensors * len(local) + overhead for tensors in seen["tensor_bytes"]]


@pytest.mark.parametrize("url, words", [
    (f"s3://{BUCKET}/nowhere", "no model.safetensors or model.safetensors.index.json"),
    ("s3://no-such-bucket/m0/model.safetensors", "no such object"),
    (f"s3://{BUCKET}/m0/missing.safetensors", "no such object"),
])
def test_bad_urls_are_one_line_candidate_errors(s3, url, words):
    with pytest.raises(CandidateError) as err:
        load_candidates([url])
    msg = str(err.value)
    assert url in msg and words in msg and "; " in msg and "\n" not in msg


def test_a_missing_listed_file_names_the_index(s3):
    fs, _ = s3
    fs.put_file(str(next((s3[1]["m1"]).glob("*.index.json"))), f"{BUCKET}/broken/model.safetensors.index.json")
    with pytest.raises(CandidateError, match=r"broken/model.safetensors.index.json: lists file .* which is missing"):
        CheckpointReader(f"s3://{BUCKET}/broken")


def test_config_checks_url_candidates_by_their_headers(s3, tmp_path):
    cfg = parse_config({"candidates": {"paths": _urls(("m0", "m2")), "cache_dir": str(tmp_path)}},
                       root=tmp_path)
    assert cfg.candidates.paths == _urls(("m0", "m2"))
    with pytest.raises(ConfigError) as err:
        parse_config({"candidates": {"paths": [_urls()[0], f"s3://{BUCKET}/nowhere"]}}, root=tmp_path)
    assert f"s3://{BUCKET}/nowhere" in str(err.value)


class _RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range GETs (206), as object stores and CDNs serve them."""

    def do_GET(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start, _, stop = rng.removeprefix("bytes=").partition("-")
        start, stop = int(start), min(int(stop or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop}/{len(data)}")
        self.send_header("Content-Length", str(stop + 1 - start))
        self.end_headers()
        self.wfile.write(data[start:stop + 1])

    def log_message(self, *args):
        pass


def test_https_urls_take_the_same_path(s3, tmp_path):
    _, local = s3
    root = local["m0"].parent
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        urls = [f"{base}/m0", f"{base}/m1"]
        before = remote.fetched_bytes()
        candidates = load_candidates(urls, cache_dir=tmp_path)
        headers = sum(_fetched_since(before).get(u, 0) for n in ("m0", "m1")
                      for u in (f"{base}/{n}/{f.name}" for f in local[n].glob("*.safetensors")))
        assert headers == _header_bytes(local["m0"]) + _header_bytes(local["m1"])
        names = list(candidates.tensor_infos)[:3]
        ours = Shard(list(zip(candidates.names, candidates.paths)), names).merge(MergeRecipe.soup({"m0": 0.5, "m1": 0.5}))
        ref = Shard([("m0", local["m0"]), ("m1", local["m1"])], names).merge(MergeRecipe.soup({"m0": 0.5, "m1": 0.5}))
        assert all(np.array_equal(ours[n], ref[n]) for n in names)
        with pytest.raises(CandidateError, match=f"{base}/nowhere: no model.safetensors"):
            CheckpointReader(f"{base}/nowhere")
    finally:
        server.shutdown()
        server.server_close()


def test_a_search_runs_on_candidates_in_s3(s3, tiny_zoo, tmp_path):
    """The tiny-zoo search end to end with every candidate behind an s3:// URL: the scorers build
    their model from the config and tokenizer files alone, the shard actors fetch the weights, and
    the best soup is written with the candidates' tokenizer."""
    fs, _ = s3
    for name, path in tiny_zoo.candidates().items():
        for file in sorted(path.iterdir()):
            if file.is_file():
                fs.put_file(str(file), f"{BUCKET}/zoo/{name}/{file.name}")
    cfg = {"name": "s3", "candidates": {"paths": [f"s3://{BUCKET}/zoo/{n}" for n in tiny_zoo.candidates()],
                                        "cache_dir": str(tmp_path / "cache")},
           "objective": {"name": "toy", "params": {"seed": 305, "n_dev": 24, "n_test": 24}},
           "analysis": {"tau": 0.5, "top_k": 2}, "search": {"sampler": "tpe", "n_trials": 4, "seed": 0},
           "resources": {"shards": 2, "scorers": 2, "shard_cpus": 0.25, "scorer_cpus": 0.5}}
    path = tmp_path / "s3.yaml"
    path.write_text(json.dumps(cfg))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "soup_search", "run", str(path), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert len(results["trials"]) == 4
    assert (out / "best" / "model.safetensors").is_file() and (out / "best" / "tokenizer.json").is_file()
    assert list((tmp_path / "cache" / "ranges").iterdir())  # the shard actors kept what they fetched
