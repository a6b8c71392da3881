"""Paper 002 method: losses, pairing, metrics, and a runlocal run."""

import functools
import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax import methods
from disent_jax.methods.pointnet_id_vae import data as data_lib
from disent_jax.methods.pointnet_id_vae import evaluation
from disent_jax.methods.pointnet_id_vae import method as method_lib
from disent_jax.methods.pointnet_id_vae import model as model_lib
from disent_jax.methods.pointnet_id_vae import objective
from disent_jax.methods.pointnet_id_vae import steps as steps_lib
from disent_jax.train import evaluation as train_eval
from disent_jax.train import loop

from testutil.harness import load_config


def test_discriminator_loss_is_the_mean_of_both_cross_entropies():
  real = jnp.array([2.0, -1.0, 0.5])
  fake = jnp.array([-3.0, 0.2, 1.0])
  sig = lambda x: 1 / (1 + np.exp(-np.asarray(x)))
  expected_d = 0.5 * (-np.mean(np.log(sig(real))) -
                      np.mean(np.log(1 - sig(fake))))
  np.testing.assert_allclose(objective.discriminator_loss(real, fake),
                             expected_d, rtol=1e-6)


class _Toy:
  def __init__(self, subjects):
    self.subjects = np.asarray(subjects)

  def __len__(self):
    return len(self.subjects)

  def __getitem__(self, i):
    return {"vertices": np.full((2, 3), float(i), np.float32),
            "subject": np.int32(self.subjects[i])}


def test_paired_source_partners_have_right_identity():
  src = data_lib.PairedSource(_Toy([0, 0, 0, 1, 1, 2]), seed=3)
  for i in range(len(src)):
    same, other = src.partners(i)
    assert src.subjects[same] == src.subjects[i]
    # A subject with one mesh is its own partner; otherwise another mesh.
    assert (same != i) == (np.sum(src.subjects == src.subjects[i]) > 1)
    assert src.subjects[other] != src.subjects[i]
    ex = src[i]
    assert ex["same_vertices"][0, 0] == same
    assert ex["other_vertices"][0, 0] == other
  assert src.partners(4) == data_lib.PairedSource(
      _Toy([0, 0, 0, 1, 1, 2]), seed=3).partners(4)
  with pytest.raises(ValueError, match="two subjects"):
    data_lib.PairedSource(_Toy([1, 1]), seed=0)


def test_rank1_accuracy_hand_case():
  codes = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 0.05]])
  subjects = np.array([0, 0, 1, 1, 1])
  # Cosine nearest neighbours: 0->4, 1->4, 2->3, 3->2, 4->0; only 2 and 3
  # find their own subject.
  np.testing.assert_allclose(evaluation.rank1_accuracy(codes, subjects), 0.4)


def test_metrics_of_a_perfect_prediction():
  rng = np.random.default_rng(0)
  neutral = rng.normal(size=(2, 5, 3)) * 10
  subject = np.array([0, 0, 1, 1])
  vertices = neutral[subject] + rng.normal(size=(4, 5, 3))
  p = {"face": vertices, "vertices": vertices, "identity": neutral[subject],
       "neutral": neutral[subject], "subject": subject,
       "z_id": np.eye(2)[subject] + 0.01 * rng.normal(size=(4, 2)),
       "z_exp": rng.normal(size=(4, 2))}
  m = evaluation.metrics_from_predictions(p)
  assert m["E_rec/mean"] == pytest.approx(0.0, abs=1e-9)
  assert m["AVD_neu/mean"] == pytest.approx(0.0, abs=1e-9)
  assert m["E_dis/mean"] == pytest.approx(0.0, abs=1e-6)
  assert m["baseline_input_as_neutral/AVD_neu/mean"] > 0.5
  assert m["rank1_identity_code"] == 1.0


@pytest.fixture(scope="module")
def runlocal(tmp_path_factory):
  config = load_config("pointnet_id_vae", "runlocal")
  config.progress_bar = False
  config.async_checkpointing = False
  workdir = tmp_path_factory.mktemp("pid")
  method = methods.load("pointnet_id_vae").build(config)
  result = loop.train(config, str(workdir), method)
  return config, method, workdir, result


