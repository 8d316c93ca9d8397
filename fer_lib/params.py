"""Study parameters: the schema behind ``params/*.yaml``.

A params file is YAML with the sections below; every key is optional and falls back to the
default written here. Unknown or misspelt keys and wrong types are errors that name the file,
the key and (for typos) the nearest valid key. Notebooks receive the path of a params file
from papermill and call :func:`load_params`, so the YAML file is the one source of truth.

A file may inherit from another with the top-level key ``base`` (:data:`BASE_KEY`), a path
relative to the file: ``base: paper_a.yaml`` plus ``model: {input_size: 112}`` is paper A with
only the input size changed. Mappings merge key by key (nested sections too), any other value
(lists included) replaces the base's. Each file is checked as strictly as a file on its own, so
an unknown key names the file that holds it; a cycle of bases is an error naming the files.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fer_lib.errors import ParamsError
from fer_lib.paths import project_path

TestTimeAugmentation = Literal["none", "flip", "tencrop"]
"""Test-time augmentation modes (the views are :func:`fer_lib.augment.tta_views`)."""

PaperName = Literal["paper_a", "paper_b"]
"""The reproduced papers (:data:`fer_lib.study.papers.PAPERS` holds their published figures)."""

TTA_MODES: tuple[str, ...] = typing.get_args(TestTimeAugmentation)
"""The test-time augmentation modes, for command-line choices and ablation columns."""


def mode_label(tta: TestTimeAugmentation) -> str:
    """How a figure was measured, for table headers and titles: ``"inference mode"`` plus any TTA."""
    return "inference mode" if tta == "none" else f"inference mode, test-time augmentation {tta}"


_FLOAT_TEXT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
"""A number such as ``1e-3``, which YAML 1.1 (PyYAML) reads as a string because it lacks a dot."""


@dataclass
class DataParams:
    """Where the faces come from.

    ``source`` is ``"synthetic"`` (the embedded, generated dataset: no download) or
    ``"fer2013"`` (a folder or ``fer2013.csv``, from ``dir``, ``--data`` or env ``FER2013_DIR``).
    """

    source: Literal["synthetic", "fer2013"] = "synthetic"
    dir: str | None = None
    synthetic_per_class: int = 120
    """Synthetic faces per class and split (Training; PublicTest and PrivateTest get a third each)."""
    train_subset: int | None = None
    """Stratified subset of Training faces to train on (CPU presets); None = all."""


@dataclass
class ModelParams:
    """MobileNetV2 backbone, in-model preprocessing and classification head."""

    input_size: int = 96
    """Side in pixels that the 48x48 faces are resized to inside the model."""
    resize: Literal["bilinear", "nearest", "bicubic", "area", "lanczos3"] = "bilinear"
    scale: Literal["unit", "imagenet"] = "imagenet"
    """``unit``: x/255 to [0,1] (both papers); ``imagenet``: x/127.5-1 to [-1,1] (MobileNetV2's own)."""
    alpha: float = 1.0
    weights: str = "default"
    """Where the backbone starts from. ``default``: ImageNet, from env FER_WEIGHTS if set, else
    the offline file in ../shared/weights, else Keras' cache (~/.keras/models or $KERAS_HOME),
    else a download by Keras; ``imagenet``: Keras' cache or a download; ``shipped``: the backbone
    of the shipped model (models/fer_mobilenetv2.keras, in the repository; fine-tuned on FER-2013,
    any input size); a path (relative to the project root) to an ImageNet .h5 file or to a .keras
    model of this project (its backbone); or ``none`` (random initialisation)."""
    pooling: Literal["avg", "max", "flatten"] = "avg"
    head_units: list[int] = field(default_factory=list)
    """Hidden dense layer widths before the 7-way softmax (paper B: [128, 64])."""
    head_activation: str = "relu"
    dropout: float = 0.0
    """Dropout rate before each dense layer of the head."""
    freeze: Literal["none", "backbone", "staged"] = "none"
    """``none``: fine-tune everything; ``backbone``: train the head only; ``staged``: head only for
    ``train.warmup_epochs`` epochs, then everything."""
    bn_momentum: float | None = None
    """Override the backbone's BatchNorm momentum (Keras default 0.999); None keeps it."""
    train_from_block: int = 0
    """The first MobileNetV2 block (1-16) that trains once the backbone joins; the stem and the blocks before
    it keep their starting weights (the Keras guide's ``fine_tune_at``). 0: the whole backbone trains."""


@dataclass
class AugmentParams:
    """Host-side (numpy/OpenCV) augmentation of 48x48 training faces; all off by default."""

    flip: bool = False
    rotation_degrees: float = 0.0
    shift_fraction: float = 0.0
    zoom_fraction: float = 0.0
    erasing_probability: float = 0.0
    crop_size: int = 0
    """Side in pixels of a random square crop of the 48x48 face, resized back to 48x48 (0: off). 44 matches
    the ten-crop test-time views (:data:`fer_lib.augment.TENCROP_SIZE`), the usual FER-2013 practice."""
    mixup_alpha: float = 0.0
    """Mixup: each face is blended with another face of its batch, weight lambda ~ Beta(alpha, alpha) (and
    their one-hot targets alike); 0: off. 0.2 is the usual value for classification."""
    cutmix_alpha: float = 0.0
    """CutMix: a random rectangle of each face is pasted from another face of its batch, covering a share
    1 - lambda of the area with lambda ~ Beta(alpha, alpha), and the one-hot targets are mixed by the area
    actually pasted; 0: off. 1.0 is the usual value."""
    gamma: float = 0.0
    """Gamma change: grey levels (0-1) raised to exp(U(-gamma, gamma)), the same power for the whole face;
    0: off. 0.4 spans powers 0.67-1.49 (a dark or a washed-out camera)."""
    contrast: float = 0.0
    """Contrast change about the face's mean grey level by a factor 1 + U(-contrast, contrast); 0: off."""
    lowres_probability: float = 0.0
    """Loss of resolution and blur: with this probability a face is either shrunk to a random side of
    12-32 px and scaled back to 48 (area down, bilinear up: a distant face) or blurred (Gaussian, sigma
    0.5-1.5 px: an out-of-focus face), at even odds; 0: off."""
    jpeg_probability: float = 0.0
    """With this probability a face is re-compressed as a JPEG of random quality 15-75 (OpenCV); 0: off."""
    noise_std: float = 0.0
    """Gaussian pixel noise whose standard deviation is drawn per face from U(0, noise_std), in grey levels
    (0-255); 0: off. 8 is a noisy webcam."""


@dataclass
class TrainParams:
    """Optimisation. Histories record fit-time (training-mode) and inference-mode metrics apart."""

    epochs: int = 3
    batch_size: int = 64
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "plateau"] = "constant"
    warmup_epochs: int = 0
    head_learning_rate: float | None = None
    """Learning rate while only the head trains (``freeze: staged``); None = learning_rate."""
    label_smoothing: float = 0.0
    class_weight: Literal["none", "balanced"] = "none"
    mixed_precision: bool = False
    augment: AugmentParams = field(default_factory=AugmentParams)
    train_eval_subset: int | None = 2000
    """Training faces re-scored in inference mode after each epoch (None = all)."""
    select: Literal["last", "best_val", "average"] = "last"
    """Which weights the run keeps: the last epoch's (paper reproductions select nothing on
    PublicTest), the epoch with the best inference-mode PublicTest accuracy (model selection), or
    the mean of the last ``average_epochs`` epochs' weights with BatchNorm statistics recomputed
    on Training faces (weight averaging, as in stochastic weight averaging)."""
    average_epochs: int = 3
    """How many final epochs ``select: average`` averages (the head-only warm-up never counts)."""
    teachers: list[str] = field(default_factory=list)
    """Knowledge distillation: trained models (``.keras`` or ``.tflite``, paths relative to the project
    root) whose flip-averaged probabilities on each Training face, averaged over the models, become
    part of its target (:func:`fer_lib.training.distillation_targets`); empty: the labels alone."""
    teacher_weight: float = 0.8
    """The teachers' share of each target, in [0, 1]: ``(1 - w) * one-hot label + w * teachers``."""


