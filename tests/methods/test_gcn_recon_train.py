"""Paper 003 through the harness: runlocal trains, evaluates and resumes."""

import json

import numpy as np
import pytest

from disent_jax import methods
from disent_jax.methods.gcn_recon import data as data_lib
from disent_jax.train import loop

from testutil.harness import load_config


@pytest.fixture(scope="module")
def runlocal(tmp_path_factory):
  config = load_config("gcn_recon", "runlocal")
  config.progress_bar = False
  config.async_checkpointing = False
  workdir = tmp_path_factory.mktemp("gcn_recon")
  method = methods.load("gcn_recon").build(config)
  result = loop.train(config, str(workdir), method)
  return config, method, workdir, result


def test_runlocal_trains_and_reports_against_baselines(runlocal):
  _, _, workdir, result = runlocal
  assert result.step == 4
  m = result.eval_metrics
  for key in ("shape/mean_mm", "baseline_template/shape/mean_mm",
              "baseline_3dmm_fit/shape/mean_mm", "landmarks/nme",
              "baseline_mean_landmarks/landmarks/nme", "recon/photometric",
              "baseline_mean_image/recon/photometric",
              "baseline_ridge/landmarks/nme"):
    assert np.isfinite(m[key]), key
  # The oracle 3DMM fit is far better than the mean face.
  assert (m["baseline_3dmm_fit/shape/mean_mm"]
          < 0.5 * m["baseline_template/shape/mean_mm"])
  # The MICC-style protocol: the model and its baselines per condition.
  for prefix in ("micc", "baseline_template/micc", "baseline_3dmm_fit/micc"):
    for cond in ("cooperative", "indoor"):
      for stat in ("mean", "std"):
        assert np.isfinite(m[f"{prefix}/{cond}/{stat}"]), (prefix, cond)
  assert (m["baseline_3dmm_fit/micc/cooperative/mean"]
          < m["baseline_template/micc/cooperative/mean"])
  rows = [json.loads(r) for r in
          (workdir / "metrics.jsonl").read_text().splitlines()]
  logged = set().union(*rows)
  for term in ("terms/recon", "terms/landmarks", "terms/shape",
               "terms/pair", "terms/smooth", "terms/symmetry",
               "terms/softmax", "terms/center", "terms/adversarial",
               "disc/loss"):
    assert term in logged, term


def test_resume_is_bit_identical(runlocal, tmp_path):
  config, method, _, result = runlocal
  half = config.copy_and_resolve_references()
  half.total_steps = 2
  half.eval_at_end = False
  loop.train(half, str(tmp_path), method)
  resumed = loop.train(config, str(tmp_path), method)
  assert (loop.params_fingerprint(resumed.state) ==
          loop.params_fingerprint(result.state))


def test_batches_hold_k_images_per_subject():
  rng = np.random.default_rng(0)
  arrays = {"subject": np.repeat(np.arange(3), 4),
            "image": rng.uniform(size=(12, 2, 2, 3))}
  src = data_lib.GroupedSource(arrays, k=2, seed=0, keys=("subject",
                                                          "image"))
  for j in range(len(src)):
    g = src[j]
    assert g["subject"].shape == (2,) and len(set(g["subject"])) == 1
  with pytest.raises(ValueError, match="K=5"):
    data_lib.GroupedSource(arrays, k=5, seed=0, keys=("subject", "image"))
  flat = data_lib.flatten_groups({"x": np.zeros((3, 2, 7))})
  assert flat["x"].shape == (6, 7)
