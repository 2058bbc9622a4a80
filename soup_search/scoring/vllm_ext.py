"""A vLLM worker extension (imported inside vLLM's workers by its qualified name).

vLLM mixes this class into each worker (``LLM(worker_extension_cls=...)``);
``LLM.collective_rpc(method, args=...)`` then runs a method on every worker with ``self`` being
the worker. Both methods load through the model's own ``load_weights`` (which knows vLLM's fused
qkv / gate_up layouts and slices tensor-parallel shards) and answer msgpack-safe values: the
names of the model's parameters that the weights did not cover, so that the caller can refuse a
soup that left a parameter at its ``load_format="dummy"`` value.

- :meth:`load_soup_weights` takes tensors. Only the in-process engine
  (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, tensor parallel 1) can be handed them: across vLLM's
  process boundary ``collective_rpc`` arguments are msgpack-encoded and arrive as plain lists.
- :meth:`load_soup_file` takes the path of a safetensors file (a string crosses any boundary);
  every tensor-parallel worker reads it from tmpfs.
"""

from __future__ import annotations

from collections.abc import Iterable


class SoupWeightLoader:
    def _load(self, weights: Iterable) -> list[str]:
        model = self.get_model()
        expected = {name for name, _ in model.named_parameters()}
        loaded = model.load_weights(weights)
        return sorted(expected - set(loaded or ()))

    def load_soup_weights(self, weights) -> list[str]:
        """Load ``(name, tensor)`` pairs in place; the parameters left out, by name."""
        import torch

        def checked():
            for name, tensor in weights:
                if not isinstance(tensor, torch.Tensor):
                    raise TypeError(
                        f"weight {name!r} reached the vLLM worker as {type(tensor).__name__}, not a tensor: "
                        "it crossed vLLM's process boundary (msgpack); load through load_soup_file instead")
                yield name, tensor

        return self._load(checked())

    def load_soup_file(self, path: str) -> list[str]:
        """Load every tensor of the safetensors file at ``path``; the parameters left out, by name."""
        from safetensors import safe_open

        with safe_open(path, framework="pt") as fh:
            return self._load((name, fh.get_tensor(name)) for name in fh.keys())
