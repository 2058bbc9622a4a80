"""mergekit YAML recipes: validation (all problems at once), round trip, fingerprints."""

from __future__ import annotations

import pytest
import yaml

from soup_search.errors import ConfigError
from soup_search.merge import MergeRecipe, reasoning_vector

TIES = """
models:
  - model: base
  - model: a
    parameters:
      weight: [{filter: self_attn, value: [0.1, 0.9]}, {filter: mlp, value: 0.5}, {value: 0.3}]
      density: 0.5
  - model: /abs/b
    parameters: {weight: 0.7, density: [0.2, 0.8]}
merge_method: ties
base_model: base
parameters: {normalize: false, lambda: 1.3, int8_mask: true}
dtype: bfloat16
tokenizer_source: base
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        MergeRecipe.from_yaml(text)
    return info.value.problems


def test_reads_mergekit_ties_yaml():
    r = MergeRecipe.from_yaml(TIES)
    assert r.merge_method == "ties" and r.base_model == "base" and r.dtype == "bfloat16"
    assert [m.model for m in r.models] == ["base", "a", "/abs/b"]
    assert r.model_keys == ["base", "a", "/abs/b"]
    assert r.notes() and "int8_mask" in r.notes()[0]


@pytest.mark.parametrize("text", [
    TIES,
    "models: [{model: m0, parameters: {weight: 1}}, {model: m1, parameters: {weight: 2}}]\nmerge_method: linear\n",
    "models: [{model: x}, {model: y, parameters: {weight: -1.5}}]\nmerge_method: task_arithmetic\n"
    "base_model: x\nparameters: {lambda: [0.5, 1.0]}\nout_dtype: float16\n",
])
def test_yaml_round_trip(text):
    r = MergeRecipe.from_yaml(text)
    again = MergeRecipe.from_yaml(r.to_yaml())
    assert again == r
    assert again.fingerprint() == r.fingerprint()
    assert yaml.safe_load(r.to_yaml())["merge_method"] == r.merge_method


def test_gradient_lists_are_written_in_flow_style():
    text = MergeRecipe.from_yaml(TIES).to_yaml()
    assert "value: [0.1, 0.9]" in text and "density: [0.2, 0.8]" in text


def test_all_problems_reported_at_once():
    problems = problems_of("""
models:
  - model: a
    parameters: {weight: yes, foo: 1, normalize: true}
  - model: b
  - {model: a, parameters: {weight: 1}}
merge_method: ties
slices: []
colour: red
parameters: {density: [{filter: 3, value: 0.5}], bar: 1}
dtype: float8
""")
    text = " | ".join(problems)
    for needle in ["slices", "'colour'", "needs a base_model", "parameters.bar", "filter: must be a string",
                   "models[0].parameters.weight", "models[0].parameters.foo", "global parameter",
                   "model 'b' has no weight", "'a' is listed more than once", "dtype"]:
        assert needle in text, needle
    assert len(problems) >= 11


def test_unknown_method_and_message_is_one_line():
    with pytest.raises(ConfigError) as info:
        MergeRecipe.from_yaml("models: [{model: a, parameters: {weight: 1}}]\nmerge_method: frankenmerge\n")
    assert "frankenmerge" in str(info.value) and "linear" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, needle", [
    ("models: [{model: a}, {model: b}]\nmerge_method: interpolate\n", "parameters.lambda: required"),
    ("models: [{model: a}]\nmerge_method: interpolate\nparameters: {lambda: 0.5}\n", "exactly 2 models"),
    ("models: [{model: a}, {model: b}]\nmerge_method: interpolate\nparameters: {lambda: {mlp: 0.2}}\n", "'default'"),
    ("models: [{model: a}, {model: b}]\nmerge_method: interpolate\nbase_model: a\nparameters: {lambda: 0.5}\n",
     "takes no base_model"),
    ("models: [{model: a, parameters: {weight: 1}}]\nmerge_method: linear\nbase_model: z\n", "base_model (mergekit adds"),
    ("models: [{model: a, parameters: {weight: 1}}]\nmerge_method: linear\ntokenizer_source: union\n", "union"),
    ("models: a\nmerge_method: linear\n", "models: expected"),
    ("- just\n- a list\n", "expected a mapping"),
    ("models: [{model: a, parameters: {weight: 1}}\nmerge_method: linear\n", "invalid YAML"),
])
def test_single_problems(text, needle):
    assert any(needle in p for p in problems_of(text)), problems_of(text)


def test_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models: []\nmerge_method: linear\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        MergeRecipe.from_yaml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        MergeRecipe.from_yaml(tmp_path / "missing.yaml")


def test_fingerprint_ignores_key_order_float_spelling_defaults_and_model_order():
    a = MergeRecipe.from_yaml("""
models:
  - {model: m0, parameters: {weight: 0.3}}
  - {model: m1, parameters: {weight: 0.7}}
merge_method: linear
""")
    b = MergeRecipe.from_yaml("""
