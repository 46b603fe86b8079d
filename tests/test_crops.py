"""pipelines.imaging.crops: the recipe's nine 96 x 96 crops, resized back to the image size."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.core.errors import ConfigError
from pipelines.imaging.crops import INTERPOLATIONS, crop_windows, nine_crops
from pipelines.imaging.raster import render_beats
from tests._wfdb_records import synthetic_ecg


@pytest.fixture(scope="module")
def images():
    sig, peaks = synthetic_ecg(n_beats=8)
    beats = [sig[peaks[i - 1] + 20:peaks[i + 1] - 20].astype(np.float32) for i in range(1, 7)]
    offsets = np.r_[0, np.cumsum([b.size for b in beats])]
    imgs = render_beats(np.concatenate(beats), offsets)
    noise = np.random.default_rng(0).integers(0, 256, (2, 128, 128), dtype=np.uint8)  # every pixel matters
    return np.concatenate([imgs, noise])


def test_windows_are_the_recipes_row_major_order():
    assert crop_windows(128) == [
        (slice(0, 96), slice(0, 96)), (slice(0, 96), slice(16, 112)), (slice(0, 96), slice(32, 128)),
        (slice(16, 112), slice(0, 96)), (slice(16, 112), slice(16, 112)), (slice(16, 112), slice(32, 128)),
        (slice(32, 128), slice(0, 96)), (slice(32, 128), slice(16, 112)), (slice(32, 128), slice(32, 128)),
    ]


def test_default_is_the_recipes_cv2_resize_call(images):
    """Crop k (1..9) equals the recipe's literal ``cv2.resize(crop, (128, 128))`` (bilinear default)."""
    crops = nine_crops(images)
    assert crops.shape == (len(images), 9, 128, 128) and crops.dtype == np.uint8
    for i, img in enumerate(images):
        recipe = [img[:96, :96], img[:96, 16:112], img[:96, 32:], img[16:112, :96], img[16:112, 16:112],
                  img[16:112, 32:], img[32:, :96], img[32:, 16:112], img[32:, 32:]]
        for k, window in enumerate(recipe):
            assert np.array_equal(crops[i, k], cv2.resize(window, (128, 128))), f"image {i} crop {k + 1}"


@pytest.mark.parametrize("name", sorted(INTERPOLATIONS))
def test_every_interpolation_matches_opencv(images, name):
    crops = nine_crops(images[:3], interpolation=name)
    for i in range(3):
        for k, (rows, cols) in enumerate(crop_windows(128)):
            expected = cv2.resize(images[i][rows, cols], (128, 128), interpolation=INTERPOLATIONS[name])
            assert np.array_equal(crops[i, k], expected)


def test_lanczos_differs_from_linear(images):
    linear, lanczos = nine_crops(images[:2]), nine_crops(images[:2], interpolation="lanczos")
    assert not np.array_equal(linear, lanczos)


def test_crops_zoom_into_their_corner():
    img = np.full((128, 128), 255, np.uint8)
    img[:8, :8] = 0  # a dark block in the top-left corner: only crop 1 keeps it, scaled by 4/3
    crops = nine_crops(img[None], interpolation="nearest")[0]
    dark = [(c < 128).sum() for c in crops]
    assert dark[0] == pytest.approx(64 * (128 / 96) ** 2, rel=0.2) and sum(dark[1:]) == 0


def test_other_sizes_and_offsets():
    img = np.random.default_rng(1).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    crops = nine_crops(img, crop=48, offsets=(0, 16))
    assert crops.shape == (2, 4, 64, 64)
    assert np.array_equal(crops[1, 3], cv2.resize(img[1, 16:64, 16:64], (64, 64)))


def test_non_contiguous_input(images):
    view = images[::2]
    assert np.array_equal(nine_crops(view), nine_crops(np.ascontiguousarray(view)))


def test_empty_batch():
    assert nine_crops(np.zeros((0, 128, 128), np.uint8)).shape == (0, 9, 128, 128)


@pytest.mark.parametrize("kwargs, match", [
    ({"interpolation": "bicubic"}, "interpolation must be one of"),
    ({"crop": 100}, "leaves the 128 px image"),
    ({"offsets": (0, -16)}, "non-negative"),
    ({"crop": 0}, "positive integer"),
])
def test_bad_parameters(images, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        nine_crops(images[:1], **kwargs)


@pytest.mark.parametrize("bad", [np.zeros((4, 128, 96), np.uint8), np.zeros((128, 128), np.uint8),
                                 np.zeros((2, 128, 128), np.float32)])
def test_bad_images(bad):
    with pytest.raises(ValueError, match="must be a \\(n, s, s\\) uint8 array"):
        nine_crops(bad)
