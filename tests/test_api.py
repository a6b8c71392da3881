"""The public API: package imports, import isolation, docs/api.md."""

import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO / "scripts"))
import make_api_doc  # pylint: disable=g-import-not-at-top,wrong-import-position

_PACKAGES = [name for name, _ in make_api_doc.PACKAGES]


def _run(code: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, cwd=_REPO, timeout=300, check=False)


def test_pure_packages_import_without_flax_tfds_or_matplotlib():
  proc = _run(
      "import sys\n"
      "import disent_jax.losses as L, disent_jax.ops as O\n"
      "import disent_jax.metrics as M\n"
      "print(M.mesh_errors.mesh_error, L.adversarial.r1_penalty,\n"
      "      O.hierarchy.build_hierarchy)\n"
      "heavy = ('flax', 'tensorflow_datasets', 'tensorflow', 'matplotlib')\n"
      "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert "function mesh_error" in lines[0]
  assert lines[-1] == "[]", f"imported {lines[-1]}"


def test_every_package_exposes_all_its_modules():
  proc = _run(
      "import importlib\n"
      f"for name in {_PACKAGES!r}:\n"
      "  p = importlib.import_module(name)\n"
      "  for m in p.__all__:\n"
      "    assert getattr(p, m).__name__ == name + '.' + m, (name, m)\n"
      "print('ok')\n")
  assert proc.returncode == 0, proc.stderr
  for name in _PACKAGES:
    package = importlib.import_module(name)
    modules = {m.name for m in pkgutil.iter_modules(package.__path__)
               if not m.name.startswith("_")}
    assert modules == set(package.__all__), (name, modules, package.__all__)


def test_api_page_is_up_to_date():
  page = (_REPO / "docs" / "api.md").read_text(encoding="utf-8")
  assert page == make_api_doc.render(), (
      "docs/api.md is out of date: run python scripts/make_api_doc.py")
  assert "r1_penalty(discriminator, real, *, gamma)" in page
  assert "(docs/api.md)" in (_REPO / "README.md").read_text(encoding="utf-8")


def test_api_example_runs_and_learns():
  proc = _run(make_api_doc.EXAMPLE)
  assert proc.returncode == 0, proc.stderr
  # "loss L, E_rec E (predicting zeros: Z)"
  words = proc.stdout.replace(")", "").split()
  e_rec, zeros = float(words[3]), float(words[-1])
  assert e_rec < 0.5 * zeros, proc.stdout


@pytest.mark.parametrize("package", ["ops", "losses", "metrics", "nn",
                                     "synthface", "data", "viz", "train",
                                     "methods"])
def test_modules_stay_small(package):
  for path in (_REPO / "disent_jax" / package).rglob("*.py"):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 550, f"{path.relative_to(_REPO)} has {lines} lines"