@dataclass
class EvaluateParams:
    """Held-out evaluation."""

    tta: TestTimeAugmentation = "none"
    """Test-time augmentation: average the probabilities of each face and its mirror image
    (``flip``), or of five crops and their mirrors (``tencrop``, see :func:`fer_lib.augment.tta_views`)."""
    mistakes_shown: int = 16


@dataclass
class FacesParams:
    """Face detection and the photo / video checks."""

    detector: Literal["blazeface", "haar", "yunet"] = "blazeface"
    """``blazeface``: Google MediaPipe's BlazeFace models (shipped in models/face_detection/);
    ``haar``: OpenCV's Haar cascade, as both reference papers use; ``yunet``: OpenCV's YuNet (needs
    ``detector_model``). benchmarks/bench_detectors.py compares them."""
    blazeface_models: list[str] = field(default_factory=lambda: ["full", "short"])
    """BlazeFace models tried in order until one finds a face: ``full`` range (small and distant
    faces), ``short`` range (close-ups, tight crops), ``back`` (older 256 px model)."""
    detector_model: str | None = None
    """Path to an OpenCV DNN face detector (YuNet .onnx) when ``detector: yunet``."""
    scale_factor: float = 1.1
    """Haar cascade image pyramid step."""
    min_neighbors: int = 5
    """Haar cascade overlapping detections needed to keep a face."""
    min_size: int = 40
    """Smallest face side in pixels (every detector)."""
    margin: float = 0.1
    """Crop margin around each box, as a fraction of the box side (faces not aligned on their eyes)."""
    align: bool = False
    """BlazeFace: warp each face onto FER-2013's geometry from its eye keypoints (rotation, scale and
    position of the eyes as in FER-2013's faces: :func:`fer_lib.faces.align_face`); false: crop its box
    with ``margin``. Haar and YuNet give no eyes: their boxes are cropped. Off by default: with the
    shipped model (trained on unaligned FER-2013 faces) alignment scored 54.0% on the 200 labelled
    photos against 56.5% for the box (a paired difference of 5 photos; reports/alignment/README.md)."""
    largest_only: bool = False
    tta: TestTimeAugmentation = "none"
    """Test-time augmentation of each photo's faces (the photo check, ``predict --tta``): ``none``,
    ``flip`` (each face and its mirror, 2x the cost) or ``tencrop`` (10x). Video never uses it."""
    model: str = "shipped"
    """Classifier for photos and videos: ``shipped`` (models/fer_mobilenetv2.keras), ``run``
    (the model trained in this run) or a path to a .keras file."""
    images: list[str] = field(default_factory=list)
    """Photo files or folders (relative to the project root); empty = the real photos that ship
    with scikit-image. A folder's photos are labelled by its ``labels.csv`` (columns ``file``,
    ``label``) or else by sub-folder names that are emotions (``happy/x.jpg``)."""
    videos: list[str] = field(default_factory=list)
    """Video files or folders of clips (relative to the project root); empty = a clip the project
    makes from scikit-image's photos."""
    if_missing: Literal["error", "default"] = "error"
    """When a path in ``images`` or ``videos`` does not exist: ``error``, or ``default`` to use the
    built-in photos or clip instead (presets that read ../shared, which a clone may lack)."""
    smoothing: float = 0.6
    """Exponential moving average weight of the previous frame's probabilities (0 = none)."""
    detect_every: int = 1
    """Video: run the detector on every N-th frame and follow the face in between (1 = every frame)."""
    video_width: int = 256
    """Width in pixels of the annotated copies of clips written by the video notebook (small files)."""
    video_step: int = 2
    """The video notebook's annotated copies keep every N-th frame (same duration, smaller files)."""


