"""Score every zoo model per category on one split: the table behind ``soup-search zoo scores``."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from soup_search.io.atomic import atomic_file
from soup_search.scoring.generation import evaluate
from soup_search.zoo.build import single_thread


def score_zoo(zoo, objective, split: str, soup: bool = False, batch_size: int = 256) -> dict[str, dict[str, float]]:
    """Per-category accuracy of every zoo model (and optionally the uniform expert soup)."""
    hf_logging.disable_progress_bar()  # no "Loading weights" bar per checkpoint
    table: dict[str, dict[str, float]] = {}
    states = []
    model = tokenizer = None
    with single_thread():
        for name, path in zoo.models().items():
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            table[name] = evaluate(model, tokenizer, objective, split, batch_size=batch_size).per_category
            if soup and name != "base":
                states.append({k: v.clone() for k, v in model.state_dict().items()})
        if soup and states:
            model.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
            table["uniform_soup"] = evaluate(model, tokenizer, objective, split, batch_size=batch_size).per_category
    return table


def write_scores_csv(path: Path, table: dict[str, dict[str, float]], categories) -> None:
    """CSV with a ``model`` column then one column per category, written atomically."""
    with atomic_file(path, mode="w") as fh:
        writer = csv.writer(fh)
        writer.writerow(["model", *categories])
        for name, row in table.items():
            writer.writerow([name, *(f"{row[c]:.4f}" for c in categories)])
