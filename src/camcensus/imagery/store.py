"""The image store: pinned panoramas on disk, served safely, downscaled and tiled for phones.

An ``image_uri`` (the ``panoramas`` column) is one of

- a path relative to the store's root, as :meth:`ImageStore.put` returns it
  (``images/ab/ab12….jpg``: content-addressed, so a pinned image never changes);
- ``synthetic:<seed>:<panorama_id>``: rendered by :mod:`camcensus.simulate` on first request
  and kept (``synthetic/<seed>/<panorama_id>.jpg``);
- ``<scheme>:<ref>`` for a source that pins on first request (``gsv:<pano_id>``): fetched once
  by the fetcher registered for ``scheme`` and kept (``pinned/<scheme>/<sha256>.jpg``).

Every path is checked before it is opened: nothing outside the root can be read, whatever the
uri holds (``..``, absolute paths, backslashes, NUL bytes, URL-encoded characters, symbolic links
that lead out of the root). Derived images (downscaled copies, tiles) are cached next to their
original; every write is atomic (a temporary file renamed into place), and one lock per file
makes concurrent requests render, fetch or resize it once.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from camcensus._errors import OptionError

__all__ = ["WIDTHS", "Fetcher", "ImagePathError", "ImageStore", "Renderer"]

#: Widths :meth:`ImageStore.image_bytes` serves besides the full image (``None``).
WIDTHS: tuple[int, ...] = (1024, 2048, 4096)

#: ``fetcher(ref) -> encoded image`` for a ``<scheme>:<ref>`` uri pinned on first request.
Fetcher = Callable[[str], bytes]
#: ``renderer(seed, panorama_id) -> JPEG bytes`` for ``synthetic:`` uris.
Renderer = Callable[[int, str], bytes]

_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SCHEME = re.compile(r"^([a-z][a-z0-9]{1,15}):(.+)$", re.DOTALL)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_URI = 512


class ImagePathError(ValueError):
    """Raised when an image uri is unsafe (it would leave the store's root) or unknown."""


def _refuse(uri: object, why: str) -> ImagePathError:
    shown = repr(uri)[:80]
    return ImagePathError(
        f"image uri {shown} refused: {why}. Expected a path relative to the media root as "
        "ImageStore.put returns it (e.g. 'images/ab/ab12….jpg'), or 'synthetic:<seed>:<id>'."
    )


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_name(ref: str) -> str:
    """A file name for ``ref``: itself when plainly safe, else its sha256."""
    if _SAFE_NAME.match(ref):
        return ref
    return hashlib.sha256(ref.encode("utf-8")).hexdigest()


class ImageStore:
    """Pinned panorama images under one root folder.

    Parameters
    ----------
    root
        The media root (created if missing).
    blur
        Blur faces and licence plates (:func:`camcensus.imagery.blur.blur_faces_and_plates`)
        of every image put or fetched into the store; the original is never written.
    fetchers
        ``{scheme: fetcher}`` for uris pinned on first request (e.g. ``{"gsv":
        camcensus.imagery.gsv.gsv_fetcher(key)}``).
    renderer
        Renders ``synthetic:`` uris; default :func:`camcensus.imagery.synthetic.render_jpeg`.
    jpeg_quality
        Quality of the JPEGs the store encodes (downscaled copies, tiles, blurred imports).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        blur: bool = False,
        fetchers: Mapping[str, Fetcher] | None = None,
        renderer: Renderer | None = None,
        jpeg_quality: int = 88,
    ) -> None:
        if not 1 <= int(jpeg_quality) <= 95:
            raise OptionError(f"jpeg_quality={jpeg_quality} is outside 1..95; 88 works well")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve(strict=True)
        self.blur = bool(blur)
        self._fetchers = dict(fetchers or {})
        self._renderer = renderer
        self.jpeg_quality = int(jpeg_quality)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        #: How many times each expensive step ran (renders, fetches, resizes, tiles, blurs).
        self.stats: dict[str, int] = {
            "rendered": 0,
            "fetched": 0,
            "resized": 0,
            "tiles": 0,
            "blurred": 0,
        }

    # ----------------------------------------------------------------------------- writing
    def put(self, panorama_id: str, data: bytes, *, suffix: str) -> str:
        """Store an encoded image and return its uri (a path relative to the root).

        The name is the sha256 of the stored bytes, so a uri always means the same pixels.
        With ``blur=True`` the image is blurred first and only the blurred copy is written.

        Parameters
        ----------
        panorama_id
            The panorama the image belongs to (named in errors).
        data
            The encoded JPEG or PNG.
        suffix
            ``.jpg``, ``.jpeg`` or ``.png``: the format ``data`` must have.

        Raises
        ------
        ValueError
            When ``data`` is not an image of the format ``suffix`` says.
        """
        suffix = suffix.lower()
        if suffix not in _SUFFIXES:
            raise OptionError(f"suffix={suffix!r} for panorama {panorama_id!r}: use .jpg or .png")
        from camcensus.imagery.base import image_size

        try:
            _, _, fmt = image_size(data)
        except ValueError as err:
            raise ValueError(f"panorama {panorama_id!r}: {err}") from None
        if fmt != _SUFFIXES[suffix]:
            raise ValueError(
                f"panorama {panorama_id!r}: the bytes are {fmt or 'unknown'}, not "
                f"{_SUFFIXES[suffix]} as suffix={suffix!r} says; pass the suffix of the real format"
            )
        if self.blur:
            data, suffix = self._blurred(data, fmt), (".png" if fmt == "PNG" else ".jpg")
        digest = hashlib.sha256(data).hexdigest()
        rel = f"images/{digest[:2]}/{digest}{'.jpg' if suffix == '.jpeg' else suffix}"
        target = self.root / rel
        if not target.exists():
            _atomic_write(target, data)
        return rel

    def _blurred(self, data: bytes, fmt: str) -> bytes:
        import numpy as np
        from PIL import Image

        from camcensus.imagery.blur import blur_faces_and_plates

        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
        out, _ = blur_faces_and_plates(rgb)
        self.stats["blurred"] += 1
        return self._encode(out, "PNG" if fmt == "PNG" else "JPEG", quality=95)

    def _encode(self, rgb: object, fmt: str, *, quality: int | None = None) -> bytes:
        from PIL import Image

        im = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)  # type: ignore[arg-type]
        buf = io.BytesIO()
        if fmt == "PNG":
            im.save(buf, format="PNG")
        else:
            im.convert("RGB").save(
                buf, format="JPEG", quality=quality or self.jpeg_quality, optimize=False
            )
        return buf.getvalue()

    # ----------------------------------------------------------------------------- paths
    def path(self, uri: str) -> Path:
        """Return the file of a stored uri, refusing anything that would leave the root.

        Raises
        ------
        ImagePathError
            For a uri with ``..``, an absolute path, a backslash, a NUL byte, a ``%``
            (URL-encoded traversal), a scheme (``synthetic:``: use :meth:`materialize`), a
            symbolic link that resolves outside the root, or no such file.
        """
        if not isinstance(uri, str):
            raise _refuse(uri, "it is not a string")
        if not uri or len(uri) > _MAX_URI:
            raise _refuse(uri, f"it is empty or longer than {_MAX_URI} characters")
        if "\x00" in uri:
            raise _refuse(uri, "it holds a NUL byte")
        if "\\" in uri:
            raise _refuse(uri, "it holds a backslash")
        if "%" in uri:
            raise _refuse(uri, "it holds '%' (URL-encoded characters are never decoded here)")
        if uri.startswith("/") or uri.startswith("~"):
            raise _refuse(uri, "it is an absolute path")
        if ":" in uri:
            raise _refuse(uri, "it has a scheme or drive letter; stored images have none")
        parts = uri.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise _refuse(uri, "it has an empty, '.' or '..' segment")
        bad = [p for p in parts if not _SEGMENT.match(p)]
        if bad:
            raise _refuse(
                uri,
                f"segment {bad[0][:40]!r} has characters other than "
                "letters, digits, '_', '-' and '.'",
            )
        candidate = self.root.joinpath(*parts)
        try:
            real = candidate.resolve(strict=True)
        except FileNotFoundError:
            raise _refuse(uri, "no such image in the store") from None
        except (OSError, RuntimeError) as err:  # symlink loops
            raise _refuse(uri, f"it cannot be resolved ({type(err).__name__})") from None
        if not real.is_relative_to(self._real_root):
            raise _refuse(uri, "it resolves (through a symbolic link) outside the media root")
        if not real.is_file():
            raise _refuse(uri, "it is not a file")
        return real

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def materialize(self, uri: str) -> Path:
        """Return the file of any uri: stored, ``synthetic:`` (rendered on first request) or
        ``<scheme>:<ref>`` (fetched on first request by its fetcher), kept for later requests.

        Raises
        ------
        ImagePathError
            For an unsafe stored path, a malformed ``synthetic:`` uri, or a scheme with no
            fetcher.
        """
        if not isinstance(uri, str):
            raise _refuse(uri, "it is not a string")
        m = _SCHEME.match(uri)
        if m is None or len(uri) > _MAX_URI or "\x00" in uri:
            return self.path(uri)
        scheme, ref = m.group(1), m.group(2)
        if scheme == "synthetic":
            from camcensus.imagery.synthetic import parse_synthetic_uri

            try:
                seed, panorama_id = parse_synthetic_uri(uri)
            except ValueError as err:
                raise _refuse(uri, str(err)) from None
            rel = f"synthetic/{seed}/{_file_name(panorama_id)}.jpg"
            return self._pin(rel, lambda: self._render(seed, panorama_id), "rendered", blur=False)
        fetcher = self._fetchers.get(scheme)
        if fetcher is None:
            known = ", ".join(sorted(self._fetchers)) or "none"
            raise _refuse(
                uri,
                f"no fetcher is registered for {scheme!r}: (registered: "
                f"{known}); create the store with fetchers={{{scheme!r}: ...}}",
            )
        digest = hashlib.sha256(ref.encode("utf-8")).hexdigest()
        rel = f"pinned/{scheme}/{digest[:2]}/{digest}.jpg"
        return self._pin(rel, lambda: fetcher(ref), "fetched", blur=self.blur)

    def _render(self, seed: int, panorama_id: str) -> bytes:
        if self._renderer is not None:
            return self._renderer(seed, panorama_id)
        from camcensus.imagery.synthetic import render_jpeg

        return render_jpeg(seed, panorama_id)

    def _pin(self, rel: str, make: Callable[[], bytes], stat: str, *, blur: bool) -> Path:
        target = self.root / rel
        if target.is_file():
            return self.path(rel)
        with self._lock(rel):
            if not target.is_file():
                data = make()
                from camcensus.imagery.base import image_size

                _, _, fmt = image_size(data)
                if blur:
                    data = self._blurred(data, fmt)
                elif fmt != "JPEG":
                    data = self._reencode_jpeg(data)
                _atomic_write(target, data)
                self.stats[stat] += 1
        return self.path(rel)

    def _reencode_jpeg(self, data: bytes) -> bytes:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return self._encode(im.convert("RGB"), "JPEG", quality=95)

    # ----------------------------------------------------------------------------- serving
    def size(self, uri: str) -> tuple[int, int]:
        """Return ``(width, height)`` of the full image of ``uri`` (read from its header)."""
        from PIL import Image

        with Image.open(self.materialize(uri)) as im:
            return int(im.width), int(im.height)

    def image_bytes(self, uri: str, *, max_width: int | None = None) -> bytes:
        """Return the image of ``uri`` as JPEG, at most ``max_width`` pixels wide.

        Parameters
        ----------
        uri
            Any image uri (see the module docstring).
        max_width
            ``None`` (the full image), 1024, 2048 or 4096. A narrower original is served whole.
            Downscaled copies keep the aspect ratio (2:1 panoramas give exactly
            ``max_width × max_width/2``) and are cached next to the original.
        """
        return self._scaled(uri, max_width)[0].read_bytes()

    def _scaled(self, uri: str, max_width: int | None) -> tuple[Path, int, int]:
        if max_width is not None and max_width not in WIDTHS:
            raise OptionError(
                f"max_width={max_width!r} is not served; use one of {', '.join(map(str, WIDTHS))}"
                " or None (full size)"
            )
        from PIL import Image

        original = self.materialize(uri)
        with Image.open(original) as im:
            width, height, fmt = im.width, im.height, im.format
        if max_width is None or width <= max_width:
            if fmt == "JPEG":
                return original, width, height
            target = original.with_name(f"{original.stem}.full.jpg")
            new_w, new_h = width, height
        else:
            new_w = max_width
            new_h = max(1, round(height * max_width / width))
            target = original.with_name(f"{original.stem}.w{max_width}.jpg")
        if not target.is_file():
            with self._lock(str(target)):
                if not target.is_file():
                    with Image.open(original) as im:
                        if (new_w, new_h) != (width, height):
                            # JPEG: decode at a reduced scale first (much faster), never below
                            # the target size.
                            im.draft("RGB", (new_w, new_h))
                        rgb = im.convert("RGB")
                        if rgb.size != (new_w, new_h):
                            rgb = rgb.resize((new_w, new_h), Image.Resampling.LANCZOS)
                        data = self._encode(rgb, "JPEG")
                    _atomic_write(target, data)
                    self.stats["resized"] += 1
        return target, new_w, new_h

    def tile_bytes(
        self,
        uri: str,
        *,
        cols: int,
        rows: int,
        col: int,
        row: int,
        width: int | None = None,
        fmt: Literal["jpeg", "png"] = "jpeg",
    ) -> bytes:
        """Return one tile of a ``cols × rows`` grid over the image at ``width``.

        The grid cuts the image :meth:`image_bytes` serves at ``max_width=width`` (decoded), so
        the tiles put back together are exactly that image (``fmt="png"``) or it within JPEG
        loss — what Photo Sphere Viewer's equirectangular tiles adapter asks for
        (``panorama: {width, cols, rows, tileUrl(col, row)}``). Tiles are cached on disk.

        Raises
        ------
        OptionError
            When ``col``/``row`` are outside the grid or the image does not divide into it.
        """
        for name, value, top in (("cols", cols, 64), ("rows", rows, 64)):
            if not (isinstance(value, int) and 1 <= value <= top):
                raise OptionError(f"{name}={value!r} must be an integer in 1..{top}, e.g. 16")
        if not (isinstance(col, int) and isinstance(row, int)):
            raise OptionError("col and row must be integers")
        if not (0 <= col < cols and 0 <= row < rows):
            raise OptionError(
                f"tile {col}_{row} is outside the {cols}×{rows} grid "
                f"(col 0..{cols - 1}, row 0..{rows - 1})"
            )
        if fmt not in ("jpeg", "png"):
            raise OptionError(f"fmt={fmt!r}: use 'jpeg' or 'png'")
        base, w, h = self._scaled(uri, width)
        if w % cols or h % rows:
            raise OptionError(
                f"a {w}×{h} image does not divide into {cols}×{rows} equal tiles; choose cols "
                f"dividing {w} and rows dividing {h} (e.g. cols=16, rows=8 for 4096×2048)"
            )
        ext = "png" if fmt == "png" else "jpg"
        target = base.with_name(f"{base.stem}.t{cols}x{rows}.{col}_{row}.{ext}")
        if not target.is_file():
            from PIL import Image

            with self._lock(str(target)):
                if not target.is_file():
                    tw, th = w // cols, h // rows
                    with Image.open(base) as im:
                        tile = im.convert("RGB").crop(
                            (col * tw, row * th, (col + 1) * tw, (row + 1) * th)
                        )
                        data = self._encode(tile, "PNG" if fmt == "png" else "JPEG")
                    _atomic_write(target, data)
                    self.stats["tiles"] += 1
        return target.read_bytes()
