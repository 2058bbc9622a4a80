"""The toy tasks: synthetic short text tasks a tiny LM can learn, one category each.

Prompts look like ``"add 12+34="`` with answer ``"46"``. Every split is generated
separately from ``seed``; a prompt belongs to exactly one split (chosen by a stable hash
of the prompt), so splits are disjoint and identical on every machine.

The zoo's fingerprint hashes this module's source: what the zoo learns is defined here, and a
change to how the ``toy`` objective serves these examples (:mod:`.toy`) keeps the zoo's cache.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from soup_search.objectives.base import Example


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(lo, hi)))


def _letters(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("abcdefghij") for _ in range(rng.randint(lo, hi)))


def _add(rng):
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    return f"{a}+{b}=", str(a + b)


def _sub(rng):
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    a, b = max(a, b), min(a, b)
    return f"{a}-{b}=", str(a - b)


def _sort(rng):
    s = _digits(rng, 4, 7)
    return f"{s}=", "".join(sorted(s))


def _reverse(rng):
    s = _letters(rng, 3, 6)
    return f"{s}=", s[::-1]


def _max(rng):
    s = _digits(rng, 6, 12)
    return f"{s}=", max(s)


def _copy(rng):
    s = _letters(rng, 3, 7)
    return f"{s}=", s


def _count(rng):
    s = "".join(rng.choice("abc") for _ in range(rng.randint(6, 14)))
    return f"{s}=", str(s.count("a"))


def _parity(rng):
    s = "".join(rng.choice("01") for _ in range(rng.randint(5, 10)))
    return f"{s}=", "even" if s.count("1") % 2 == 0 else "odd"


TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "add": _add,
    "sub": _sub,
    "sort": _sort,
    "reverse": _reverse,
    "max": _max,
    "copy": _copy,
    "count": _count,
    "parity": _parity,
}

#: share of the prompt space each split owns (by stable hash): test 10%, dev 10%, train 80%
_SPLIT_BUCKETS = {"test": range(0, 10), "dev": range(10, 20), "train": range(20, 100)}


def split_of(prompt: str) -> str:
    """The one split a prompt belongs to, by a stable hash (the same on every machine)."""
    bucket = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "big") % 100
    return next(s for s, r in _SPLIT_BUCKETS.items() if bucket in r)


def toy_examples(seed: int, category: str, split: str, want: int) -> list[Example]:
    """``want`` distinct examples of ``category`` in ``split`` (fewer when the space runs out), in a
    deterministic order."""
    rng = random.Random(f"toy/{seed}/{category}/{split}")
    task = TASKS[category]
    seen: set[str] = set()
    out: list[Example] = []
    for _ in range(want * 50):
        body, answer = task(rng)
        prompt = f"{category} {body}"
        if prompt in seen or split_of(prompt) != split:
            continue
        seen.add(prompt)
        out.append(Example(prompt=prompt, answer=answer, category=category))
        if len(out) == want:
            break
    return out