merge_method: linear
parameters: {normalize: true}
models:
  - {parameters: {weight: 7.0e-1}, model: m1}
  - {model: m0, parameters: {weight: 0.30000000000000004}}
""")
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() == MergeRecipe.soup({"m1": 0.7, "m0": 0.3}).fingerprint()
    assert len(a.fingerprint()) == 16
    assert a.fingerprint() != MergeRecipe.soup({"m0": 0.31, "m1": 0.69}).fingerprint()
    assert a.fingerprint() != MergeRecipe.soup({"m0": 0.3, "m1": 0.7}, normalize=False).fingerprint()
    assert a.fingerprint() != MergeRecipe.soup({"m0": 0.3, "m1": 0.7}, method="task_arithmetic",
                                               base_model="m0").fingerprint()


def test_fingerprint_of_order_sensitive_interpolate_and_ignored_settings():
    ab = MergeRecipe.from_yaml("models: [{model: a}, {model: b}]\nmerge_method: interpolate\nparameters: {lambda: 0.3}\n")
    ba = MergeRecipe.from_yaml("models: [{model: b}, {model: a}]\nmerge_method: interpolate\nparameters: {lambda: 0.3}\n")
    assert ab.fingerprint() != ba.fingerprint()
    t1 = MergeRecipe.soup({"a": 0.5, "b": 0.5}, method="ties", base_model="z", density=0.4)
    t2 = MergeRecipe.soup({"a": 0.5, "b": 0.5}, method="ties", base_model="z", density=0.4, int8_mask=True)
    assert t1.fingerprint() == t2.fingerprint()  # int8_mask changes nothing


def test_fingerprint_is_stable_across_processes():
    import os
    import subprocess
    import sys

    code = "from soup_search.merge import MergeRecipe; print(MergeRecipe.soup({'m1': 0.5, 'm0': 0.5}).fingerprint())"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    r = MergeRecipe.soup({"m0": 0.5, "m1": 0.5})
    assert other.stdout.strip() == r.fingerprint()
    assert hash(r) == hash(MergeRecipe.soup({"m1": 0.5, "m0": 0.5}))


def test_soup_and_reasoning_vector_recipes():
    s = MergeRecipe.soup({"x": 1, "y": 3}, method="ties", base_model="b", density=0.5)
    assert s.parameters == {"density": 0.5}
    assert [m.parameters["weight"] for m in s.models] == [1.0, 3.0]
    with pytest.raises(ConfigError, match="unknown parameter"):
        MergeRecipe.soup({"x": 1}, nonsense=2)
    rv = reasoning_vector("t", "a", "b", alpha=0.25, dtype="bfloat16")
    assert rv.base_model == "t" and rv.parameters == {"normalize": False, "lambda": 1.0}
    assert {m.model: m.parameters.get("weight") for m in rv.models} == {"t": None, "a": 0.25, "b": -0.25}
    assert rv.dtype == "bfloat16"


def test_interpolate_to_yaml_is_mergekit_linear():
    r = MergeRecipe.from_yaml("""
models: [{model: a}, {model: b}]
merge_method: interpolate
parameters: {lambda: {attention: 0.3, mlp: [0.1, 0.9], default: 0.6}}
""")
    data = yaml.safe_load(r.to_yaml())
    assert r.to_yaml().startswith("# ")
    assert data["merge_method"] == "linear" and data["parameters"] == {"normalize": False}
    wa, wb = (m["parameters"]["weight"] for m in data["models"])
    assert wa == [{"filter": "self_attn", "value": 0.3}, {"filter": "mlp", "value": [0.1, 0.9]}, {"value": 0.6}]
    assert wb == [{"filter": "self_attn", "value": 0.7}, {"filter": "mlp", "value": [0.9, 0.1]}, {"value": 0.4}]


def test_model_copy_validates_and_does_not_share_the_plan_cache():
    import torch

    from soup_search.merge import merge_tensor

    r = MergeRecipe.soup({"a": 1.0, "b": 3.0})
    ts = {"a": torch.ones(2), "b": torch.zeros(2)}
    assert merge_tensor(r, "x", ts).tolist() == [0.25, 0.25]
    copy = r.model_copy(update={"models": [{"model": "a", "parameters": {"weight": 1.0}},
                                           {"model": "b", "parameters": {"weight": 1.0}}], "dtype": "torch.float16"})
    assert copy.dtype == "float16"
    assert merge_tensor(copy, "x", ts).tolist() == [0.5, 0.5]
    with pytest.raises(ConfigError):
        r.model_copy(update={"merge_method": "nope"})


def test_pickles_without_its_plan_cache():
    import pickle

    import torch

    from soup_search.merge import merge_tensor

    r = MergeRecipe.soup({"a": 0.5, "b": 0.5})
    merge_tensor(r, "x", {"a": torch.ones(2), "b": torch.ones(2)})
    again = pickle.loads(pickle.dumps(r))
    assert again == r and again._plans == {}
    assert merge_tensor(again, "x", {"a": torch.ones(2), "b": torch.ones(2)}).tolist() == [1.0, 1.0]
