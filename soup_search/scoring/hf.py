"""The default scorer: transformers, on CPU (or a GPU where present)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from soup_search.errors import CandidateError
from soup_search.io.safetensors_format import INDEX_FILE, SINGLE_FILE
from soup_search.scoring.answers import answer_examples
from soup_search.scoring.generation import TransformersEngine
from soup_search.scoring.protocol import ScoreResult


def build_model(template: Path):
    """The template's model; from its config alone when the folder holds no weights (a URL
    candidate's local files: every weight is loaded from the shards before scoring)."""
    if any((template / f).is_file() for f in (SINGLE_FILE, INDEX_FILE)):
        return AutoModelForCausalLM.from_pretrained(template)
    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(template))


class HFScorer:
    """Builds ``AutoModelForCausalLM`` once from a template checkpoint; weights are swapped in place."""

    def __init__(self, template: str | Path, device: str | None = None, batch_size: int = 256,
                 threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(template)
        self.tokenizer.padding_side = "left"
        self.model = build_model(Path(template)).to(self.device).eval()
        self._params = self.model.state_dict()
        self.engine = TransformersEngine(self.model, self.tokenizer, batch_size)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        loaded = 0
        with torch.no_grad():
            for name, tensor in weights:
                target = self._params.get(name)
                if target is None:
                    raise CandidateError(
                        f"weight {name!r} does not exist in the scorer's model; the candidates must share its architecture"
                    )
                if tuple(target.shape) != tuple(tensor.shape):
                    raise CandidateError(
                        f"weight {name!r} has shape {tuple(tensor.shape)} but the scorer's model expects {tuple(target.shape)}"
                    )
                target.copy_(tensor)
                loaded += 1
        return loaded

    def score(self, objective, split: str, held_out: bool = False) -> ScoreResult:
        return self.score_examples(objective, objective.examples(split, held_out=held_out))

    def score_examples(self, objective, examples: Sequence) -> ScoreResult:
        return answer_examples(self.engine, objective, examples)
