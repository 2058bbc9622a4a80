"""A transformers causal LM as a scoring :class:`~soup_search.scoring.answers.Engine`.

Pure functions (no Ray, no files): the zoo's ``scores`` command and the scorer actors both call
these. Generation is greedy on left-padded batches (prompts sorted by length, which gives the
answers of one-by-one decoding) and stops at end-of-sequence or a stop string. Continuations are
scored on right-padded batches, so every row keeps the positions it has alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from soup_search.scoring.answers import answer_examples
from soup_search.scoring.prompts import cut_answer, encode_text, eos_ids
from soup_search.scoring.protocol import ScoreResult


def _padded(rows: Sequence[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            cols = slice(width - len(row), width) if left else slice(0, len(row))
            ids[i, cols] = torch.tensor(row)
            mask[i, cols] = 1
    return ids, mask


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


@torch.inference_mode()
def generate_ids(model, tokenizer, prompts: Sequence[list[int]], max_new_tokens: int, batch_size: int = 256,
                 stop: Sequence[str] = ()) -> list[list[int]]:
    """Greedy continuations (new token ids) of ``prompts`` (token ids each), in order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    device = next(model.parameters()).device
    encodable = [s for s in stop if tokenizer.unk_token_id not in tokenizer(s, add_special_tokens=False)["input_ids"]]
    # (HF refuses a stop string its tokens cannot spell, e.g. "\n" for the zoo's tokenizer: such an
    # answer runs to max_new_tokens and is cut by text all the same, in :func:`cut_answer`)
    extra = {"stop_strings": encodable, "tokenizer": tokenizer} if encodable else {}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = _padded([prompts[i] for i in chunk], _pad_id(tokenizer), left=True)
            new = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 eos_token_id=sorted(eos_ids(tokenizer, model.generation_config)),
                                 pad_token_id=_pad_id(tokenizer), **extra)[:, ids.shape[1]:].cpu().tolist()
            for i, row in zip(chunk, new):
                out[i] = row
    finally:
        model.train(was_training)
    return out


@torch.inference_mode()
def sum_logprobs(model, tokenizer, requests: Sequence[tuple[list[int], list[int]]],
                 batch_size: int = 256) -> list[float]:
    """For each ``(context, continuation)``, the summed log-probability of the continuation."""
    order = sorted(range(len(requests)), key=lambda i: -sum(map(len, requests[i])))
    out = [0.0] * len(requests)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        rows = [requests[i][0] + requests[i][1] for i in chunk]
        ids, mask = _padded(rows, _pad_id(tokenizer), left=False)
        logprobs = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(),
                                     dim=-1).cpu()
        for row, i in enumerate(chunk):
            context, continuation = requests[i]
            positions = torch.arange(len(context) - 1, len(context) + len(continuation) - 1)
            out[i] = float(logprobs[row, positions, torch.tensor(continuation)].sum())
    return out


@dataclass
class TransformersEngine:
    """A loaded transformers model and its tokenizer, answering on token ids."""

    model: object
    tokenizer: object
    batch_size: int = 256
    eos: frozenset[int] = field(init=False)

    def __post_init__(self):
        self.eos = eos_ids(self.tokenizer, getattr(self.model, "generation_config", None))

    def generate_ids(self, prompts, max_new_tokens, stop=()):
        return generate_ids(self.model, self.tokenizer, prompts, max_new_tokens, self.batch_size, stop)

    def sum_logprobs(self, requests):
        return sum_logprobs(self.model, self.tokenizer, requests, self.batch_size)


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int,
             batch_size: int = 256) -> tuple[list[str], list[int]]:
    """Greedy answers to plain-text ``prompts`` (``<s>`` then the text, the zoo's format), each cut
    at end-of-sequence and stripped, and the number of tokens generated for each."""
    engine = TransformersEngine(model, tokenizer, batch_size)
    rows = engine.generate_ids([encode_text(tokenizer, p) for p in prompts], max_new_tokens)
    cut = [cut_answer(tokenizer, row, engine.eos, ()) for row in rows]
    return [text for text, _ in cut], [n for _, n in cut]


def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int,
                     batch_size: int = 256) -> list[str]:
    """Greedy answers to plain-text ``prompts``, in order (:func:`generate` without token counts)."""
    return generate(model, tokenizer, prompts, max_new_tokens, batch_size)[0]


def evaluate(model, tokenizer, objective, split: str, categories: Iterable[str] | None = None,
             held_out: bool = False, batch_size: int = 256) -> ScoreResult:
    """Answers on one split of ``objective``, scored per category and per example.

    The test split needs ``held_out=True`` (the objective enforces it).
    """
    examples = objective.examples(split, categories, held_out=held_out)
    return evaluate_examples(model, tokenizer, objective, examples, batch_size=batch_size)


def evaluate_examples(model, tokenizer, objective, examples: Sequence, batch_size: int = 256) -> ScoreResult:
    """Answers on ``examples`` (of one of the objective's splits), scored per category and per example."""
    return answer_examples(TransformersEngine(model, tokenizer, batch_size), objective, examples)
