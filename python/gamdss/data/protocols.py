"""Evaluation protocols: label mappings of the class settings, and leave-one-subject-out splits.

Class index orders follow the released GAMDSS code where it has one (CASME II 5/3,
SAMM 5/3, CAS(ME)^3 7/4); MEGC2019 uses negative, positive, surprise. Emotions are matched
ignoring case and surrounding spaces, and ``other``/``others`` are the same label (the
released code's case-sensitive match drops CAS(ME)^3's three ``Others`` rows; we keep them).

Subject keys are always dataset-prefixed (``casme2_sub01``, ``samm_006``), for single
datasets too, so that keys never collide in a composite and one rule serves every protocol.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gamdss.data.datasets import DATASETS


def normalise_emotion(emotion: str) -> str:
    """The emotion as the mappings key it: lower case, runs of spaces as one, ``other`` as
    ``others`` (``' Happy  Face'`` -> ``'happy face'``)."""
    e = " ".join(str(emotion).strip().lower().split())
    return "others" if e in ("other", "others") else e


@dataclass(frozen=True)
class Protocol:
    """A class setting over one or more datasets.

    Attributes:
        name: registry name (e.g. ``casme2-5``).
        datasets: datasets whose records it uses.
        classes: class names in label-index order.
        mapping: dataset -> (normalised emotion -> class name); emotions not listed are dropped.
        keep: optional filter on a record's ``meta`` (e.g. micro-expressions only).
        description: one line for reports.
        exclude: dataset -> clip ids the setting leaves out whatever their emotion (e.g.
            MEGC2019's three CASME II clips); use :meth:`sample_label` to apply it.
    """

    name: str
    datasets: tuple[str, ...]
    classes: tuple[str, ...]
    mapping: Mapping[str, Mapping[str, str]] = field(repr=False)
    keep: Callable[[Mapping[str, str]], bool] | None = field(default=None, repr=False, compare=False)
    description: str = ""
    exclude: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def excludes(self, dataset: str, clip_id: str) -> bool:
        """Whether the setting leaves clip ``clip_id`` of ``dataset`` out (:attr:`exclude`)."""
        return clip_id in self.exclude.get(dataset, ())

    def sample_label(self, dataset: str, clip_id: str, emotion: str, meta: Mapping[str, str] = {}) -> int | None:  # noqa: B006
        """Class index of a clip, or ``None`` when the setting drops it: :meth:`label_of`, and
        the clip is not in :attr:`exclude`. Use this where samples are selected."""
        if self.excludes(dataset, clip_id):
            return None
        return self.label_of(dataset, emotion, meta)

    def label_of(self, dataset: str, emotion: str, meta: Mapping[str, str] = {}) -> int | None:  # noqa: B006
        """Class index of a sample, or ``None`` when this setting drops it (its emotion is not
        mapped, its dataset is not part of the setting, or ``keep`` rejects its meta)."""
        table = self.mapping.get(dataset)
        if table is None:
            return None
        if self.keep is not None and not self.keep(meta):
            return None
        cls = table.get(normalise_emotion(emotion))
        return None if cls is None else self.classes.index(cls)

    def subject_key(self, dataset: str, subject: str) -> str:
        """LOSO grouping key: ``<dataset>_<subject>`` (always prefixed)."""
        return f"{dataset}_{subject}"


def _table(pairs: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """class -> emotions  becomes  emotion -> class."""
    return {normalise_emotion(e): cls for cls, emotions in pairs.items() for e in emotions}


def _is_micro(meta: Mapping[str, str]) -> bool:
    kind = str(meta.get("expression_type", "micro")).strip().lower()
    return not kind.startswith("macro")


_CASME2_MEGC = _table({"negative": ("disgust", "repression"), "positive": ("happiness",), "surprise": ("surprise",)})
_SAMM_MEGC = _table(
    {
        "negative": ("anger", "contempt", "disgust", "fear", "sadness"),
        "positive": ("happiness",),
        "surprise": ("surprise",),
    }
)
#: CASME II clips that MEGC2019 leaves out (as meb's loader does), so that CASME II gives 145.
_CASME2_MEGC_EXCLUDE = frozenset({"sub04/EP12_01f", "sub05/EP12_03f", "sub24/EP02_07"})
_SMIC = _table({"negative": ("negative",), "positive": ("positive",), "surprise": ("surprise",)})


def _native(dataset: str, emotions: Sequence[str], keep=None, note: str = "") -> Protocol:
    return Protocol(
        f"{dataset}-native",
        (dataset,),
        tuple(emotions),
        {dataset: {normalise_emotion(e): e for e in emotions}},
        keep,
        f"{dataset} native classes{note}",
    )


def _build() -> dict[str, Protocol]:

    protos = [
        Protocol(
            "casme2-5",
            ("casme2",),
            ("happiness", "repression", "disgust", "surprise", "others"),
            {"casme2": _table({c: (c,) for c in ("happiness", "repression", "disgust", "surprise", "others")})},
            description="CASME II 5 classes (fear, sadness dropped)",
        ),
        Protocol(
            "casme2-3",
            ("casme2",),
            ("positive", "surprise", "negative"),
            {
                "casme2": _table(
                    {
                        "positive": ("happiness",),
                        "surprise": ("surprise",),
                        "negative": ("disgust", "repression", "fear", "sadness"),
                    }
                )
            },
            description="CASME II 3 classes as in the released code (others dropped)",
        ),
        Protocol(
            "samm-5",
            ("samm",),
            ("anger", "contempt", "happiness", "surprise", "other"),
            {
                "samm": _table(
                    {
                        "anger": ("anger",),
                        "contempt": ("contempt",),
                        "happiness": ("happiness",),
                        "surprise": ("surprise",),
                        "other": ("other",),
                    }
                )
            },
            description="SAMM 5 classes (disgust, fear, sadness dropped)",
        ),
        Protocol(
            "samm-3",
            ("samm",),
            ("positive", "surprise", "negative"),
            {
                "samm": _table(
                    {
                        "positive": ("happiness",),
                        "surprise": ("surprise",),
                        "negative": ("anger", "contempt", "disgust", "fear", "sadness"),
                    }
                )
            },
            description="SAMM 3 classes (other dropped)",
        ),
        Protocol(
            "casme3-7",
            ("casme3",),
            ("anger", "disgust", "fear", "happy", "sad", "surprise", "others"),
            {"casme3": _table({c: (c,) for c in ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")})},
            description="CAS(ME)^3 Part A 7 emotions ('Others' = 'others')",
        ),
        Protocol(
            "casme3-4",
            ("casme3",),
            ("positive", "surprise", "others", "negative"),
            {
                "casme3": _table(
                    {
                        "positive": ("happy",),
                        "surprise": ("surprise",),
                        "others": ("others",),
                        "negative": ("anger", "disgust", "fear", "sad"),
                    }
                )
            },
            description="CAS(ME)^3 Part A 4 classes",
        ),
        Protocol(
            "casme3-3",
            ("casme3",),
            ("positive", "surprise", "negative"),
            {
                "casme3": _table(
                    {"positive": ("happy",), "surprise": ("surprise",), "negative": ("anger", "disgust", "fear", "sad")}
                )
            },
            description="CAS(ME)^3 Part A 3 classes (others dropped)",
        ),
        Protocol(
            "megc2019",
            ("casme2", "samm", "smic"),
            ("negative", "positive", "surprise"),
            {"casme2": _CASME2_MEGC, "samm": _SAMM_MEGC, "smic": _SMIC},
            description="MEGC2019 composite: CASME II + SAMM (+ SMIC records if supplied)",
            exclude={"casme2": _CASME2_MEGC_EXCLUDE},
        ),
    ]
    for name, cls in DATASETS.items():
        if name == "casme_sq":
            protos.append(_native(name, cls.emotions, _is_micro, " (micro-expressions only)"))
        else:
            protos.append(_native(name, cls.emotions))
    return {p.name: p for p in protos}


PROTOCOLS: dict[str, Protocol] = _build()


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocols_for(dataset: str) -> list[Protocol]:
    """Every protocol that uses records of ``dataset``."""
    return [p for p in PROTOCOLS.values() if dataset in p.datasets]


def loso_folds(subject_keys: Sequence[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Leave-one-subject-out folds: ``(held-out subject, train indices, test indices)`` per
    subject, sorted by subject; indices are int64 positions in ``subject_keys``."""
    keys = np.asarray([str(k) for k in subject_keys], dtype=object)
    folds = []
    for subject in sorted(set(keys.tolist())):
        test = np.flatnonzero(keys == subject).astype(np.int64)
        train = np.flatnonzero(keys != subject).astype(np.int64)
        folds.append((subject, train, test))
    return folds


def protocol_counts(protocol: Protocol | str, records: Sequence[Any]) -> dict[str, Any]:
    """Sample counts of a protocol over records (``AnnotationRecord`` or ``ClipRecord``).

    Returns a JSON-serialisable dict: ``protocol``, ``classes`` (class -> samples, in index
    order), ``samples``, ``subjects`` (distinct subject keys with a kept sample),
    ``per_dataset`` (dataset -> samples), ``dropped`` (emotion -> samples of the protocol's
    datasets that it drops; ``macro-expression`` for rows its filter rejects, ``excluded``
    for clips in :attr:`Protocol.exclude`), ``missing_datasets`` (the protocol's datasets of
    which no record was given, e.g. ``smic``). Records of other datasets are ignored.
    """
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    classes: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    per_dataset: Counter[str] = Counter()
    subjects = set()
    given = set()
    for r in records:
        if r.dataset not in p.datasets:
            continue
        given.add(r.dataset)
        if p.excludes(r.dataset, r.clip_id):
            dropped["excluded"] += 1
            continue
        if p.keep is not None and not p.keep(r.meta):
            dropped["macro-expression"] += 1
            continue
        label = p.label_of(r.dataset, r.emotion, r.meta)
        if label is None:
            dropped[normalise_emotion(r.emotion)] += 1
            continue
        classes[p.classes[label]] += 1
        per_dataset[r.dataset] += 1
        subjects.add(p.subject_key(r.dataset, r.subject))
    return {
        "protocol": p.name,
        "classes": {c: classes[c] for c in p.classes},
        "samples": sum(classes.values()),
        "subjects": len(subjects),
        "per_dataset": dict(sorted(per_dataset.items())),
        "dropped": dict(sorted(dropped.items())),
        "missing_datasets": [d for d in p.datasets if d not in given],
    }
