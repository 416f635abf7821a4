"""t-SNE of held-out features: one point per test sample, coloured by true class."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gamdss.util import atomic


def tsne_embedding(features: np.ndarray) -> np.ndarray:
    """2-D t-SNE (sklearn, ``random_state=0``) of float [N, D] features -> float64 [N, 2].

    Perplexity is ``min(30, N - 1)`` (sklearn needs it below N); N < 3 gives zeros.
    """
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {list(features.shape)}")
    n = len(features)
    if n < 3:
        return np.zeros((n, 2))
    return TSNE(n_components=2, random_state=0, perplexity=float(min(30, n - 1)), init="pca").fit_transform(features)


def tsne_plot(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    png: str | Path,
    csv_path: str | Path,
    *,
    keys: Sequence[str] | None = None,
    title: str = "",
    protocol: str = "",
) -> np.ndarray:
    """Write the t-SNE scatter plot (PNG) and its points (CSV: key, label, label_name, x, y,
    protocol); returns the [N, 2] embedding."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = np.asarray(labels, dtype=np.int64)
    xy = tsne_embedding(features)
    keys = list(keys) if keys is not None else [str(i) for i in range(len(labels))]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for c, name in enumerate(class_names):
        sel = labels == c
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, label=name)
    ax.legend(fontsize=7, markerscale=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    with atomic.atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "label", "label_name", "x", "y", "protocol"])
    for k, y, (a, b) in zip(keys, labels, xy):
        w.writerow([k, int(y), class_names[int(y)], repr(float(a)), repr(float(b)), protocol])
    atomic.write_text(csv_path, buf.getvalue())
    return xy
