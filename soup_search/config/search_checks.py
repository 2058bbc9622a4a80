"""The search section's problems: its sampler and budget, the merge method and its parameters,
the searches of given models (interpolate, task_vector), and the candidates they name."""

from __future__ import annotations

from pydantic import ValidationError

from soup_search.config.models import (
    GIVEN_MODEL_METHODS, INTERPOLATE, MIN_EXPERTS, SAMPLERS, TASK_VECTOR, SearchConfig, candidate_name,
)
from soup_search.io.remote import is_url

def search_problems(s: SearchConfig) -> list[str]:
    problems = []
    if s.sampler not in SAMPLERS:
        problems.append(f"'search.sampler': unknown sampler {s.sampler!r}; use one of {', '.join(SAMPLERS)}")
    if s.n_trials <= 0:
        problems.append(f"'search.n_trials' must be > 0, got {s.n_trials}")
    if s.chunks < 1:
        problems.append(f"'search.chunks' must be >= 1, got {s.chunks}")
    elif s.prune and s.chunks < 2:
        problems.append("'search.prune' needs 'search.chunks' >= 2 (a trial is judged after each chunk but "
                        "the last); raise search.chunks or set search.prune: false")
    problems += _method_problems(s)
    if s.min_weight * MIN_EXPERTS >= 1:
        problems.append(f"'search.min_weight' {s.min_weight:g} leaves no room: every soup has at least "
                        f"{MIN_EXPERTS} experts, so it must be below {1 / MIN_EXPERTS:g}")
    return problems


def _method_problems(s: SearchConfig) -> list[str]:
    """What is wrong with ``search.method`` and its settings."""
    if s.method in GIVEN_MODEL_METHODS:
        return _given_model_problems(s)
    misplaced = [(key, INTERPOLATE if key == "pair" else TASK_VECTOR) for key in ("pair", "target", "vectors", "alpha_range")
                 if getattr(s, key)]
    return [f"'search.{key}' is only for search.method {method}; remove it" for key, method in misplaced] + \
        _merge_method_problems(s)


def _given_model_problems(s: SearchConfig) -> list[str]:
    """The settings of a search of given models (interpolate, task_vector); the names are checked
    against the candidates by :func:`given_model_names_problems`."""
    problems = []
    keys = {INTERPOLATE: ("pair",), TASK_VECTOR: ("target", "vectors", "alpha_range")}
    for method, owned in keys.items():
        problems += [f"'search.{key}' is only for search.method {method}; remove it"
                     for key in owned if method != s.method and getattr(s, key)]
    if s.base_model:
        problems.append(f"'search.base_model' is not used by search.method {s.method} "
                        f"({'it has no base' if s.method == INTERPOLATE else 'its base is search.target'}): remove it")
    for key in ("method_params", "lambda_range"):
        if getattr(s, key):
            problems.append(f"'search.{key}' is not used by search.method {s.method} (it searches "
                            f"{'lambda in [0, 1]' if s.method == INTERPOLATE else 'one alpha per vector'}): remove it")
    if s.min_weight:
        problems.append(f"'search.min_weight' is not used by search.method {s.method}: remove it")
    if s.weights != "stick":
        problems.append(f"'search.weights' is not used by search.method {s.method}: remove it")
    if s.method == INTERPOLATE:
        if s.pair is None:
            problems.append("'search.pair' is required by search.method interpolate: name the two candidates "
                            "[A, B] of lambda·A + (1 − lambda)·B")
        elif s.pair[0] == s.pair[1]:
            problems.append(f"'search.pair' names {s.pair[0]!r} twice; give two different candidates")
        return problems
    if s.per_module:
        problems.append("'search.per_module' is not supported by search.method task_vector (one alpha per vector "
                        "for the whole model): remove it")
    if not s.target:
        problems.append("'search.target' is required by search.method task_vector: name the candidate the "
                        "vectors are added to")
    if not s.vectors:
        problems.append("'search.vectors' is required by search.method task_vector: give one or more "
                        "{plus: A, minus: B} (candidates, fine-tunes of one base)")
    seen = set()
    for i, v in enumerate(s.vectors):
        if v.plus == v.minus:
            problems.append(f"'search.vectors[{i}]': plus and minus are both {v.plus!r}, a zero vector; "
                            "give two different candidates")
        elif (v.plus, v.minus) in seen:
            problems.append(f"'search.vectors[{i}]': {v.plus} − {v.minus} is given twice; remove one")
        seen.add((v.plus, v.minus))
    if s.alpha_range is not None:
        low, high = s.alpha_range
        if not low <= 0 < 1 <= high:
            problems.append(f"'search.alpha_range' must be [low, high] with low <= 0 and high >= 1 (the baselines: "
                            f"the target at alpha 0, each vector at 1), got [{low:g}, {high:g}]")
    return problems


