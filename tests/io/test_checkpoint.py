"""CheckpointReader (header-first, validated), write_checkpoint (streaming, atomic), fingerprints."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from soup_search.io.checkpoint import TOKENIZER_FILES, CheckpointReader, fingerprint_of, write_checkpoint
from soup_search.io.safetensors_format import INDEX_FILE, SINGLE_FILE
from soup_search.errors import CandidateError
from tests.helpers import make_checkpoint


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "single", seed=0)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "sharded", seed=1, max_shard_size="20KB")


def state_dict(path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def one_line_error(excinfo, *parts):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for part in parts:
        assert str(part) in msg, msg
    return msg


# -- reading ----------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["single", "sharded"])
def test_reader_values_equal_the_models_state_dict(which, request):
    path = request.getfixturevalue(which)
    expected = state_dict(path)
    with CheckpointReader(path) as reader:
        assert reader.tensor_names == sorted(expected)
        if which == "single":
            assert [f.name for f in reader.files] == [SINGLE_FILE]
        else:
            assert len(reader.files) > 1 and all(f.name != SINGLE_FILE for f in reader.files)
        for name, tensor in expected.items():
            info = reader.info(name)
            assert info.shape == tuple(tensor.shape) and info.dtype == "F32"
            assert info.nbytes == tensor.numel() * 4
            assert info.file in reader.files
            assert torch.equal(reader.get(name), tensor)
            with open(info.file, "rb") as fh:  # the public offset points at the tensor's bytes
                fh.seek(info.offset)
                assert fh.read(info.nbytes) == tensor.numpy().tobytes()
        assert reader.total_bytes == sum(t.numel() * 4 for t in expected.values())
        assert set(reader.infos()) == set(expected)
        assert reader.config["model_type"] == "llama"


def test_reader_accepts_a_safetensors_file_or_an_index_file(single, sharded):
    by_dir, by_file = CheckpointReader(single), CheckpointReader(single / SINGLE_FILE)
    assert by_file.tensor_names == by_dir.tensor_names and by_file.config == by_dir.config
    by_index = CheckpointReader(sharded / INDEX_FILE)
    assert by_index.infos() == CheckpointReader(sharded).infos()


def test_bf16_reads_as_bf16(tmp_path):
    path = make_checkpoint(tmp_path / "bf16", dtype=torch.bfloat16)
    reader = CheckpointReader(path)
    name = "lm_head.weight"
    assert reader.info(name).dtype == "BF16" and reader.info(name).nbytes == 58 * 32 * 2
    tensor = reader.get(name)
    assert tensor.dtype == torch.bfloat16


def test_unknown_tensor_name_is_a_key_error(single):
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        CheckpointReader(single).info("nope")


def test_reader_survives_pickling_with_open_handles(single):
    reader = CheckpointReader(single)
    before = reader.get("lm_head.weight")
    clone = pickle.loads(pickle.dumps(reader))
    assert torch.equal(clone.get("lm_head.weight"), before)


def test_construction_reads_only_headers(tmp_path):
    # a 4 GiB tensor in a sparse file: building the reader must not touch its data
    header = json.dumps({"big": {"dtype": "F32", "shape": [2**30], "data_offsets": [0, 2**32]}}).encode()
    file = tmp_path / "big.safetensors"
    with open(file, "wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
    os.truncate(file, 8 + len(header) + 2**32)
    reader = CheckpointReader(file)
    assert reader.info("big").nbytes == 2**32 and reader.total_bytes == 2**32
    assert reader.config == {}
    assert file.stat().st_blocks * 512 < 2**20  # still sparse: no data was written or read


def test_truncation_after_construction_fails_on_get(single, tmp_path):
    path = copy(single, tmp_path / "c")
    reader = CheckpointReader(path)  # headers fine at this point
    file = path / SINGLE_FILE
    os.truncate(file, file.stat().st_size - 100)
    with pytest.raises(CandidateError) as excinfo:
        reader.get("lm_head.weight")
    one_line_error(excinfo, file, "re-download or re-save")


# -- validation errors --------------------------------------------------------------------------
def test_truncated_file_is_detected_at_construction(single, tmp_path):
    path = copy(single, tmp_path / "c")
    file = path / SINGLE_FILE
    os.truncate(file, file.stat().st_size - 100)
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, file, "truncated", "re-download or re-save")


def test_truncated_weight_file_is_detected_at_construction(sharded, tmp_path):
    path = copy(sharded, tmp_path / "c")
    shard = sorted(path.glob("model-*.safetensors"))[1]
    os.truncate(shard, shard.stat().st_size - 4)
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, shard, "truncated")


def test_file_cut_inside_the_header(single, tmp_path):
    path = copy(single, tmp_path / "c")
    os.truncate(path / SINGLE_FILE, 50)
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, path / SINGLE_FILE, "header length")


def test_file_shorter_than_the_length_prefix(tmp_path):
    (tmp_path / SINGLE_FILE).write_bytes(b"\x01\x02")
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(tmp_path)
    one_line_error(excinfo, tmp_path / SINGLE_FILE, "truncated")


def test_bad_header_length(single, tmp_path):
    path = copy(single, tmp_path / "c")
    with open(path / SINGLE_FILE, "r+b") as fh:
        fh.write(struct.pack("<Q", 2**40))
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, path / SINGLE_FILE, "header length 1099511627776")


def test_corrupt_header_json(single, tmp_path):
    path = copy(single, tmp_path / "c")
    with open(path / SINGLE_FILE, "r+b") as fh:
        fh.seek(8)
        fh.write(b"{{{{")
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, path / SINGLE_FILE, "invalid JSON")


def test_header_entry_with_wrong_byte_span(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    (tmp_path / SINGLE_FILE).write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(tmp_path)
    one_line_error(excinfo, "tensor 'w'", "spans 8 bytes")


def test_missing_weight_file(sharded, tmp_path):
    path = copy(sharded, tmp_path / "c")
    shard = sorted(path.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, path / INDEX_FILE, shard.name, "missing")


def test_index_lists_a_tensor_its_file_lacks(sharded, tmp_path):
    path = copy(sharded, tmp_path / "c")
    index = json.loads((path / INDEX_FILE).read_text())
    shards = sorted(set(index["weight_map"].values()))
    name = next(n for n, s in index["weight_map"].items() if s == shards[0])
    index["weight_map"][name] = shards[1]
    (path / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, path / INDEX_FILE, repr(name), shards[1], "does not hold it")


def test_corrupt_index(sharded, tmp_path):
    path = copy(sharded, tmp_path / "c")
    (path / INDEX_FILE).write_text('{"weight_map": ')
    with pytest.raises(CandidateError) as excinfo:
        CheckpointReader(path)
    one_line_error(excinfo, path / INDEX_FILE, "corrupt index")


def test_dir_without_weights_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CandidateError, match="no model.safetensors or model.safetensors.index.json"):
        CheckpointReader(tmp_path / "empty")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CandidateError, match="safe_serialization=True"):
        CheckpointReader(tmp_path / "bin")
    with pytest.raises(CandidateError, match="does not exist"):
        CheckpointReader(tmp_path / "nowhere")


# -- writing ----------------------------------------------------------------------------------
def test_write_single_file_round_trip(single, tmp_path):
    reader = CheckpointReader(single)
    out = write_checkpoint(tmp_path / "out", ((n, reader.get(n)) for n in reader.tensor_names),
                           config=reader.config, metadata={"soup": "m0+m1"},
                           extra_files={"recipe.json": '{"a": 1}', "notes/raw.bin": b"\x00\x01"})
    assert out == tmp_path / "out"
    for fname in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copyfile(single / fname, out / fname)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".soup-search", "config.json", SINGLE_FILE, "recipe.json", "notes", "tokenizer.json",
         "tokenizer_config.json", "generation_config.json"])
    assert (out / "notes" / "raw.bin").read_bytes() == b"\x00\x01"
    with safe_open(str(out / SINGLE_FILE), "pt") as fh:
        assert fh.metadata() == {"format": "pt", "soup": "m0+m1"}
    loaded, expected = state_dict(out), state_dict(single)
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp dir left


def test_write_sharded_round_trip_with_index(sharded, tmp_path):
    reader = CheckpointReader(sharded)
    limit = 20_000
    out = write_checkpoint(tmp_path / "out", ((n, reader.get(n)) for n in reader.tensor_names),
                           config=reader.config, max_file_bytes=limit)
    index = json.loads((out / INDEX_FILE).read_text())
    shards = sorted(out.glob("model-*.safetensors"))
    n = len(shards)
    assert n > 1 and not (out / SINGLE_FILE).exists()
    assert [s.name for s in shards] == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert set(index["weight_map"]) == set(reader.tensor_names)
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    assert index["metadata"]["total_size"] == reader.total_bytes
    written = CheckpointReader(out)
    for shard in shards:
        size = sum(i.nbytes for i in written.infos().values() if i.file == shard)
        assert size <= limit
    loaded, expected = state_dict(out), state_dict(sharded)
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_a_tensor_larger_than_the_file_limit_gets_its_own_file(tmp_path):
    tensors = [("a", torch.zeros(10)), ("big", torch.ones(100)), ("c", torch.zeros(10))]
    out = write_checkpoint(tmp_path / "out", tensors, max_file_bytes=100)
    weight_map = json.loads((out / INDEX_FILE).read_text())["weight_map"]
    assert len(set(weight_map.values())) == 3
    assert torch.equal(CheckpointReader(out).get("big"), torch.ones(100))


def test_tied_tensors_are_written(tmp_path):
    shared = torch.arange(6.0)
    out = write_checkpoint(tmp_path / "out", [("embed", shared), ("head", shared), ("view", shared[:3])])
    reader = CheckpointReader(out)
    assert torch.equal(reader.get("head"), shared) and torch.equal(reader.get("view"), shared[:3])


def test_duplicate_names_in_the_stream_are_refused(tmp_path):
    with pytest.raises(ValueError, match="'a' was given twice"):
        write_checkpoint(tmp_path / "out", [("a", torch.zeros(1)), ("a", torch.zeros(1))])
    assert list(tmp_path.iterdir()) == []


def test_exception_mid_stream_leaves_nothing_behind(tmp_path):
    def stream():
        for i in range(10):
            if i == 6:
                raise RuntimeError("merge failed")
            yield f"t{i}", torch.full((100,), float(i))

    with pytest.raises(RuntimeError, match="merge failed"):
        write_checkpoint(tmp_path / "out", stream(), max_file_bytes=800)  # 2 shards already flushed
    assert list(tmp_path.iterdir()) == []

    # an existing checkpoint is left untouched
    write_checkpoint(tmp_path / "out", [("keep", torch.ones(3))])
    with pytest.raises(RuntimeError):
        write_checkpoint(tmp_path / "out", stream(), max_file_bytes=800)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert CheckpointReader(tmp_path / "out").tensor_names == ["keep"]


# -- fingerprints -----------------------------------------------------------------------------
def test_fingerprint_is_location_free_and_content_sensitive(single, tmp_path):
    fp = fingerprint_of(single)
    assert len(fp) == 16 and fp == fingerprint_of(single)
    moved = copy(single, tmp_path / "elsewhere")
    os.utime(moved / SINGLE_FILE, (0, 0))
    assert fingerprint_of(moved) == fp
    # same architecture and shapes, other weights
    assert fingerprint_of(make_checkpoint(tmp_path / "seed1", seed=1)) != fp
    # one tensor changed slightly, as fine-tuning changes the tensors it touches
    reader = CheckpointReader(single)
    tensors = {n: reader.get(n).clone() for n in reader.tensor_names}
    tensors["model.layers.1.mlp.up_proj.weight"].mul_(1.001)
    edited = write_checkpoint(tmp_path / "edited", tensors.items(), config=reader.config)
    for fname in TOKENIZER_FILES:
        if (single / fname).is_file():
            shutil.copyfile(single / fname, edited / fname)
    assert fingerprint_of(edited) != fp
    # config change
    cfg = json.loads((moved / "config.json").read_text())
    cfg["rms_norm_eps"] = 1e-5
    (moved / "config.json").write_text(json.dumps(cfg))
    assert fingerprint_of(moved) != fp


def test_single_file_wins_over_a_stale_index(single, sharded, tmp_path):
    # as in from_pretrained: model.safetensors is used when both layouts are present
    path = copy(single, tmp_path / "c")
    shutil.copyfile(sharded / INDEX_FILE, path / INDEX_FILE)  # its shards are not there
    reader = CheckpointReader(path)
    assert [f.name for f in reader.files] == [SINGLE_FILE]
    assert torch.equal(reader.get("lm_head.weight"), CheckpointReader(single).get("lm_head.weight"))
