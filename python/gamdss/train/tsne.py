"""t-SNE of held-out features: one point per test sample, coloured by true class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from gamdss.util import atomic
from gamdss.util.csv_rows import write_csv

MAX_PERPLEXITY = 30.0


def perplexity_for(n: int) -> float:
    """The t-SNE perplexity used for ``n`` points: ``min(30, (n - 1) / 3)``.

    A perplexity near ``n`` makes every point a neighbour of every other, and the embedding
    a uniform lattice that shows nothing; below ``n / 3`` each point keeps a neighbourhood.
    """
    return float(min(MAX_PERPLEXITY, (n - 1) / 3))


def tsne_embedding(features: np.ndarray, threads: int = 2) -> np.ndarray:
    """2-D t-SNE (sklearn, ``random_state=0``, PCA init) of float [N, D] features -> float64
    [N, 2].

    Perplexity: :func:`perplexity_for` (below N / 3). ``threads``: at most this many
    OpenMP/BLAS threads (the optimisation otherwise takes every core, and fights the trainer's
    threads for them). N < 3 gives zeros.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {list(features.shape)}")
    n = len(features)
    if n < 3:
        return np.zeros((n, 2))
    with threadpool_limits(limits=max(1, int(threads))):
        return TSNE(
            n_components=2, random_state=0, perplexity=perplexity_for(n), init="pca", n_jobs=max(1, int(threads))
        ).fit_transform(features)


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
    threads: int = 2,
) -> np.ndarray:
    """Write the t-SNE scatter plot (PNG) and its points (CSV: key, label, label_name, x, y,
    protocol); returns the [N, 2] embedding (:func:`tsne_embedding` with ``threads``)."""
    labels = np.asarray(labels, dtype=np.int64)
    xy = tsne_embedding(features, threads)
    keys = list(keys) if keys is not None else [str(i) for i in range(len(labels))]
    fig = Figure(figsize=(5, 4.5))  # no pyplot: no global backend or figure state
    ax = fig.subplots()
    for c, name in enumerate(class_names):
        sel = labels == c
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=12, label=name)
    ax.legend(fontsize=7, markerscale=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\nt-SNE, perplexity {perplexity_for(len(labels)):.3g}" if title else "", fontsize=8)
    fig.tight_layout()
    with atomic.atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    rows = [
        {
            "key": k,
            "label": int(y),
            "label_name": class_names[int(y)],
            "x": float(a),
            "y": float(b),
            "protocol": protocol,
        }
        for k, y, (a, b) in zip(keys, labels, xy)
    ]
    write_csv(csv_path, rows, ["key", "label", "label_name", "x", "y", "protocol"])
    return xy
