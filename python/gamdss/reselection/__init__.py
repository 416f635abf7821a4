"""Reselection of keyframes over clips and frame caches.

- :mod:`~gamdss.reselection.noise_aware`: the noise-aware method (``recommended`` preset);
- :mod:`~gamdss.reselection.clips`: one dispatch from settings to a method, for a batch of clips;
- :mod:`~gamdss.reselection.run`: :func:`reselect_cache`, every clip of a frame cache;
- :mod:`~gamdss.reselection.export`: a run's output folder (results, corrected annotation
  files, settings).

The settings themselves are :class:`gamdss.settings.reselection.ReselectionSettings`. What a
run gives, one :class:`~gamdss.data.reselection_record.ClipReselection` per clip, and its
results file ``reselection.csv`` (:mod:`gamdss.data.reselection_files`) are in the data
layer, because the training Dataset, training and the audit read them as well.
"""