def test_runlocal_trains_both_phases_and_reports(runlocal):
  _, _, workdir, result = runlocal
  assert result.step == 6
  m = result.eval_metrics
  for key in ("E_rec/mean", "E_dis/mean", "AVD_neu/mean",
              "rank1_identity_code", "baseline_ratio/AVD_neu/mean"):
    assert np.isfinite(m[key]), key
  rows = [l for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  import json  # pylint: disable=g-import-not-at-top
  rows = [json.loads(r) for r in rows]
  assert rows[-1]["recon"] > 0 and rows[-1]["d_loss"] > 0
  figs = sorted(p.name for p in (workdir / "figures").glob("*.png"))
  assert figs == ["baselines.png", "case_average.png", "case_best.png",
                  "case_worst.png"]
  assert (workdir / "figures" / "case_best_identity.ply").exists()
  assert "AVD_neu" in (workdir / "report.md").read_text()


def test_resume_is_bit_identical(runlocal, tmp_path):
  config, method, _, result = runlocal
  half = config.copy_and_resolve_references()
  half.total_steps = 3
  half.eval_at_end = False
  loop.train(half, str(tmp_path), method)
  resumed = loop.train(config, str(tmp_path), method)
  assert (loop.params_fingerprint(resumed.state) ==
          loop.params_fingerprint(result.state))


def test_applications(runlocal):
  config, method, _, result = runlocal
  source = data_lib.make_sources(load_config("pointnet_id_vae",
                                             "runlocal")).test
  a, b = source[0]["vertices"], source[len(source) - 1]["vertices"]
  apps = method.applications
  z_id, z_exp = apps["encode"](result.state, np.stack([a, b]))
  assert z_id.shape == (2, config.model.id_latent)
  assert z_exp.shape == (2, config.model.exp_latent)
  moved = apps["transfer_expression"](result.state, a[None], b[None])
  assert moved.shape == (1,) + a.shape and np.all(np.isfinite(moved))
  strip = apps["interpolate"](result.state, jnp.asarray(a), jnp.asarray(b),
                              steps=4, factor="identity")
  assert strip.shape == (4,) + a.shape
  # Interpolation starts at the reconstruction of a from its own codes.
  start = apps["transfer_expression"](result.state, a[None], a[None])[0]
  np.testing.assert_allclose(strip[0], start, atol=1e-3)
  with pytest.raises(ValueError, match="factor"):
    apps["interpolate"](result.state, a, b, factor="pose")
  assert jax.tree.leaves(result.state)


@functools.cache
def _probe_script():
  """scripts/pointnet_id_vae_probe_disc.py as a module (loaded once: it
  defines absl flags)."""
  spec = importlib.util.spec_from_file_location(
      "probe_disc", pathlib.Path(__file__).resolve().parents[2] / "scripts" /
      "pointnet_id_vae_probe_disc.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_identity_scores_and_the_discriminator_probe(runlocal):
  config, method, workdir, result = runlocal
  probe_disc = _probe_script()
  sources = data_lib.make_sources(config)
  x = np.stack([sources.test[i]["vertices"] for i in range(3)])
  p = method.applications["identity_scores"](result.state, x, x[::-1])
  assert p.shape == (3,) and np.all((p > 0) & (p < 1))
  mean = np.mean([sources.train[i]["vertices"] for i in range(8)], axis=0)
  out, error = probe_disc.probe(method, result.state, sources.test, mean,
                                max_examples=5, batch=2)
  assert np.isfinite(error["alpha"])
  assert tuple(out) == probe_disc.KINDS
  assert out["GT neutral"]["dist_to_neutral_mm"] == 0.0
  assert all(0 <= r["p_same"] <= 1 for r in out.values())
  # The scores are D_ID's training-mode logits through a sigmoid (no batch
  # norm or dropout, so both modes agree).
  # pylint: disable=protected-access
  setup = method_lib._Setup(config)
  _, disc = method_lib._networks(setup, config.model)
  # pylint: enable=protected-access
  logits, _, _ = steps_lib.disc_logits(
      result.state["params"]["disc"], result.state["batch_stats"].get(
          "disc", {}), setup.frame.normalize(jnp.asarray(x)),
      setup.frame.normalize(jnp.asarray(x[::-1])), jax.random.key(0),
      disc=disc)
  np.testing.assert_allclose(p, jax.nn.sigmoid(logits), rtol=1e-5,
                             atol=1e-6)
  assert "| GT neutral |" in probe_disc.markdown(out, "t", error)
  # The probe restores the run's newest checkpoint: the trained state.
  state, step, _ = train_eval.restore_checkpoint(config, str(workdir),
                                                 method)
  assert step == result.step
  assert loop.params_fingerprint(state) == loop.params_fingerprint(
      result.state)


def test_neutral_error_splits_bias_and_shrinkage():
  probe_disc = _probe_script()
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(7, 3))
  neutral = mean + rng.normal(size=(20, 7, 3))
  bias = rng.normal(size=(7, 3))
  pred = mean + 0.4 * (neutral - mean) + bias
  e = probe_disc.neutral_error(pred, neutral, mean)
  want_bias = bias - 0.6 * (neutral - mean).mean(axis=0)
  np.testing.assert_allclose(
      e["bias_norm"], np.linalg.norm(want_bias, axis=-1).mean(), rtol=1e-9)
  np.testing.assert_allclose(
      e["AVD_neu"], np.linalg.norm(pred - neutral, axis=-1).mean(), rtol=1e-9)
  # Bias and shrinkage explain the whole error up to the centring of the
  # shrunk offsets (alpha is fitted after removing the mean error).
  assert abs(e["alpha"] - 0.4) < 0.1
  assert e["AVD_neu_minus_bias_and_shrinkage"] < 0.2 * e["AVD_neu"]
  exact = probe_disc.neutral_error(neutral, neutral, mean)
  assert exact["AVD_neu"] == 0 and exact["alpha"] == 1.0


def test_output_scale_multiplies_both_decoders():
  points = jax.random.normal(jax.random.key(0), (2, 7, 3))
  kw = dict(num_vertices=7, id_latent=3, exp_latent=2, widths=(8, 16),
            decoder_hidden=(5,))
  plain = model_lib.IdExpVAE(**kw)
  scaled = model_lib.IdExpVAE(**kw, output_scale=0.25)
  variables = plain.init({"params": jax.random.key(1),
                          "latent": jax.random.key(2)}, points, train=False)
  _, id_a, exp_a = plain.apply(variables, points, train=False)
  _, id_b, exp_b = scaled.apply(variables, points, train=False)
  np.testing.assert_allclose(id_b, 0.25 * id_a, rtol=1e-6)
  np.testing.assert_allclose(exp_b, 0.25 * exp_a, rtol=1e-6)


def test_offset_rms_against_numpy():
  rng = np.random.default_rng(0)
  faces = rng.normal(size=(5, 4, 3)).astype(np.float32)
  mean = faces.mean(axis=0)
  source = [{"vertices": f} for f in faces]
  np.testing.assert_allclose(
      method_lib.offset_rms(source, mean, max_examples=10),
      np.sqrt(np.mean(np.square(faces - mean))), rtol=1e-6)
  # A subset: the first and the last example.
  np.testing.assert_allclose(
      method_lib.offset_rms(source, mean, max_examples=2),
      np.sqrt(np.mean(np.square(faces[[0, 4]] - mean))), rtol=1e-6)


def test_fixed_unit_normalises_by_it_and_negative_is_an_error():
  config = load_config("pointnet_id_vae", "runlocal")
  config.data.unit_mm = 260.0
  setup = method_lib._Setup(config)  # pylint: disable=protected-access
  mean, center, _ = data_lib.normalization(
      setup.sources.train, max_examples=config.data.stats_examples)
  np.testing.assert_allclose(setup.frame.mean_face, (mean - center) / 260.0,
                             rtol=1e-6)
  face = np.asarray(setup.sources.test[0]["vertices"])
  np.testing.assert_allclose(setup.frame.normalize(face),
                             (face - center) / 260.0,
                             rtol=1e-6)
  config.data.unit_mm = -1.0
  with pytest.raises(ValueError, match="data.unit_mm"):
    methods.load("pointnet_id_vae").build(config)


def test_tfds_build_gives_the_same_data_as_on_the_fly(tmp_path):
  from disent_jax.data import build as build_lib  # pylint: disable=g-import-not-at-top
  from disent_jax.data import onthefly  # pylint: disable=g-import-not-at-top
  build_lib.build("synthface_meshes/tiny", tmp_path, progress=False)
  tiny = onthefly.CONFIGS["synthface_meshes"]["tiny"]
  config = load_config("pointnet_id_vae", "runlocal")
  config.data.update(
      resolution=tiny.resolution, num_subjects=tiny.num_subjects,
      frames=tiny.num_frames, num_test_subjects=tiny.num_test_subjects,
      test_expression=tiny.test_expression, seed=tiny.seed)
  fly = data_lib.make_sources(config)
  config.data.tfds_name = "synthface_meshes/tiny"
  config.data.data_dir = str(tmp_path)
  stored = data_lib.make_sources(config)
  assert len(stored.train) == len(fly.train) > 0
  for i in (0, len(fly.test) - 1):
    for key in ("vertices", "neutral", "subject"):
      np.testing.assert_array_equal(stored.test[i][key], fly.test[i][key])
  np.testing.assert_array_equal(stored.faces, fly.faces)
  config.data.data_dir = ""
  with pytest.raises(ValueError, match="data_dir"):
    data_lib.make_sources(config)


def test_expression_offsets_against_numpy():
  rng = np.random.default_rng(0)
  faces = rng.normal(size=(7, 4, 3)).astype(np.float32)
  labels = np.array([0, 2, 2, 0, 3, 3, 3])
  mean = faces.mean(axis=0)
  source = [{"vertices": f, "expression": np.int32(e)}
            for f, e in zip(faces, labels)]
  table = data_lib.expression_offsets(source, mean)
  assert table.shape == (4, 4, 3)
  for e in (0, 2, 3):
    np.testing.assert_allclose(table[e], faces[labels == e].mean(0) - mean,
                               rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(table[1], 0.0)  # No example of label 1.
  source[3]["expression"] = np.int32(-1)
  with pytest.raises(ValueError, match="example 3"):
    data_lib.expression_offsets(source, mean)


def test_expression_prior_term_against_numpy():
  rng = np.random.default_rng(1)
  offsets = rng.normal(size=(4, 5, 3)).astype(np.float32)
  pred = rng.normal(size=(3, 5, 3)).astype(np.float32)
  labels = np.array([3, 0, 3])
  want = np.mean((pred - offsets[labels]) ** 2)
  np.testing.assert_allclose(
      objective.expression_prior(jnp.asarray(pred), jnp.asarray(offsets),
                                 jnp.asarray(labels)), want, rtol=1e-6)
  # Zero exactly when every prediction is its label's average offset.
  assert float(objective.expression_prior(
      jnp.asarray(offsets[labels]), jnp.asarray(offsets),
      jnp.asarray(labels))) == 0.0


def test_expression_prior_variant_and_term():
  lam1 = load_config("pointnet_id_vae", None).loss.recon
  on = load_config("pointnet_id_vae", "runlocal,exp_prior=True")
  assert on.loss.expression_prior == 0.5 * lam1
  # The public code uses the term only without ground-truth neutrals.
  assert load_config("pointnet_id_vae",
                     "runlocal,exp_prior=True,ne_gt=True"
                     ).loss.expression_prior == 0.0
  assert load_config("pointnet_id_vae", "runlocal").loss.expression_prior == 0


@pytest.mark.parametrize("variant,disc_real,lambda_3", [
    (None, "decoded", 5e-2),  # The main job.
    ("size=converged", "decoded", 5e-2),
    ("size=full", "scan", 5e-4),  # The paper's D_ID.
    ("dataset=coma", "scan", 5e-4),
    ("dataset=bu3dfe", "scan", 1e-3),
])
def test_decoded_real_pairs_only_in_the_synthface_cpu_configs(
    variant, disc_real, lambda_3):
  config = load_config("pointnet_id_vae", variant)
  assert config.model.disc_real == disc_real
  assert config.loss.adversarial == pytest.approx(lambda_3)
