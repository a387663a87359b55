"""A small CenterNet-style detector for tiny cameras: architecture, JAX forward pass, losses.

One class heatmap ("camera") at stride 4 plus a type head, not one heatmap per type: the
census counts cameras first and types second; a single heatmap pools every camera's positives
(the synthetic city has about as many domes as bullets, volunteers often tag "unknown"), its
score is the one calibrated number the audit needs, and a type read at the peak can be wrong
without losing the camera.

Architecture (:data:`LAYERS`, all 3×3 convolutions with ReLU, NCHW):

====== ======== ====== ======== ===================================
layer  channels stride dilation purpose
====== ======== ====== ======== ===================================
stem   3 -> 16  2      1        full-resolution edges (3-px cameras)
down   16 -> C  2      1        to stride 4
b1     C -> C   1      1
b2     C -> C   1      2        context: pole arm, bracket, façade
b3     C -> C   1      4        (receptive field 71 px)
head   C -> C   1      1
====== ======== ====== ======== ===================================

then four 1×1 convolutions: ``heatmap`` (1 channel, sigmoid), ``size`` (log width, log height
in input pixels), ``offset`` (sub-cell position of the centre, in cells) and ``type`` (logits of
dome, directed, unknown: :data:`TYPES`). The input is an ``N × 3 × H × W`` float image in
``[0, 255]`` (H, W multiples of 4), normalised inside the model as ``(x - 127.5) / 64``.

Parameters are a plain dict ``name -> (weight OIHW, bias)`` of numpy or JAX arrays, so the ONNX
export (:mod:`camcensus.detect.onnx_export`) needs no JAX. JAX (``camcensus[train]``) is
imported only by the functions that need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "HEADS",
    "LAYERS",
    "STRIDE",
    "TYPES",
    "Layer",
    "focal_loss",
    "forward",
    "init_params",
    "layers",
    "loss_fn",
]

#: Output stride of the heatmap (input pixels per cell).
STRIDE = 4
#: Camera types of the type head, in channel order (COCO categories of detect.labels).
TYPES: tuple[str, ...] = ("dome", "directed", "unknown")
#: Heads: name -> output channels.
HEADS: dict[str, int] = {"heatmap": 1, "size": 2, "offset": 2, "type": len(TYPES)}
#: Normalisation of the input: ``(x - MEAN) / SCALE``.
MEAN, SCALE = 127.5, 64.0
#: Initial heatmap bias: sigmoid(-4.6) = 0.01 (CenterNet's prior for rare positives).
HEAT_BIAS = -4.6


@dataclass(frozen=True)
class Layer:
    """One convolution: name, channels in and out, kernel, stride, dilation, ReLU after it."""

    name: str
    c_in: int
    c_out: int
    kernel: int = 3
    stride: int = 1
    dilation: int = 1
    relu: bool = True

    @property
    def pad(self) -> int:
        """Symmetric zero padding that keeps ``H / stride`` (the same in JAX and ONNX)."""
        return self.dilation * (self.kernel - 1) // 2


def layers(channels: int = 32) -> list[Layer]:
    """Return the backbone and head convolutions for ``channels`` feature channels."""
    c = int(channels)
    body = [
        Layer("stem", 3, 16, stride=2),
        Layer("down", 16, c, stride=2),
        Layer("b1", c, c),
        Layer("b2", c, c, dilation=2),
        Layer("b3", c, c, dilation=4),
        Layer("head", c, c),
    ]
    return body + [Layer(name, c, k, kernel=1, relu=False) for name, k in HEADS.items()]


#: The default architecture (32 channels).
LAYERS: tuple[Layer, ...] = tuple(layers())


def init_params(seed: int, *, channels: int = 32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return He-initialised parameters (numpy float32), the heatmap bias at :data:`HEAT_BIAS`."""
    rng = np.random.default_rng([seed, 11])
    params: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for lay in layers(channels):
        fan_in = lay.c_in * lay.kernel * lay.kernel
        std = np.sqrt(2.0 / fan_in) if lay.relu else np.sqrt(1.0 / fan_in) * 0.1
        w = rng.normal(0.0, std, (lay.c_out, lay.c_in, lay.kernel, lay.kernel))
        b = np.zeros(lay.c_out)
        if lay.name == "heatmap":
            b[:] = HEAT_BIAS
        params[lay.name] = (w.astype(np.float32), b.astype(np.float32))
    return params


