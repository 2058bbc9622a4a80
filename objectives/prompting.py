"""How an objective's examples become prompts: chat template, system prompt, few-shot, stop strings.

An objective holds one :class:`Prompting` (its ``prompting`` attribute), checked when the
objective is built. It says *what* the prompt is; the one builder that turns it into token ids
for every scorer backend is :mod:`soup_search.scoring.prompts`.

- ``chat_template``: ``true`` applies the tokenizer's chat template (an error when it has none),
  ``false`` feeds ``<s>`` then the text, ``auto`` applies it when the tokenizer has one.
- ``system_prompt``: a system turn with a chat template, else the text's first paragraph.
- ``fewshot``: that many solved examples of the **train** split before each prompt (never dev or
  test), drawn per example with ``fewshot_seed``: from its own category when it has enough.
  As chat turns (user, assistant) with a chat template, else as
  ``prompt + target_delimiter + answer + fewshot_delimiter``.
- ``stop``: generation also stops at these strings (always at end-of-sequence); the answer is
  the text before the first of them.
- ``choice_norm``: how a multiple-choice example's choices are ranked by log-likelihood:
  ``none`` (the sum over the choice's tokens), ``tokens`` (per token) or ``chars`` (per character,
  lm-eval's ``acc_norm``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from soup_search.errors import ObjectiveError


class _Prompted(Protocol):
    prompt: str


Shot = TypeVar("Shot", bound=_Prompted)  # an Example (objectives.base imports this module)

CHOICE_NORMS = ("none", "tokens", "chars")
#: the objective parameters that set :class:`Prompting` (every objective takes them)
PROMPTING_PARAMS = ("chat_template", "system_prompt", "fewshot", "fewshot_seed", "stop", "target_delimiter",
                    "fewshot_delimiter", "choice_norm")


@dataclass(frozen=True)
class Prompting:
    chat_template: bool | str = "auto"
    system_prompt: str | None = None
    fewshot: int = 0
    fewshot_seed: int = 0
    stop: tuple[str, ...] = ()
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    choice_norm: str = "none"

    @classmethod
    def of(cls, owner: str, **params: Any) -> Prompting:
        """A checked :class:`Prompting` from an objective's parameters (``owner``: its name, for
        errors); every problem is reported in one line."""
        problems = []
        mode = params.get("chat_template", "auto")
        if isinstance(mode, str):
            mode = {"true": True, "false": False, "auto": "auto"}.get(mode.lower(), mode)
        if not (isinstance(mode, bool) or mode == "auto"):
            problems.append(f"chat_template is {params.get('chat_template')!r}; use true, false or auto")
        fewshot = params.get("fewshot", 0)
        if isinstance(fewshot, bool) or not isinstance(fewshot, int) or fewshot < 0:
            problems.append(f"fewshot is {fewshot!r}; use a whole number >= 0 (0: no few-shot examples)")
        stop = params.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        if any(not isinstance(s, str) or not s for s in stop):
            problems.append(f"stop is {params.get('stop')!r}; use a list of non-empty strings")
        norm = params.get("choice_norm", "none")
        if norm not in CHOICE_NORMS:
            problems.append(f"choice_norm is {norm!r}; use one of {', '.join(CHOICE_NORMS)}")
        system = params.get("system_prompt")
        if system is not None and not isinstance(system, str):
            problems.append(f"system_prompt is {system!r}; use a string")
        if problems:
            raise ObjectiveError(f"objective {owner!r}: " + "; ".join(problems))
        kept = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        return cls(**{**kept, "chat_template": mode, "stop": stop, "system_prompt": system or None})

    def draw_shots(self, example: Shot, own: Sequence[Shot], every: Sequence[Shot]) -> tuple[Shot, ...]:
        """The few-shot examples of ``example``: ``fewshot`` of ``own`` (the train examples of its
        category), or of ``every`` train example when ``own`` has too few, drawn by a seed of
        ``(fewshot_seed, example.prompt)``: the same on every machine and in every process.
        A train example with the example's own prompt is never drawn."""
        if not self.fewshot:
            return ()
        pool = own if len(own) > self.fewshot else every
        if len(pool) <= self.fewshot:
            raise ObjectiveError(f"fewshot: {self.fewshot} needs more train examples than that, but the train "
                                 f"split has {len(pool)}; lower fewshot or add train rows")
        rng = random.Random(f"{self.fewshot_seed}\0{example.prompt}")
        drawn = [ex for ex in rng.sample(pool, self.fewshot + 1) if ex.prompt != example.prompt]
        return tuple(drawn[:self.fewshot])
