"""Our merges against mergekit's own ``mergekit-yaml`` on the same checkpoints and YAML.

Runs only where mergekit is available: importable in this interpreter, a ``mergekit-yaml``
on PATH, or ``$SOUP_SEARCH_MERGEKIT_YAML`` naming the executable (mergekit pins its own
dependencies, so it is best kept in a separate venv). Skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from soup_search.merge import MergeRecipe
from soup_search.merge.stream import merge_to_disk, resolve_model_paths


def mergekit_command() -> list[str] | None:
    if os.environ.get("SOUP_SEARCH_MERGEKIT_YAML"):
        return [os.environ["SOUP_SEARCH_MERGEKIT_YAML"]]
    if importlib.util.find_spec("mergekit") is not None:
        return [sys.executable, "-m", "mergekit.scripts.run_yaml"]
    exe = shutil.which("mergekit-yaml")
    return [exe] if exe else None


MERGEKIT = mergekit_command()
pytestmark = pytest.mark.skipif(MERGEKIT is None, reason="mergekit not available (set SOUP_SEARCH_MERGEKIT_YAML)")

CASES = {
    "linear": """
models:
  - {model: m0, parameters: {weight: 0.5}}
  - {model: m1, parameters: {weight: 0.3}}
  - {model: m2, parameters: {weight: [0.1, 0.9]}}
merge_method: linear
""",
    "linear_filters": """
models:
  - model: m0
    parameters:
      weight: [{filter: self_attn, value: 0.9}, {filter: mlp, value: [0.2, 0.8]}, {value: 0.4}]
  - {model: m1, parameters: {weight: 0.6}}
merge_method: linear
parameters: {normalize: false}
""",
    "task_arithmetic": """
models:
  - {model: m0}
  - {model: m1, parameters: {weight: 0.7}}
  - {model: m2, parameters: {weight: -0.4}}
  - {model: m3, parameters: {weight: 0.3}}
merge_method: task_arithmetic
base_model: m0
parameters: {lambda: 0.8}
""",
    "task_arithmetic_normalize": """
models:
  - {model: m1, parameters: {weight: 0.7}}
  - {model: m2, parameters: {weight: 0.5}}
merge_method: task_arithmetic
base_model: m0
parameters: {normalize: true}
""",
    "ties": """
models:
  - {model: m0}
  - {model: m1, parameters: {weight: 0.7, density: 0.5}}
  - {model: m2, parameters: {weight: 0.5, density: 0.3}}
  - {model: m3, parameters: {weight: 0.4, density: [0.2, 0.9]}}
merge_method: ties
base_model: m0
""",
    "ties_options": """
models:
  - {model: m1, parameters: {weight: 1.0}}
  - {model: m2, parameters: {weight: -0.5}}
  - {model: m3, parameters: {weight: 0.5, density: 0.7}}
merge_method: ties
base_model: m0
parameters: {density: 0.4, normalize: false, lambda: 1.5, rescale: true, int8_mask: true}
""",
    "interpolate_as_linear": """
models: [{model: m1}, {model: m2}]
merge_method: interpolate
parameters: {lambda: {attention: 0.3, mlp: [0.1, 0.9], default: 0.6}}
""",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_tensors_as_mergekit(case, candidates_dir, tmp_path):
    recipe = MergeRecipe.from_yaml(CASES[case])
    paths = resolve_model_paths(recipe, candidates_dir)
    data = yaml.safe_load(recipe.to_yaml())  # what a user would hand to mergekit
    for m in data["models"]:
        m["model"] = str(paths[m["model"]])
    if data.get("base_model"):
        data["base_model"] = str(paths[data["base_model"]])
    (tmp_path / "mk.yaml").write_text(yaml.safe_dump(data))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([*MERGEKIT, str(tmp_path / "mk.yaml"), str(tmp_path / "mk"), "--no-write-model-card",
                           "--no-copy-tokenizer"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = merge_to_disk(recipe, tmp_path / "ours", paths, progress=False)
    theirs = load_file(tmp_path / "mk" / "model.safetensors")
    mine = load_file(ours / "model.safetensors")
    assert set(theirs) == set(mine)
    for name, tensor in theirs.items():
        assert torch.allclose(mine[name], tensor, rtol=1e-5, atol=1e-6), name
