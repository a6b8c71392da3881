"""SynthFace mesh sequences: layout, splits, ground-truth neutrals."""

import numpy as np
import pytest

from disent_jax.data import synthface_meshes as sm

_KW = dict(num_subjects=4, frames=3, seed=0)


@pytest.fixture(scope="module")
def everything():
  return sm.mesh_source(split="all", **_KW)


def test_layout_and_neutral_frames(everything):
  n = 4 * len(sm.EXPRESSIONS) * 3
  assert len(everything) == n
  ex = everything[0]
  assert ex["vertices"].shape == (everything.num_vertices, 3)
  # First and last frames of a sequence are the subject's exact neutral; the
  # apex frame is not.
  first, apex, last = everything[0], everything[1], everything[2]
  np.testing.assert_array_equal(first["vertices"], first["neutral"])
  np.testing.assert_array_equal(last["vertices"], last["neutral"])
  assert np.abs(apex["vertices"] - apex["neutral"]).max() > 1.0
  # Neutrals differ between subjects and agree within one.
  other = everything[3 * len(sm.EXPRESSIONS)]
  assert other["subject"] == 1
  assert np.abs(other["neutral"] - first["neutral"]).max() > 1.0


def test_identity_protocol_holds_out_last_subjects():
  train = sm.mesh_source(split="train", num_test_subjects=1, **_KW)
  test = sm.mesh_source(split="test", num_test_subjects=1, **_KW)
  assert set(train.subjects) == {0, 1, 2} and set(test.subjects) == {3}
  assert len(train) + len(test) == 4 * len(sm.EXPRESSIONS) * 3


def test_interpolation_and_extrapolation_rules():
  test = sm.mesh_source(split="test", protocol="interpolation", **_KW)
  assert np.all(test.indices % 100 < 10)
  assert len(test) == sum(1 for i in range(144) if i % 100 < 10)
  extra = sm.mesh_source(split="test", protocol="extrapolation",
                         test_expression="mouth_open", **_KW)
  assert set(extra.expressions) == {sm.EXPRESSIONS.index("mouth_open")}


def test_determinism_and_matching_indices(everything):
  again = sm.mesh_source(split="test", num_test_subjects=1, **_KW)
  for i in (0, 5):
    j = int(again.indices[i])
    np.testing.assert_array_equal(again[i]["vertices"],
                                  everything[j]["vertices"])


def test_bad_arguments():
  with pytest.raises(ValueError, match="test_expression"):
    sm.mesh_source(split="test", test_expression="yawn", **_KW)
  with pytest.raises(ValueError, match="num_test_subjects"):
    sm.mesh_source(split="test", num_test_subjects=4, **_KW)
  with pytest.raises(ValueError, match="split"):
    sm.mesh_source(split="valid", **_KW)
