"""Learning-curve extrapolation (issue 15)."""

from .curves import Forecast, forecast

__all__ = ["Forecast", "forecast"]