@dataclass
class Params:
    """All parameters of one study run."""

    name: str = "default"
    description: str = ""
    seed: int = 1337
    reproduces: PaperName | None = None
    """The paper whose recipe this is (``paper_a``, ``paper_b``): notebook 3 then recomputes the
    final weights' BatchNorm statistics and sets the paper's claims beside our figures under
    each protocol (:mod:`fer_lib.study.papers`); None for the project's own recipes."""
    data: DataParams = field(default_factory=DataParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    faces: FacesParams = field(default_factory=FacesParams)

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain nested dicts (for YAML/JSON records)."""
        return dataclasses.asdict(self)

    def non_defaults(self) -> dict[str, Any]:
        """The parameters that differ from :class:`Params`' defaults, as ``{dotted key: value}``.

        Unlike :meth:`to_dict`, this stays the same when a new parameter with a default is added
        to the schema, so it can name runs stably (:func:`fer_lib.study.ablation.variant_run_dir`).
        """
        defaults = _flatten(Params().to_dict())
        return {
            key: value
            for key, value in _flatten(self.to_dict()).items()
            if key not in defaults or defaults[key] != value
        }


def load_params(path: str | os.PathLike[str], *, overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate a params YAML file.

    Args:
        path: a YAML file with any subset of the :class:`Params` fields, and optionally ``base``:
            the file it inherits from (see :func:`read_params_mapping`).
        overrides: dotted keys to set after reading, e.g. ``{"train.epochs": 1}``.

    Raises:
        ParamsError: naming the file (with line and column for invalid YAML) and key, for a
            missing/invalid file, an unknown key (with the nearest valid key), a wrong type or an
            out-of-range value, a missing base file or a cycle of bases. Errors in a file given
            overrides say ``(with overrides: keys)``.
    """
    path = Path(path)
    raw = read_params_mapping(path)
    origin = f"{path} (with overrides: {', '.join(overrides)})" if overrides else f"{path}"
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, origin)
    params = _build(Params, raw, origin, "")
    _check_ranges(params, origin)
    return params


