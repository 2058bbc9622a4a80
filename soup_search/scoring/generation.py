"""Batched greedy generation and per-category evaluation of one causal LM.

Pure functions (no Ray, no files): the zoo's ``scores`` command and the scorer actors
both call these. A prompt is fed as ``<s> prompt`` (the zoo's training format), batches are
left-padded, decoding is greedy and stops at ``</s>``; completions come back stripped, with
the number of tokens generated for each (the ``</s>`` not counted).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch

from soup_search.scoring.protocol import ScoreResult


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """A prompt's token ids as the zoo was trained on them: ``<s>`` then the prompt (every scorer feeds these)."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ids if bos is None or (ids and ids[0] == bos) else [bos, *ids]


def _left_pad(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(row)
            mask[i, width - len(row):] = 1
    return ids, mask


def answer_length(ids: Sequence[int], eos_id: int | None) -> int:
    """Tokens generated for an answer: those before its first end-of-sequence (all without one).

    The one definition every scorer counts by (HF pads finished rows after ``</s>``; vLLM's
    ``token_ids`` may or may not end with it)."""
    ids = list(ids)
    return ids.index(eos_id) if eos_id is not None and eos_id in ids else len(ids)


def _decode(tokenizer, new_ids: torch.Tensor) -> list[tuple[str, int]]:
    out = []
    for row in new_ids.tolist():
        n = answer_length(row, tokenizer.eos_token_id)
        out.append((tokenizer.decode(row[:n], skip_special_tokens=True).strip(), n))
    return out


def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int,
                     batch_size: int = 256) -> list[str]:
    """Greedy completions of ``prompts`` (in order), each cut at end-of-sequence and stripped."""
    return generate(model, tokenizer, prompts, max_new_tokens, batch_size)[0]


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int,
             batch_size: int = 256) -> tuple[list[str], list[int]]:
    """Greedy completions of ``prompts`` (in order), each cut at end-of-sequence and stripped,
    and the number of tokens generated for each (:func:`answer_length`).

    Prompts are sorted by length and decoded ``batch_size`` at a time with left padding,
    which gives the same answers as decoding them one by one.
    """
    if not prompts:
        return [], []
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = model.training
    model.eval()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    answers: list[str] = [""] * len(prompts)
    lengths: list[int] = [0] * len(prompts)
    device = next(model.parameters()).device
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = _left_pad([encoded[i] for i in chunk], pad_id)
            out = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=pad_id,
            )
            for i, (text, n) in zip(chunk, _decode(tokenizer, out[:, ids.shape[1]:].cpu())):
                answers[i], lengths[i] = text, n
    finally:
        model.train(was_training)
    return answers, lengths


def evaluate(model, tokenizer, objective, split: str, categories: Iterable[str] | None = None,
             held_out: bool = False, batch_size: int = 256) -> ScoreResult:
    """Greedy answers on one split of ``objective``, scored per category and per example.

    The test split needs ``held_out=True`` (the objective enforces it).
    """
    examples = objective.examples(split, categories, held_out=held_out)
    return evaluate_examples(model, tokenizer, objective, examples, batch_size=batch_size)


def evaluate_examples(model, tokenizer, objective, examples: Sequence, batch_size: int = 256) -> ScoreResult:
    """Greedy answers on ``examples`` (of one of the objective's splits), scored per category and per example."""
    start = time.perf_counter()
    preds, lengths = generate(model, tokenizer, [ex.prompt for ex in examples],
                              objective.max_new_tokens, batch_size=batch_size)
    return ScoreResult.of_answers(objective, examples, preds, time.perf_counter() - start, lengths)
