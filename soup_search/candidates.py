"""A validated set of candidate checkpoints: every candidate can be averaged with every other.

:func:`load_candidates` compares each candidate with the first and stops at the first
difference, raising one-line :class:`CandidateError` naming both candidates:

1. architecture (``model_type`` and ``architectures`` in config.json);
2. the rest of config.json, nested dicts included, ignoring :data:`IGNORED_CONFIG_KEYS`
   (keys that change neither the tensors nor the forward pass); a key set to ``null`` counts
   as absent; keys derived from others (:data:`DERIVED_CONFIG_KEYS`) come last;
3. tensor names, then tensor shapes (read from the safetensors headers only; dtypes may
   differ, merges accumulate in float32);
4. the vocabulary: token -> id from tokenizer.json (model vocab plus added tokens), or from
   ``AutoTokenizer.get_vocab()`` when one of the two has no tokenizer.json.

Tokenizer policy: a candidate without tokenizer files (common for trainer checkpoints) is
allowed and taken to use the candidate set's tokenizer, whose shape the config and embedding checks
already pin down. The candidates's tokenizer is that of the first candidate having one
(:attr:`CandidateSet.tokenizer_dir`, ``None`` if no candidate has tokenizer files); every candidate
that has tokenizer files must match it.

A candidate may be an fsspec URL (``s3://bucket/model``, ``gs://...``, ``https://...``): its
headers are read by ranged requests and only its config.json and tokenizer files are
fetched, into a local folder (:attr:`Candidate.local_dir`); its tensors are fetched later, by
the shards that hold them (:mod:`soup_search.io.remote`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from soup_search.io import remote
from soup_search.io.checkpoint import TOKENIZER_FILES, CheckpointReader, TensorInfo, fingerprint_of
from soup_search.io.safetensors_format import CONFIG_FILE
from soup_search.errors import CandidateError

# config.json keys that do not change the weights' meaning (compared at every nesting level)
IGNORED_CONFIG_KEYS = frozenset({
    # provenance and serialisation
    "_name_or_path", "name_or_path", "transformers_version", "torch_dtype", "dtype",
    "_commit_hash", "_attn_implementation", "attn_implementation", "_attn_implementation_autoset",
    # runtime switches
    "use_cache", "output_attentions", "output_hidden_states", "return_dict", "torchscript",
    "use_return_dict", "gradient_checkpointing", "pretraining_tp",
    # special token ids (a fine-tune may pick another pad/eos; the vocabulary check covers tokens)
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
    # generation-only settings
    "max_length", "min_length", "do_sample", "temperature", "top_k", "top_p", "num_beams",
    "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "early_stopping",
    "num_return_sequences", "task_specific_params",
    # training-only settings
    "initializer_range", "attention_dropout", "hidden_dropout", "dropout", "embd_pdrop",
    "resid_pdrop", "attn_pdrop", "classifier_dropout", "finetuning_task", "problem_type",
    # labels of classification heads, tokenizer class name
    "id2label", "label2id", "tokenizer_class",
})
# config.json keys derived from others (head_dim = hidden_size / num_attention_heads): compared
# last, so that a difference is reported in the field the user set
DERIVED_CONFIG_KEYS = frozenset({"head_dim"})
# files that hold a vocabulary (tokenizer_config.json alone does not)
VOCAB_FILES = ("tokenizer.json", "tokenizer.model", "spm.model", "sentencepiece.bpe.model",
               "vocab.json", "vocab.txt")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


@dataclass(frozen=True)
class Candidate:
    name: str
    path: Path | str  # a local model directory, or an fsspec URL (a str)
    #: a local folder holding its config.json and tokenizer files: ``path`` itself when local
    local_dir: Path | None = None

    def __post_init__(self):
        if self.local_dir is None and not remote.is_url(self.path):
            object.__setattr__(self, "local_dir", Path(self.path))


def resolve_candidate(spec: str | Path, name: str | None = None,
                      cache_dir: str | Path | None = None) -> Candidate:
    """A local model directory as is; a URL with its small files fetched (into ``cache_dir``);
    a hub id (``org/name``) only where the hub is reachable."""
    if remote.is_url(spec):
        url, folder = spec.rstrip("/"), remote.model_folder(spec)
        return Candidate(name or remote.basename(folder), url,
                         remote.local_files(folder, (CONFIG_FILE, *TOKENIZER_FILES), cache_dir))
    path = Path(spec).expanduser()
    if path.is_dir():
        return Candidate(name or path.resolve().name, path.resolve())
    if path.exists():
        raise CandidateError(f"candidate {str(spec)!r} is a file, not a model directory; "
                             "pass the directory holding config.json")
    if isinstance(spec, str) and HUB_ID.match(spec):
        return Candidate(name or spec.split("/")[-1], _download(spec))
    raise CandidateError(f"candidate path {str(spec)!r} does not exist; pass a local model directory")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _download(repo_id: str) -> Path:
    unreachable = (f"candidate {repo_id!r} is not a local directory and the Hugging Face hub is "
                   "not reachable; download it first and pass its path")
    if _hub_offline():
        raise CandidateError(unreachable)
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError:
        raise CandidateError(unreachable + " (huggingface_hub is not installed)") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, etag_timeout=5,
                                      endpoint=os.environ.get("HF_ENDPOINT") or None))
    except GatedRepoError:
        raise CandidateError(f"candidate {repo_id!r} is a gated hub repo; accept its terms, log in "
                             "(hf auth login) or download it first and pass its path") from None
    except RepositoryNotFoundError:
        raise CandidateError(f"candidate {repo_id!r} is neither a local directory nor a Hugging Face "
                             "hub repo; check the name or pass a local path") from None
    except Exception:  # connection refused, DNS, timeouts, offline mode: all mean "not reachable"
        raise CandidateError(unreachable) from None


@dataclass(frozen=True)
class CandidateSet:
    """Candidates checked to share one architecture, tensor layout and vocabulary."""

    members: tuple[Candidate, ...]
    tensor_infos: dict[str, TensorInfo]  # of the first candidate
    config: dict  # config.json of the first candidate
    tokenizer_dir: Path | None = None  # the first candidate with tokenizer files (a local folder)
    #: per-node local cache of URL candidates' tensor bytes (None: no cache)
    cache_dir: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.members)

    @property
    def paths(self) -> tuple[Path | str, ...]:
        return tuple(c.path for c in self.members)

    @property
    def template_dir(self) -> Path:
        """A local folder with the first candidate's config.json and tokenizer files (no weights
        when the candidate is a URL): what a scorer builds its model from."""
        return self.members[0].local_dir

    def candidate(self, name: str) -> Candidate:
        for c in self.members:
            if c.name == name:
                return c
        raise KeyError(f"no candidate named {name!r} in the candidate set {list(self.names)}")

    def fingerprints(self) -> dict[str, str]:
        """name -> content fingerprint of every candidate (cheap: headers and a few bytes per tensor)."""
        return {c.name: fingerprint_of(c.path) for c in self.members}

    def reader(self, name: str) -> CheckpointReader:
        """A new reader of candidate ``name`` (headers only until tensors are read); close it after use."""
        return CheckpointReader(self.candidate(name).path, self.cache_dir)

    def __len__(self) -> int:
        return len(self.members)


def load_candidates(specs: Sequence[str | Path | Candidate], names: Sequence[str] | None = None,
                    cache_dir: str | Path | None = None) -> CandidateSet:
    """Resolve the candidates and check that all of them are compatible with the first.

    ``cache_dir``: the per-node local cache of URL candidates (their small files, and the
    tensor bytes the shards fetch); None keeps small files in the user cache dir and no tensors.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir else None
    specs = list(specs)
    if not specs:
        raise CandidateError("no candidates given; list at least one model directory")
    if names is not None and len(names) != len(specs):
        raise CandidateError(
            f"{len(names)} names given for {len(specs)} candidates; give one name per candidate")
    candidates = []
    for i, spec in enumerate(specs):
        name = names[i] if names is not None else None
        if isinstance(spec, Candidate):
            path = spec.path if remote.is_url(spec.path) else Path(spec.path)
            candidates.append(Candidate(name or spec.name, path, spec.local_dir))
        else:
            candidates.append(resolve_candidate(spec, name, cache_dir))
    seen: dict[str, Path] = {}
    for c in candidates:
        if c.name in seen:
            raise CandidateError(f"two candidates are named {c.name!r} ({seen[c.name]} and {c.path}); "
                                 "give them distinct names")
        seen[c.name] = c.path

    readers = [CheckpointReader(c.path, cache_dir) for c in candidates]
    for c, r in zip(candidates, readers):
        if not r.has_config:
            raise CandidateError(f"candidate {c.name!r} ({c.path}) has no {CONFIG_FILE}; "
                                 "pass a model directory saved with save_pretrained")
    first, ref = candidates[0], readers[0]
    for c, r in zip(candidates[1:], readers[1:]):
        problem = (_architecture_diff(ref.config, r.config)
                   or _config_diff(ref.config, r.config, first.name, c.name)
                   or _tensor_diff(ref.infos(), r.infos(), first.name, c.name))
        if problem:
            raise CandidateError(f"candidates {first.name!r} and {c.name!r} differ: {problem}; "
                                 "soups need identical architectures")

    with_tokenizer = [c for c in candidates if _has_vocab_files(c.local_dir)]
    vocabs: dict = {}
    for c in with_tokenizer[1:]:
        problem = _vocab_diff(with_tokenizer[0], c, vocabs)
        if problem:
            raise CandidateError(f"candidates {with_tokenizer[0].name!r} and {c.name!r} differ: {problem}; "
                                 "soups need the same tokenizer")
    return CandidateSet(members=tuple(candidates), tensor_infos=ref.infos(), config=ref.config,
                tokenizer_dir=with_tokenizer[0].local_dir if with_tokenizer else None, cache_dir=cache_dir)


