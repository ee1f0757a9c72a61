"""Pillow's YCbCr -> RGB conversion on a grid, the reference for NV12 frames (src/frame.rs).

Writes tests/fixtures/frames/ycbcr_grid_pillow_rgb.bin: for every (Y, Cb, Cr) with each value in
0, 17, 34, ..., 255 (16 values; Y slowest, Cr fastest), the R, G, B bytes Pillow's
Image.frombytes("YCbCr", ...).convert("RGB") gives (JFIF / BT.601 full range, as Pillow decodes
JPEGs). 4096 pixels, 12288 bytes. Run with any Python that has Pillow:

    python3 scripts/reference_ycbcr.py   # written with Pillow 13.0.0
"""

from pathlib import Path

from PIL import Image

values = range(0, 256, 17)
pixels = bytes(v for y in values for cb in values for cr in values for v in (y, cb, cr))
rgb = Image.frombytes("YCbCr", (len(pixels) // 3, 1), pixels).convert("RGB").tobytes()
out = Path(__file__).resolve().parent.parent / "tests/fixtures/frames/ycbcr_grid_pillow_rgb.bin"
out.write_bytes(rgb)
print(f"{out}: {len(rgb)} bytes")
