"""Build the toy zoo: one base model trained on every toy category, then category experts.

The recipe, top to bottom: pick the size's spec → train the base on a uniform mixture →
fine-tune each expert from the base on a mixture that favours its categories, each
conflicting candidate on a conflicting convention for its categories, and the length pair
(verbose, terse) when the size has one → save every
model as a Hugging Face checkpoint (float32 safetensors + char tokenizer) → write
``manifest.json``. The whole zoo is written into a temp dir and renamed into place, and
cached under ``cache_dir("zoo", "<size>-<fingerprint>")`` so a second call returns at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from transformers import LlamaForCausalLM
from transformers.utils import logging as hf_logging

from soup_search.io.atomic import atomic_dir
from soup_search.io.paths import cache_dir
from soup_search.objectives import toy_tasks
from soup_search.objectives.toy import ToyObjective
from soup_search.zoo.conflict import SUFFIX, conflicting_examples
from soup_search.zoo.length import TERSE, VERBOSE, pair_mixture, verbose_examples
from soup_search.zoo.model import CODE_VERSION, ZooError, ZooSpec, get_spec, llama_config
from soup_search.zoo.tokenizer import build_char_tokenizer
from soup_search.zoo.train import CategoryData, train

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Zoo:
    """A built zoo on disk: the base checkpoint, the experts, the conflicting candidates and the
    length pair (name → dir)."""

    root: Path
    base: Path
    experts: dict[str, Path]
    size: str
    conflicting: dict[str, Path] = field(default_factory=dict)
    #: ``verbose`` and ``terse`` (:mod:`soup_search.zoo.length`), in a size with a length pair
    length_pair: dict[str, Path] = field(default_factory=dict)

    def candidates(self) -> dict[str, Path]:
        """The checkpoints a soup may take: the experts, the conflicting candidates, then the length pair."""
        return {**self.experts, **self.conflicting, **self.length_pair}

    def models(self) -> dict[str, Path]:
        """Every checkpoint of the zoo, base first, in build order."""
        return {"base": self.base, **self.candidates()}

    @property
    def manifest(self) -> dict:
        return json.loads((self.root / MANIFEST).read_text())

    @classmethod
    def load(cls, root: str | Path) -> Zoo:
        """The zoo at ``root``, read from its ``manifest.json``."""
        root = Path(root)
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise ZooError(f"{root} is not a built zoo ({MANIFEST} unreadable: {exc}); "
                           "run `soup-search zoo build` first") from None
        models = manifest["models"]
        base = next(m for m in models if m["role"] == "base")
        experts = {m["name"]: root / m["path"] for m in models if m["role"] == "expert"}
        conflicting = {m["name"]: root / m["path"] for m in models if m["role"] == "conflicting"}
        pair = {m["name"]: root / m["path"] for m in models if m["role"] in (VERBOSE, TERSE)}
        return cls(root=root, base=root / base["path"], experts=experts, size=manifest["size"],
                   conflicting=conflicting, length_pair=pair)


def fingerprint(spec: ZooSpec, seed: int) -> str:
    """Hash of the spec, the seed, the code version and the toy task definitions."""
    toy_src = hashlib.blake2b(inspect.getsource(toy_tasks).encode(), digest_size=6).hexdigest()
    return hashlib.blake2b(f"{spec.fingerprint(seed)}/{toy_src}/{CODE_VERSION}".encode(),
                           digest_size=6).hexdigest()


def build_zoo(size: str = "default", out: str | Path | None = None, seed: int = 0,
              progress: bool = True, force: bool = False) -> Zoo:
    """Build (or fetch from the cache) the toy zoo of ``size``; ``out`` puts it in that dir instead."""
    name, spec = get_spec(size)
    fp = fingerprint(spec, seed)
    cached = cache_dir("zoo") / f"{name}-{fp}"
    target = Path(out).expanduser() if out is not None else cached
    if not force and _is_zoo(target, fp):
        return Zoo.load(target)
    if out is not None:
        _check_out(target)
        if not force and _is_zoo(cached, fp):
            with atomic_dir(target) as tmp:
                shutil.copytree(cached, tmp, dirs_exist_ok=True)
            return Zoo.load(target)
    with atomic_dir(target) as tmp:
        _build_into(tmp, name, spec, seed, fp, progress)
    return Zoo.load(target)


def _is_zoo(root: Path, fp: str) -> bool:
    try:
        return json.loads((root / MANIFEST).read_text()).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


def _check_out(target: Path) -> None:
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST).exists())):
        raise ZooError(f"--out {target} exists and is not a zoo; choose an empty or new directory")


#: torch threads while training: fixed (not taken from the machine) so a build gives the same
#: weights everywhere. Models this small run as fast on one thread as on two, and a second
#: thread slows training 4-8x when the cores are shared (spin-waiting), so one it is.
TRAIN_THREADS = 1


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Train with :data:`TRAIN_THREADS` torch threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _build_into(root: Path, name: str, spec: ZooSpec, seed: int, fp: str, progress: bool) -> None:
    start, cpu_start = time.perf_counter(), time.process_time()
    hf_logging.disable_progress_bar()  # our own bars only, no "Writing model shards"
    tokenizer = build_char_tokenizer()
    objective = ToyObjective(seed=seed, categories=spec.categories, n_train=spec.n_train)
    train_examples = objective.examples("train")
    if spec.conflicting:
        train_examples = [*train_examples, *conflicting_examples(train_examples)]
    pair = spec.length_pair
    if pair:
        train_examples = [*train_examples, *verbose_examples(train_examples, pair.pause)]
    data = CategoryData(tokenizer, train_examples)
    jobs = [("base", "base", (), spec.base_steps)]
    jobs += [(f"expert_{key}", "expert", cats, spec.expert_steps) for key, cats in spec.experts.items()]
    jobs += [(f"conflict_{key}", "conflicting", cats, spec.expert_steps) for key, cats in spec.conflicting.items()]
    if pair:
        jobs += [(VERBOSE, VERBOSE, (), pair.verbose_steps), (TERSE, TERSE, (), pair.terse_steps)]
    models: list[dict] = []
    with single_thread(), _progress(progress, jobs) as advance:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(llama_config(spec, tokenizer))
        base_state: dict | None = None
        for i, (model_name, role, cats, steps) in enumerate(jobs):
            if role == "base":
                mixture = {c: 1.0 for c in spec.categories}
                lr, floor = spec.base_lr, spec.base_floor
            elif role in (VERBOSE, TERSE):
                model.load_state_dict(base_state)
                mixture = pair_mixture(role, spec.categories)
                lr, floor = pair.lr, spec.expert_floor
            else:
                model.load_state_dict(base_state)
                focus = cats if role == "expert" else tuple(c + SUFFIX for c in cats)
                mixture = expert_mixture(spec, focus)
                lr = spec.expert_lr if role == "expert" else spec.conflict_lr
                floor = spec.expert_floor
            loss = train(model, data, mixture, steps=steps, lr=lr, batch_size=spec.batch_size,
                         seed=seed * 1000 + i, warmup=spec.warmup, floor=floor,
                         weight_decay=spec.weight_decay, on_step=lambda s, _l, k=i: advance(k))
            if role == "base":
                base_state = {k: v.clone() for k, v in model.state_dict().items()}
            _save(model, tokenizer, root / model_name)
            models.append({"name": model_name, "role": role, "path": model_name,
                           "categories": list(cats) if cats else list(spec.categories),
                           "final_train_loss": round(loss, 5)})
    manifest = {
        "size": name, "seed": seed, "fingerprint": fp, "code_version": CODE_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - start, 2),
        "build_cpu_seconds": round(time.process_time() - cpu_start, 2),
        "torch_threads": TRAIN_THREADS,
        "spec": asdict(spec), "models": models,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def expert_mixture(spec: ZooSpec, focus: tuple[str, ...]) -> dict[str, float]:
    """Sampling weights of a fine-tune: ``focus`` spread over the ``focus`` categories (conflicting
    ones included), the rest replays every category of the spec."""
    replay = (1.0 - spec.focus) / len(spec.categories)
    keys = dict.fromkeys([*spec.categories, *focus])
    return {c: (replay if c in spec.categories else 0.0) + (spec.focus / len(focus) if c in focus else 0.0)
            for c in keys}


def _save(model, tokenizer, path: Path) -> None:
    model.to(torch.float32)
    gen = model.generation_config
    gen.do_sample, gen.max_new_tokens = False, 16
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


@contextlib.contextmanager
def _progress(enabled: bool, jobs: list[tuple]) -> Iterator:
    """A rich progress bar per model; yields ``advance(job_index)``."""
    if not enabled:
        yield lambda _k: None
        return
    with Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=False) as bar:
        tasks = [bar.add_task(f"train {name}", total=steps, start=False) for name, _r, _c, steps in jobs]

        def advance(k: int) -> None:
            if not bar.tasks[k].started:
                bar.start_task(tasks[k])
            bar.advance(tasks[k])

        yield advance