def _channels(params: Mapping[str, Any]) -> int:
    return int(params["b1"][0].shape[0])


def forward(params: Mapping[str, Any], images: Any) -> dict[str, Any]:
    """Run the network with JAX: ``images`` ``N × 3 × H × W`` in ``[0, 255]``.

    Returns
    -------
    dict
        ``heatmap`` (sigmoid, ``N × 1 × H/4 × W/4``), ``heat_logit``, ``size``, ``offset``,
        ``type`` (logits), each ``N × k × H/4 × W/4``.
    """
    import jax
    import jax.numpy as jnp

    x = (jnp.asarray(images, dtype=jnp.float32) - MEAN) / SCALE
    out: dict[str, Any] = {}
    feat = x
    for lay in layers(_channels(params)):
        w, b = params[lay.name]
        src = feat
        y = (
            jax.lax.conv_general_dilated(
                src,
                jnp.asarray(w),
                window_strides=(lay.stride, lay.stride),
                padding=[(lay.pad, lay.pad), (lay.pad, lay.pad)],
                rhs_dilation=(lay.dilation, lay.dilation),
                dimension_numbers=("NCHW", "OIHW", "NCHW"),
                precision=jax.lax.Precision.HIGHEST,
            )
            + jnp.asarray(b)[None, :, None, None]
        )
        if lay.name in HEADS:
            out[lay.name] = y
            continue
        feat = jax.nn.relu(y)
    out["heat_logit"] = out["heatmap"]
    out["heatmap"] = jax.nn.sigmoid(out["heat_logit"])
    return out


def focal_loss(heat_logit: Any, target: Any, weight: Any) -> Any:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), summed, per positive.

    ``target`` is the Gaussian-splatted heatmap (1 exactly at each camera's centre cell);
    ``weight`` is 0 on ignore regions, 1 elsewhere. Divided by ``max(1, positives)``.
    """
    import jax
    import jax.numpy as jnp

    log_p = jax.nn.log_sigmoid(heat_logit)
    log_q = jax.nn.log_sigmoid(-heat_logit)
    p = jnp.exp(log_p)
    pos = (target >= 1.0 - 1e-6).astype(jnp.float32)
    pos_loss = -((1 - p) ** 2) * log_p * pos
    neg_loss = -((1 - target) ** 4) * p**2 * log_q * (1 - pos)
    n_pos = jnp.maximum(pos.sum(), 1.0)
    return ((pos_loss + neg_loss) * weight).sum() / n_pos


def loss_fn(
    params: Mapping[str, Any], batch: Mapping[str, Any], *, size_weight: float = 0.1
) -> tuple[Any, dict[str, Any]]:
    """Return the training loss and its parts for a batch.

    ``batch``: ``images`` (N × 3 × H × W), ``heatmap`` and ``weight`` (N × 1 × h × w),
    ``size`` and ``offset`` (N × 2 × h × w, read at centre cells), ``type`` (N × h × w ints,
    -1 where unknown), ``centre`` (N × 1 × h × w: 1 at each camera's centre cell).
    """
    import jax
    import jax.numpy as jnp

    out = forward(params, batch["images"])
    heat = focal_loss(out["heat_logit"], batch["heatmap"], batch["weight"])
    centre = batch["centre"]
    n = jnp.maximum(centre.sum(), 1.0)
    size = (jnp.abs(out["size"] - batch["size"]) * centre).sum() / n
    offset = (jnp.abs(out["offset"] - batch["offset"]) * centre).sum() / n
    typ = batch["type"]
    known = (typ >= 0).astype(jnp.float32) * centre[:, 0]
    logp = jax.nn.log_softmax(out["type"], axis=1)
    picked = jnp.take_along_axis(logp, jnp.maximum(typ, 0)[:, None], axis=1)[:, 0]
    type_loss = -(picked * known).sum() / jnp.maximum(known.sum(), 1.0)
    total = heat + size_weight * size + offset + 0.1 * type_loss
    return total, {"heatmap": heat, "size": size, "offset": offset, "type": type_loss}
