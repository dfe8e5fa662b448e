"""Image bytes built by hand: any Pillow image encoded as an upload, and PNGs that lie in their header."""

import io
import struct
import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    """`image` as the bytes of a `fmt` file (`options` go to Pillow's save: quality, exif, save_all...)."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, pixels: bytes = b"\x00" * 64, level: int = -1) -> bytes:
    """A well-formed PNG whose header claims width x height (8-bit RGB) with only `pixels` (compressed at
    zlib `level`) as its data: a decompression bomb's header, to be refused before decoding."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(pixels, level)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