BASE_KEY: str = "base"
"""Top-level params key naming the file a params file inherits from, relative to that file."""


def read_params_mapping(path: Path) -> dict[str, Any]:
    """Read a params file merged over the file it inherits from (``base``, recursively).

    When files inherit, each file's own keys and types are checked here (errors name that
    file); the merged mapping is what :func:`load_params` validates as a whole.

    Returns:
        The merged mapping, without ``base``: the base's values, overridden key by key by this file's.

    Raises:
        ParamsError: as :func:`read_yaml_mapping`; for an unknown key or wrong type (naming the
            file that holds it); for a ``base`` that is not a file name or not found (naming the
            file that names it); or for a cycle (``a.yaml -> b.yaml -> a.yaml``).
    """
    return _read_inheriting(path, ())


def _read_inheriting(path: Path, heirs: tuple[Path, ...]) -> dict[str, Any]:
    """:func:`read_params_mapping` of ``path``, which the files ``heirs`` (resolved) inherit from, in order."""
    resolved = path.resolve()
    if resolved in heirs:
        cycle = " -> ".join(str(file) for file in (*heirs, resolved))
        raise ParamsError(f"{heirs[0]}: params files inherit from each other in a cycle: {cycle}")
    raw = read_yaml_mapping(path)
    base = raw.pop(BASE_KEY, None)
    if base is None and not heirs:
        return raw  # a file on its own: load_params checks it (after any overrides)
    _build(Params, raw, f"{path}", "")
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise ParamsError(f"{path}: '{BASE_KEY}' must be the name of a params file, got {base!r}")
    base_path = path.parent / Path(base).expanduser()
    if not base_path.is_file():
        raise ParamsError(f"{path}: base params file {base_path} not found")
    return _merge(_read_inheriting(base_path, (*heirs, resolved)), raw)


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``own``, mappings merged key by key (recursively), other values replaced."""
    merged = dict(base)
    for key, value in own.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both_mappings else value
    return merged


def read_yaml_mapping(
    path: Path, *, kind: str = "params file", expected: str = "a mapping of parameters"
) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping (``yaml.safe_load``); an empty file gives ``{}``.

    Args:
        path: the file.
        kind, expected: words for the errors, e.g. ``"variants file"``, ``"a mapping of variants"``.

    Raises:
        ParamsError: naming the file, if it is missing, not UTF-8, not valid YAML (with line and
            column), empty (nothing but comments: an explicit ``{}`` stands for all defaults), uses
            anchors or aliases (with its line: they are refused unexpanded, so an alias bomb costs
            nothing), repeats a key (with its line) or does not hold a mapping.
    """
    if not path.exists():
        raise ParamsError(f"{path}: {kind} not found")
    if not path.is_file():
        raise ParamsError(f"{path}: not a regular file (a folder, pipe or device); expected a {kind}")
    try:
        text = path.read_text(encoding="utf-8")
        _reject_anchors(text, path)
        _reject_duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader), path)
        raw = yaml.safe_load(text)
    except UnicodeDecodeError as error:
        raise ParamsError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        raise ParamsError(_yaml_error_message(path, error)) from None
    if raw is None:
        raise ParamsError(
            f"{path}: the {kind} is empty (nothing but comments or blank lines); write {{}} for all defaults"
        )
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected {expected}, got {type(raw).__name__}")
    return raw


