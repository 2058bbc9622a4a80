"""A vLLM worker extension (imported inside vLLM's workers by its qualified name).

vLLM mixes this class into each worker; ``LLM.collective_rpc("load_soup_weights", ...)``
then runs the method on every worker with ``self`` being the worker.
"""

from __future__ import annotations


class SoupWeightLoader:
    def load_soup_weights(self, weights) -> int:
        """Load ``(name, tensor)`` pairs in place with the model's own ``load_weights``."""
        device = next(self.model_runner.model.parameters()).device
        self.model_runner.model.load_weights(weights=((n, t.to(device)) for n, t in weights))
        return len(weights)
