"""Benchmarks of the toolkit's methods on generated data with known answers.

- :mod:`gamdss.accuracy.keyframes`: how far annotated, reselected and spotted keyframes are from
  the true ones (``gamdss bench keyframes``).
"""