def _reject_anchors(text: str, path: Path) -> None:
    """Refuse YAML anchors (``&name``) and aliases (``*name``), from the parser's events: linear in the text,
    nothing is expanded (a "billion laughs" file of nested aliases is refused at its first anchor)."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ParamsError(
                f"{path}: line {event.start_mark.line + 1}: YAML anchors and aliases (&name, *name) are not "
                "allowed; write the values out (a params file may inherit from another with base:)"
            )


def unknown_key_message(origin: str, key: object, valid: list[str], *, prefix: str = "") -> str:
    """``<origin>: unknown key '<prefix><key>'`` and the nearest valid key (or every valid key)."""
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(valid)}"
    return f"{origin}: unknown key '{prefix}{key}'{hint}"


def with_overrides(params: Params, overrides: dict[str, Any], origin: str) -> Params:
    """Return a copy of ``params`` with dotted overrides set (as :func:`load_params` sets them), validated.

    A mapping value replaces its whole section: ``{"train.augment": {}}`` turns every augmentation off.

    Raises:
        ParamsError: starting with ``origin``, for an unknown key (with the nearest valid key), a
            wrong type or an out-of-range value.
    """
    raw = params.to_dict()
    for dotted, value in overrides.items():
        _set_dotted(raw, str(dotted), value, origin)
    return params_from_dict(raw, origin=origin)


def _reject_duplicate_keys(node: yaml.Node | None, path: Path) -> None:
    """Raise ParamsError for a mapping that repeats a key (YAML would silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                raise ParamsError(f"{path}:{key_node.start_mark.line + 1}: key '{key_node.value}' appears twice")
            seen.add(key_node.value)
            _reject_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, path)


def params_from_dict(raw: dict[str, Any], *, origin: str = "<dict>") -> Params:
    """Validate a nested dict (e.g. a run's recorded params) into :class:`Params`."""
    params = _build(Params, raw, origin, "")
    _check_ranges(params, origin)
    return params


def _upgrade_recorded_faces(raw: dict[str, Any]) -> dict[str, Any]:
    """``faces`` as recorded by runs made before ``faces.video`` (one clip or null) became
    ``faces.videos`` (a list), rewritten to the current key, so those runs still load (e.g. by
    ``report --train-run`` and ``reproduce``); a mapping without the old key is returned as it is."""
    if "video" not in raw or "videos" in raw:
        return raw
    upgraded = {key: value for key, value in raw.items() if key != "video"}
    upgraded["videos"] = [] if raw["video"] is None else [raw["video"]]
    return upgraded


