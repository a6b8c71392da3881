"""Paper 000's editing metrics, tables and the job runner."""

import json
import pathlib
import sys

import numpy as np
import pytest

from disent_jax.methods.tensor_aae import editing
from disent_jax.methods.tensor_aae import table
from disent_jax.train import jobs


def _grid(n_id=3, n_e=2, n_p=3, n_l=2, size=4, seed=0):
  """A random full factorial "grid": each factor adds its own pattern."""
  rng = np.random.default_rng(seed)
  parts = [rng.uniform(0, 0.25, size=(n, size, size, 3))
           for n in (n_id, n_e, n_p, n_l)]
  rows = {k: [] for k in ("image", "identity_label", "expression_label",
                          "pose_label", "light_label", "pose")}
  yaws = np.linspace(-0.5, 0.5, n_p)
  for i in range(n_id):
    for e in range(n_e):
      for p in range(n_p):
        for l in range(n_l):
          rows["image"].append(parts[0][i] + parts[1][e] + parts[2][p] +
                               parts[3][l])
          for k, v in zip(("identity", "expression", "pose", "light"),
                          (i, e, p, l)):
            rows[f"{k}_label"].append(v)
          rows["pose"].append([0.0, yaws[p], 0.0])
  grid = {k: np.asarray(v) for k, v in rows.items()}
  grid["image"] = grid["image"].astype(np.float32)
  grid["mask"] = np.ones(grid["image"].shape[:3], np.float32)
  # Shuffle the rows: lookups must not rely on the order.
  order = rng.permutation(len(grid["image"]))
  return {k: v[order] for k, v in grid.items()}


@pytest.mark.parametrize("factor", editing.EDITS)
def test_edit_pairs_pick_the_swapped_ground_truth(factor):
  grid = _grid()
  t, d, g = editing.edit_pairs(grid, factor, num_pairs=40, seed=1)
  lab = {f: grid[f"{f}_label"] for f in
         ("identity", "expression", "pose", "light")}
  assert np.all(lab["identity"][t] != lab["identity"][d])
  assert np.all(lab[factor][t] != lab[factor][d])
  for f, v in lab.items():
    np.testing.assert_array_equal(v[g], v[d] if f == factor else v[t])


def test_edit_pairs_reject_bad_input():
  grid = _grid()
  with pytest.raises(ValueError, match="expected one of"):
    editing.edit_pairs(grid, "identity", num_pairs=2)
  holey = {k: v[1:] for k, v in grid.items()}
  with pytest.raises(ValueError, match="full factorial"):
    editing.edit_pairs(holey, "light", num_pairs=200)
  dup = {k: np.concatenate([v, v[:1]]) for k, v in grid.items()}
  with pytest.raises(ValueError, match="share"):
    editing.grid_lookup(dup)


