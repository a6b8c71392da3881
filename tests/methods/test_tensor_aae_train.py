"""Paper 000 method through the harness: runlocal, learning, resume, apps."""

import json

import numpy as np
import pytest

from disent_jax import methods
from disent_jax.methods.tensor_aae import data as data_lib
from disent_jax.methods.tensor_aae import evaluation
from disent_jax.methods.tensor_aae import method as method_lib
from disent_jax.train import loop

from testutil.harness import load_config


def _config(tmp_path_factory, **data):
  config = load_config("tensor_aae", "runlocal")
  config.progress_bar = False
  config.async_checkpointing = False
  # The probe grid's renders take longer than the run; the probes are
  # tested on the test split below.
  config.eval.probe_identities = 0
  config.data.cache_dir = str(tmp_path_factory.mktemp("taae_data"))
  for k, v in data.items():
    config.data[k] = v
  return config


@pytest.fixture(scope="module")
def runlocal(tmp_path_factory):
  config = _config(tmp_path_factory)
  workdir = tmp_path_factory.mktemp("taae")
  method = methods.load("tensor_aae").build(config)
  result = loop.train(config, str(workdir), method)
  return config, method, workdir, result


def test_runlocal_trains_and_reports(runlocal):
  _, _, workdir, result = runlocal
  assert result.step == 6
  m = result.eval_metrics
  for key in ("recon/mse", "normals/mean", "normals/under_35",
              "baseline_fit_normals/mean", "baseline_mean_image/recon/mse",
              "baseline_flat_normals/mean"):
    assert np.isfinite(m[key]), key
  # Table 1's layout: the share of images under each threshold is a
  # fraction that grows with the threshold.
  shares = [m[f"normals/under_{t}"] for t in (20, 25, 30, 35, 40)]
  assert all(0 <= a <= b <= 1 for a, b in zip(shares, shares[1:]))
  rows = [json.loads(r) for r in
          (workdir / "metrics.jsonl").read_text().splitlines()]
  logged = set().union(*rows)
  for term in ("terms/recon", "terms/frontal", "terms/shape",
               "terms/adversarial", "disc/k", "disc/m_global"):
    assert term in logged, term


def test_resume_is_bit_identical(runlocal, tmp_path):
  config, method, _, result = runlocal
  half = config.copy_and_resolve_references()
  half.total_steps = 3
  half.eval_at_end = False
  loop.train(half, str(tmp_path), method)
  resumed = loop.train(config, str(tmp_path), method)
  assert (loop.params_fingerprint(resumed.state) ==
          loop.params_fingerprint(result.state))
  # k_t is part of the checkpointed state.
  assert float(resumed.state["began"].k) == float(result.state["began"].k)


def test_editing_applications(runlocal):
  _, method, _, result = runlocal
  apps = method.applications
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  b = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  maps = apps["decompose"](result.state, a)
  for k in ("normals", "albedo", "shading", "mask", "image", "frontal"):
    assert maps[k].shape[:3] == (2, 32, 32), k
  moved = apps["transfer"](result.state, a, b, factors=("expression",))
  same = apps["transfer"](result.state, a, a, factors=("expression",))
  np.testing.assert_allclose(np.asarray(same["image"]),
                             np.asarray(maps["image"]), atol=1e-5)
  assert not np.allclose(np.asarray(moved["normals"]),
                         np.asarray(maps["normals"]))
  relit = apps["relight"](result.state, a, b)
  assert relit.shape == (2, 32, 32, 3)
  strip = apps["interpolate"](result.state, a[0], b[0], factor="light")
  assert strip.shape == (11, 32, 32, 3)
  np.testing.assert_allclose(np.asarray(strip[0]), np.asarray(maps["image"][0]),
                             atol=1e-5)
  with pytest.raises(ValueError, match="factor"):
    apps["transfer"](result.state, a, b, factors=("hair",))


def test_probes_of_every_latent_against_every_factor(runlocal):
  config, method, _, result = runlocal
  del method
  src = data_lib.make_sources(data_lib.DataConfig.from_config(config.data),
                              progress=False)
  test = src.test_arrays
  ae, _ = method_lib.networks(
      config, num_vertices=src.num_vertices,
      fit_identity=test["fit_identity"].shape[1],
      fit_expression=test["fit_expression"].shape[1])
  predict = lambda state, x: ae.apply({"params": state["params"]["ae"]}, x)
  labels = test["subject"] - test["subject"].min()
  grid = {"image": test["image"]}
  for f in evaluation.FACTORS:
    grid[f"{f}_label"] = labels
  m = evaluation.probe_metrics(predict, result.state, grid, num_folds=2)
  assert m["probe/chance/identity"] == 0.5
  for name in evaluation.LATENTS:
    for factor in evaluation.FACTORS:
      assert 0.0 <= m[f"probe/z_{name}/{factor}"] <= 1.0


def test_a_small_config_learns(tmp_path_factory):
  """E_recon and the normal error fall well below their initial values and
  below the mean-image / flat-normal answers on unseen subjects."""
  config = _config(tmp_path_factory, num_subjects=8, num_test_subjects=3,
                   images_per_subject=8)
  config.batch_size = 16
  config.total_steps = 200
  config.warmup_steps = 100
  config.log_every_steps = 50
  config.checkpoint_every_steps = 1000
  config.optim.learning_rate = 2e-3
  config.optim.disc_learning_rate = 2e-3
  config.eval.probe_identities = 0
  method = methods.load("tensor_aae").build(config)
  init = config.copy_and_resolve_references()
  init.total_steps = 1
  first = loop.train(init, str(tmp_path_factory.mktemp("l0")), method)
  last = loop.train(config, str(tmp_path_factory.mktemp("l1")), method)
  m0, m = first.eval_metrics, last.eval_metrics
  assert m["recon/mse"] < 0.5 * m0["recon/mse"], (m0, m)
  assert m["recon/mse"] < m["baseline_mean_image/recon/mse"], m
  assert m["normals/mean"] < 0.7 * m0["normals/mean"], (m0, m)
  assert m["normals/mean"] < m["baseline_flat_normals/mean"], m
