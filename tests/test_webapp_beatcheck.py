"""The "not a beat image" rule (webapp.services.beatcheck) on real non-beat pictures and on real beat images."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from webapp.services.beatcheck import RULE, check_beat_image, normalise_beat, otsu_threshold
from webapp.services.uploads import UploadError, decode_image


def _gray(img: Image.Image) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return decode_image(buf.getvalue(), 10 ** 8)


def _sample(name: str) -> np.ndarray:
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "sample_data", name)
    return _gray(Image.open(path))


def _non_beats() -> dict[str, np.ndarray]:
    from scipy import ndimage

    rng = np.random.default_rng(0)
    photo_like = ndimage.gaussian_filter(rng.normal(128, 60, (200, 300)), 6)
    photo_like = np.clip((photo_like - photo_like.min()) / np.ptp(photo_like) * 255, 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, (128, 128)).astype(np.uint8)
    checker = ((np.indices((128, 128)) // 16).sum(axis=0) % 2 * 255).astype(np.uint8)
    text = Image.new("L", (300, 120), 255)
    draw = ImageDraw.Draw(text)
    font = ImageFont.load_default(size=28)
    draw.text((8, 10), "Lorem ipsum", fill=0, font=font)
    draw.text((8, 60), "dolor sit amet", fill=0, font=font)
    circle = Image.new("L", (128, 128), 255)
    ImageDraw.Draw(circle).ellipse((20, 20, 108, 108), outline=0, width=3)     # one stroke, not single-valued
    return {
        "blank page": np.full((200, 150), 255, np.uint8),
        "photo-like smooth noise": photo_like,
        "white noise": noise,
        "checkerboard": checker,
        "text": np.asarray(text),
        "circle": np.asarray(circle),
        "photograph (matplotlib's grace_hopper.jpg)": _sample("grace_hopper.jpg"),
        "logo (matplotlib's logo2.png)": _sample("logo2.png"),
        "picture (matplotlib's Minduka_Present_Blue_Pack.png)": _sample("Minduka_Present_Blue_Pack.png"),
    }


@pytest.mark.parametrize("name", list(_non_beats()))
def test_non_beat_pictures_are_refused_with_a_reason(name):
    check = check_beat_image(_non_beats()[name])
    assert not check.ok and check.reason, name


def test_each_step_of_the_rule_names_its_failure():
    pics = _non_beats()
    assert check_beat_image(pics["blank page"]).reason.startswith("no contrast")
    assert "ink covers" in check_beat_image(pics["checkerboard"]).reason
    assert "no single trace" in check_beat_image(pics["text"]).reason
    assert "not a signal trace" in check_beat_image(pics["circle"]).reason
    assert "Otsu" in RULE


def test_synthetic_beats_pass_whatever_the_drawing():
    from pipelines import render_beats

    t = np.linspace(-1, 1, 300)
    beat = (np.exp(-0.5 * (t / 0.04) ** 2) - 0.3 * np.exp(-0.5 * ((t + 0.1) / 0.03) ** 2)
            + 0.25 * np.exp(-0.5 * ((t - 0.5) / 0.1) ** 2)).astype(np.float32)
    img = render_beats(beat, np.array([0, beat.size]), size=128)[0]
    assert check_beat_image(img).ok
    assert check_beat_image(255 - img).ok                                       # light trace on dark
    big = np.asarray(Image.fromarray(img).resize((400, 300), Image.BILINEAR))    # any size, non-square
    assert check_beat_image(big).ok
    buf = io.BytesIO()
    Image.fromarray(img).convert("RGB").save(buf, format="JPEG", quality=70)     # JPEG artefacts
    assert check_beat_image(decode_image(buf.getvalue(), 10 ** 6)).ok


def test_a_matplotlib_plot_of_a_beat_without_axes_passes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.linspace(0, 0.8, 300)
    fig = plt.figure(figsize=(3, 2), dpi=80)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.plot(t, np.exp(-0.5 * ((t - 0.3) / 0.015) ** 2), color="black", lw=1.2)
    ax.axis("off")
    fig.savefig(tmp_path / "plot.png")
    plt.close(fig)
    assert check_beat_image(_gray(Image.open(tmp_path / "plot.png"))).ok


@pytest.mark.integration
def test_real_mitbih_beats_rendered_by_the_project_pass(mitdb_dir):
    from pipelines import WindowSpec, compute_windows, extract_windows, read_record, render_beats

    failed, total = [], 0
    for name in ("100", "119", "208", "232"):                  # N, V (119, 208), F (208), A/S (232)
        rec = read_record(mitdb_dir, name)
        r = rec.ann_sample[np.isin(rec.ann_symbol.astype(str), ["N", "V", "A", "F", "L", "R"])]
        w = compute_windows(r, rec.fs, WindowSpec(), n_samples=rec.signal.size)   # neighbours: every beat
        kept = np.flatnonzero(w.keep)
        pick = kept[np.linspace(0, kept.size - 1, 60).astype(int)]
        values, offsets = extract_windows(rec.signal, w.start[pick], w.end[pick])
        for i, img in enumerate(render_beats(values, offsets, size=128)):
            total += 1
            check = check_beat_image(img)
            if not check.ok:
                failed.append((name, int(r[pick[i]]), check.reason))
    assert total > 200 and len(failed) <= total // 100, failed[:5]


def test_normalise_frames_the_trace_as_the_renderer_does():
    from pipelines import render_beats

    t = np.linspace(-1, 1, 200)
    img = render_beats(np.exp(-0.5 * (t / 0.05) ** 2).astype(np.float32), np.array([0, 200]), size=64)[0]
    padded = np.full((110, 90), 255, np.uint8)
    padded[30:94, 16:80] = img
    check = check_beat_image(padded)
    assert check.ok, check.reason
    out = normalise_beat(padded, check.ink, size=64, margin=0.05)
    ink_rows = np.flatnonzero((out < 128).any(axis=1))
    ink_cols = np.flatnonzero((out < 128).any(axis=0))
    assert out.shape == (64, 64) and abs(int(ink_rows[0]) - 3) <= 1 and abs(int(ink_cols[-1]) - 60) <= 1
    assert np.mean(np.abs(out.astype(int) - img.astype(int))) < 12          # back to the renderer's framing


def test_otsu_separates_two_levels_and_decoding_refuses_non_images():
    assert 50 <= otsu_threshold(np.array([[50] * 10 + [200] * 10], np.uint8)) < 200
    with pytest.raises(UploadError) as exc:
        decode_image(b"%PDF-1.4 not an image", 10 ** 6)
    assert exc.value.status == 415
