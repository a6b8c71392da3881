"""Linear-probe classification accuracy of a latent (paper 000 Tables 2–3).

Paper 000 trains a linear SVM on a latent (z_id, z_exp, z_p, z_ill) to
classify the matching factor and reports 10-fold cross-validated accuracy.
This module is a pure-JAX linear classifier, with no scikit-learn:

* loss "svm": one-vs-rest squared hinge, the objective of a linear SVM in
  its L2-loss form (what liblinear's LinearSVC solves by default);
* loss "logistic": multinomial logistic regression.

Both add (l2 / 2) ||W||^2, are smooth and convex, and are minimised with
L-BFGS (optax) in a `lax.while_loop` (until the gradient is below a
tolerance, or an iteration cap), so fitting is jit-able and the k folds are
trained at once with `jax.vmap` (sample weights select each fold's training
set). Features are standardised with training-fold
statistics.
"""

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

_HI = jax.lax.Precision.HIGHEST


class LinearClassifier(NamedTuple):
  """Parameters of a fitted probe.

  Attributes:
    weights: [D, C].
    bias: [C].
    mean: [D] feature mean used for standardisation.
    scale: [D] feature scale used for standardisation.
  """
  weights: jax.Array
  bias: jax.Array
  mean: jax.Array
  scale: jax.Array


def _scores(params, x):
  w, b = params
  return jnp.matmul(x, w, precision=_HI) + b


def objective(params, x, y, sample_weight, *, num_classes: int, loss: str,
              l2: float) -> jax.Array:
  """Regularised training objective of the probe.

  Args:
    params: (weights [D, C], bias [C]).
    x: [N, D] standardised features.
    y: [N] integer labels.
    sample_weight: [N] non-negative weights (0 leaves a sample out).
    num_classes: C.
    loss: "svm" (one-vs-rest squared hinge) or "logistic" (softmax
      cross-entropy).
    l2: weight of (1/2) ||W||^2 (the bias is not regularised).

  Returns:
    Scalar: weighted mean loss + l2 / 2 ||W||^2.
  """
  f = _scores(params, x)
  onehot = jax.nn.one_hot(y, num_classes, dtype=f.dtype)
  if loss == "svm":
    sign = 2.0 * onehot - 1.0
    per = jnp.sum(jnp.square(jnp.maximum(0.0, 1.0 - sign * f)), axis=-1)
  elif loss == "logistic":
    per = -jnp.sum(onehot * jax.nn.log_softmax(f), axis=-1)
  else:
    raise ValueError(f"loss must be 'svm' or 'logistic', got {loss!r}.")
  wsum = jnp.maximum(jnp.sum(sample_weight), 1e-12)
  return (jnp.sum(per * sample_weight) / wsum
          + 0.5 * l2 * jnp.sum(jnp.square(params[0])))


def fit_linear_classifier(x: jax.Array, y: jax.Array, *, num_classes: int,
                          sample_weight: Optional[jax.Array] = None,
                          loss: str = "svm", l2: float = 1e-3,
                          num_steps: int = 200,
                          tolerance: float = 1e-4) -> LinearClassifier:
  """Fits a linear classifier with L-BFGS (pure, jit- and vmap-able).

  Args:
    x: [N, D] features.
    y: [N] integer labels in [0, num_classes).
    num_classes: C (static).
    sample_weight: optional [N] weights; 0 excludes a sample (used for
      cross-validation folds).
    loss: "svm" or "logistic" (see `objective`).
    l2: L2 regularisation weight.
    num_steps: the most L-BFGS iterations.
    tolerance: stop once the largest gradient entry is below this.

  Returns:
    A `LinearClassifier`.
  """
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.int32)
  if x.ndim != 2 or y.shape != x.shape[:1]:
    raise ValueError(
        f"x must be [N, D] and y [N], got {x.shape} and {y.shape}.")
  if sample_weight is None:
    sample_weight = jnp.ones(x.shape[:1], x.dtype)
  sw = jnp.asarray(sample_weight, x.dtype)
  wsum = jnp.maximum(jnp.sum(sw), 1e-12)
  mean = jnp.sum(sw[:, None] * x, axis=0) / wsum
  var = jnp.sum(sw[:, None] * jnp.square(x - mean), axis=0) / wsum
  scale = jnp.where(var > 1e-12, jnp.sqrt(var), 1.0)
  xs = (x - mean) / scale
  fun = functools.partial(objective, x=xs, y=y, sample_weight=sw,
                          num_classes=num_classes, loss=loss, l2=l2)
  params = (jnp.zeros((x.shape[1], num_classes), x.dtype),
            jnp.zeros((num_classes,), x.dtype))
  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(fun)

  def step(carry):
    p, state, it, _ = carry
    value, grad = value_and_grad(p, state=state)
    updates, state = opt.update(grad, state, p, value=value, grad=grad,
                                value_fn=fun)
    gmax = jnp.maximum(jnp.max(jnp.abs(grad[0])), jnp.max(jnp.abs(grad[1])))
    return optax.apply_updates(p, updates), state, it + 1, gmax

  def keep_going(carry):
    _, _, it, gmax = carry
    return (it < num_steps) & (gmax > tolerance)

  init = (params, opt.init(params), jnp.asarray(0), jnp.asarray(jnp.inf))
  params, _, _, _ = jax.lax.while_loop(keep_going, step, init)
  return LinearClassifier(params[0], params[1], mean, scale)


