"""Surgery keeps the parent's function; truncated backprop; the split checks; the saved checkpoint
loads in a fresh process, offline, through its own code, and generates what the model generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers.utils import logging as hf_logging

from soup_search.errors import CandidateError, ConfigError
from soup_search.recur.surgery import check_split, load_parent, parse_split, retrofit, save_recurrent
from soup_search.scoring.generation import generate_answers
from soup_search.zoo.tokenizer import build_char_tokenizer
from tests.helpers import make_checkpoint

hf_logging.disable_progress_bar()
PROMPTS = ["add 12+34=", "copy abc=", "parity 0110="]


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    path = make_checkpoint(tmp_path_factory.mktemp("parent"), seed=3, num_hidden_layers=3)
    return load_parent(path).eval()


def _batch():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 50, (3, 10), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # left padding, as in generation
    return ids, mask


@pytest.mark.parametrize("split", [(1, 1, 1), (0, 2, 1), (2, 1, 0), (0, 3, 0)])
def test_right_after_surgery_the_model_is_the_parent_at_every_depth(parent, split):
    model = retrofit(parent, split).eval()
    ids, mask = _batch()
    want = parent(input_ids=ids, attention_mask=mask).logits
    for r in (1, 2, 5):
        got = model(input_ids=ids, attention_mask=mask, num_recurrences=r).logits
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_a_trained_adapter_makes_the_depth_matter(parent):
    model = retrofit(parent, (1, 1, 1)).eval()
    with torch.no_grad():
        model.model.adapter.weight.add_(0.1 * torch.randn_like(model.model.adapter.weight))
    ids, mask = _batch()
    one, three = (model(input_ids=ids, attention_mask=mask, num_recurrences=r).logits for r in (1, 3))
    assert (one - three).abs().max() > 1e-3


def test_gradients_flow_through_the_last_backprop_depth_recurrences_only(parent):
    model = retrofit(parent, (1, 1, 1)).train()
    with torch.no_grad():
        model.model.adapter.weight.add_(0.1 * torch.randn_like(model.model.adapter.weight))
    ids, _ = _batch()

    def loss_and_grad(depth):
        model.zero_grad()
        torch.manual_seed(7)  # the same initial-state noise every time
        loss = model(input_ids=ids, labels=ids, num_recurrences=4, backprop_depth=depth).loss
        loss.backward()
        return loss.item(), model.model.adapter.weight.grad.clone()

    (l1, g1), (l4, g4), (l8, g8) = (loss_and_grad(d) for d in (1, 4, 8))
    assert l1 == l4 == l8  # the forward pass does not depend on the depth
    assert torch.equal(g4, g8)  # a depth of 4 or more is full backpropagation for 4 recurrences
    assert not torch.allclose(g1, g4)


def test_generating_with_a_kv_cache_is_refused_not_wrong(parent):
    model = retrofit(parent, (1, 1, 1)).eval()
    ids, _ = _batch()
    with pytest.raises(ValueError, match="no KV cache"):
        model.generate(input_ids=ids[1:2], max_new_tokens=2, do_sample=False, use_cache=True)
    assert model.generate(input_ids=ids[1:2], min_new_tokens=2, max_new_tokens=2, do_sample=False).shape == (1, 12)


def test_the_split_is_checked_against_the_layers(parent):
    with pytest.raises(ConfigError, match=r"covers 2 layers but the checkpoint has 3"):
        retrofit(parent, (1, 1, 0))
    check_split((1, 1, 1), 3)


@pytest.mark.parametrize("text", ["1,1", "1,0,1", "a,b,c", "1,1,1,1", "-1,2,1"])
def test_a_split_that_is_not_three_counts_is_one_line(text):
    with pytest.raises(ConfigError) as info:
        parse_split(text)
    assert "P,R,C" in str(info.value) and "\n" not in str(info.value)


def test_only_llama_checkpoints_are_retrofitted(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CandidateError, match="'gpt2' model; recur retrofits Llama"):
        load_parent(tmp_path)
    with pytest.raises(CandidateError, match="cannot read a checkpoint"):
        load_parent(tmp_path / "missing")


_LOAD = """
import json, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging
logging.disable_progress_bar()
path = sys.argv[1]
model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, local_files_only=True).eval()
tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True, local_files_only=True)
answers = {}
for r in (1, 3):
    model.config.num_recurrences = r
    answers[r] = []
    for prompt in sys.argv[2:]:
        ids = tok("<s>" + prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        new = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False)[0, ids.shape[1]:].tolist()
        new = new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        answers[r].append(tok.decode(new, skip_special_tokens=True).strip())
print(json.dumps({"answers": answers, "class": type(model).__module__,
                  "soup_search": any(m.startswith("soup_search") for m in sys.modules)}))
"""


@pytest.mark.slow
def test_the_checkpoint_loads_offline_in_a_fresh_process_and_generates(parent, tmp_path):
    model = retrofit(parent, (1, 1, 1))
    with torch.no_grad():
        model.model.adapter.weight.add_(0.1 * torch.randn_like(model.model.adapter.weight))
    tok = build_char_tokenizer()
    save_recurrent(model, tok, tmp_path / "model")
    assert (tmp_path / "model" / "modeling.py").is_file()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-c", _LOAD, str(tmp_path / "model"), *PROMPTS], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["class"].startswith("transformers_modules.") and not got["soup_search"]
    model.eval()
    for r in (1, 3):
        model.config.num_recurrences = r
        assert got["answers"][str(r)] == generate_answers(model, tok, PROMPTS, max_new_tokens=6)
    assert got["answers"]["1"] != got["answers"]["3"]
