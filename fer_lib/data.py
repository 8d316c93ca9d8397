"""FER-2013 in memory: one dataset type for the image folders, ``fer2013.csv`` and the synthetic default.

Every loader returns a :class:`fer_lib.dataset.FaceDataset`.

Sources, all loaded into a :class:`FaceDataset` ordered by split, then class index, then id:

* :func:`load_image_folder`: the Kaggle image-folder copy, ``root/<any>/<class>/<Usage>_<id>.jpg``
  (e.g. ``train/angry/Training_10118481.jpg``); the class comes from the folder name through
  :data:`fer_lib.labels.LABEL_INDEX` (never from sort order), the split from the file-name prefix.
* :func:`load_csv`: the original ``fer2013.csv`` (``emotion,pixels,Usage``).
* :func:`load_fer2013`: either of the two, cached as an ``.npz`` file keyed on the source's
  paths, sizes and modification times.
* :func:`load_dataset`: what notebooks and the CLI call; the generated synthetic dataset
  (:mod:`fer_lib.synthetic`) unless the params or ``--data`` point at FER-2013.

Every face must be 48x48 8-bit grey. A 3-channel image whose three channels are identical (a grey
face saved as colour) is accepted as grey; any other colour image, an alpha channel, 16-bit pixels
or another size is rejected rather than converted, because it means the input is not FER-2013.
Each bad input raises :class:`fer_lib.errors.DataError` whose message starts with the file (and
line, for CSV); with ``on_error="skip"`` bad inputs are skipped instead, with one logged warning
per input and a count.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd

from fer_lib.dataset import FaceDataset
from fer_lib.errors import DataError, MediaError
from fer_lib.image_header import read_header
from fer_lib.labels import EMOTIONS, FACE_SIZE, LABEL_INDEX, NUM_CLASSES, SPLITS
from fer_lib.params import Params, resolve_data_dir
from fer_lib.paths import default_cache_dir
from fer_lib.synthetic.faces import make_synthetic_dataset

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
"""What a loader does with a bad input: raise a DataError, or skip it with a logged warning."""

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
"""File-name endings read as images in an image folder (other files, and hidden ones, are ignored)."""

PIXELS_PER_FACE: int = FACE_SIZE * FACE_SIZE

CSV_COLUMNS: tuple[str, ...] = ("emotion", "pixels", "Usage")
"""Columns ``fer2013.csv`` must have (others are ignored)."""

CACHE_FORMAT: int = 1
"""Version of the cache layout; part of every cache key, so changing it invalidates old caches."""

_USAGE_PREFIXES = ", ".join(f"{split}_" for split in SPLITS)
_INTEGER = re.compile(r"[+-]?[0-9]+")


def decode_face(data: bytes) -> np.ndarray:
    """Decode one encoded image file (JPEG, PNG, ...) into a FER-2013 face.

    Args:
        data: the file's bytes.

    Returns:
        uint8 array (48, 48) of grey pixel values.

    Raises:
        ValueError: saying what is wrong (empty, not an image, corrupt or truncated, not 8-bit,
            not grey, not 48x48); callers prefix the file name.
    """
    if not data:
        raise ValueError("empty file (0 bytes)")
    try:
        header = read_header(data)  # before decoding: a small file may hold a huge image
    except MediaError:
        raise ValueError("not a readable image (corrupt, truncated or not an image file)") from None
    if (header.width, header.height) != (FACE_SIZE, FACE_SIZE):
        raise ValueError(f"{header.width}x{header.height} pixels; expected {FACE_SIZE}x{FACE_SIZE}")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("not a readable image (corrupt, truncated or not an image file)")
    if image.dtype != np.uint8:
        raise ValueError(f"{image.dtype} pixels; expected 8-bit grey")
    if image.ndim == 3:
        channels = image.shape[2]
        if channels != 3:
            raise ValueError(f"{channels}-channel image; expected 1-channel grey")
        if not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])):
            raise ValueError("colour image (its 3 channels differ); expected grey")
        image = image[..., 0]
    if image.shape != (FACE_SIZE, FACE_SIZE):
        raise ValueError(f"{image.shape[1]}x{image.shape[0]} pixels; expected {FACE_SIZE}x{FACE_SIZE}")
    return np.ascontiguousarray(image)


def load_image_folder(root: str | os.PathLike[str], *, on_error: OnError = "raise") -> FaceDataset:
    """Load the Kaggle image-folder copy of FER-2013.

    Images are found one or two folders below ``root``: ``root/<any>/<class>/<Usage>_<id>.<ext>``
    (the Kaggle ``train/`` and ``test/`` folders; any subset of splits) or ``root/<class>/...``.
    ``<class>`` is an emotion name (any case), ``<Usage>`` one of Training, PublicTest, PrivateTest,
    and the id is the file stem. Ids are not quite unique: the Kaggle copy has two stems
    (``Training_52789098``, ``Training_8475486``) in two class folders each, holding different
    faces; id and label together are unique. Files are read and decoded in a thread pool.

    Args:
        root: the folder holding the split folders.
        on_error: ``"raise"`` or ``"skip"`` (see module docstring).

    Returns:
        The faces, ordered by split, class index and id; ``source`` is ``str(root)``.

    Raises:
        DataError: naming the path, if ``root`` is missing or holds no images, or (unless
            ``on_error="skip"``) for the first unknown class folder, or file that is unreadable,
            not a 48x48 grey image or without a usage prefix.
    """
    dataset, problems = _load_image_folder(Path(root))
    _report_problems(problems, on_error, dataset.source)
    return dataset


def load_csv(path: str | os.PathLike[str], *, on_error: OnError = "raise") -> FaceDataset:
    """Load the original ``fer2013.csv`` (columns ``emotion,pixels,Usage``; others are ignored).

    ``emotion`` is the canonical class index 0-6, ``pixels`` 2304 space-separated values 0-255 (a
    48x48 face, row by row) and ``Usage`` the split. Line 1 is the header; the face on line L gets
    id ``csv:<L - 2>`` (its 0-based data-row number).

    Args:
        path: the CSV file.
        on_error: ``"raise"`` or ``"skip"`` bad rows (see module docstring).

    Returns:
        The faces, ordered by split, class index and row; ``source`` is ``str(path)``.

    Raises:
        DataError: ``"<path>: ..."`` if the file is missing, empty, not CSV or lacks a column;
            ``"<path>:<line>: ..."`` for a row with a non-numeric or unknown label, a pixel count
            other than 2304, a non-numeric or out-of-range pixel value, or an unknown Usage.
    """
    dataset, problems = _load_csv(Path(path))
    _report_problems(problems, on_error, dataset.source)
    return dataset


def load_fer2013(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    on_error: OnError = "raise",
) -> FaceDataset:
    """Load FER-2013 from an image folder or a ``.csv`` file, through an ``.npz`` cache.

    The cache file's name hashes the source's path and ``on_error`` and its content (folder:
    relative path, size and modification time of every image; CSV: size and modification time),
    so any change to the source makes a new cache, which replaces the old one. Caches are written
    atomically; an unreadable cache is ignored (with a warning) and rebuilt. In skip mode a cache
    hit repeats the warnings about the inputs that were skipped when the cache was built.

    Args:
        path: a folder (see :func:`load_image_folder`) or a ``.csv`` file (see :func:`load_csv`).
        cache_dir: where caches live; None means :func:`fer_lib.paths.default_cache_dir`.
        on_error: ``"raise"`` or ``"skip"`` bad inputs.

    Raises:
        DataError: naming the path, if it does not exist, is neither a folder nor a ``.csv``
            file, or (see the loaders) holds bad inputs and ``on_error`` is ``"raise"``.
    """
    path = Path(path).expanduser()
    cache_file = _cache_file(Path(cache_dir or default_cache_dir()).expanduser(), path, on_error)
    cached = _read_cache(cache_file, source=str(path))
    dataset, problems = cached or (_load_image_folder(path) if path.is_dir() else _load_csv(path))
    _report_problems(problems, on_error, dataset.source)
    if cached is None:
        _write_cache(cache_file, dataset, problems)
    return dataset


def load_dataset(
    params: Params,
    *,
    data_override: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> FaceDataset:
    """Return the dataset a study run uses: synthetic, or FER-2013 from a folder or CSV.

    The synthetic dataset (``params.data.synthetic_per_class`` Training faces per class, seeded by
    ``params.seed``) is used when :func:`fer_lib.params.resolve_data_dir` gives None; otherwise
    FER-2013 is loaded through the cache. The full dataset is returned: callers apply
    ``data.train_subset`` with :func:`stratified_subset`, and evaluate without leaked faces with
    :func:`fer_lib.audit.drop_cross_split_duplicates`.

    Args:
        params: the study parameters.
        data_override: the CLI's ``--data``; wins over ``params.data`` and implies FER-2013.
        cache_dir: see :func:`load_fer2013`.
    """
    location = resolve_data_dir(params, override=data_override)
    if location is None:
        return make_synthetic_dataset(params.data.synthetic_per_class, params.seed)
    return load_fer2013(location, cache_dir=cache_dir)


def stratified_subset(dataset: FaceDataset, n: int, seed: int) -> FaceDataset:
    """Return ``n`` faces drawn without replacement so that each class keeps its share.

    Meant for ``params.data.train_subset`` on the Training split:
    ``stratified_subset(dataset.split("Training"), n, seed)``. The subset keeps the dataset's order.
    A dataset of at most ``n`` faces is returned whole.

    Raises:
        DataError: if ``n`` is too small to hold every class (or a class has a single face).
    """
    if n >= len(dataset):
        return dataset
    from sklearn.model_selection import train_test_split  # here: importing scikit-learn takes a second

    try:
        chosen, _ = train_test_split(np.arange(len(dataset)), train_size=n, stratify=dataset.labels, random_state=seed)
    except ValueError as error:
        raise DataError(f"{dataset.source}: cannot draw a stratified subset of {n} faces ({error})") from None
    return dataset.select(np.sort(chosen))


def _report_problems(problems: list[str], on_error: OnError, source: str) -> None:
    """Raise a DataError for the first problem, or log every problem and a count (skip mode).

    Args:
        problems: complete one-line messages, each starting with a path (and line).
        on_error: ``"raise"`` or ``"skip"``.
        source: the dataset's path, for the count message.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not problems:
        return
    if on_error == "raise":
        more = f" (and {len(problems) - 1} more bad inputs; fix or remove them)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    for problem in problems:
        logger.warning("skipped %s", problem)
    logger.warning("%s: skipped %d bad inputs", source, len(problems))


