"""scikit-learn's bundled digits: the zero-setup dataset for unit tests.

A random ViT already scores about 97% on it, so it proves nothing about learning; it only makes tests run
without a download. The 8x8 images are stretched to the full uint8 range and split once, with a fixed seed,
into 80% train and 20% test.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["load_digits"]

_DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All digits as uint8 ``[N,1,8,8]``, their labels, and the boolean test mask of the fixed split."""
    # Imported lazily: sklearn is slow to import and only this zero-setup fallback needs it.
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    # Pixel values are 0..16; stretch to the full uint8 range so every dataset shares one pixel scale.
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    n = labels.shape[0]
    # The split is fixed (not the subset seed) so train and test never overlap whatever seed a trial uses.
    perm = np.random.default_rng(_DIGITS_SPLIT_SEED).permutation(n)
    is_test = np.zeros(n, dtype=bool)
    is_test[perm[: round(n * _DIGITS_TEST_FRACTION)]] = True
    for array in (images, labels, is_test):
        array.flags.writeable = False
    return images[:, None, :, :], labels, is_test


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``[N,1,8,8]`` and int64 labels ``[N]`` of a canonical split (``"train"``/``"test"``)."""
    images, labels, is_test = _digits_arrays()
    mask = is_test if split == "test" else ~is_test
    return images[mask], labels[mask]
