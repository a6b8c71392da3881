"""SFace's building blocks that need no weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax.nets import sface


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_depthwise_conv_equals_grouped_convolution(strides):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 9, 10, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 1, 6)), jnp.float32)
  padding = ((1, 1), (1, 1))

  def ref(x, w):
    return jax.lax.conv_general_dilated(
        x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=6, precision=jax.lax.Precision.HIGHEST)

  ours = lambda x, w: sface._depthwise_conv(x, w, strides, padding)  # pylint: disable=protected-access
  np.testing.assert_allclose(ours(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  for a, b in zip(jax.grad(loss(ours), (0, 1))(x, w),
                  jax.grad(loss(ref), (0, 1))(x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_missing_package_names_the_extra(monkeypatch):
  monkeypatch.setattr(sface, "SFACE_PACKAGE", "no_such_package_xyz")
  with pytest.raises(FileNotFoundError, match=r"no_such_package_xyz.*\[real\]"):
    sface.find_sface_file()
