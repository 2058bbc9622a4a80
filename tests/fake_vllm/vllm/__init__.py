"""A stand-in for vLLM 0.33's offline API (vLLM needs a GPU), with vLLM's process boundary.

Put ``tests/fake_vllm`` on ``sys.path`` (and ``PYTHONPATH`` for Ray workers) to import it as
``vllm``. It models what the soup-search adapter relies on and can get wrong:

- **Where the engine runs.** vLLM's engine core runs in another process unless
  ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (read when the ``LLM`` is built), and tensor-parallel
  workers are other processes whatever that variable says. Here too: the core is then a spawned
  process, and ``collective_rpc`` arguments cross it msgpack-encoded the way vLLM's
  ``MsgpackEncoder`` writes tensors (``[dtype, shape, buffer index]``) and are decoded without
  types, so a tensor arrives as that list. Results must be msgpack-safe too.
- **Workers.** The worker extension is imported by qualified name inside the core and mixed
  into the worker class. ``worker.get_model()`` returns the model (the documented accessor;
  ``model_runner.model`` is the runner's own attribute); its ``load_weights`` returns the names
  it loaded.
- **Tokenisation.** The front end tokenises a string prompt with the tokenizer's defaults
  (``add_special_tokens=True``, which for the zoo's tokenizer adds no BOS) and passes a
  ``TokensPrompt``'s ids as they are. Decoding is greedy, stops at EOS and drops special tokens
  from the text; an answer's ``token_ids`` end with that EOS.
- **``load_format="dummy"``** leaves every weight at a small random value.

Generation is a plain greedy loop over a transformers model, one prompt at a time, so the
answers are real and independent of the HF scorer's batched code.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import types
from dataclasses import dataclass

import msgpack
import torch

__version__ = "0.33.0"


@dataclass
class SamplingParams:
    temperature: float = 1.0
    max_tokens: int = 16
    stop: list[str] | None = None
    prompt_logprobs: int | None = None


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


def _pack(obj) -> bytes:
    """msgpack as vLLM's encoder writes it: a tensor becomes ``[dtype, shape, aux buffer index]``."""
    buffers: list[bytes] = []

    def tensor(obj):
        if isinstance(obj, torch.Tensor):
            buffers.append(obj.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            return [str(obj.dtype).removeprefix("torch."), list(obj.shape), len(buffers)]
        if isinstance(obj, tuple):
            return list(obj)
        raise TypeError(f"msgpack cannot encode {type(obj).__name__}")

    return msgpack.packb(obj, default=tensor)


def _unpack(blob: bytes):
    """Decoded untyped, as the engine core decodes ``collective_rpc`` arguments."""
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


class _Model:
    """What vLLM's model classes offer the adapter: ``named_parameters`` and ``load_weights``."""

    def __init__(self, hf):
        self.hf = hf

    def named_parameters(self):
        return self.hf.named_parameters()

    def parameters(self):
        return self.hf.parameters()

    def load_weights(self, weights) -> set[str]:
        state, loaded = self.hf.state_dict(), set()
        with torch.no_grad():
            for name, tensor in weights:
                param = state[name]
                if tensor.numel() != param.numel():  # (vLLM's default_weight_loader asks the same)
                    raise ValueError(f"{name}: {tuple(tensor.shape)} != {tuple(param.shape)}")
                param.copy_(tensor)
                loaded.add(name)
        return loaded


class _ModelRunner:
    def __init__(self, model):
        self.model = model

    def get_model(self):
        return self.model


class _WorkerBase:
    def __init__(self, model):
        self.model_runner = _ModelRunner(model)

    def get_model(self):
        return self.model_runner.get_model()


def _build_hf(model: str, load_format: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    if load_format == "dummy":
        hf = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model))
        with torch.no_grad():
            for p in hf.parameters():
                p.uniform_(-1e-3, 1e-3)
        return hf.eval()
    return AutoModelForCausalLM.from_pretrained(model).eval()


class _EngineCore:
    """The engine core: one worker per tensor-parallel rank, each holding a full replica."""

    def __init__(self, model: str, load_format: str, extension: str | None, tensor_parallel_size: int,
                 eos_token_id: int):
        bases = (_WorkerBase,)
        if extension:
            module, _, name = extension.rpartition(".")
            bases = (getattr(importlib.import_module(module), name), _WorkerBase)
        worker_cls = type("Worker", bases, {})
        self.workers = [worker_cls(_Model(_build_hf(model, load_format))) for _ in range(tensor_parallel_size)]
        self.eos = eos_token_id
        self.prefix_resets = 0
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model)

    def collective_rpc(self, method, args, kwargs):
        return [getattr(w, method)(*args, **(kwargs or {})) for w in self.workers]

    def reset_prefix_cache(self):
        self.prefix_resets += 1
        return os.environ.get("FAKE_VLLM_REFUSE_PREFIX_RESET") != "1"

    @torch.inference_mode()
    def generate(self, prompts: list[list[int]], max_tokens: int, stop: list[str] | None = None) -> list[list[int]]:
        """Greedy token ids per prompt; like vLLM, a stop string ends the answer at the token that
        completed it (the detokenizer checks the new text after every token)."""
        hf = self.workers[0].get_model().hf
        out = []
        for ids in prompts:
            seq, new = torch.tensor([ids]), []
            for _ in range(max_tokens):
                token = int(hf(seq).logits[0, -1].argmax())
                new.append(token)  # (an answer's token_ids end with the EOS it stopped at, as in vLLM)
                if token == self.eos:
                    break
                if stop and any(s in self.tokenizer.decode(new, skip_special_tokens=True) for s in stop):
                    break
                seq = torch.cat([seq, torch.tensor([[token]])], dim=1)
            out.append(new)
        return out

    @torch.inference_mode()
    def prompt_logprobs(self, prompts: list[list[int]], top: int) -> list[list]:
        """Per prompt, vLLM's prompt logprobs: None for the first token, then for each position
        ``[[token id, logprob, rank], ...]``: the prompt's own token and the ``top`` most likely."""
        hf = self.workers[0].get_model().hf
        out = []
        for ids in prompts:
            logprobs = torch.log_softmax(hf(torch.tensor([ids])).logits[0].float(), dim=-1)
            rows = [None]
            for pos in range(1, len(ids)):
                dist = logprobs[pos - 1]
                ranked = torch.argsort(dist, descending=True).tolist()
                wanted = dict.fromkeys([ids[pos], *ranked[:top]])
                rows.append([[t, float(dist[t]), ranked.index(t) + 1] for t in wanted])
            out.append(rows)
        return out


