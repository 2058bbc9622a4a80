"""The short README.md model card written next to a merged checkpoint."""

from __future__ import annotations

from soup_search.merge.recipe import MergeRecipe


def model_card(recipe: MergeRecipe, sources: dict[str, str] | None = None) -> str:
    """Markdown naming the method, the inputs and the recipe (its mergekit YAML inside)."""
    method = recipe.method
    lines = [
        "---",
        "library_name: transformers",
        "tags: [merge, soup-search]",
        "---",
        "",
        "# Merged model",
        "",
        f"Made with soup-search using the **{recipe.merge_method}** merge method"
        + (f" ({method.reference})." if method.reference else "."),
        "",
    ]
    if recipe.base_model:
        lines += [f"Base model: `{recipe.base_model}`", ""]
    lines += ["Models merged:", ""]
    lines += [f"- `{m.model}`" + (f" ({sources[m.model]})" if sources and m.model in sources else "")
              for m in recipe.models]
    lines += [
        "",
        f"Recipe fingerprint: `{recipe.fingerprint()}`",
        "",
        "## Recipe (mergekit YAML)",
        "",
        "```yaml",
        recipe.to_yaml().rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
