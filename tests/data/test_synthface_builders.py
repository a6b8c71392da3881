"""Tests of the SynthFace TFDS builders, the build command and on-the-fly."""

import json
import sys

import numpy as np
import pytest

from disent_jax.data import build as build_lib
from disent_jax.data import onthefly
from disent_jax.data import pipeline
from disent_jax.data import synthface_builders as sfb

NAME = "synthface_meshes/tiny"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  build_lib.build(NAME, data_dir, progress=False)
  return data_dir


def _same(stored, generated):
  assert set(stored) == set(generated)
  for k, v in generated.items():
    s = np.asarray(stored[k])
    if v.ndim:
      assert s.dtype == v.dtype, k
    np.testing.assert_array_equal(s, v, err_msg=k)


def test_build_writes_verified_array_record_without_tensorflow(built):
  directory = sfb.verify_build(NAME, built)
  files = sorted(p.name for p in directory.iterdir())
  assert any(".array_record-" in f for f in files)
  manifest = json.loads((directory / sfb.MANIFEST).read_text())
  gen = onthefly.generator("synthface_meshes", "tiny")
  assert manifest["splits"] == {k: len(v) for k, v in gen.splits.items()}
  assert "tensorflow" not in sys.modules


def test_materialised_equals_on_the_fly(built):
  gen = onthefly.generator("synthface_meshes", "tiny")
  for split in ("interpolation_test", "identity_train"):
    stored = sfb.load_source(NAME, built, split)
    generated = onthefly.OnTheFlySource(gen, split)
    assert len(stored) == len(generated) == len(gen.splits[split])
    for j in range(len(stored)):
      _same(stored[j], generated[j])


def test_splits_follow_the_protocols():
  gen = onthefly.generator("synthface_meshes", "tiny")
  cfg = gen.config
  n = gen.num_examples
  assert n == cfg.num_subjects * 12 * cfg.num_frames
  interp = gen.splits["interpolation_test"]
  np.testing.assert_array_equal(interp, np.flatnonzero(np.arange(n) % 100 < 10))
  src = onthefly.OnTheFlySource(gen, "extrapolation_test")
  expressions = {int(src[j]["expression"]) for j in range(len(src))}
  assert expressions == {
      onthefly.expr.COMA_EXPRESSIONS.index(cfg.test_expression)}
  src = onthefly.OnTheFlySource(gen, "identity_test")
  assert {int(src[j]["subject"]) for j in range(len(src))} == {
      cfg.num_subjects - 1}
  for split in ("interpolation", "extrapolation", "identity"):
    both = np.concatenate([gen.splits[split + "_train"],
                           gen.splits[split + "_test"]])
    np.testing.assert_array_equal(np.sort(both), np.arange(n))


def test_examples_are_consistent_sequences():
  gen = onthefly.generator("synthface_meshes", "tiny")
  chunk = gen.chunk(0)
  for ex in chunk:
    # No frame is an exact neutral; each carries its sequence's expression.
    assert np.abs(ex["vertices"] - ex["neutral"]).max() > 0
    assert np.all(ex["expression_weights"] >= 0)
    assert ex["expression_weights"].max() > 0
  np.testing.assert_array_equal(chunk[1]["neutral"], chunk[2]["neutral"])
  assert np.abs(chunk[1]["vertices"] - chunk[1]["neutral"]).max() > 0.5


def test_partial_or_corrupt_build_is_not_reused(built, tmp_path):
  directory = sfb.dataset_dir(NAME, built)
  shard = next(p for p in directory.iterdir() if "identity_test" in p.name)
  original = shard.read_bytes()
  shard.write_bytes(original[:len(original) // 2])
  with pytest.raises(sfb.BuildError, match="truncated"):
    sfb.load_source(NAME, built, "identity_test")
  with pytest.raises(sfb.BuildError, match="--overwrite"):
    build_lib.build(NAME, built, progress=False)
  assert build_lib.main([f"--dataset={NAME}", f"--data_dir={built}",
                         "--no_progress"]) == 1
  corrupted = bytearray(original)
  corrupted[len(corrupted) // 2] ^= 0xFF
  shard.write_bytes(bytes(corrupted))
  with pytest.raises(sfb.BuildError, match="SHA-256"):
    sfb.verify_build(NAME, built)
  shard.write_bytes(original)
  sfb.verify_build(NAME, built)
  # A directory without a manifest (an interrupted build) is refused too.
  partial = tmp_path / "partial"
  target = sfb.dataset_dir(NAME, partial)
  target.mkdir(parents=True)
  (target / "dataset_info.json").write_text("{}")
  with pytest.raises(sfb.BuildError, match="partial"):
    build_lib.build(NAME, partial, progress=False)


def test_overwrite_rebuilds(tmp_path):
  target = sfb.dataset_dir(NAME, tmp_path)
  target.mkdir(parents=True)
  (target / "junk.array_record-00000-of-00001").write_bytes(b"x")
  out = build_lib.build(NAME, tmp_path, overwrite=True, progress=False)
  assert out == target
  sfb.verify_build(NAME, tmp_path)
  assert not (target / "junk.array_record-00000-of-00001").exists()


def test_pipeline_and_stream_on_the_fly():
  gen = onthefly.generator("synthface_meshes", "tiny")
  src = onthefly.OnTheFlySource(gen, "identity_train")
  it = pipeline.batched_iterator(src, batch_size=4, seed=0,
                                 process_index=0, process_count=1)
  batch = next(it)
  assert batch["vertices"].shape == (4, gen.world.num_vertices, 3)
  b1 = next(onthefly.stream(gen, batch_size=20, seed=3))
  b2 = next(onthefly.stream(gen, batch_size=20, seed=3))
  for k in b1:
    np.testing.assert_array_equal(b1[k], b2[k])
  assert b1["vertices"].shape == (20, gen.world.num_vertices, 3)
  for j in range(3):
    ref = gen.chunk(int(b1["index"][j]) // onthefly.CHUNK)[
        int(b1["index"][j]) % onthefly.CHUNK]
    np.testing.assert_allclose(b1["vertices"][j], ref["vertices"], atol=1e-4)


def test_bad_names():
  with pytest.raises(ValueError, match="unknown dataset"):
    sfb.parse_name("synthface_foo/s")
  with pytest.raises(ValueError, match="configs"):
    sfb.parse_name("synthface_meshes/zzz")
  assert sfb.parse_name("synthface_meshes") == ("synthface_meshes", "s")


def test_materialize_custom_mesh_config_matches_random_access():
  cfg = onthefly.MeshConfig(num_subjects=3, num_frames=3,
                            num_test_subjects=1)
  gen = onthefly.mesh_generator(cfg)
  assert onthefly.mesh_generator(cfg) is gen  # cached
  arrays = onthefly.materialize(gen, "identity_test")
  n = len(onthefly.expr.COMA_EXPRESSIONS) * 3
  assert arrays["vertices"].shape[0] == n
  assert set(arrays["subject"].tolist()) == {2}
  src = onthefly.OnTheFlySource(gen, "identity_test")
  for j in (0, n - 1):
    np.testing.assert_array_equal(arrays["vertices"][j], src[j]["vertices"])
  with pytest.raises(ValueError, match="splits"):
    onthefly.materialize(gen, "validation")
