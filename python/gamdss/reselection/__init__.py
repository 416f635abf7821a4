"""Reselection of keyframes over clips and frame caches.

- :mod:`~gamdss.reselection.noise_aware`: the noise-aware method (``recommended`` preset);
- :mod:`~gamdss.reselection.clips`: one dispatch from settings to a method, for a batch of clips;
- :mod:`~gamdss.reselection.run`: :func:`reselect_cache`, every clip of a frame cache;
- :mod:`~gamdss.reselection.result`: :class:`ClipReselection`, one clip's result;
- :mod:`~gamdss.reselection.files`: the results file ``reselection.csv``;
- :mod:`~gamdss.reselection.export`: a run's output folder (results, corrected annotation
  files, settings).

The settings themselves are :class:`gamdss.settings.reselection.ReselectionSettings`.
"""
