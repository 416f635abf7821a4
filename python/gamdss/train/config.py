"""Training configuration: dataclasses that load from and save to YAML.

A config is a :class:`TrainConfig` (loaded and saved with :mod:`gamdss.settings.yaml_io`, the
one mechanism of every settings file) with one section per concern (``data``, ``reselection``,
``model``, ``optim``, ``evaluation``, ``run``). Defaults are the paper's settings (AdamW,
lr 8e-4, batch 16, 200 epochs, ExponentialLR gamma 0.987 for the first 50 epochs then constant,
lambda 0.1) with the released code's weight decay 0.6 on all parameters, and the **honest**
evaluation protocol. Presets in ``gamdss/configs/*.yaml`` override only what differs.

Load with :func:`load_config` (a preset name such as ``casme2-5`` or a YAML path) and
change single values with dotted overrides (``optim.epochs=3``, ``data.caches=[a, b]``).
Unknown keys and values of the wrong type raise a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gamdss.settings import yaml_io
from gamdss.settings.reselection import ReselectionSettings
from gamdss.settings.reselection import preset as reselection_preset

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"

PROTOCOLS = ("honest", "inner_val", "released")
#: What ``run.device`` may be (whether this machine has the device is checked where it runs).
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
RELEASED_NOTE = "test-subject selection (optimistic; for comparison only)"


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


@dataclass
class DataConfig:
    """Where the samples come from and how they are fed to the model.

    ``caches``: frame cache folders (``gamdss preprocess`` output), one per dataset.
    ``protocol``: label mapping and LOSO grouping (``gamdss.data.protocols``), e.g. ``casme2-5``.
    ``image_size``: frames are resized to ``image_size`` x ``image_size`` pixels.
    ``input_kind``: ``difference`` (apex - onset / apex - offset of normalised frames) or
    ``flow`` (optical flow onset -> apex and offset -> apex, the paper's Table VII).
    ``flow``: the flow method for ``input_kind: flow``, ``farneback`` (OpenCV Farneback) or
    ``tvl1`` (OpenCV contrib TV-L1); computed once per clip and keyframe pair into the
    cache's ``flow/`` folder (``gamdss.data.flow_cache``) and augmented with the frames.
    ``augment``: the released code's train-only augmentation (flip 0.5, rotation +-3 deg,
    random crop with 15 px zero padding at 224 px), identical for the three keyframes.
    ``num_workers``: DataLoader worker processes (0: load in the training process). Results
    do not depend on it: every sample's augmentation is seeded by (fold, epoch, clip).
    """

    caches: list[str] = field(default_factory=list)
    protocol: str = "casme2-5"
    image_size: int = 224
    input_kind: str = "difference"
    flow: str = "farneback"
    augment: bool = True
    num_workers: int = 0


@dataclass
class ReselectionConfig:
    """GAMDSS keyframe reselection, computed once from the caches before training.

    The settings are a :class:`~gamdss.settings.reselection.ReselectionSettings`: the preset
    named by ``preset`` (``paper``, the paper's rule and what the paper's tables used, by
    default; ``recommended``; ``released``) with any of its fields overridden by the keys of
    the same name here (``window``, ``lam_rise``, ``lam_fall``, ``distance``, ``method``,
    ``apex_window_ms``...; left empty they keep the preset's value). Their meaning, default
    and valid range are those of ``ReselectionSettings`` (e.g. ``lam_rise >= 0``, as for
    ``gamdss reselect --lam-rise``).

    ``files``: ``reselection.csv`` files written by ``gamdss reselect`` (one per
    ``data.caches`` entry, in the same order). Training then reads the keyframes and the
    settings recorded with them (the ``settings.yaml`` beside the file, else the file's
    settings columns; ``preset`` and the overrides are not used), after checking that each
    file belongs to its cache. Empty (the default): training reselects every cache with
    the same function ``gamdss reselect`` runs and writes the same file into the run folder.

    ``apply_to_test`` is False by default: held-out clips keep their annotated keyframes, as in
    the released code, so the test input does not depend on the method being evaluated.
    Reselection uses no labels, so True is also leak-free; it is a documented choice.
    """

    enabled: bool = True
    preset: str = "paper"
    files: list[str] = field(default_factory=list)
    apply_to_test: bool = False
    # Overrides of the preset's fields (None: the preset's value); see ReselectionSettings.
    method: str | None = None
    window: str | None = None
    lam_rise: float | None = None
    lam_fall: float | None = None
    distance: str | None = None
    ties: str | None = None
    apex_window_ms: float | None = None
    reference_ms: float | None = None
    move_z: float | None = None
    tie_z: float | None = None
    mask_eyes: bool | None = None
    move_offset: bool | None = None
    offset_z: float | None = None

    def overrides(self) -> dict[str, Any]:
        """The settings fields this section sets (those that are not None)."""
        return {k: getattr(self, k) for k in SETTINGS_FIELDS if getattr(self, k, None) is not None}

    def settings(self) -> ReselectionSettings:
        """The :class:`~gamdss.settings.reselection.ReselectionSettings` this section asks for
        (``ValueError`` naming the setting when the preset or a value is invalid)."""
        return reselection_preset(self.preset, **self.overrides())


#: The fields of ReselectionSettings that a training config may override.
SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(ReselectionSettings))


@dataclass
class ModelConfig:
    """``gamdss.models.build_model(name, num_classes, phases=, in_chans=, img_size=, **kwargs)``.

    ``spatial: false`` removes the spatial branch (the paper's "W/O S"); true keeps the named
    model's own choice (``gamdss_nospatial`` has none). ``fall_weight`` weights CE(fall) in the
    loss CE(rise) + fall_weight * CE(fall). ``fall_still``: resting frame of the fall phase's
    spatial branch, ``offset`` (the paper) or ``apex`` (the released code).
    """

    name: str = "gamdss"
    spatial: bool = True
    phases: list[str] = field(default_factory=lambda: ["rise", "fall"])
    fall_weight: float = 1.0
    fall_still: str = "offset"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW on all parameters and the paper's schedule.

    The learning rate of epoch e (1-based) is ``lr * gamma ** min(e - 1, decay_epochs)``
    (ExponentialLR stepped after each of the first ``decay_epochs`` epochs, then constant).
    ``weight_decay`` 0.6 on every parameter (norms and biases included) is the released code's
    value; the paper does not state one. The released code runs 199 epochs, the paper says 200.
    """

    lr: float = 8e-4
    weight_decay: float = 0.6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    epochs: int = 200
    batch_size: int = 16
    gamma: float = 0.987
    decay_epochs: int = 50


@dataclass
class EvaluationConfig:
    """How a fold's test predictions are chosen.

    - ``honest`` (default): train ``optim.epochs`` epochs, predict with the last epoch's model.
    - ``inner_val``: hold out ``inner_val_fraction`` of the training subjects (at least one),
      train on the rest, keep the epoch with the best ``select_metric`` of ``select_mode`` on
      them (earliest on ties), and predict the test subject with that epoch's model.
    - ``released``: the released code's per-fold selection of the best epoch **on the test
      subject** (ACC and UF1 each from their own best epoch, stop at 100% test accuracy of the
      rise prediction). Optimistic; only to compare with published numbers; every results
      file says so.
    """

    protocol: str = "honest"
    inner_val_fraction: float = 0.2
    select_metric: str = "uf1"
    select_mode: str = "fused"


@dataclass
class RunConfig:
    """Seeds, devices, executor and outputs.

    ``seed``: base seed; fold seeds are derived from (seed, subject), so a fold's result does
    not depend on which folds run before it. ``device``: ``auto`` (CUDA when available),
    ``cpu``, ``cuda`` or ``cuda:N``. ``amp``: bfloat16/float16 autocast, used only on CUDA
    (the paper-reproduction presets set it false: the released code trains in float32).
    ``tsne``: write the t-SNE plots of the held-out features (``tsne_<phase>.png/.csv``);
    false skips them (quick runs). ``num_threads``: torch CPU threads of a fold (0: torch's
    default, which is the machine's core count); t-SNE uses at most this many (at most 2 when
    0). It changes results (the thread count changes the order of float sums, so 1 and 2
    threads give other probabilities): it is part of the comparable config (:func:`comparable`),
    a run resumes only with the same value, and 0 resumes identically only on a machine with
    as many cores and with the same ``executor`` (a Ray task has one CPU, so one thread).
    ``executor``: ``local`` (sequential) or ``ray`` (one task per fold; ``ray_address`` of an
    existing cluster or empty for a local instance). ``folds``: run only these subjects (in this
    order); empty for all. ``epoch_checkpoints``: save model and optimiser after every epoch so
    an interrupted fold resumes mid-way (finished folds are never redone either way).
    """

    seed: int = 2
    device: str = "auto"
    amp: bool = True
    deterministic: bool = True
    executor: str = "local"
    ray_address: str = ""
    folds: list[str] = field(default_factory=list)
    epoch_checkpoints: bool = False
    output_dir: str = "runs/gamdss"
    num_threads: int = 0
    tsne: bool = True


@dataclass
class TrainConfig:
    """A complete LOSO training run (see the module docstring)."""

    name: str = "gamdss"
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    reselection: ReselectionConfig = field(default_factory=ReselectionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """The config as a mapping of sections of plain values (:func:`gamdss.settings.yaml_io.to_dict`)."""
        return yaml_io.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, source: str = "config") -> TrainConfig:
        """A config from a mapping of sections (:func:`gamdss.settings.yaml_io.from_dict`);
        :class:`ConfigError` naming ``source`` and the key when a key or value is invalid."""
        try:
            return yaml_io.from_dict(cls, data or {}, source)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_yaml(self) -> str:
        """The YAML text :meth:`save` writes."""
        return yaml_io.dump(self)

    def save(self, path: str | Path) -> Path:
        """Write the config as YAML (atomically; replaces ``path``)."""
        return yaml_io.save(self, path, overwrite=True)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """A config from a YAML file of sections (missing keys take the defaults);
        :class:`ConfigError` naming the file when it is not such a file or a key is invalid."""
        try:
            data = yaml_io.read_mapping(path, "config sections")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls.from_dict(data, source=str(path))

    # ------------------------------------------------------------------ checks
    @property
    def is_released_protocol(self) -> bool:
        """Whether ``evaluation.protocol`` is ``released`` (epochs chosen on the test subject)."""
        return self.evaluation.protocol == "released"

    @property
    def modes(self) -> list[str]:
        """Prediction modes this model can report: ``rise``/``fall`` for each trained phase,
        and ``fused`` when both are."""
        modes = [p for p in ("rise", "fall") if p in self.model.phases]
        return modes + (["fused"] if len(modes) == 2 else [])

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid key (``section.key: why``)."""

        def check(cond: bool, key: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"{key}: {msg}")

        check(self.data.image_size >= 8, "data.image_size", f"must be >= 8, got {self.data.image_size}")
        check(self.data.num_workers >= 0, "data.num_workers", f"must be >= 0, got {self.data.num_workers}")
        check(
            self.data.input_kind in ("difference", "flow"),
            "data.input_kind",
            f"must be 'difference' or 'flow', got {self.data.input_kind!r}",
        )
        check(
            self.data.flow in ("farneback", "tvl1"),
            "data.flow",
            f"must be 'farneback' or 'tvl1', got {self.data.flow!r}",
        )
        try:  # one range per setting: ReselectionSettings's
            self.reselection.settings()
        except ValueError as exc:
            raise ConfigError(f"reselection: {exc}") from None
        check(
            len(set(self.reselection.files)) == len(self.reselection.files),
            "reselection.files",
            f"lists a file twice: {self.reselection.files}",
        )
        if self.reselection.files:
            check(
                self.reselection.enabled,
                "reselection.files",
                "is set while reselection.enabled is false; remove one of them",
            )
        check(
            len(self.model.phases) > 0
            and set(self.model.phases) <= {"rise", "fall"}
            and len(set(self.model.phases)) == len(self.model.phases),
            "model.phases",
            f"must be a non-empty subset of [rise, fall], got {self.model.phases}",
        )
        check(
            self.model.fall_still in ("offset", "apex"),
            "model.fall_still",
            f"must be 'offset' or 'apex', got {self.model.fall_still!r}",
        )
        check(self.optim.epochs >= 1, "optim.epochs", f"must be >= 1, got {self.optim.epochs}")
        check(self.optim.batch_size >= 1, "optim.batch_size", f"must be >= 1, got {self.optim.batch_size}")
        check(
            math.isfinite(self.model.fall_weight) and self.model.fall_weight >= 0,
            "model.fall_weight",
            f"must be a finite number >= 0, got {self.model.fall_weight}",
        )
        check(
            math.isfinite(self.optim.lr) and self.optim.lr > 0,
            "optim.lr",
            f"must be a finite number > 0, got {self.optim.lr}",
        )
        check(
            math.isfinite(self.optim.weight_decay) and self.optim.weight_decay >= 0,
            "optim.weight_decay",
            f"must be a finite number >= 0, got {self.optim.weight_decay}",
        )
        check(len(self.optim.betas) == 2, "optim.betas", f"must be two numbers, got {self.optim.betas}")
        check(
            all(0 <= b < 1 for b in self.optim.betas),
            "optim.betas",
            f"must each be in [0, 1), got {self.optim.betas}",
        )
        check(0 < self.optim.gamma <= 1, "optim.gamma", f"must be in (0, 1], got {self.optim.gamma}")
        check(self.optim.decay_epochs >= 0, "optim.decay_epochs", f"must be >= 0, got {self.optim.decay_epochs}")
        check(
            self.evaluation.protocol in PROTOCOLS,
            "evaluation.protocol",
            f"must be one of {', '.join(PROTOCOLS)}, got {self.evaluation.protocol!r}",
        )
        check(
            0 < self.evaluation.inner_val_fraction < 1,
            "evaluation.inner_val_fraction",
            f"must be in (0, 1), got {self.evaluation.inner_val_fraction}",
        )
        check(
            self.evaluation.select_metric in ("acc", "uf1", "uar"),
            "evaluation.select_metric",
            f"must be acc, uf1 or uar, got {self.evaluation.select_metric!r}",
        )
        # select_mode is read by inner_val, and by released when there is no rise branch
        # to stop on; elsewhere it is unused and not checked.
        uses_select_mode = self.evaluation.protocol == "inner_val" or (
            self.evaluation.protocol == "released" and "rise" not in self.model.phases
        )
        check(
            not uses_select_mode or self.evaluation.select_mode in self.modes,
            "evaluation.select_mode",
            f"must be one of the model's prediction modes {self.modes}, got {self.evaluation.select_mode!r}",
        )
        check(
            self.run.executor in ("local", "ray"),
            "run.executor",
            f"must be 'local' or 'ray', got {self.run.executor!r}",
        )
        # The syntax only: a CUDA device this machine lacks may be a Ray worker's.
        check(
            DEVICE_PATTERN.fullmatch(self.run.device) is not None,
            "run.device",
            f"must be auto, cpu, cuda or cuda:N, got {self.run.device!r}",
        )
        check(len(set(self.run.folds)) == len(self.run.folds), "run.folds", f"lists a subject twice: {self.run.folds}")
        check(self.run.num_threads >= 0, "run.num_threads", f"must be >= 0, got {self.run.num_threads}")


#: Settings that change where or how fast a run goes, not its results: a run may resume
#: with other values of these (``run.num_threads`` is not one: see :class:`RunConfig`; and
#: ``run.executor`` counts where ``run.num_threads`` is 0).
VOLATILE_KEYS = (
    "run.executor",
    "run.ray_address",
    "run.folds",
    "run.output_dir",
    "run.tsne",
    "run.epoch_checkpoints",
    "data.num_workers",
    "name",
    "description",
)


def comparable(cfg: TrainConfig) -> dict[str, Any]:
    """The config's values that decide a run's results: :data:`VOLATILE_KEYS` left out, and
    the reselection settings resolved (a preset plus overrides, or the same values spelled
    out field by field as older configs did, compare equal)."""
    data = cfg.to_dict()
    r = cfg.reselection
    data["reselection"] = {
        "enabled": r.enabled,
        "files": r.files,
        "apply_to_test": r.apply_to_test,
        "settings": None if r.files else dataclasses.asdict(r.settings()),
    }
    checkpoint = (cfg.model.kwargs or {}).get("checkpoint")
    if checkpoint is not None:  # the weights decide, not where they lie
        data["model"]["kwargs"] = {**data["model"]["kwargs"], "checkpoint": _file_digest(str(checkpoint))}
    for key in VOLATILE_KEYS:
        if key == "run.executor" and cfg.run.num_threads == 0:
            continue  # with torch's default thread count, a Ray task (1 CPU) runs 1 thread
        *parents, last = key.split(".")
        node = data
        for p in parents:
            node = node[p]
        node.pop(last, None)
    return data


def _file_digest(path: str) -> str:
    """``sha256:<hex>`` of the file's bytes, or the path itself when it cannot be read (the
    checks before training then name it)."""
    try:
        st = Path(path).stat()
        return _file_digest_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return path


@functools.lru_cache(maxsize=8)
def _file_digest_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def config_digest(cfg: TrainConfig) -> str:
    """sha256 hex of :func:`comparable` (canonical JSON): equal for two configs exactly when
    they give the same results; stored in every fold record and epoch checkpoint."""
    text = json.dumps(comparable(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def preset_names() -> list[str]:
    """Names of the bundled presets (``gamdss train NAME``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A preset name (``casme2-5``) or a path to a YAML file -> the file's path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if not preset.is_file():
        raise FileNotFoundError(
            f"no config file {name_or_path!r} and no preset of that name (presets: {', '.join(preset_names())})"
        )
    return preset


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-3"`` -> (``["optim", "lr"]``, 0.001); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. optim.epochs=3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({exc})") from exc
    return key.split("."), value


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """A new config with dotted ``key=value`` overrides applied (validated like a file)."""
    data = cfg.to_dict()
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                raise ConfigError(f"override {text!r}: unknown section {'.'.join(keys[: i + 1])}")
            node = node[k]
        if keys[-1] not in node and not (keys[:-1] == ["model", "kwargs"]):
            raise ConfigError(f"override {text!r}: unknown key {'.'.join(keys)}")
        node[keys[-1]] = value
    return TrainConfig.from_dict(data, source="overrides")


def load_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a preset name or YAML file and apply dotted overrides."""
    cfg = TrainConfig.load(resolve_config_path(name_or_path))
    return apply_overrides(cfg, overrides) if overrides else cfg