def _merge_method_problems(s: SearchConfig) -> list[str]:
    """What is wrong with a merge method as ``search.method`` (the registry is read lazily: it imports torch)."""
    from soup_search.errors import MergeError
    from soup_search.merge.registry import get_method

    try:
        method = get_method(s.method)
    except MergeError as exc:
        return [f"'search.method': {exc}"]
    if method.whole_model:
        return [f"'search.method' {s.method} merges whole models (forward and backward passes), which the search's "
                "per-tensor shard actors cannot do; merge it alone with `soup-search merge RECIPE.yaml OUT`, or "
                "search with linear, task_arithmetic, ties, tsv or wudi"]
    if method.base == "forbidden" or method.num_models is not None:
        return [f"'search.method' {s.method} merges a fixed set of models, not the experts the search picks; "
                "use a method such as linear, task_arithmetic, ties, tsv or wudi"]
    specs = {p.name: p for p in method.params}
    if "weight" not in specs or specs["weight"].scope != "model":
        return [f"'search.method' {s.method} takes no per-model weight to search; use linear, task_arithmetic, ties, tsv or wudi"]
    problems = []
    if method.base == "required" and not s.base_model:
        problems.append(f"'search.base_model' is required by search.method {s.method} (its task vectors are taken "
                        "against it): name a candidate, e.g. base with candidates.include_base: true")
    if method.base != "required" and s.base_model:
        problems.append(f"'search.base_model' is only for methods with task vectors; search.method {s.method} takes "
                        "none: remove it")
    for key in s.method_params:  # (a per-model parameter given here applies to every model)
        if key == "weight":
            problems.append("'search.method_params.weight': the search chooses the weights; remove it")
        elif key not in specs:
            allowed = ", ".join(sorted(n for n in specs if n != "weight")) or "none"
            problems.append(f"'search.method_params.{key}' is not a parameter of {s.method}; use: {allowed}")
    if s.lambda_range is not None:
        low, high = s.lambda_range
        if "lambda" not in specs:
            problems.append(f"'search.lambda_range': {s.method} has no lambda; remove it")
        elif not 0 <= low < high:
            problems.append(f"'search.lambda_range' must be [low, high] with 0 <= low < high, got [{low:g}, {high:g}]")
        if "lambda" in s.method_params:
            problems.append("'search.method_params.lambda' and 'search.lambda_range' both set lambda; keep one")
    return problems


def base_model_problems(data: dict, resolve) -> list[str]:
    """``search.base_model`` names a candidate; a method search cannot be a lineage child (yet)."""
    search = data.get("search") if isinstance(data.get("search"), dict) else {}
    cands = data.get("candidates") if isinstance(data.get("candidates"), dict) else {}
    problems = []
    if search.get("method", "linear") != "linear" and data.get("lineage"):
        problems.append(f"'lineage' carries linear soups only; a search.method {search['method']} run cannot be "
                        "a lineage child: remove lineage, or use search.method: linear")
    base = search.get("base_model")
    if not isinstance(base, str) or not base or search.get("method") in GIVEN_MODEL_METHODS:
        return problems  # (a search of given models takes no base_model: _given_model_problems)
    if cands.get("zoo") and base == "base":
        if not cands.get("include_base"):
            problems.append("'search.base_model' base is the zoo's base model: set candidates.include_base: true")
        return problems
    paths = cands.get("paths") if isinstance(cands.get("paths"), list) else []
    names = {candidate_name(p if is_url(p) else str(resolve(p))) for p in paths if isinstance(p, str)}
    if not cands.get("zoo") and base not in names:
        problems.append(f"'search.base_model' {base!r} is not a candidate; name one of: {', '.join(sorted(names)) or '(none)'}")
    return problems


def _candidate_names(cands: dict, resolve) -> set[str] | None:
    """The names of the candidates of a ``candidates`` section (None: a zoo size that does not exist)."""
    from soup_search.errors import ZooError
    from soup_search.zoo import get_spec

    names = set()
    if cands.get("zoo"):
        try:
            spec = get_spec(cands["zoo"])[1]
        except ZooError:
            return None  # reported by the candidates section
        names |= set(spec.candidate_names())
        names |= {"base"} if cands.get("include_base") else set()
    paths = cands.get("paths") if isinstance(cands.get("paths"), list) else []
    return names | {candidate_name(p if is_url(p) else str(resolve(p))) for p in paths if isinstance(p, str)}


def given_model_names_problems(data: dict, resolve) -> list[str]:
    """The models a search of given models names (search.pair, target, vectors) must be candidates."""
    search = data.get("search") if isinstance(data.get("search"), dict) else {}
    cands = data.get("candidates") if isinstance(data.get("candidates"), dict) else {}
    if search.get("method") not in GIVEN_MODEL_METHODS:
        return []
    try:
        s = SearchConfig.model_validate(search)
    except ValidationError:
        return []  # reported by the search section
    names = _candidate_names(cands, resolve)
    if names is None:
        return []
    named = [("search.pair", n) for n in (s.pair or ()) if s.method == INTERPOLATE]
    if s.method == TASK_VECTOR:
        named += [("search.target", s.target)] if s.target else []
        named += [(f"search.vectors[{i}].{side}", getattr(v, side)) for i, v in enumerate(s.vectors)
                  for side in ("plus", "minus")]
    problems = []
    for key, name in named:
        if name in names:
            continue
        if name == "base" and cands.get("zoo"):
            problems.append(f"'{key}' base is the zoo's base model: set candidates.include_base: true")
        else:
            problems.append(f"'{key}' {name!r} is not a candidate; name one of: {', '.join(sorted(names)) or '(none)'}")
    return list(dict.fromkeys(problems))

