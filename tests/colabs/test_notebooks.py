"""Every notebook in colabs/ runs top to bottom and matches its .py pair."""

import pathlib

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from testutil.harness import ROOT

NOTEBOOKS = sorted((ROOT / "colabs").glob("*.ipynb"))


def test_there_are_notebooks():
  assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_paired_and_stored_without_outputs(path):
  nb = nbformat.read(path, as_version=4)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs, f"{path.name}: stored with outputs"
  paired = path.with_suffix(".py")
  assert paired.exists(), f"{path.name} has no jupytext .py pair"
  py = jupytext.read(paired)
  code = lambda n: [c.source for c in n.cells if c.cell_type == "code"]
  assert code(py) == code(nb), f"{path.name} and {paired.name} differ"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path):
  nb = nbformat.read(path, as_version=4)
  client = NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(ROOT)}})
  client.execute()
