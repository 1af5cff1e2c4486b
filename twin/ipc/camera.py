"""The document camera pole (高拍杆) of the virtual industrial PC: on/off, zoom, and real pictures.

Pictures are JPEGs drawn with Pillow: a document lying on the counter (a form with a title, text lines, a photo box
and a 2-D code), the zoom applied as a centred crop, and the frame number and time stamped in a corner, so a client
can tell consecutive pictures apart and see the zoom act.
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from PIL import Image, ImageDraw

ZOOM_STEP = 1.2


class CameraOff(Exception):
    """A picture was asked of a camera that is off."""


class Camera:
    def __init__(
        self, *, width: int = 640, height: int = 480, quality: int = 70, zoom_steps: int = 10, seed: int = 1
    ) -> None:
        self.width, self.height, self.quality = width, height, quality
        self.zoom_steps = zoom_steps
        self.on = False
        self.zoom = 0
        self.frames = 0
        self._scene = _draw_scene(width * 2, height * 2, np.random.default_rng(seed))

    def switch(self, on: bool) -> None:
        self.on = on

    def focus(self, direction: int) -> None:
        """1 zooms in, 2 zooms out; the lens stops at its ends (no error, as a motor would)."""
        if not self.on:
            raise CameraOff
        step = 1 if direction == 1 else -1
        self.zoom = min(max(self.zoom + step, 0), self.zoom_steps)

    def picture(self) -> bytes:
        """One frame as JPEG bytes."""
        if not self.on:
            raise CameraOff
        self.frames += 1
        factor = ZOOM_STEP**self.zoom
        sw, sh = self._scene.size
        cw, ch = int(sw / factor), int(sh / factor)
        left, top = (sw - cw) // 2, (sh - ch) // 2
        frame = self._scene.crop((left, top, left + cw, top + ch)).resize((self.width, self.height))
        draw = ImageDraw.Draw(frame)
        stamp = f"#{self.frames}  {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}  zoom x{factor:.2f}"
        draw.rectangle((0, self.height - 18, self.width, self.height), fill=(20, 20, 20))
        draw.text((6, self.height - 15), stamp, fill=(240, 240, 240))
        out = io.BytesIO()
        frame.save(out, format="JPEG", quality=self.quality)
        return out.getvalue()


def _draw_scene(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """The counter with a form on it, drawn once; frames are crops of it."""
    img = Image.new("RGB", (width, height), (92, 84, 74))
    draw = ImageDraw.Draw(img)
    for y in range(0, height, 6):  # wood grain of the counter
        shade = 84 + int(rng.integers(-6, 7))
        draw.line((0, y, width, y + int(rng.integers(-3, 4))), fill=(shade + 8, shade, shade - 10))
    mx, my = width // 6, height // 10
    draw.rectangle((mx, my, width - mx, height - my), fill=(246, 244, 238), outline=(200, 200, 195), width=3)
    draw.text((mx + 40, my + 30), "APPLICATION FORM  No. " + str(int(rng.integers(100000, 999999))), fill=(30, 30, 30))
    photo = (width - mx - 190, my + 60, width - mx - 50, my + 240)
    draw.rectangle(photo, fill=(180, 190, 205), outline=(60, 60, 60), width=2)
    draw.ellipse((photo[0] + 40, photo[1] + 30, photo[2] - 40, photo[1] + 100), fill=(120, 100, 90))
    for i in range(14):  # lines of text of varying length
        y = my + 80 + i * 26
        length = int(rng.integers(width // 5, width // 2 - 80))
        draw.rectangle((mx + 40, y, mx + 40 + length, y + 8), fill=(70, 70, 80))
    cell, x0, y0 = 8, mx + 40, height - my - 200
    bits = rng.integers(0, 2, size=(21, 21))
    for r in range(21):
        for c in range(21):
            if bits[r, c]:
                draw.rectangle(
                    (x0 + c * cell, y0 + r * cell, x0 + c * cell + cell - 1, y0 + r * cell + cell - 1), fill=0
                )
    return img