def _find_image_files(root: Path) -> list[str]:
    """Return the image files one or two folders below ``root``, relative to it, sorted.

    Hidden files and folders and files without an image ending are left out.
    """
    candidates = glob.glob("*/*", root_dir=root) + glob.glob("*/*/*", root_dir=root)
    return sorted(name for name in candidates if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES)


def _scan_image_folder(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Find the images below ``root`` and read each one's class and split from its path.

    Returns:
        A table of the usable files (columns ``path``, ``folder``, ``label``, ``usage``, ``id``)
        and the problems found (unknown class folder, no usage prefix).

    Raises:
        DataError: if ``root`` is not a folder or holds no images.
    """
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    relative_paths = _find_image_files(root)
    if not relative_paths:
        raise DataError(
            f"{root}: no images found; expected {root}/<split>/<class>/<Usage>_<id>.jpg "
            "such as train/angry/Training_10118481.jpg"
        )
    paths = [root / name for name in relative_paths]
    files = pd.DataFrame(
        {
            "path": paths,
            "folder": [path.parent for path in paths],
            "label": [LABEL_INDEX.get(path.parent.name.lower(), -1) for path in paths],
            "usage": [path.stem.partition("_")[0] for path in paths],
            "id": [path.stem for path in paths],
        }
    )
    problems = [
        f"{folder}: unknown class folder '{folder.name}' holding {len(group)} image(s); valid class folders: "
        f"{', '.join(EMOTIONS)}"
        for folder, group in files[files.label < 0].groupby("folder", sort=True)
    ]
    files = files[files.label >= 0]
    no_prefix = ~files.usage.isin(SPLITS)
    problems += [
        f"{path}: file name does not start with a FER-2013 usage ({_USAGE_PREFIXES})" for path in files.path[no_prefix]
    ]
    files = files[~no_prefix]
    _warn_misplaced(root, files)
    return files, problems


SPLIT_FOLDERS: dict[str, tuple[str, ...]] = {"train": ("Training",), "test": ("PublicTest", "PrivateTest")}
"""The Kaggle copy's split folders and the usages their file names should carry."""


def _warn_misplaced(root: Path, files: pd.DataFrame) -> None:
    """Log one warning per split folder holding files whose name says another split (e.g. ``train/x/PublicTest_1.jpg``):
    a file's split comes from its name, so they are counted in the split they name."""
    folders = pd.Series([path.parent.parent for path in files.path], index=files.index)
    for folder, group in files.groupby(folders, sort=True):
        expected = SPLIT_FOLDERS.get(folder.name.lower()) if folder != root else None
        misplaced = group[~group.usage.isin(expected)] if expected else group.iloc[:0]
        for usage, count in misplaced.usage.value_counts().sort_index().items():
            logger.warning(
                "%s: %d file(s) named %s_* lie in this %s folder; each counts as %s, the split its name gives",
                folder,
                count,
                usage,
                folder.name,
                usage,
            )


def _read_face(path: Path) -> np.ndarray | str:
    """Return the face in image file ``path`` (uint8 (48, 48)), or a problem message naming it."""
    try:
        return decode_face(path.read_bytes())
    except OSError as error:
        return f"{path}: cannot read ({error.strerror or error})"
    except ValueError as error:
        return f"{path}: {error}"


def _load_image_folder(root: Path) -> tuple[FaceDataset, list[str]]:
    """Load the good faces under ``root`` and list the bad inputs (see :func:`load_image_folder`)."""
    files, problems = _scan_image_folder(root)
    with ThreadPoolExecutor() as executor:
        results = list(executor.map(_read_face, files.path))
    problems += [result for result in results if isinstance(result, str)]
    good = np.array([not isinstance(result, str) for result in results], dtype=bool)  # an empty list would pick columns
    files = files[good]
    faces = [result for result in results if not isinstance(result, str)]
    return _ordered_dataset(
        faces, files.label.tolist(), files.usage.tolist(), files.id.tolist(), files.id.tolist(), str(root)
    ), problems


def _ordered_dataset(
    faces: list[np.ndarray],
    labels: list[int],
    usage: list[str],
    ids: list[str],
    tiebreak: list[str] | list[int],
    source: str,
) -> FaceDataset:
    """Build a dataset from per-face lists (faces uint8 (48, 48) each), ordered by split (canonical order),
    class index, then ``tiebreak`` (ids or row numbers, which make the order total)."""
    stacked = np.stack(faces) if faces else np.zeros((0, FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    labels_array, usage_array = np.array(labels, dtype=np.int64), np.array(usage, dtype=str)
    split_rank = pd.Categorical(usage_array, categories=SPLITS).codes
    order = np.lexsort((np.array(tiebreak), labels_array, split_rank))
    return FaceDataset(stacked[order], labels_array[order], usage_array[order], np.array(ids, dtype=str)[order], source)


def _read_csv_table(path: Path) -> pd.DataFrame:
    """Read ``fer2013.csv`` as strings; row i of the table is line i + 2 of the file.

    Raises:
        DataError: if the file is missing, empty, not valid CSV or lacks a column.
    """
    if not path.is_file():
        raise DataError(f"{path}: not found; expected a FER-2013 image folder or fer2013.csv")
    if path.suffix.lower() != ".csv":
        raise DataError(f"{path}: not a folder or a .csv file; expected a FER-2013 image folder or fer2013.csv")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file; expected a header emotion,pixels,Usage and one face per line") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[-1]
        raise DataError(f"{path}: not a valid fer2013.csv ({reason})") from None
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in CSV_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(
            f"{path}:1: missing column {', '.join(missing)}; expected the header "
            f"{','.join(CSV_COLUMNS)} (found {','.join(table.columns)})"
        )
    return table[list(CSV_COLUMNS)].fillna("")


def _parse_label(text: str) -> int:
    """Return the class index in an ``emotion`` field; raises ValueError saying what is wrong."""
    try:
        label = int(text)
    except ValueError:
        raise ValueError(f"non-numeric emotion label {text.strip()!r}; expected 0-{NUM_CLASSES - 1}") from None
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"unknown emotion label {label}; expected 0-{NUM_CLASSES - 1}")
    return label


def _parse_usage(text: str) -> str:
    """Return the split in a ``Usage`` field; raises ValueError saying what is wrong."""
    usage = text.strip()
    if usage not in SPLITS:
        raise ValueError(f"unknown Usage {usage!r}; expected {', '.join(SPLITS)}")
    return usage


def _parse_pixels(text: str) -> np.ndarray:
    """Return the face in a ``pixels`` field as uint8 (48, 48); raises ValueError saying what is wrong."""
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):  # numpy < 2.3 warns where newer numpy raises
        bad = ((number, token) for number, token in enumerate(text.split(), start=1) if not _INTEGER.fullmatch(token))
        position, token = next(bad, (1, text.strip()))
        raise ValueError(f"non-numeric pixel value {token!r} (value {position})") from None
    if values.size != PIXELS_PER_FACE:
        raise ValueError(f"{values.size} pixel values; expected {PIXELS_PER_FACE} ({FACE_SIZE}x{FACE_SIZE})")
    out_of_range = np.flatnonzero((values < 0) | (values > 255))
    if out_of_range.size:
        position = int(out_of_range[0])
        raise ValueError(f"pixel value {values[position]} out of range 0-255 (value {position + 1})")
    return values.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)