# -- the checks: each returns the first difference as a phrase, or None ------------------------
def _architecture_diff(a: dict, b: dict) -> str | None:
    def arch(cfg: dict) -> str:
        return f"{'/'.join(cfg.get('architectures') or ['?'])} ({cfg.get('model_type', '?')})"

    same_type = a.get("model_type") == b.get("model_type")
    if not same_type or (a.get("architectures") or None) != (b.get("architectures") or None):
        return f"architecture {arch(a)} vs {arch(b)}"
    return None


def _config_diff(a: dict, b: dict, name_a: str, name_b: str, prefix: str = "") -> str | None:
    for key in sorted(set(a) | set(b), key=lambda k: (k in DERIVED_CONFIG_KEYS, k)):
        if key in IGNORED_CONFIG_KEYS:
            continue
        va, vb, field = a.get(key), b.get(key), prefix + key
        if va is None and vb is None:
            continue
        if va is None or vb is None:
            has, lacks = (name_a, name_b) if vb is None else (name_b, name_a)
            return f"config field {field!r} is set in {has!r} but not in {lacks!r}"
        if isinstance(va, dict) and isinstance(vb, dict):
            problem = _config_diff(va, vb, name_a, name_b, field + ".")
            if problem:
                return problem
        elif va != vb:
            return f"config field {field!r} is {json.dumps(va)} vs {json.dumps(vb)}"
    return None


