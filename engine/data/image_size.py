"""An image's size from its header, before anything decodes it.

A 389 KB PNG can declare 20000x20000 pixels, which a decoder turns into 1.2 GB
of pixels (6.7 GB once resized and converted); an animated GIF multiplies that
by its frames, all of which TensorFlow decodes. :func:`image_size` reads the
dimensions the file declares (PNG ``IHDR``, JPEG ``SOFn``, GIF logical screen and
frame count, BMP info header) from its bytes, so :func:`check_pixels` can refuse
an image beyond :data:`engine.limits.IMAGE_MEGAPIXELS` before it is decoded.
Pillow is not a dependency; these formats are the ones the image source reads.
"""

from __future__ import annotations

import struct

from engine.limits import IMAGE_MEGAPIXELS

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (SOF0..SOF15 except DHT, JPG and DAC) hold the size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class ImageHeaderError(ValueError):
    """The bytes are not a PNG, JPEG, GIF or BMP image whose size can be read."""


def image_size(data: bytes) -> tuple[int, int, int]:
    """``(width, height, frames)`` declared by an image's header.

    Raises:
        ImageHeaderError: Not one of the formats, or its header is cut short.
    """
    try:
        if data.startswith(_PNG):
            if data[12:16] != b"IHDR":
                raise ImageHeaderError("a PNG file without its IHDR header")
            width, height = struct.unpack(">II", data[16:24])
            return width, height, 1
        if data.startswith(b"\xff\xd8"):
            return (*_jpeg_size(data), 1)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return width, height, max(_gif_frames(data), 1)
        if data.startswith(b"BM"):
            (header,) = struct.unpack("<I", data[14:18])
            if header == 12:  # BITMAPCOREHEADER
                width, height = struct.unpack("<HH", data[18:22])
            else:
                width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height), 1  # a negative height is a top-down bitmap
    except struct.error:
        raise ImageHeaderError("its header is cut short") from None
    raise ImageHeaderError("not a PNG, JPEG, GIF or BMP image")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ImageHeaderError("a JPEG file whose markers are broken")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image, or scan data before a frame
            break
        i += 2 + length
    raise ImageHeaderError("a JPEG file without a frame header")


def _gif_frames(data: bytes) -> int:
    """How many images a GIF holds (TensorFlow decodes every one of them)."""
    flags = data[10]
    i = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while i < len(data):
        block = data[i]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            i = _skip_sub_blocks(data, i + 2)
        elif block == 0x2C:  # image descriptor (+ local colour table), LZW size, sub-blocks
            frames += 1
            local = data[i + 9]
            i += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            i = _skip_sub_blocks(data, i + 1)
        else:
            break  # damaged: count what was found
    return frames


def _skip_sub_blocks(data: bytes, i: int) -> int:
    while i < len(data) and data[i]:
        i += data[i] + 1
    return i + 1


def check_pixels(data: bytes, where: str) -> None:
    """Refuse an image whose declared pixels exceed :data:`IMAGE_MEGAPIXELS`.

    Raises:
        ImageHeaderError: Its size cannot be read (the message says why, not where).
        engine.limits.LimitExceeded: Too many pixels; the message names ``where``,
            the size, the limit and the variable that raises it.
    """
    width, height, frames = image_size(data)
    pixels = width * height * frames
    if pixels > IMAGE_MEGAPIXELS.value() * 10**6:
        size = f"{width:,}x{height:,} pixels" + (f" in {frames:,} frames" if frames > 1 else "")
        raise IMAGE_MEGAPIXELS.refusal(f"{where} is {size} ({pixels / 10**6:,.0f} megapixels)")
