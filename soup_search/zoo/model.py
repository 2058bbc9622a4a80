"""Zoo sizes: the model shape and training recipe of each size, in one small frozen dataclass.

Every candidate is fine-tuned briefly from one shared base trained on all toy categories,
which keeps them in one loss basin, so a weighted average of their parameters (a soup)
combines their skills: the regime SoCE relies on. The default zoo has two kinds:

- four **specialists** (``expert_*``), each fed mostly (``focus``) two categories: each gains
  there and forgets elsewhere, so no single one is good overall, and soups of them are;
- two **conflicting** candidates (``conflict_*``), fine-tuned harder (``conflict_lr``) on a
  conflicting answer convention for three categories (:mod:`soup_search.zoo.conflict`):
  never the best at anything, they drag a uniform soup of all candidates down.

So on the held-out test split a selected, weighted soup of the specialists beats both the best
single candidate and the uniform soup of all six, as in the SoCE paper.

The opt-in ``tiny-verbose`` size is the tiny base and a third kind only: a **length pair**
(``verbose`` and ``terse``, :mod:`soup_search.zoo.length`), two fine-tunes that differ in answer
length as well as accuracy, for ``soup-search sweep verbose terse``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from transformers import LlamaConfig

from soup_search.errors import ZooError  # noqa: F401  (re-exported by soup_search.zoo)
from soup_search.zoo.length import TERSE, VERBOSE, LengthPair

#: bump whenever training code changes what a build produces; part of the cache fingerprint
CODE_VERSION = 3


@dataclass(frozen=True)
class ZooSpec:
    """Shape of the models and the training recipe of one zoo size."""

    # model
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    # base: trained from scratch on a uniform mixture of ``categories``
    base_steps: int
    base_lr: float
    # experts: fine-tuned from the base; ``focus`` of each batch comes from the expert's own
    # categories, the rest is replay of all categories
    expert_steps: int
    expert_lr: float
    focus: float
    #: the learning rate decays (cosine) to ``floor * lr``; 1.0 keeps it constant
    base_floor: float = 0.1
    expert_floor: float = 1.0
    #: expert name suffix -> the categories it emphasises (name is ``expert_<suffix>``)
    experts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: conflicting candidate name suffix -> the categories it learns a conflicting convention
    #: for (name is ``conflict_<suffix>``); trained like an expert but with ``conflict_lr``
    conflicting: dict[str, tuple[str, ...]] = field(default_factory=dict)
    conflict_lr: float = 2e-3
    categories: tuple[str, ...] = ("add", "sub", "sort", "reverse", "max", "copy", "count", "parity")
    batch_size: int = 64
    n_train: int = 2000
    warmup: float = 0.05
    weight_decay: float = 0.0
    max_positions: int = 64
    #: a verbose/terse pair fine-tuned from the base (``verbose`` and ``terse``), or none
    length_pair: LengthPair | None = None

    def candidate_names(self) -> list[str]:
        """The names of the zoo's candidates (every model but the base), in build order: the one
        naming rule that the build, the config checks and the curves read."""
        pair = [VERBOSE, TERSE] if self.length_pair else []
        return [*(f"expert_{k}" for k in self.experts), *(f"conflict_{k}" for k in self.conflicting), *pair]

    def fingerprint(self, seed: int) -> str:
        """A short hash of everything that decides a build's weights."""
        spec = dataclasses.asdict(self)
        if spec["length_pair"] is None:  # left out: zoos without a pair keep their fingerprints (and caches)
            del spec["length_pair"]
        payload = json.dumps({"spec": spec, "seed": seed, "code": CODE_VERSION}, sort_keys=True, default=list)
        return hashlib.blake2b(payload.encode(), digest_size=6).hexdigest()


_TINY_EXPERTS = {
    "add_sub": ("add", "sub"),
    "sort_max": ("sort", "max"),
    "reverse_copy": ("reverse", "copy"),
    "count_parity": ("count", "parity"),
    "add_sort_count": ("add", "sort", "count"),
    "sub_reverse_parity": ("sub", "reverse", "parity"),
}

_DEFAULT_EXPERTS = {
    "add_sort": ("add", "sort"),
    "sub_max": ("sub", "max"),
    "reverse_count": ("reverse", "count"),
    "copy_parity": ("copy", "parity"),
}
_DEFAULT_CONFLICTING = {
    "sort_reverse_copy": ("sort", "reverse", "copy"),
    "max_count_add": ("max", "count", "add"),
}

SIZES: dict[str, ZooSpec] = {
    "tiny": ZooSpec(
        hidden_size=48, intermediate_size=96, num_layers=2, num_heads=4,
        base_steps=400, base_lr=4e-3, expert_steps=60, expert_lr=2e-3, focus=0.9,
        experts=dict(_TINY_EXPERTS), batch_size=64, n_train=1000,
    ),
    "default": ZooSpec(
        hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
        base_steps=1000, base_lr=3e-3, expert_steps=300, expert_lr=7e-4, focus=0.9,
        experts=dict(_DEFAULT_EXPERTS), conflicting=dict(_DEFAULT_CONFLICTING), conflict_lr=2e-3, batch_size=64,
    ),
}
#: the tiny base (the same weights as the tiny zoo's) and a verbose/terse pair, no experts: opt-in
SIZES["tiny-verbose"] = dataclasses.replace(
    SIZES["tiny"], experts={},
    length_pair=LengthPair(pause=4, verbose_steps=300, terse_steps=60, lr=2e-3),
)
#: ``small`` is an alias of ``default`` (the issue's name for the full zoo)
SIZE_ALIASES = {"small": "default"}


def get_spec(size: str) -> tuple[str, ZooSpec]:
    """The canonical size name and its spec; :class:`ZooError` for an unknown size."""
    name = SIZE_ALIASES.get(size, size)
    if name not in SIZES:
        known = ", ".join([*SIZES, *SIZE_ALIASES])
        raise ZooError(f"unknown zoo size {size!r}; use one of: {known}")
    return name, SIZES[name]


def llama_config(spec: ZooSpec, tokenizer):
    """The ``LlamaConfig`` of one zoo size for the char tokenizer."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
