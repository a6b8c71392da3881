"""Tests for disent_jax.viz.report (report.md + metrics.json)."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from disent_jax.metrics import mesh_errors
from disent_jax.viz import mesh_render
from disent_jax.viz import panels
from disent_jax.viz import report
from disent_jax.viz import scatter


def test_flatten_metrics():
  nums, text = report.flatten_metrics({
      "E_rec": {"mean": np.float32(1.5), "median": 1},
      "probe": {"id": {"acc": np.array(0.9)}},
      "folds": np.array([0.5, 0.75]),
      "big": np.zeros(100),
      "FD": {"value": 3.0, "features": "randconv32-64-128-seed0"},
      "ok": True})
  acc = nums.pop("probe/id/acc")
  assert abs(acc - 0.9) < 1e-7
  assert nums == {"E_rec/mean": 1.5, "E_rec/median": 1.0, "folds/0": 0.5,
                  "folds/1": 0.75, "FD/value": 3.0, "ok": 1.0}
  assert text["FD/features"] == "randconv32-64-128-seed0"
  assert "shape (100,)" in text["big"]


def test_write_report(tmp_path):
  fig_dir = tmp_path / "figs"
  fig_dir.mkdir()
  png = fig_dir / "scatter.png"
  plt.imsave(png, np.random.default_rng(0).random((8, 8, 3)))
  metrics = {"E_rec": {"mean": 1.25, "std": 0.5}, "E_dis": {"mean": 0.1},
             "MIG": 0.42, "bad": float("nan"),
             "FD": {"value": 7.0, "features": "pixels16"}}
  md, js = report.write_report(
      str(tmp_path / "run"), metrics, {"z_id by subject": str(png),
                                       "relative": "figs/x.png"},
      title="demo: evaluation", notes=["step 10", "SynthFace meshes"])
  data = json.loads(open(js).read())
  assert data == {"E_rec/mean": 1.25, "E_rec/std": 0.5, "E_dis/mean": 0.1,
                  "MIG": 0.42, "bad": None, "FD/value": 7.0}
  text = open(md).read()
  assert text.startswith("# demo: evaluation\n")
  assert "- step 10" in text
  assert "### E_rec" in text and "| mean | 1.25 |" in text
  assert "| MIG | 0.42 |" in text
  assert "**FD/features**: pixels16" in text
  # Figures are linked relative to the workdir.
  assert "![z_id by subject](../figs/scatter.png)" in text
  assert "![relative](figs/x.png)" in text


@pytest.mark.slow
def test_sample_report_on_synthface_meshes(tmp_path):
  """End to end: SynthFace meshes -> metrics -> figures -> report."""
  world_lib = pytest.importorskip("disent_jax.synthface.world")
  expression = pytest.importorskip("disent_jax.synthface.expression")

  world = world_lib.World("1k")
  faces = np.asarray(world.faces)
  names = expression.EXPRESSIONS[:3]
  rng = np.random.default_rng(0)
  targets, neutrals, subjects, params = [], [], [], []
  for s in range(3):
    p = world.identity(0, s)
    for name in names:
      targets.append(np.asarray(world.mesh(p, expression.one_hot(name))))
      neutrals.append(np.asarray(world.neutral(p)))
      subjects.append(s)
      params.append(np.asarray(p))
  targets, neutrals = np.stack(targets), np.stack(neutrals)
  # A stand-in "model": reconstructions with 0.5 mm noise, identity
  # predictions with a 1 mm subject-independent bias.
  recon = targets + rng.normal(scale=0.5, size=targets.shape)
  identity = neutrals + np.array([0.0, 1.0, 0.0])
  metrics = {"mesh": mesh_errors.mesh_metrics(
      recon, targets, identity=identity, neutral=neutrals,
      subject_ids=subjects)}
  assert abs(metrics["mesh"]["AVD_neu/mean"] - 1.0) < 1e-3
  assert metrics["mesh"]["E_dis/mean"] < 1e-3
  figs = {}
  errs = np.asarray(mesh_errors.per_vertex_error(recon, targets))
  figs["per-vertex error"] = mesh_render.save_error_maps(
      str(tmp_path / "figs" / "errors.png"), targets[:3], faces, errs[:3],
      titles=list(names), size=96)
  renders = {k: mesh_render.render_meshes(v[:2], faces, size=96)
             for k, v in (("input", targets), ("reconstruction", recon),
                          ("identity", identity))}
  figs["reconstructions"] = panels.comparison_panel(
      str(tmp_path / "figs" / "panel.png"), renders)
  latents = np.stack(params) + rng.normal(scale=0.01,
                                          size=np.shape(params))
  figs["z_id by subject"] = scatter.latent_scatter(
      str(tmp_path / "figs" / "scatter.png"), latents, np.array(subjects),
      label_name="subject")
  md, js = report.write_report(str(tmp_path), metrics, figs,
                               title="sample report",
                               notes="SynthFace 1k meshes, 3 subjects.")
  data = json.loads(open(js).read())
  assert set(data) >= {"mesh/E_rec/mean", "mesh/AVD_neu/mean",
                       "mesh/E_dis/mean"}
  text = open(md).read()
  for name in ("figs/errors.png", "figs/panel.png", "figs/scatter.png"):
    assert f"]({name})" in text
    assert (tmp_path / name).stat().st_size > 5000