def _yaml_error_message(path: Path, error: yaml.YAMLError) -> str:
    """One line ``<path>:<line>:<column>: not valid YAML (<problem>)`` for a PyYAML error."""
    mark = getattr(error, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else f"{path}"
    problem = " ".join(filter(None, (getattr(error, "context", None), getattr(error, "problem", None))))
    return f"{where}: not valid YAML ({problem or ' '.join(str(error).split())})"


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{dotted key: value}`` (lists and scalars are values)."""
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, origin: str) -> None:
    """Set ``raw["a"]["b"] = value`` for ``dotted == "a.b"``, creating sections.

    Raises:
        ParamsError: if a section on the way is not a mapping (e.g. ``train: 5``).
    """
    *sections, last = dotted.split(".")
    node = raw
    for depth, section in enumerate(sections):
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ParamsError(
                f"{origin}: cannot set '{dotted}': '{'.'.join(sections[: depth + 1])}' is {node!r}, not a section"
            )
    node[last] = value


def _build(cls: type, raw: Any, origin: str, prefix: str) -> Any:
    """Recursively turn ``raw`` into dataclass ``cls``, checking keys and types."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{origin}: '{prefix.rstrip('.') or 'top level'}' must be a mapping, got {raw!r}")
    if cls is FacesParams:
        raw = _upgrade_recorded_faces(raw)
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in valid:
            raise ParamsError(unknown_key_message(origin, key, valid, prefix=prefix))
        hint_type = hints[key]
        if dataclasses.is_dataclass(hint_type):
            values[key] = _build(hint_type, value, origin, f"{prefix}{key}.")
        else:
            values[key] = _coerce(value, hint_type, origin, f"{prefix}{key}")
    return cls(**values)


