"""The wheel carries every package of the source tree.

pyproject.toml lists its packages by hand (objectives/ is installed under another name), so a new
package that is not added there is missing from a non-editable install. This test names it.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_in_the_tree_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "soup_search").rglob("__init__.py")
        if "migrations" not in init.parts
    }
    assert in_tree - listed == set(), f"add to pyproject.toml [tool.setuptools] packages: {sorted(in_tree - listed)}"
    assert "soup_search.objectives" in listed
