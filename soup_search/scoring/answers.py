"""Examples -> answers -> a :class:`ScoreResult`, the same way on every scorer backend.

A backend (:class:`Engine`) offers two primitives on token ids: greedy generation, and the summed
log-probability of a continuation after a context. Everything else happens here, once: the prompt
ids (:mod:`~soup_search.scoring.prompts`), cutting answers at end-of-sequence and stop strings,
ranking a multiple-choice example's choices, and scoring. So the HF and vLLM scorers build the
same prompts and read answers the same way; only the model calls differ.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from soup_search.objectives.base import Example
from soup_search.scoring.prompts import continuation_ids, cut_answer, prompt_ids
from soup_search.scoring.protocol import ScoreResult


class Engine(Protocol):
    tokenizer: object
    #: the ids that end an answer (:func:`~soup_search.scoring.prompts.eos_ids`)
    eos: frozenset[int]

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int, stop: Sequence[str]) -> list[list[int]]:
        """Greedy continuations of ``prompts`` (token ids each), in order; stopping early at an
        end-of-sequence id or a stop string is allowed, not required."""

    def sum_logprobs(self, requests: list[tuple[list[int], list[int]]]) -> list[float]:
        """For each ``(context, continuation)``: the log-probability of the continuation's tokens
        after the context, summed."""


def choice_scores(sums: Sequence[float], continuations: Sequence[Sequence[int]], choices: Sequence[str],
                  norm: str) -> list[float]:
    """The ranking score of each choice: the summed log-probability (``none``), per token
    (``tokens``) or per character of the choice (``chars``, lm-eval's ``acc_norm``)."""
    if norm == "tokens":
        return [s / len(c) for s, c in zip(sums, continuations, strict=True)]
    if norm == "chars":
        return [s / max(len(text), 1) for s, text in zip(sums, choices, strict=True)]
    return list(sums)


def answer_examples(engine: Engine, objective, examples: Sequence[Example]) -> ScoreResult:
    """Answer ``examples`` of ``objective`` on ``engine`` and score them per category.

    An example without choices gets a greedy answer of at most ``objective.max_new_tokens``
    tokens; one with choices gets the choice of highest score (:func:`choice_scores`; the first of
    equals), and 0 generated tokens.
    """
    start = time.perf_counter()
    tokenizer, prompting = engine.tokenizer, objective.prompting
    answers, lengths = [""] * len(examples), [0] * len(examples)
    generated = [i for i, ex in enumerate(examples) if not ex.choices]
    if generated:
        outputs = engine.generate_ids([prompt_ids(tokenizer, objective, examples[i]) for i in generated],
                                      objective.max_new_tokens, prompting.stop)
        for i, ids in zip(generated, outputs, strict=True):
            answers[i], lengths[i] = cut_answer(tokenizer, ids, engine.eos, prompting.stop)
    chosen = [i for i, ex in enumerate(examples) if ex.choices]
    if chosen:
        requests, spans = [], []
        for i in chosen:
            context = prompt_ids(tokenizer, objective, examples[i])
            spans.append((len(requests), len(examples[i].choices)))
            requests += [(context, continuation_ids(tokenizer, prompting, c)) for c in examples[i].choices]
        sums = engine.sum_logprobs(requests)
        for i, (first, n) in zip(chosen, spans, strict=True):
            choices = examples[i].choices
            scores = choice_scores(sums[first:first + n], [r[1] for r in requests[first:first + n]],
                                   choices, prompting.choice_norm)
            answers[i] = choices[max(range(n), key=scores.__getitem__)]
    return ScoreResult.of_answers(objective, examples, answers, time.perf_counter() - start, lengths)
