"""Continued training: it follows the curriculum, repeats under a seed, and its batches are the
ones the zoo's loop (the non-recurrent control) draws with the same seed."""

from __future__ import annotations

import pytest
import torch
from transformers.utils import logging as hf_logging

from soup_search.objectives.toy import ToyObjective
from soup_search.recur.curriculum import parse_curriculum
from soup_search.recur.surgery import load_parent, retrofit
from soup_search.recur.train import TrainSettings, train_recurrent, uniform_mixture
from soup_search.zoo.tokenizer import build_char_tokenizer
from soup_search.zoo.train import CategoryData, train
from tests.helpers import make_checkpoint

hf_logging.disable_progress_bar()


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    return load_parent(make_checkpoint(tmp_path_factory.mktemp("parent"), seed=1))


@pytest.fixture(scope="module")
def data():
    return CategoryData(build_char_tokenizer(), ToyObjective(seed=0, n_train=40).examples("train"))


def _run(parent, data, seed=0, curriculum="linear:1:4:0.5", steps=8):
    model = retrofit(parent, (1, 1, 0))
    log = train_recurrent(model, data, parse_curriculum(curriculum), TrainSettings(steps=steps, batch_size=8,
                                                                                    seed=seed))
    return model, log


def test_each_step_draws_around_the_scheduled_mean(parent, data):
    _, log = _run(parent, data, curriculum="linear:1:3:0.5", steps=8)
    assert log.means == (1.0, 1.5, 2.0, 2.5, 3.0, 3.0, 3.0, 3.0)
    assert log.recurrences[0] == 1 and min(log.recurrences) >= 1 and len(set(log.recurrences)) > 1
    _, flat = _run(parent, data, curriculum="constant:1", steps=4)
    assert flat.recurrences == (1, 1, 1, 1)


def test_training_repeats_under_a_seed_and_changes_with_it(parent, data):
    (a, log_a), (b, log_b), (_, log_c) = (_run(parent, data, seed=s) for s in (0, 0, 1))
    assert log_a.recurrences == log_b.recurrences and log_a.losses == log_b.losses
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert log_a.losses != log_c.losses
    assert not torch.equal(a.model.adapter.weight, retrofit(parent, (1, 1, 0)).model.adapter.weight)


def test_the_control_sees_the_same_batches(parent, data, monkeypatch):
    seen: dict[str, list] = {"recurrent": [], "control": []}
    batch = CategoryData.batch

    def spy(self, mixture, batch_size, gen):
        out = batch(self, mixture, batch_size, gen)
        seen[current].append(out[0])
        return out

    monkeypatch.setattr(CategoryData, "batch", spy)
    current = "recurrent"
    _run(parent, data, seed=3, steps=5)
    current = "control"
    control = load_parent(parent.name_or_path)
    train(control, data, uniform_mixture(data), steps=5, lr=1e-3, batch_size=8, seed=3)
    assert len(seen["recurrent"]) == 5
    assert all(torch.equal(x, y) for x, y in zip(seen["recurrent"], seen["control"], strict=True))