def _load_csv(path: Path) -> tuple[FaceDataset, list[str]]:
    """Load the good rows of ``fer2013.csv`` and list the bad ones (see :func:`load_csv`)."""
    table = _read_csv_table(path)
    faces, labels, usage, rows, problems = [], [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for row, (emotion_text, pixels_text, usage_text) in enumerate(table.itertuples(index=False, name=None)):
            if not (emotion_text or pixels_text or usage_text):
                continue  # a blank line
            try:
                label, split, face = _parse_label(emotion_text), _parse_usage(usage_text), _parse_pixels(pixels_text)
            except ValueError as error:
                problems.append(f"{path}:{row + 2}: {error}")
                continue
            labels.append(label)
            usage.append(split)
            faces.append(face)
            rows.append(row)
    if not rows and not problems:
        raise DataError(f"{path}: no faces found (only a header)")
    return _ordered_dataset(faces, labels, usage, [f"csv:{row}" for row in rows], rows, str(path)), problems


def _cache_file(cache_dir: Path, path: Path, on_error: OnError) -> Path:
    """Return ``cache_dir/fer2013-<source>-<content>.npz`` for a dataset source.

    ``<source>`` hashes the resolved path and ``on_error``; ``<content>`` hashes, for a folder, the
    relative path, size and modification time of every image, and for a CSV file its size and
    modification time. Any change to the source changes the name.

    Raises:
        DataError: if ``path`` does not exist.
    """
    if path.is_dir():
        stats = {name: os.stat(path / name) for name in _find_image_files(path)}
        content = "\n".join(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}" for name, stat in stats.items())
    elif path.is_file():
        stat = path.stat()
        content = f"{stat.st_size}\0{stat.st_mtime_ns}"
    else:
        raise DataError(f"{path}: not found; expected a FER-2013 image folder or fer2013.csv")
    source_hash = hashlib.sha256(f"{CACHE_FORMAT}\n{on_error}\n{path.resolve()}".encode()).hexdigest()[:12]
    content_hash = hashlib.sha256(content.encode()).hexdigest()[:16]
    return cache_dir / f"fer2013-{source_hash}-{content_hash}.npz"


def _read_cache(cache_file: Path, source: str) -> tuple[FaceDataset, list[str]] | None:
    """Return the cached dataset and skipped-input messages, or None if absent or unreadable."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as archive:
            dataset = FaceDataset(archive["faces"], archive["labels"], archive["usage"], archive["ids"], source)
            problems = archive["skipped"].tolist()
        count = len(dataset)
        if (
            dataset.faces.shape != (count, FACE_SIZE, FACE_SIZE)
            or dataset.faces.dtype != np.uint8
            or dataset.labels.dtype != np.int64
            or dataset.usage.shape != (count,)
            or dataset.ids.shape != (count,)
        ):
            raise ValueError("arrays have unexpected shapes or types")
    except Exception as error:  # noqa: BLE001 - a cache is disposable: anything wrong with it means rebuild
        logger.warning("%s: ignoring unreadable dataset cache (%s); rebuilding it", cache_file, error)
        return None
    return dataset, problems


def _write_cache(cache_file: Path, dataset: FaceDataset, problems: list[str]) -> None:
    """Write the dataset atomically (temporary file, then rename) and delete the source's older caches.

    A failure to write is logged as a warning; loading goes on without a cache.
    """
    temporary: str | None = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=cache_file.parent, prefix=cache_file.stem, suffix=".tmp", delete=False
        ) as handle:
            temporary = handle.name
            np.savez(
                handle,
                faces=dataset.faces,
                labels=dataset.labels.astype(np.int64),
                usage=dataset.usage.astype(str),
                ids=dataset.ids.astype(str),
                skipped=np.array(problems, dtype=str),
            )
        os.replace(temporary, cache_file)
        source_prefix = cache_file.name.rsplit("-", 1)[0]
        for stale in cache_file.parent.glob(f"{source_prefix}-*.npz"):
            if stale != cache_file:
                stale.unlink(missing_ok=True)
    except OSError as error:
        logger.warning("%s: cannot write the dataset cache (%s); going on without it", cache_file, error)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