def test_editing_metrics_of_an_oracle_and_of_a_no_op():
  """An edit that adds the donor's factor pattern (the grid is additive)
  is exact; an edit that returns the target equals copying it."""
  grid = _grid()
  table_ = editing.grid_lookup(grid)
  lab = np.stack([grid[f"{f}_label"] for f in
                  ("identity", "expression", "pose", "light")], 1)

  def oracle(state, targets, donors, factor):
    del state
    out = []
    for x, y in zip(targets, donors):
      ti = int(np.flatnonzero(np.all(grid["image"] == x, axis=(1, 2, 3)))[0])
      di = int(np.flatnonzero(np.all(grid["image"] == y, axis=(1, 2, 3)))[0])
      j = editing._FACTORS.index(factor)
      key = list(lab[ti])
      key[j] = lab[di][j]
      out.append(grid["image"][table_[tuple(int(v) for v in key)]])
    return np.stack(out)

  def no_op(state, targets, donors, factor):
    del state, donors, factor
    return targets

  exact = editing.editing_metrics(oracle, None, grid, num_pairs=12,
                                  batch_size=5)
  same = editing.editing_metrics(no_op, None, grid, num_pairs=12,
                                 batch_size=5)
  for f in editing.EDITS:
    assert exact[f"edit/{f}/mse"] == pytest.approx(0.0, abs=1e-12)
    # Its "no edit" (donor = target) returns the target itself.
    assert exact[f"edit/{f}/no_edit/mse"] == pytest.approx(
        exact[f"edit/{f}/copy_target/mse"])
    assert same[f"edit/{f}/mse"] == pytest.approx(
        same[f"edit/{f}/copy_target/mse"])
    assert same[f"edit/{f}/copy_target/mse"] > 1e-4
    assert exact[f"edit/{f}/change_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert same[f"edit/{f}/change_ratio"] == pytest.approx(1.0)
    # The target's pose splits the pairs: frontal (yaw 0) and not.
    assert f"edit/{f}/mse_profile" in same


def _metrics(shift: float) -> dict[str, float]:
  m = {"recon/mse": 0.01 + shift, "baseline_mean_image/recon/mse": 0.04,
       "baseline_pca/recon/mse": 0.02, "normals/mean": 14.0 + shift,
       "baseline_mean_normals/mean": 15.0}
  for lat in ("identity", "expression", "pose", "light"):
    for f in ("identity", "expression", "pose", "light"):
      m[f"probe/z_{lat}/{f}"] = 0.5 + shift
  for f in ("identity", "expression", "pose", "light"):
    m[f"probe/chance/{f}"] = 0.25
    m[f"probe/baseline_pca/{f}"] = 0.4
  for f in editing.EDITS:
    m[f"edit/{f}/mse"] = 0.02
    m[f"edit/{f}/no_edit/mse"] = 0.03
    m[f"edit/{f}/copy_target/mse"] = 0.01
  return m


def test_table_aggregates_over_seeds_and_writes_every_section(tmp_path):
  for seed, shift in enumerate((0.0, 0.2)):
    for slug in ("full", "nfe"):
      d = table.run_dir(tmp_path, slug, seed)
      d.mkdir(parents=True)
      (d / "metrics.json").write_text(json.dumps(_metrics(shift)))
  runs, missing = table.collect(tmp_path, [0, 1], [r.slug for r in
                                                   table.ROWS])
  assert set(runs) == {"full", "nfe"}
  assert len(missing) == 2 * (len(table.ROWS) - 2)
  agg = table.aggregate(runs)
  mean, std = agg["full"]["stats"]["normals/mean"]
  assert mean == pytest.approx(14.1)
  assert std == pytest.approx(np.std([14.0, 14.2], ddof=1))
  text = table.markdown(agg)
  for heading in ("Table 1", "Tables 2-3", "Leakage", "Editing",
                  "Reconstruction"):
    assert heading in text
  assert "14.10 ± 0.14" in text
  assert "[30]-style" in text


def test_load_metrics_names_the_bad_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="metrics.json"):
    table.load_metrics(tmp_path / "metrics.json")
  bad = tmp_path / "metrics.json"
  bad.write_text("{not json")
  with pytest.raises(ValueError, match=str(bad)):
    table.load_metrics(bad)
  bad.write_text(json.dumps({"loss": 1.0}))
  with pytest.raises(ValueError, match="recon/mse"):
    table.load_metrics(bad)


def test_run_jobs_skips_finished_and_reports_failures(tmp_path):
  done = tmp_path / "done"
  done.mkdir()
  (done / "metrics.json").write_text("{}")
  marker = tmp_path / "ran"
  ok = jobs.Job(tmp_path / "ok", (sys.executable, "-c",
                                  f"open({str(marker)!r}, 'w').write('1')"))
  fail = jobs.Job(tmp_path / "fail", (sys.executable, "-c",
                                      "import sys; sys.exit(3)"))
  skipped = jobs.Job(done, (sys.executable, "-c", "import sys; sys.exit(5)"))
  failed = jobs.run_jobs([skipped, ok, fail], parallel=2, poll_s=0.05)
  assert failed == [str(tmp_path / "fail")]
  assert marker.read_text() == "1"
  assert (tmp_path / "fail" / "train.log").is_file()
  assert pathlib.Path(tmp_path / "ok").is_dir()