def _core_process(conn, kwargs):
    """The engine core's own process: build it, then answer msgpack requests until the pipe closes."""
    core = _EngineCore(**kwargs)
    while True:
        try:
            op, payload = _unpack(conn.recv_bytes())
        except EOFError:
            return
        try:
            conn.send_bytes(_pack(["ok", getattr(core, op)(*payload)]))
        except Exception as exc:  # noqa: BLE001 - sent back to the front end, as vLLM does
            conn.send_bytes(_pack(["error", f"{type(exc).__name__}: {exc}"]))


class EngineCoreError(RuntimeError):
    """An exception raised inside the out-of-process engine core."""


class _ProcessClient:
    def __init__(self, kwargs):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_core_process, args=(child, kwargs), daemon=True)
        self.proc.start()
        self.pid = self.proc.pid

    def call(self, op, *payload):
        self.conn.send_bytes(_pack([op, list(payload)]))
        status, result = _unpack(self.conn.recv_bytes())
        if status == "error":
            raise EngineCoreError(result)
        return result

    def close(self):
        self.conn.close()
        self.proc.join(timeout=30)


class _InprocClient:
    def __init__(self, kwargs):
        self.core = _EngineCore(**kwargs)
        self.pid = os.getpid()

    def call(self, op, *payload):
        return getattr(self.core, op)(*payload)

    def close(self):
        pass


def _text(tokenizer, ids, stop) -> str:
    """The answer's text as vLLM gives it: special tokens dropped, cut before a stop string."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    hits = [text.find(s) for s in stop or () if s in text]
    return text[:min(hits)] if hits else text


class LLM:
    def __init__(self, model: str, tokenizer: str | None = None, dtype: str = "auto", load_format: str = "auto",
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 worker_extension_cls: str | None = None, enforce_eager: bool = False, **kwargs):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
        multiprocess = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1").lower() not in ("0", "false")
        core = {"model": model, "load_format": load_format, "extension": worker_extension_cls,
                "tensor_parallel_size": tensor_parallel_size, "eos_token_id": self.tokenizer.eos_token_id}
        out_of_process = multiprocess or tensor_parallel_size > 1
        self.engine_core = (_ProcessClient if out_of_process else _InprocClient)(core)
        self.load_format = load_format
        if os.environ.get("FAKE_VLLM_LOG"):  # where tests read which engines were built, and how
            with open(os.environ["FAKE_VLLM_LOG"], "a") as fh:
                fh.write(json.dumps({"pid": os.getpid(), "in_process": not out_of_process,
                                     "load_format": load_format,
                                     "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\n")

    def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
        return self.engine_core.call("collective_rpc", method, tuple(args), kwargs)

    def reset_prefix_cache(self, reset_running_requests: bool = False, reset_connector: bool = False) -> bool:
        return self.engine_core.call("reset_prefix_cache")

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, **kwargs):
        params = sampling_params or SamplingParams()
        if params.temperature != 0:
            raise NotImplementedError("the stand-in decodes greedily only (temperature=0)")
        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        ids = [self.tokenizer(p)["input_ids"] if isinstance(p, str) else list(p["prompt_token_ids"])
               for p in prompts]
        new = self.engine_core.call("generate", ids, params.max_tokens, params.stop)
        if params.prompt_logprobs is not None:
            raw = self.engine_core.call("prompt_logprobs", ids, params.prompt_logprobs)
            logprobs = [[None if row is None else {t: Logprob(lp, rank, self.tokenizer.decode([t]))
                                                   for t, lp, rank in row} for row in rows] for rows in raw]
        else:
            logprobs = [None] * len(ids)
        return [types.SimpleNamespace(
            prompt=p if isinstance(p, str) else None, prompt_token_ids=i, prompt_logprobs=lp,
            outputs=[types.SimpleNamespace(text=_text(self.tokenizer, n, params.stop), token_ids=n)])
            for p, i, n, lp in zip(prompts, ids, new, logprobs)]

    def shutdown(self):
        self.engine_core.close()
