"""The toy zoo's character-level tokenizer, saved as ordinary Hugging Face tokenizer files.

Every character the toy objectives use is one token, so tiny models learn the tasks
quickly and ``AutoTokenizer.from_pretrained`` loads the result offline.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
CHARACTERS = string.digits + string.ascii_lowercase + " +-*=<>?:,.;()[]|#"


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A fast char-level tokenizer: pad=0, bos=1, eos=2, unk=3, then one id per character."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARACTERS:
        vocab.setdefault(ch, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )
