"""The ggml tensor types a GGUF file may use: how many elements a block holds and how many bytes it takes.

The numbers are ggml's (``ggml_blck_size`` and ``ggml_type_size``), copied here so that checking a model
needs neither numpy nor the ``gguf`` package at run time; a test keeps them in step with
``gguf.constants.GGML_QUANT_SIZES``. Ids missing here (4, 5, 31-33, 36-38) are types ggml has removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class GGMLType:
    """One ggml tensor type: ``block_size`` elements are stored in ``type_size`` bytes."""

    type_id: int
    name: str
    block_size: int
    type_size: int

    def row_bytes(self, n_elements: int) -> int:
        """Bytes taken by ``n_elements`` values (a multiple of ``block_size``)."""
        return n_elements // self.block_size * self.type_size


_ROWS: Final = (
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
)

GGML_TYPES: Final[Mapping[int, GGMLType]] = MappingProxyType(
    {row[0]: GGMLType(*row) for row in _ROWS}
)


def ggml_type(type_id: int) -> GGMLType | None:
    """The type with id ``type_id``, or ``None`` if ggml does not know it (any more)."""
    return GGML_TYPES.get(type_id)
