"""Variants files: a base recipe and the variants of an ablation study, read and validated strictly.

A variants file is YAML (read with ``yaml.safe_load``, validated as strictly as a params file)::

    base: best.yaml                  # the recipe: a params file, relative to this file
    description: what the study asks # optional
    variants:
      baseline: {}                   # the first variant is the recipe itself: no overrides
      paper scaling x/255:
        model.scale: unit            # dotted params keys, as `--set` takes them
      no augmentation:
        train.augment: {}            # a mapping replaces its whole section (here: all augmentation off)

A variant's params are the base file, then its own overrides, then the overrides common to every
variant (the CLI's ``--set``, e.g. a smaller input size and Training subset on a CPU). The common
ones come last so that they hold for every variant; a variant they make identical to an earlier
one is not trained again (:attr:`Variant.same_as`). Keys of ``evaluate`` and ``faces`` and the
run's ``name`` and ``description`` do not change the trained model and are rejected: every
variant is scored without test-time augmentation and with each kind (flip, ten-crop).

This module imports no Keras, so ``python -m fer_lib ablate`` checks a variants file before its
slow Keras import; :mod:`fer_lib.study.ablation` trains and scores the variants.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fer_lib.errors import ParamsError
from fer_lib.params import Params, load_params, read_yaml_mapping, unknown_key_message, with_overrides

VARIANTS_FILE_KEYS: tuple[str, ...] = ("base", "description", "variants")
"""Top-level keys of a variants file (``base`` and ``variants`` required)."""

UNTRAINED_KEYS: tuple[str, ...] = ("name", "description", "evaluate", "faces")
"""Params keys (and sections) that do not change the trained model: not allowed in a variant."""


@dataclass(frozen=True)
class Variant:
    """One variant: its name, what it changes, and the params it trains with."""

    name: str
    overrides: dict[str, Any]
    """The variant's own dotted overrides of the base recipe (``{}`` for the baseline)."""
    params: Params
    """Base recipe + ``overrides`` + the ablation's common overrides, validated."""
    same_as: str | None = None
    """The earlier variant with identical params, whose run stands for this one; None if distinct."""


@dataclass
class Ablation:
    """A base recipe and its variants, the first being the baseline."""

    source: str
    """Where the variants were defined (the variants file), named first in errors."""
    base_path: Path
    """The base recipe's params file."""
    variants: list[Variant]
    overrides: dict[str, Any] = field(default_factory=dict)
    """Overrides common to every variant (``--set``), applied after each variant's own."""
    description: str = ""

    @property
    def baseline(self) -> Variant:
        """The first variant: the base recipe with only the common overrides."""
        return self.variants[0]

    def distinct(self) -> list[Variant]:
        """The variants that are trained: those not identical to an earlier one."""
        return [variant for variant in self.variants if variant.same_as is None]

    def summary(self) -> pd.DataFrame:
        """One row per variant: what it overrides and, if it is not trained, which variant it equals."""
        return pd.DataFrame(
            [
                (
                    variant.name,
                    describe_overrides(variant.overrides),
                    f"not trained: same params as '{variant.same_as}'" if variant.same_as else "trained",
                )
                for variant in self.variants
            ],
            columns=["variant", "overrides", "status"],
        ).set_index("variant")


def load_variants(
    path: str | os.PathLike[str], *, overrides: dict[str, Any] | None = None, base: str | os.PathLike[str] | None = None
) -> Ablation:
    """Read and validate a variants file (format: see the module docstring).

    Args:
        path: the variants YAML file.
        overrides: dotted keys set for every variant after its own, e.g. ``{"train.epochs": 3}``.
        base: a params file replacing the file's ``base`` (the same variants off another recipe).

    Raises:
        ParamsError: naming the file, for a missing or invalid file, an unknown top-level key, and
            (naming the variant) for an unknown params key with the nearest valid one, a wrong type
            or value, overrides on the first variant, or a key that does not change training.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, kind="variants file", expected="a mapping with keys base and variants")
    for key in raw:
        if key not in VARIANTS_FILE_KEYS:
            raise ParamsError(unknown_key_message(str(path), key, list(VARIANTS_FILE_KEYS)))
    for key in ("base", "variants"):
        if key not in raw:
            raise ParamsError(f"{path}: '{key}' is missing (a variants file needs base and variants)")
    for key in ("base", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise ParamsError(f"{path}: '{key}' must be a string, got {raw[key]!r}")
    if not isinstance(raw["variants"], dict):
        raise ParamsError(
            f"{path}: 'variants' must be a mapping of variant names to overrides, got {raw['variants']!r}"
        )
    base_path = Path(base) if base else path.parent / raw["base"]
    return make_ablation(
        base_path, raw["variants"], overrides=overrides, source=str(path), description=raw.get("description", "")
    )


def make_ablation(
    base_path: str | os.PathLike[str],
    variants: dict[str, dict[str, Any] | None],
    *,
    overrides: dict[str, Any] | None = None,
    source: str | None = None,
    description: str = "",
) -> Ablation:
    """Validate variants given in code (``{name: {dotted key: value}}``, the first without overrides).

    Args:
        base_path: the base recipe's params file.
        variants: variant names to their overrides, in order; the first is the baseline.
        overrides: dotted keys set for every variant after its own.
        source: what errors name first (default: ``base_path``).

    Raises:
        ParamsError: as :func:`load_variants`.
    """
    base_path = Path(base_path)
    source = source or str(base_path)
    overrides = dict(overrides or {})
    recipe = load_params(base_path)
    if overrides:
        load_params(base_path, overrides=overrides)  # errors in the common overrides name the base file alone
    if not variants:
        raise ParamsError(f"{source}: 'variants' is empty; it must name at least the baseline")
    result: list[Variant] = []
    for index, (name, own) in enumerate(variants.items()):
        if not isinstance(name, str) or not name.strip():
            raise ParamsError(f"{source}: variant names must be non-empty text, got {name!r}")
        origin = f"{source} (variant '{name}')"
        own = {} if own is None else own
        if not isinstance(own, dict):
            raise ParamsError(f"{origin}: expected a mapping of dotted params keys to values, got {own!r}")
        if index == 0 and own:
            raise ParamsError(
                f"{origin}: the first variant is the baseline and must have no overrides; "
                f"got {', '.join(map(str, own))}"
            )
        for key in own:
            if str(key).split(".")[0] in UNTRAINED_KEYS:
                raise ParamsError(
                    f"{origin}: '{key}' does not change the trained model; every variant is "
                    "scored without test-time augmentation and with each kind"
                )
        params = with_overrides(recipe, own, origin)
        if overrides:
            params = with_overrides(params, overrides, f"{origin} with overrides: {', '.join(overrides)}")
        same_as = next((earlier.name for earlier in result if earlier.params == params), None)
        result.append(Variant(name, dict(own), params, same_as))
    return Ablation(source, base_path, result, overrides, description)


def describe_overrides(overrides: dict[str, Any]) -> str:
    """``key=value, ...`` (values other than text as JSON), or ``none`` for the baseline."""
    return (
        ", ".join(f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in overrides.items())
        or "none"
    )


def publictest_column(metric: str, tta: str) -> str:
    """The table column of PublicTest ``metric`` (``"accuracy"`` or ``"macro_f1"``) under test-time
    augmentation ``tta``: ``publictest_accuracy``, ``publictest_accuracy_tta_flip``, ..."""
    return f"publictest_{metric}" if tta == "none" else f"publictest_{metric}_tta_{tta}"
