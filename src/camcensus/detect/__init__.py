"""Camera detector groundwork: perspective crops, labels from volunteers' tags, COCO export.

Optional extra ``camcensus[cv]`` (issue 11). This wave holds the training data only:
:mod:`camcensus.detect.crops` (the viewer's projection and its inverse, tilings of the
panorama), :mod:`camcensus.detect.labels` (agreed tags -> boxes on crops, negatives, COCO
JSON) and :mod:`camcensus.detect.sizes` (Stanford's box sizes beside the synthetic renderer's).
"""

from __future__ import annotations

from camcensus.detect import crops, labels, sizes

__all__ = ["crops", "labels", "sizes"]
