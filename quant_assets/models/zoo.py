"""The model zoo by name: one constructor call turns a family name and its parameters into an
unfitted model with the `ZooModel` interface."""

from __future__ import annotations

from quant_assets.models.base import ZooModel
from quant_assets.models.processing import Processed, RobustZScore
from quant_assets.models.trees import LGBMModel, RFModel, XGBModel

TREE_FAMILIES: dict[str, type[ZooModel]] = {"lgbm": LGBMModel, "xgb": XGBModel, "rf": RFModel}
NETWORK_FAMILIES = ("cnn", "lstm", "transformer")
FAMILIES = (*TREE_FAMILIES, *NETWORK_FAMILIES)


def family_class(name: str) -> type[ZooModel]:
    """The class of a family; networks are imported only when asked for (torch is slow to
    import, and a tree-only run should not pay for it)."""
    if name in TREE_FAMILIES:
        return TREE_FAMILIES[name]
    if name in NETWORK_FAMILIES:
        from quant_assets.models import deep

        return {"cnn": deep.CNNModel, "lstm": deep.LSTMModel, "transformer": deep.TransformerModel}[
            name
        ]
    raise ValueError(f"unknown model family {name!r}; the zoo has {', '.join(FAMILIES)}")


def make_model(name: str, **params: object) -> ZooModel:
    """An unfitted model of the family `name`. Parameters the family does not take are an
    error (a misspelt name would otherwise be silently ignored)."""
    cls = family_class(name)
    known = set(cls._get_param_names())
    unknown = sorted(set(params) - known)
    if unknown:
        raise TypeError(f"{name} takes no parameter {unknown}; it takes {sorted(known)}")
    return cls(**params)


# Qlib's defaults by kind: trees read raw features and learn a per-date z-scored label;
# networks read robust-z-scored, zero-filled features and learn a per-date ranked label.
def label_norm(name: str) -> str:
    """The per-date label transform a family learns by default (`processing.LABEL_NORMS`)."""
    return "rank" if name in NETWORK_FAMILIES else "zscore"


def make_processed(name: str, **params: object) -> Processed:
    """An unfitted model of `name` behind its default feature scaling (none for trees)."""
    scaling = RobustZScore() if name in NETWORK_FAMILIES else None
    return Processed(make_model(name, **params), scaling)
