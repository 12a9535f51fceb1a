"""Prediction layer: a learning-curve extrapolator (issue 15) that searches ask how a partly trained
candidate's curve will end. Below the finders that use it; imports no sparsenas layer.

>>> f = forecast([1, 2, 3, 4], [0.80, 0.84, 0.86, 0.87], x_final=20)
>>> f.prob_above(0.5) > 0.99 and 0.0 <= f.interval(0.9)[0] <= f.mean <= f.interval(0.9)[1] <= 1.0
True
"""

from .curves import VERSION, Forecast, forecast

__all__ = ["VERSION", "Forecast", "forecast"]
