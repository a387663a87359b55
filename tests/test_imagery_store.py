"""The image store: nothing outside the root is ever read; downscaled copies and tiles."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camcensus._errors import OptionError
from camcensus.imagery import ImagePathError, ImageStore


def _encode(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def _pano(width: int = 512, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Smooth content so JPEG and resampling errors stay small and measurable.
    small = rng.integers(0, 256, size=(8, 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, width // 2), Image.Resampling.BILINEAR))


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(int)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "media")


def test_put_is_content_addressed(store: ImageStore) -> None:
    data = _encode(_pano())
    uri = store.put("p", data, suffix=".png")
    assert uri.startswith("images/") and uri.endswith(".png")
    assert store.put("q", data, suffix=".png") == uri
    assert store.path(uri).read_bytes() == data
    with pytest.raises(ValueError, match="not JPEG"):
        store.put("p", data, suffix=".jpg")
    with pytest.raises(ValueError, match="not a readable image"):
        store.put("p", b"GIF89a nonsense", suffix=".png")


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("../secret.jpg", "'..'"),
        ("images/../../secret.jpg", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("~/secret.jpg", "absolute path"),
        ("images\\..\\..\\secret.jpg", "backslash"),
        ("images/a.jpg\x00.png", "NUL"),
        ("images/%2e%2e/%2e%2e/secret.jpg", "URL-encoded"),
        ("..%2Fsecret.jpg", "URL-encoded"),
        ("file:///etc/passwd", "scheme"),
        ("C:/secret.jpg", "scheme"),
        ("images//a.jpg", "empty"),
        ("./images/a.jpg", "'.'"),
        ("images/a b.jpg", "characters"),
        ("", "empty"),
        ("a/" * 300 + "x.jpg", "longer than"),
        ("images/nothing.jpg", "no such image"),
    ],
)
def test_traversal_attempts_are_refused(store: ImageStore, uri: str, why: str) -> None:
    with pytest.raises(ImagePathError, match=why):
        store.path(uri)
    with pytest.raises(ImagePathError):
        store.image_bytes(uri)


def test_symlinks_out_of_root_are_refused(store: ImageStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(_encode(_pano(), "JPEG"))
    (store.root / "images").mkdir(parents=True, exist_ok=True)
    os.symlink(secret, store.root / "images" / "link.jpg")
    os.symlink(tmp_path, store.root / "up")
    os.symlink(store.root / "images" / "loop", store.root / "images" / "loop")
    with pytest.raises(ImagePathError, match="outside the media root"):
        store.path("images/link.jpg")
    with pytest.raises(ImagePathError, match="outside the media root"):
        store.path("up/secret.jpg")
    with pytest.raises(ImagePathError):
        store.path("images/loop")
    # A link that stays inside the root is fine.
    uri = store.put("p", _encode(_pano()), suffix=".png")
    os.symlink(store.root / uri, store.root / "images" / "inside.png")
    assert store.path("images/inside.png") == (store.root / uri).resolve()


def test_non_string_and_unknown_scheme(store: ImageStore) -> None:
    with pytest.raises(ImagePathError, match="not a string"):
        store.path(123)  # type: ignore[arg-type]
    with pytest.raises(ImagePathError, match="no fetcher is registered for 'gsv'"):
        store.materialize("gsv:abc")
    with pytest.raises(ImagePathError):
        store.materialize("synthetic:notanumber:p1")


@pytest.mark.parametrize("max_width", [None, 1024, 2048, 4096])
def test_downscale_sizes(tmp_path: Path, max_width: int | None) -> None:
    store = ImageStore(tmp_path)
    original = _pano(3000)  # 3000×1500
    uri = store.put("p", _encode(original, "JPEG"), suffix=".jpg")
    data = store.image_bytes(uri, max_width=max_width)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG"
        expected = (3000, 1500) if max_width in (None, 4096) else (max_width, max_width // 2)
        assert im.size == expected
    # Content survives: compare with a plain resize of the original (smooth image).
    got = _decode(data)
    ref = np.asarray(Image.fromarray(original).resize(got.shape[1::-1], Image.Resampling.LANCZOS))
    assert np.abs(got - ref.astype(int)).mean() < 3.0
    with pytest.raises(OptionError, match="not served"):
        store.image_bytes(uri, max_width=1000)


def test_png_is_served_as_jpeg_and_cached(store: ImageStore) -> None:
    uri = store.put("p", _encode(_pano(2048)), suffix=".png")
    first = store.image_bytes(uri, max_width=1024)
    assert store.stats["resized"] == 1
    assert store.image_bytes(uri, max_width=1024) == first
    assert store.stats["resized"] == 1
    full = store.image_bytes(uri)
    with Image.open(io.BytesIO(full)) as im:
        assert (im.format, im.size) == ("JPEG", (2048, 1024))


def test_tiles_put_back_together_are_the_image(store: ImageStore) -> None:
    original = _pano(1024)
    uri = store.put("p", _encode(original), suffix=".png")
    whole = _decode(store.image_bytes(uri))
    cols, rows = 8, 4
    mosaic = np.zeros_like(whole)
    for r in range(rows):
        for c in range(cols):
            tile = _decode(store.tile_bytes(uri, cols=cols, rows=rows, col=c, row=r, fmt="png"))
            assert tile.shape == (1024 // 2 // rows, 1024 // cols, 3)
            mosaic[r * 128 : (r + 1) * 128, c * 128 : (c + 1) * 128] = tile
    assert np.array_equal(mosaic, whole)
    assert store.stats["tiles"] == cols * rows
    with pytest.raises(OptionError, match="outside the"):
        store.tile_bytes(uri, cols=cols, rows=rows, col=8, row=0)
    with pytest.raises(OptionError, match="does not divide"):
        store.tile_bytes(uri, cols=7, rows=4, col=0, row=0)
    with pytest.raises(OptionError, match="integer"):
        store.tile_bytes(uri, cols=0, rows=4, col=0, row=0)


def test_fetcher_pins_once_under_concurrency(tmp_path: Path) -> None:
    calls: list[str] = []
    data = _encode(_pano(256), "JPEG")
    gate = threading.Event()

    def fetch(ref: str) -> bytes:
        calls.append(ref)
        gate.wait(1.0)
        return data

    store = ImageStore(tmp_path, fetchers={"gsv": fetch})
    results: list[bytes] = []

    def worker() -> None:
        results.append(store.image_bytes("gsv:PANO_1"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["PANO_1"]
    assert store.stats["fetched"] == 1
    assert len(set(results)) == 1 and results[0] == data
    # A later store on the same root reads the pinned file; the fetcher is not called.
    again = ImageStore(tmp_path, fetchers={"gsv": fetch})
    assert again.image_bytes("gsv:PANO_1") == data and calls == ["PANO_1"]


def test_synthetic_uri_renders_once(tmp_path: Path) -> None:
    calls: list[tuple[int, str]] = []
    data = _encode(_pano(256), "JPEG")

    def render(seed: int, pid: str) -> bytes:
        calls.append((seed, pid))
        return data

    store = ImageStore(tmp_path, renderer=render)
    assert store.image_bytes("synthetic:3:P-1") == data
    assert store.image_bytes("synthetic:3:P-1") == data
    assert calls == [(3, "P-1")]
