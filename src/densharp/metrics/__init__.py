"""Map-comparison metrics: FSC curves and resolutions, RSCC (box and masked), map statistics."""

from densharp.metrics.fsc import FSCCurve, fsc_curve, full_map_fsc
from densharp.metrics.rscc import rscc
from densharp.metrics.stats import map_statistics

__all__ = ["FSCCurve", "fsc_curve", "full_map_fsc", "map_statistics", "rscc"]
