"""The one prompt builder: an objective's example -> token ids, for every scorer backend.

The HF and vLLM scorers both feed what these functions return, so the two backends see the
same tokens, BOS included (vLLM gets them as a ``TokensPrompt``, never a string it would
tokenize its own way). What the prompt holds is the objective's :class:`Prompting`.

- Without a chat template the text is ``[system_prompt + fewshot_delimiter]`` then each shot as
  ``prompt + target_delimiter + answer + fewshot_delimiter``, then the prompt; the ids are
  ``<s>`` then the text's (the zoo's training format).
- With one, the conversation (system turn, a user/assistant pair per shot, the user's prompt)
  is rendered by the tokenizer's template with the generation prompt, and the text encoded
  without adding special tokens (the template writes its own BOS).
- A multiple-choice continuation is ``target_delimiter + choice`` (just the choice after a
  chat template's generation prompt), encoded without special tokens.
- A generated answer is cut at the first end-of-sequence id, then at the first stop string
  (:func:`cut_answer`); its token count is the tokens it took to get there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from soup_search.errors import ObjectiveError
from soup_search.objectives.base import Example
from soup_search.objectives.prompting import Prompting


def uses_chat_template(tokenizer, prompting: Prompting) -> bool:
    """Whether prompts go through the tokenizer's chat template (``auto``: when it has one)."""
    has = bool(getattr(tokenizer, "chat_template", None))
    if prompting.chat_template is True and not has:
        raise ObjectiveError("the objective sets chat_template: true, but the model's tokenizer has no chat "
                             "template; set chat_template: false (or auto), or add a template to tokenizer_config.json")
    return has if prompting.chat_template == "auto" else bool(prompting.chat_template)


def encode_text(tokenizer, text: str) -> list[int]:
    """``<s>`` then the text's token ids (no BOS twice; none where the tokenizer has no BOS)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ids if bos is None or (ids and ids[0] == bos) else [bos, *ids]


def prompt_text(prompting: Prompting, example: Example, shots: Sequence[Example]) -> str:
    """The prompt as plain text, without a chat template."""
    head = prompting.system_prompt + prompting.fewshot_delimiter if prompting.system_prompt else ""
    solved = "".join(s.prompt + prompting.target_delimiter + s.answer + prompting.fewshot_delimiter for s in shots)
    return head + solved + example.prompt


def chat_messages(prompting: Prompting, example: Example, shots: Sequence[Example]) -> list[dict[str, str]]:
    """The prompt as a conversation: system turn, a user/assistant pair per shot, the user's prompt."""
    messages = [{"role": "system", "content": prompting.system_prompt}] if prompting.system_prompt else []
    for s in shots:
        messages += [{"role": "user", "content": s.prompt}, {"role": "assistant", "content": s.answer}]
    return [*messages, {"role": "user", "content": example.prompt}]


def prompt_ids(tokenizer, objective, example: Example) -> list[int]:
    """The token ids every scorer feeds for ``example`` of ``objective``."""
    prompting, shots = objective.prompting, objective.shots(example)
    if not uses_chat_template(tokenizer, prompting):
        return encode_text(tokenizer, prompt_text(prompting, example, shots))
    text = tokenizer.apply_chat_template(chat_messages(prompting, example, shots), tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def continuation_ids(tokenizer, prompting: Prompting, choice: str) -> list[int]:
    """The token ids of a multiple-choice continuation after the prompt."""
    text = choice if uses_chat_template(tokenizer, prompting) else prompting.target_delimiter + choice
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ObjectiveError(f"the choice {choice!r} encodes to no tokens; give every choice some text")
    return ids


def eos_ids(tokenizer, generation_config=None) -> frozenset[int]:
    """The ids that end an answer: the tokenizer's end-of-sequence and the model's generation
    config's (a chat model often ends a turn with its own, e.g. ``<|eot_id|>``)."""
    found: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, Iterable):
            found.update(int(v) for v in value)
    return frozenset(found)


def cut_answer(tokenizer, ids: Sequence[int], eos: frozenset[int], stop: Sequence[str]) -> tuple[str, int]:
    """A generated answer's text and token count: cut at the first end-of-sequence id, then at
    the first stop string (the text before it; the tokens up to the one that completed it)."""
    ids = list(ids)
    n = next((i for i, t in enumerate(ids) if t in eos), len(ids))
    ids = ids[:n]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    hits = [text.find(s) for s in stop if s in text]
    if hits:
        text = text[:min(hits)]
        n = next(k for k in range(1, n + 1)
                 if any(s in tokenizer.decode(ids[:k], skip_special_tokens=True) for s in stop))
    return text.strip(), n
