"""Every loss family under jax.vmap and jax.jit equals the plain call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disent_jax import losses

_RNG = np.random.default_rng(0)


def _r(*shape):
  return jnp.asarray(_RNG.standard_normal(shape), jnp.float32)


_MASK = jnp.asarray(_RNG.random((3, 5, 6)) > 0.3, jnp.float32)
_MIRROR = jnp.asarray(np.arange(8)[::-1].copy())
_LABELS = jnp.array([0, 2, 2, 1])

# name -> (function of one example's arrays, batched arguments [3, ...]).
_CASES = {
    "mse": (losses.reconstruction.mse, (_r(3, 8, 3), _r(3, 8, 3))),
    "vertex_l2": (losses.reconstruction.vertex_l2,
                  (_r(3, 8, 3), _r(3, 8, 3))),
    "gradient_difference": (
        lambda p, t, m: losses.reconstruction.gradient_difference(
            p, t, mask=m), (_r(3, 5, 6, 3), _r(3, 5, 6, 3), _MASK)),
    "landmarks": (
        lambda p, t: losses.reconstruction.landmark_loss(
            p, t, pairs=losses.reconstruction.IBUG68_OPENING_PAIRS),
        (_r(3, 68, 2), _r(3, 68, 2))),
    "gaussian_kl": (losses.probabilistic.gaussian_kl, (_r(3, 4), _r(3, 4))),
    "patch_gan": (losses.adversarial.patch_generator_loss, (_r(3, 4, 4),)),
    "center_loss": (
        lambda f, c: losses.identity.center_loss(f, _LABELS, c),
        (_r(3, 4, 5), _r(3, 3, 5))),
    "cosine": (losses.identity.cosine_identity_loss, (_r(3, 6), _r(3, 6))),
    "symmetry": (lambda a: losses.geometry.symmetry_loss(a, _MIRROR),
                 (_r(3, 8, 3),)),
    "photometric": (losses.image_formation.photometric_loss,
                    (_r(3, 5, 6, 3), _r(3, 5, 6, 3), _MASK)),
    "skin_colour": (losses.image_formation.skin_colour_loss,
                    (_r(3, 5, 6, 3), _r(3, 5, 6, 3), _MASK)),
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_vmap_and_jit_match_a_loop(name):
  fn, args = _CASES[name]
  looped = np.stack([np.asarray(fn(*[a[i] for a in args]))
                     for i in range(3)])
  np.testing.assert_allclose(jax.vmap(fn)(*args), looped, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(jax.jit(jax.vmap(fn))(*args), looped,
                             rtol=1e-5, atol=1e-6)
  grads = jax.grad(lambda x: jnp.sum(jax.vmap(fn)(x, *args[1:])))(args[0])
  assert np.isfinite(np.asarray(grads)).all()