def predict(classifier: LinearClassifier, x: jax.Array) -> jax.Array:
  """Predicted labels [N] for features x [N, D]."""
  xs = (jnp.asarray(x, jnp.float32) - classifier.mean) / classifier.scale
  return jnp.argmax(_scores((classifier.weights, classifier.bias), xs),
                    axis=-1)


def stratified_folds(labels, *, num_folds: int, seed: int = 0) -> np.ndarray:
  """Fold index [N] for each sample, balancing classes across folds.

  Args:
    labels: [N] labels.
    num_folds: k.
    seed: shuffling seed.

  Returns:
    [N] int array with values in [0, k).
  """
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  order = rng.permutation(labels.shape[0])
  order = order[np.argsort(labels[order], kind="stable")]
  folds = np.empty(labels.shape[0], np.int64)
  folds[order] = np.arange(labels.shape[0]) % num_folds
  return folds


@functools.partial(jax.jit, static_argnames=("num_classes", "num_folds",
                                             "loss"))
def _cv_accuracy(x, y, folds, *, num_classes, num_folds, loss, l2,
                 num_steps, tolerance):
  def one(k):
    train = (folds != k).astype(jnp.float32)
    clf = fit_linear_classifier(x, y, num_classes=num_classes,
                                sample_weight=train, loss=loss, l2=l2,
                                num_steps=num_steps, tolerance=tolerance)
    correct = (predict(clf, x) == y) & (folds == k)
    return jnp.sum(correct) / jnp.maximum(jnp.sum(folds == k), 1)

  return jax.vmap(one)(jnp.arange(num_folds))


def probe_accuracy(latents, labels, *, num_folds: int = 10,
                   loss: str = "svm", l2: float = 1e-3,
                   num_steps: int = 200, tolerance: float = 1e-4,
                   seed: int = 0) -> dict:
  """k-fold cross-validated accuracy of a linear probe.

  Args:
    latents: [N, D] codes (e.g. z_id).
    labels: [N] factor labels of any numeric type (e.g. subject ids).
    num_folds: k (10 in paper 000).
    loss: "svm" (linear SVM, squared hinge) or "logistic".
    l2: L2 regularisation weight.
    num_steps: the most L-BFGS iterations per fold.
    tolerance: gradient tolerance (see `fit_linear_classifier`).
    seed: fold-shuffling seed.

  Returns:
    {"mean": mean accuracy over folds, "std": its spread, "chance": the
    accuracy of always predicting the most frequent class, "folds": [k]
    per-fold accuracies (numpy)}.
  """
  x = np.asarray(latents, np.float32)
  classes, y = np.unique(np.asarray(labels), return_inverse=True)
  if x.ndim != 2 or y.shape[0] != x.shape[0]:
    raise ValueError(
        f"latents must be [N, D] with N labels, got {x.shape} and "
        f"{np.shape(labels)}.")
  if not 2 <= num_folds <= x.shape[0]:
    raise ValueError(f"num_folds must be in [2, N], got {num_folds}.")
  folds = stratified_folds(y, num_folds=num_folds, seed=seed)
  acc = np.asarray(_cv_accuracy(
      x, y.astype(np.int32), folds.astype(np.int32),
      num_classes=max(len(classes), 2), num_folds=num_folds, loss=loss,
      l2=l2, num_steps=num_steps, tolerance=tolerance), np.float64)
  return {"mean": float(acc.mean()), "std": float(acc.std()),
          "chance": float(np.bincount(y).max() / y.shape[0]), "folds": acc}