def _tensor_diff(a: dict[str, TensorInfo], b: dict[str, TensorInfo], name_a: str, name_b: str) -> str | None:
    for name in sorted(set(a) ^ set(b)):
        has, lacks = (name_a, name_b) if name in a else (name_b, name_a)
        return f"tensor {name!r} is in {has!r} but not in {lacks!r}"
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            return f"tensor {name!r} has shape {a[name].shape} vs {b[name].shape}"
    return None


def _has_vocab_files(path: Path) -> bool:
    return any((path / f).is_file() for f in VOCAB_FILES)


def _vocab_diff(a: Candidate, b: Candidate, vocabs: dict) -> str | None:
    both_json = (a.local_dir / "tokenizer.json").is_file() and (b.local_dir / "tokenizer.json").is_file()
    how = "json" if both_json else "auto"
    for c in (a, b):
        if (c.local_dir, how) not in vocabs:
            vocabs[c.local_dir, how] = _vocab(c.local_dir, how)
    va, vb = vocabs[a.local_dir, how], vocabs[b.local_dir, how]
    if va == vb:
        return None
    for token, i in sorted(va.items(), key=lambda kv: kv[1]):
        if token not in vb:
            return f"vocabulary token {token!r} (id {i}) is in {a.name!r} but not in {b.name!r}"
        if vb[token] != i:
            return f"vocabulary token {token!r} has id {i} vs {vb[token]}"
    token, i = min(((t, j) for t, j in vb.items() if t not in va), key=lambda kv: kv[1])
    return f"vocabulary token {token!r} (id {i}) is in {b.name!r} but not in {a.name!r}"


def _vocab(path: Path, how: str) -> dict[str, int]:
    """token -> id of the tokenizer in ``path``: from tokenizer.json ("json") or AutoTokenizer ("auto")."""
    if how == "json":
        file = path / "tokenizer.json"
        try:
            data = json.loads(file.read_text())
            vocab = data["model"]["vocab"]
            if isinstance(vocab, list):  # Unigram: [[piece, score], ...]
                vocab = {piece: i for i, (piece, _) in enumerate(vocab)}
            vocab = dict(vocab)
            vocab.update({t["content"]: t["id"] for t in data.get("added_tokens") or []})
            return vocab
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CandidateError(
                f"{file}: unreadable tokenizer ({type(err).__name__}: {err}); re-save the tokenizer") from None
    try:
        from transformers import AutoTokenizer

        return dict(AutoTokenizer.from_pretrained(str(path)).get_vocab())
    except Exception as err:  # transformers raises many types for a broken tokenizer
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CandidateError(f"{path}: cannot load its tokenizer ({msg}); re-save the tokenizer") from None