def _unit(v):
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_mlin37_normals_invert_the_sh_basis():
  """A core whose B is albedo x Y(n) gives back n (any albedo scale)."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from disent_jax.methods.tensor_aae import multilinear_baseline as mlin  # pylint: disable=import-outside-toplevel
  from disent_jax.ops import sh_lighting  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  s = 4
  n = _unit(rng.normal(size=(s, s, 3)) + [0.0, 0.0, 2.0])
  rho = rng.uniform(0.2, 0.9, size=(s, s, 3))
  y = np.asarray(sh_lighting.sh_basis(jnp.asarray(n, jnp.float32)))
  b = rho[..., None] * y[:, :, None, :]  # [S, S, 3, 9]
  core = b.reshape(-1, 9)[:, :, None, None]  # k_exp = k_id = 1
  dec = mlin.MultilinearDecomposition(core, s, 1.0, np.zeros(0))
  got = dec.normals(np.ones((2, 1)), np.full((2, 1), -3.0))  # sign flips
  np.testing.assert_allclose(got, np.broadcast_to(n, got.shape), atol=1e-5)


def test_mlin37_design_matches_einsum_and_als_fits_its_own_model():
  from disent_jax.methods.tensor_aae import multilinear_baseline as mlin  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(1)
  q = rng.normal(size=(48, 9, 2, 3))
  dec = mlin.MultilinearDecomposition(q, 4, 1e-6, np.zeros(0))
  lat = {"light": rng.normal(size=(5, 9)),
         "expression": rng.normal(size=(5, 2)),
         "identity": rng.normal(size=(5, 3))}
  ref = {"light": np.einsum("dlei,ne,ni->ndl", q, lat["expression"],
                            lat["identity"]),
         "expression": np.einsum("dlei,nl,ni->nde", q, lat["light"],
                                 lat["identity"]),
         "identity": np.einsum("dlei,nl,ne->ndi", q, lat["light"],
                               lat["expression"])}
  for free, want in ref.items():
    np.testing.assert_allclose(dec._design(lat, free), want, atol=1e-10)
  # Images from the model itself: each ALS step is an exact (ridge) least
  # squares solve, so the error never rises, and it ends far below the
  # images' variance (trilinear ALS from a random start can stall short of
  # zero).
  n = 200
  lights = rng.normal(size=(n, 9))
  z_e, z_i = rng.normal(size=(n, 2)), rng.normal(size=(n, 3))
  x = np.einsum("dlei,nl,ne,ni->nd", q, lights, z_e, z_i)
  images = x.reshape(n, 4, 4, 3)
  fit = mlin.fit_multilinear(images, lights, expression=2, identity=3,
                             sweeps=30, ridge=1e-6, seed=0)
  assert fit.losses[-1] < 0.2 * np.var(x)
  assert np.all(np.diff(fit.losses) <= 1e-9 * np.var(x))
  with pytest.raises(ValueError, match="rows"):
    mlin.fit_multilinear(images, lights[:3], expression=2, identity=3)


def test_mlin37_encode_recovers_images_of_its_own_core():
  from disent_jax.methods.tensor_aae import multilinear_baseline as mlin  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(2)
  q = rng.normal(size=(48, 9, 2, 3))
  dec = mlin.MultilinearDecomposition(q, 4, 1e-8, np.zeros(0))
  # Lights near the mean light, where `encode` starts.
  lat = {"light": mlin._mean_light()[None] + rng.normal(size=(6, 9)) * 0.1,
         "expression": rng.normal(size=(6, 2)),
         "identity": rng.normal(size=(6, 3))}
  images = dec.reconstruct(lat)
  got = dec.reconstruct(dec.encode(images, sweeps=30))
  err = np.mean(np.square(got - images), axis=(1, 2, 3))
  assert np.median(err) < 1e-3 * np.var(images)


def test_baseline_jobs_measure_the_runlocal_config(tmp_path):
  from disent_jax.train import config_utils  # pylint: disable=import-outside-toplevel
  config = config_utils.load_config("tensor_aae", "runlocal")
  config.total_steps = 3
  config.data.cache_dir = str(tmp_path)
  plain = table.plain_metrics(config)
  mlin37 = table.mlin37_metrics(config)
  assert np.isfinite(plain["recon/mse"]) and plain["recon/mse"] > 0
  for f in ("identity", "expression", "pose", "light"):
    assert 0.0 <= plain[f"probe/z_plain/{f}"] <= 1.0
  assert 0.0 <= mlin37["normals_near/mean"] <= 180.0
  for lat, f in (("identity", "identity"), ("expression", "expression"),
                 ("light", "light")):
    assert 0.0 <= mlin37[f"probe_frontal/z_{lat}/{f}"] <= 1.0