def _coerce(value: Any, hint: Any, origin: str, key: str) -> Any:
    """Check ``value`` against a type hint (int, float, str, bool, Literal, list, Optional)."""
    origin_type = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin_type in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], origin, key)
    if origin_type is Literal:
        if value not in args:
            raise ParamsError(f"{origin}: '{key}' must be one of {', '.join(map(str, args))}; got {value!r}")
        return value
    if origin_type is list:
        if not isinstance(value, list):
            raise ParamsError(f"{origin}: '{key}' must be a list, got {value!r}")
        return [_coerce(item, args[0], origin, f"{key}[{i}]") for i, item in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{origin}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{origin}: '{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)  # 1e-3: a number that YAML 1.1 reads as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{origin}: '{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{origin}: '{key}' must be a string, got {value!r}")
        return value
    return value


def _check_ranges(params: Params, origin: str | Path) -> None:
    """Reject values of the right type but outside their meaningful range."""
    model, train, augment = params.model, params.train, params.train.augment
    checks = [
        (params.model.input_size >= 32, "model.input_size must be at least 32"),
        (model.alpha > 0, "model.alpha must be positive"),
        (0.0 <= params.model.dropout < 1.0, "model.dropout must be in [0, 1)"),
        (all(units >= 1 for units in model.head_units), "model.head_units must all be at least 1"),
        (model.bn_momentum is None or 0.0 <= model.bn_momentum < 1.0, "model.bn_momentum must be in [0, 1)"),
        (0 <= params.seed < 2**32, "seed must be in 0 to 4294967295 (2**32 - 1: NumPy, Python and Keras take it)"),
        (params.train.epochs >= 1, "train.epochs must be at least 1"),
        (params.train.batch_size >= 1, "train.batch_size must be at least 1"),
        (params.train.learning_rate > 0, "train.learning_rate must be positive"),
        (train.head_learning_rate is None or train.head_learning_rate > 0, "train.head_learning_rate must be positive"),
        (train.weight_decay >= 0, "train.weight_decay must not be negative"),
        (train.warmup_epochs >= 0, "train.warmup_epochs must not be negative"),
        (0 <= params.model.train_from_block <= 16, "model.train_from_block must be 0 (all) or a block 1-16"),
        (train.train_eval_subset is None or train.train_eval_subset >= 1, "train.train_eval_subset must be at least 1"),
        (augment.rotation_degrees >= 0, "train.augment.rotation_degrees must not be negative"),
        (0.0 <= augment.shift_fraction < 1.0, "train.augment.shift_fraction must be in [0, 1)"),
        (0.0 <= augment.zoom_fraction < 1.0, "train.augment.zoom_fraction must be in [0, 1)"),
        (0.0 <= augment.erasing_probability <= 1.0, "train.augment.erasing_probability must be in [0, 1]"),
        (augment.crop_size == 0 or 24 <= augment.crop_size < 48, "train.augment.crop_size must be 0 (off) or 24-47"),
        (augment.mixup_alpha >= 0, "train.augment.mixup_alpha must not be negative"),
        (augment.cutmix_alpha >= 0, "train.augment.cutmix_alpha must not be negative"),
        (
            not (augment.mixup_alpha and augment.cutmix_alpha),
            "train.augment: mixup_alpha and cutmix_alpha exclude each other",
        ),
        (0.0 <= augment.gamma <= 2.0, "train.augment.gamma must be in [0, 2]"),
        (0.0 <= augment.contrast < 1.0, "train.augment.contrast must be in [0, 1)"),
        (0.0 <= augment.lowres_probability <= 1.0, "train.augment.lowres_probability must be in [0, 1]"),
        (0.0 <= augment.jpeg_probability <= 1.0, "train.augment.jpeg_probability must be in [0, 1]"),
        (0.0 <= augment.noise_std <= 64.0, "train.augment.noise_std must be in [0, 64] grey levels"),
        (params.data.train_subset is None or params.data.train_subset >= 1, "data.train_subset must be at least 1"),
        (0.0 <= params.train.label_smoothing < 1.0, "train.label_smoothing must be in [0, 1)"),
        (0.0 <= params.train.teacher_weight <= 1.0, "train.teacher_weight must be in [0, 1]"),
        (0.0 <= params.faces.smoothing < 1.0, "faces.smoothing must be in [0, 1)"),
        (params.faces.scale_factor > 1.0, "faces.scale_factor must be greater than 1"),
        (params.faces.margin >= 0, "faces.margin must not be negative"),
        (params.faces.min_size >= 1, "faces.min_size must be at least 1"),
        (params.faces.min_neighbors >= 0, "faces.min_neighbors must not be negative"),
        (params.faces.detect_every >= 1, "faces.detect_every must be at least 1"),
        (params.faces.video_width >= 16, "faces.video_width must be at least 16"),
        (params.faces.video_step >= 1, "faces.video_step must be at least 1"),
        (params.evaluate.mistakes_shown >= 0, "evaluate.mistakes_shown must not be negative"),
        (params.data.synthetic_per_class >= 3, "data.synthetic_per_class must be at least 3"),
        (
            params.train.warmup_epochs < params.train.epochs or params.model.freeze != "staged",
            "train.warmup_epochs must be smaller than train.epochs for freeze: staged",
        ),
        (
            params.train.select != "average"
            or 1
            <= params.train.average_epochs
            <= params.train.epochs - (params.train.warmup_epochs if params.model.freeze == "staged" else 0),
            "train.average_epochs must be at least 1 and at most the epochs after any head-only warm-up "
            "(train.epochs - train.warmup_epochs) for select: average",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ParamsError(f"{origin}: {message}")


def resolve_data_dir(
    params: Params, *, override: str | None = None, origin: str | os.PathLike[str] | None = None
) -> Path | None:
    """Return the FER-2013 location, or None for the synthetic dataset.

    ``override`` (the CLI's ``--data``) wins and implies FER-2013; otherwise ``source: synthetic``
    gives None, and ``source: fer2013`` takes ``data.dir`` (relative to the project root) or env
    ``FER2013_DIR``.

    Args:
        origin: the params file, named first in the error (default: ``params '<name>'``).

    Raises:
        ParamsError: if FER-2013 is asked for but no location is given.
    """
    if override:
        return Path(os.path.expandvars(override)).expanduser()  # e.g. "$FER2013_DIR", as reports inject it
    if params.data.source == "synthetic":
        return None
    if params.data.dir:
        return project_path(params.data.dir)
    if os.environ.get("FER2013_DIR"):
        return Path(os.environ["FER2013_DIR"]).expanduser()
    raise ParamsError(
        f"{origin or f'params {params.name!r}'}: data.source is fer2013 but no location is given; "
        "pass --data DIR, set data.dir, or set env FER2013_DIR (see README: Getting FER-2013)"
    )
