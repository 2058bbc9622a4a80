"""Training the zoo's models: a seeded, deterministic causal-LM loop over toy examples.

A training sequence is ``<s> prompt answer </s>``, exactly what generation sees
(``<s> prompt``) followed by what it must produce; the loss covers the answer and
``</s>`` only. Batches are drawn from a mixture of categories with a seeded generator,
so a build is the same on every run with the same thread count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from soup_search.objectives.base import Example

IGNORE = -100


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Token ids the model sees for a prompt: ``<s>`` then one id per character."""
    return [tokenizer.bos_token_id, *tokenizer(prompt, add_special_tokens=False)["input_ids"]]


class CategoryData:
    """Encoded training examples of each category, padded on the right to one length."""

    def __init__(self, tokenizer, examples: Sequence[Example]):
        by_cat: dict[str, list[tuple[list[int], list[int]]]] = {}
        for ex in examples:
            prompt = encode_prompt(tokenizer, ex.prompt)
            answer = [*tokenizer(ex.answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
            by_cat.setdefault(ex.category, []).append((prompt, answer))
        self.categories = tuple(by_cat)
        self.pad_id = tokenizer.pad_token_id
        self.inputs: dict[str, torch.Tensor] = {}
        self.labels: dict[str, torch.Tensor] = {}
        self.lengths: dict[str, torch.Tensor] = {}
        for cat, rows in by_cat.items():
            width = max(len(p) + len(a) for p, a in rows)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
            lab = torch.full((len(rows), width), IGNORE, dtype=torch.long)
            for i, (p, a) in enumerate(rows):
                ids[i, : len(p) + len(a)] = torch.tensor(p + a)
                lab[i, len(p) : len(p) + len(a)] = torch.tensor(a)  # the model shifts labels itself
            self.inputs[cat], self.labels[cat] = ids, lab
            self.lengths[cat] = torch.tensor([len(p) + len(a) for p, a in rows])

    def batch(self, mixture: Mapping[str, float], batch_size: int, gen: torch.Generator):
        """One batch: categories drawn from ``mixture``, examples uniformly within a category."""
        cats = [c for c in mixture if mixture[c] > 0]
        probs = torch.tensor([mixture[c] for c in cats], dtype=torch.float)
        picks = torch.multinomial(probs, batch_size, replacement=True, generator=gen)
        ids, labels, lengths = [], [], []
        for k, cat in enumerate(cats):
            n = int((picks == k).sum())
            if n == 0:
                continue
            rows = torch.randint(len(self.inputs[cat]), (n,), generator=gen)
            ids.append(self.inputs[cat][rows])
            labels.append(self.labels[cat][rows])
            lengths.append(self.lengths[cat][rows])
        width = max(int(length.max()) for length in lengths)
        ids = torch.cat([_fit(t, width, self.pad_id) for t in ids])
        labels = torch.cat([_fit(t, width, IGNORE) for t in labels])
        return ids, labels, (ids != self.pad_id).long()


def _fit(t: torch.Tensor, width: int, fill: int) -> torch.Tensor:
    if t.shape[1] >= width:
        return t[:, :width]
    return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=fill)


def lr_at(step: int, total: int, peak: float, warmup: float, floor: float = 0.1) -> float:
    """Linear warmup, then cosine decay to ``floor * peak`` (``floor=1`` keeps it constant)."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def train(model, data: CategoryData, mixture: Mapping[str, float], *, steps: int, lr: float,
          batch_size: int, seed: int, warmup: float = 0.05, floor: float = 0.1, weight_decay: float = 0.0,
          on_step: Callable[[int, float], None] | None = None) -> float:
    """Train ``model`` in place for ``steps`` AdamW steps; returns the mean loss of the last 10%."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    model.train()
    tail: list[float] = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup, floor)
        ids, labels, mask = data.batch(mixture, batch_size, gen)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
        if on_step is not None:
            on_step(step, loss.item())
    model.eval()
    return sum(tail) / len(tail)
