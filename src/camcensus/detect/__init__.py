"""Camera detector: perspective crops, labels from tags, training, ONNX inference, audit.

Optional extra ``camcensus[cv]`` (issue 11): :mod:`camcensus.detect.crops` (the viewer's
projection and its inverse, tilings of the panorama), :mod:`camcensus.detect.labels` (agreed
tags -> boxes on crops, negatives, COCO JSON), :mod:`camcensus.detect.sizes` (Stanford's box
sizes beside the synthetic renderer's), :mod:`camcensus.detect.infer` (onnxruntime inference,
detections as machine tags) and :mod:`camcensus.detect.evaluate` (precision, recall, AP,
reliability, recall by group). Training (``camcensus[train]``, JAX): :mod:`~camcensus.detect.model`,
:mod:`~camcensus.detect.train`, :mod:`~camcensus.detect.onnx_export` (imported on demand).
"""

from __future__ import annotations

from camcensus.detect import crops, evaluate, infer, labels, sizes

__all__ = ["crops", "evaluate", "infer", "labels", "sizes"]
