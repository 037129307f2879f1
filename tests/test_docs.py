"""The documentation site's sources, checked without building it (CI builds it with the docs
extra after the tests): every page of the nav exists, every tutorial is in the nav and is a
well-formed jupytext percent-format notebook whose code parses, and `cnnumpy docs` fails
clearly without the docs extra. The notebooks are never executed here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cnnumpy.cli import docs as docs_command
from cnnumpy.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.py"))
CELL = re.compile(r"^# %%(?P<rest>.*)$")


def nav_paths() -> list[str]:
    """The files named in mkdocs.yml's nav, in order (read as text: no YAML parser needed)."""
    text = (ROOT / "mkdocs.yml").read_text()
    nav = re.search(r"^nav:\n((?:[ \t]+.*\n|\n)+)", text, re.MULTILINE)
    assert nav, "mkdocs.yml has no nav"
    return re.findall(r"^\s*-\s+(?:[^\n]*?:\s+)?(\S+\.(?:md|py))\s*$", nav.group(1), re.MULTILINE)


def cells(path: Path) -> list[tuple[str, list[str]]]:
    """The notebook's cells as ``(kind, lines)``, kind "markdown" or "code"; the lines before
    the first cell marker (jupytext's header) are left out."""
    found: list[tuple[str, list[str]]] = []
    header = True
    for line in path.read_text().splitlines():
        marker = CELL.match(line)
        if marker:
            header = False
            kind = "markdown" if "[markdown]" in marker["rest"] else "code"
            found.append((kind, []))
        elif header:
            assert not line.strip() or line.startswith("#"), f"{path.name}: code before a cell"
        else:
            found[-1][1].append(line)
    return found


def test_every_page_of_the_nav_exists():
    paths = nav_paths()
    assert "index.md" in paths
    missing = [p for p in paths if not (DOCS / p).is_file()]
    assert not missing, f"in mkdocs.yml's nav but not in docs/: {missing}"


def test_the_tutorials_are_numbered_and_all_in_the_nav():
    listed = [p for p in nav_paths() if p.startswith("tutorials/") and p.endswith(".py")]
    assert listed == sorted(listed), "tutorials out of numeric order in the nav"
    numbers = [int(Path(p).name.split("_")[0]) for p in listed]
    assert numbers == list(range(1, len(listed) + 1))
    on_disk = [f"tutorials/{p.name}" for p in TUTORIALS]
    assert sorted(on_disk) == listed, "a tutorial in docs/tutorials/ is not in the nav"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_each_tutorial_is_a_percent_notebook_whose_code_parses(path):
    found = cells(path)
    kinds = {kind for kind, _ in found}
    assert kinds == {"markdown", "code"}, f"{path.name}: needs prose and code cells"
    assert found[0][0] == "markdown", f"{path.name}: should open with prose"
    for kind, lines in found:
        if kind == "markdown":
            prose = [line for line in lines if line.strip()]
            assert all(line.startswith("#") for line in prose), f"{path.name}: prose not commented"
    ast.parse(path.read_text(), filename=str(path))  # the whole script is plain Python


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_jupytext_reads_each_tutorial_as_the_same_cells(path):
    import jupytext

    notebook = jupytext.read(path, fmt="py:percent")
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds == [kind for kind, _ in cells(path)]


def test_docs_command_names_the_extra_when_it_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(docs_command, "REQUIRED", {"no_such_module_for_cnnumpy": "mkdocs"})
    assert main(["docs"]) == 1
    err = capsys.readouterr().err
    assert "mkdocs not installed" in err and "'.[docs]'" in err


def test_docs_command_finds_the_checkouts_config():
    assert docs_command.find_config(None) == ROOT / "mkdocs.yml"
    with pytest.raises(ValueError, match="no such configuration file"):
        docs_command.find_config(ROOT / "no-such-mkdocs.yml")
