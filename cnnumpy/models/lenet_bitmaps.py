"""The fixed prototypes of LeNet-5's RBF output units: stylised 7x12 bitmaps of the digits.

LeCun et al. 1998, section II.B and Fig. 3: each output unit computes the squared distance from
the 84 F6 states to a fixed parameter vector of +1/-1 components, designed as "a stylized image
of the corresponding character class drawn on a 7x12 bitmap" (hence F6's 84 units). The paper
notes that random +1/-1 codes would also do, but that drawn characters make confusable
classes (O and 0, 1 and l) have similar codes, which helps a linguistic post-processor.

The drawings below are this project's own, in the same spirit: ``#`` is +1 (ink), ``.`` is -1.
Each is 12 rows of 7 characters, read row by row into the 84-vector (row-major, like F6's
units laid out as a 7-wide, 12-high image).
"""

from __future__ import annotations

import numpy as np

BITMAP_ROWS, BITMAP_COLS = 12, 7

DIGIT_BITMAPS: tuple[str, ...] = (
    """
    .......
    ..###..
    .#...#.
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    #.....#
    .#...#.
    ..###..
    .......
    """,
    """
    .......
    ...#...
    ..##...
    .#.#...
    ...#...
    ...#...
    ...#...
    ...#...
    ...#...
    ...#...
    .#####.
    .......
    """,
    """
    .......
    ..###..
    .#...#.
    .....#.
    .....#.
    ....#..
    ...#...
    ..#....
    .#.....
    .#.....
    .#####.
    .......
    """,
    """
    .......
    .####..
    .....#.
    .....#.
    .....#.
    ..###..
    .....#.
    .....#.
    .....#.
    .....#.
    .####..
    .......
    """,
    """
    .......
    ....#..
    ...##..
    ..#.#..
    .#..#..
    #...#..
    #######
    ....#..
    ....#..
    ....#..
    ....#..
    .......
    """,
    """
    .......
    .#####.
    .#.....
    .#.....
    .#.....
    .####..
    .....#.
    .....#.
    .....#.
    .#...#.
    ..###..
    .......
    """,
    """
    .......
    ...##..
    ..#....
    .#.....
    .#.....
    .####..
    .#...#.
    .#...#.
    .#...#.
    .#...#.
    ..###..
    .......
    """,
    """
    .......
    .#####.
    .....#.
    .....#.
    ....#..
    ....#..
    ...#...
    ...#...
    ..#....
    ..#....
    ..#....
    .......
    """,
    """
    .......
    ..###..
    .#...#.
    .#...#.
    .#...#.
    ..###..
    .#...#.
    .#...#.
    .#...#.
    .#...#.
    ..###..
    .......
    """,
    """
    .......
    ..###..
    .#...#.
    .#...#.
    .#...#.
    .#...#.
    ..####.
    .....#.
    .....#.
    ....#..
    ..##...
    .......
    """,
)


def parse_bitmap(drawing: str) -> np.ndarray:
    """One drawing as a ``(12, 7)`` array of +1 (``#``) and -1 (``.``)."""
    rows = [line.strip() for line in drawing.strip().splitlines()]
    if len(rows) != BITMAP_ROWS or any(len(r) != BITMAP_COLS for r in rows):
        raise ValueError(f"a bitmap must be {BITMAP_ROWS} rows of {BITMAP_COLS} characters")
    if any(ch not in "#." for r in rows for ch in r):
        raise ValueError("a bitmap may only hold '#' (ink, +1) and '.' (background, -1)")
    return np.array([[1.0 if ch == "#" else -1.0 for ch in r] for r in rows])


def digit_prototypes(
    num_classes: int = 10, *, rng: np.random.Generator | None = None
) -> np.ndarray:
    """RBF prototypes ``(num_classes, 84)``: the digit bitmaps for classes 0-9, flattened
    row-major; classes beyond 10 get random +1/-1 codes from ``rng`` (the paper's alternative)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    drawn = np.stack([parse_bitmap(d).reshape(-1) for d in DIGIT_BITMAPS[:num_classes]])
    extra = num_classes - len(drawn)
    if extra <= 0:
        return drawn
    rng = rng if rng is not None else np.random.default_rng()
    codes = rng.choice([-1.0, 1.0], size=(extra, BITMAP_ROWS * BITMAP_COLS))
    return np.concatenate([drawn, codes])
