"""Retrofitted depth recurrence (McLeish et al., arXiv 2511.07384) on the toy zoo's Llama models.

``soup-search recur CHECKPOINT --split P,R,C --curriculum ... --steps N --out DIR`` turns a
trained Llama into a depth-recurrent model, trains it on, and measures whether more recurrences
at test time help. Modules, in the order the recipe (:mod:`.run`) uses them:

- :mod:`.surgery`: split the layers, build the recurrent model, save and load it;
- :mod:`.modeling`: the model class (self-contained, copied beside every checkpoint);
- :mod:`.curriculum`: ``--curriculum`` parsed into a schedule of mean recurrences, and the draw;
- :mod:`.train`: the continued-training loop;
- :mod:`.evaluate`: test accuracy per number of recurrences, with binomial 95% intervals;
- :mod:`.report`: the run's record and its JSON, CSV table and PNG plot.

What follows the paper (and Huginn, arXiv 2502.05171, whose recurrent block it reuses):

- the layers split into prelude, recurrent block and coda; the parent's pretrained weights
  initialise all three;
- the block's input is ``adapter(concat[s, e])``, a 2h → h linear map of the recurrent state ``s``
  and the prelude's output ``e``; the state starts as truncated normal noise of std
  ``sqrt(2/(5h))`` (Huginn's, with the embedding scale 1 that conversions built on the authors'
  code set);
- each training step draws its number of recurrences from a Poisson-log-normal law (σ = 0.5)
  around the scheduled mean, and backpropagates through the last ``--backprop-depth`` (8)
  recurrences only (truncated backpropagation);
- the curriculum raises the mean over training, ``linear`` or ``1-sqrt`` over a share of the run
  then constant, as the paper's scheduler does.

What is simplified, or chosen here:

- **No layers are dropped and the split must cover every layer.** The paper keeps, e.g., 4
  prelude, 8 block and 4 coda layers out of TinyLlama's 22; here ``P + R + C`` must equal the
  checkpoint's layer count. The zoo's models have **2 layers**, so no zoo model takes (2,2,2);
  rather than train a separate, deeper base (and a second set of weights to keep in sync with
  the zoo), the command accepts an empty prelude or coda (``P, C >= 0``, ``R >= 1``): ``1,1,0``
  loops the second layer (``e`` is the first layer's output, the coda is the final norm and
  head); ``0,1,1`` loops the first (``e`` is the token embedding). The paper never uses an empty
  prelude or coda.
- **The adapter starts as [0 | I]** (it passes ``e`` through and ignores the state), so the model
  right after surgery is exactly the parent at every depth; training must then teach it to use
  the state. (We could not confirm the authors' own adapter initialisation; this is the
  function-preserving choice, also made by some conversions built on their code.)
- **The draw is ``1 + Poisson(λ)``, λ log-normal with mean ``mean - 1``,** so the expected count
  is the scheduled mean itself (Huginn's ``Poisson(λ) + 1`` with λ of mean ``mean`` lands one
  above it), and a mean of 1 means exactly one recurrence, no noise. Fractional means are used
  as they are (the paper rounds the schedule up to whole numbers).
- **The backprop depth is fixed** (the paper can also schedule it), and the optimiser is the zoo's
  AdamW with warmup and cosine decay (the paper prefers Muon). There is no "healing" phase on
  general text: the toy train split is the only data.
- **At inference the state starts at zero** (Huginn's deterministic option), so answers do not
  depend on noise; and there is **no KV cache**: each new token re-reads the prompt, which is
  cheap for the toy answers (8 tokens at most).
- **The baseline is twofold:** the parent as it is, and the parent trained the same steps on the
  same batches without recurrence (``--no-control`` skips it), so that a gain is not mistaken
  for the effect of more training. The paper compares at equal training FLOPs instead.

The checkpoint loads through ``trust_remote_code``: ``modeling.py`` (torch and transformers
only) is saved beside the weights and named in ``config.json``'s ``auto_map``, so
``AutoModelForCausalLM.from_pretrained(DIR/model, trust_remote_code=True)`` works offline
anywhere transformers is installed, without soup-search, and nothing is registered globally on
import. (A class registered with ``AutoModelForCausalLM.register`` would load only where
soup-search is imported first.)
"""

from soup_search.recur.curriculum import Curriculum, parse_curriculum, sample_recurrences
from soup_search.recur.modeling import RecurrentLlamaConfig, RecurrentLlamaForCausalLM
from soup_search.recur.surgery import load_recurrent, parse_split, retrofit, save_recurrent

__all__ = [
    "Curriculum",
    "RecurrentLlamaConfig",
    "RecurrentLlamaForCausalLM",
    "load_recurrent",
    "parse_curriculum",
    "parse_split",
    "retrofit",
    "sample_recurrences",
    "save_recurrent",
]
