"""``vllm.inputs`` of the stand-in: the prompt types the adapter builds."""

from __future__ import annotations

from typing import TypedDict


class TokensPrompt(TypedDict, total=False):
    prompt_token_ids: list[int]
