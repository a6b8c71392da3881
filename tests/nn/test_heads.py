"""Tests for disent_jax.nn.heads."""

import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.losses import probabilistic
from disent_jax.nn import heads


def test_reparameterize_moments_and_gradients():
  mean = jnp.array([1.0, -2.0])
  log_var = jnp.array([0.5, -1.0])
  z = jax.vmap(lambda k: heads.reparameterize(k, mean, log_var))(
      jax.random.split(jax.random.key(0), 20000))
  np.testing.assert_allclose(z.mean(0), mean, atol=0.03)
  np.testing.assert_allclose(z.std(0), np.exp(0.5 * log_var), rtol=0.03)
  key = jax.random.key(1)
  eps = jax.random.normal(key, (2,))
  gm, glv = jax.grad(lambda m, lv: jnp.sum(heads.reparameterize(key, m, lv)),
                     argnums=(0, 1))(mean, log_var)
  np.testing.assert_allclose(gm, 1.0)
  np.testing.assert_allclose(glv, 0.5 * np.exp(0.5 * log_var) * eps,
                             rtol=1e-6)


def test_gaussian_head_sampling_modes():
  head = heads.GaussianHead(latent=4)
  x = jnp.ones((3, 10))
  variables = head.init(jax.random.key(0), x, deterministic=True)
  out = head.apply(variables, x, deterministic=True)
  assert out.mean.shape == out.log_variance.shape == (3, 4)
  np.testing.assert_array_equal(out.sample, out.mean)
  s1 = head.apply(variables, x, deterministic=False,
                  rngs={"latent": jax.random.key(1)}).sample
  s2 = head.apply(variables, x, deterministic=False,
                  rngs={"latent": jax.random.key(2)}).sample
  assert np.abs(np.asarray(s1 - s2)).max() > 0
  np.testing.assert_allclose(out.kl(),
                             probabilistic.gaussian_kl(out.mean, out.log_variance))


def test_mlp_matches_numpy():
  mlp = heads.MLP(features=(5, 2))
  x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
  params = mlp.init(jax.random.key(0), x)["params"]
  h = np.maximum(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"],
                 0)
  expected = h @ params["dense_1"]["kernel"] + params["dense_1"]["bias"]
  np.testing.assert_allclose(mlp.apply({"params": params}, x), expected,
                             rtol=1e-5, atol=1e-6)
  final = heads.MLP(features=(5, 2), activate_final=True)
  assert np.all(np.asarray(final.apply({"params": params}, x)) >= 0)
