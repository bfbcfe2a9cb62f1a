"""Inverse graphics: multi-view data from a generator's view codes, the viewpoint regressor, and (later) the
inverse-graphics network and the neural renderer."""

from ganfactory.inverse.viewpoint import (
    BUILTIN_REGRESSORS,
    ViewpointRegressor,
    load_viewpoint_regressor,
)

__all__ = ["BUILTIN_REGRESSORS", "ViewpointRegressor", "load_viewpoint_regressor"]
