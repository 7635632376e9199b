"""The metadata the registry keeps for every model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model, besides how to build it.

    Parameter counts and FLOPs are not stored here: `registry.model_info`
    computes them from the built model, so they can never drift from the code.

    Attributes:
        name: The registered name, such as ``"resnet50_scratch"``.
        builder: Callable that returns the ``torch.nn.Module``; it takes
            ``num_classes`` and any model arguments.
        family: The architecture family, such as ``"resnet"``.
        description: One line for tables and docs.
        input_size: Default input as ``(channels, height, width)``.
        pretrained: Where pretrained weights come from (``"timm:resnet50.a1_in1k"``),
            or ``None`` for a model that starts from random weights.
        tags: Free-form labels to filter on with ``list_models(tags=...)``.
    """

    name: str
    builder: Callable[..., Any]
    family: str = ""
    description: str = ""
    input_size: tuple[int, int, int] = (3, 224, 224)
    pretrained: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_pretrained(self) -> bool:
        """Whether the model starts from pretrained weights."""
        return self.pretrained is not None
