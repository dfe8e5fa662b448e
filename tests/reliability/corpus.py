"""A generated corpus of awkward uploads, each with the answers it may get.

Every file is made here from a real face crop of ../shared/data (or from nothing), so the corpus needs no
fixtures on disk and each entry says why it is there. `expect` is the set of acceptable (status, code)
pairs: a 4xx with its documented error code, or 200 when the file is a real photo of a face that the
service must read correctly (CMYK, 16-bit, EXIF-rotated, animated...).
"""

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image
from testkit import PNG_SIGNATURE, celeba_people, data_dir, png_chunk, png_claiming, sample_canvas
from testkit import encode as save

OK = {(200, None)}
NO_FACE = {(422, "no_face_found")}
UNSUPPORTED = {(415, "unsupported_media_type")}
INVALID = {(400, "invalid_image")}
TOO_LARGE = {(413, "image_too_large")}


@dataclass
class Sample:
    name: str
    data: bytes
    expect: set  # acceptable (status, error code); code None for a 200
    face: int | None = None  # which enrolled person a 200 must rank first


@cache
def face_paths(n: int = 8) -> list[str]:
    """The first photo of each of the first n validation identities (absolute paths)."""
    return [str(paths[0]) for paths in list(celeba_people("celeba_val").values())[:n]]


def face_canvas(index: int = 0, size: int = 300, face: int = 168) -> Image.Image:
    """An RGB photo with one face (the `index`-th validation face)."""
    return sample_canvas(face_paths()[index], size, face)


def many_faces() -> Image.Image:
    canvas = Image.new("RGB", (720, 480), (40, 40, 40))
    for i in range(6):
        crop = Image.open(data_dir() / face_paths()[i]).convert("RGB").resize((150, 150))
        canvas.paste(crop, (60 + 220 * (i % 3), 40 + 230 * (i // 3)))
    return canvas


def png_bomb(side: int = 30000) -> bytes:
    """A 1-bit PNG of side x side zero pixels (900 Mpx) that is about 100 KB on the wire."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + side // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_huge_header(width: int = 65000, height: int = 65000) -> bytes:
    """A real small JPEG whose SOF0 segment claims width x height."""
    data = bytearray(save(Image.new("RGB", (16, 16)), "JPEG"))
    at = data.index(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_rotated() -> bytes:
    """The face stored lying on its side with EXIF orientation 6 (rotate 90 clockwise to view)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(face_canvas(1).rotate(90, expand=True), "JPEG", exif=exif)


def animated(fmt: str) -> bytes:
    frames = [face_canvas(2), Image.new("RGB", (300, 300), (200, 0, 0)), face_canvas(3)]
    return save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_text_bomb() -> bytes:
    """A face PNG with a zTXt chunk that inflates to 64 MB (Pillow caps text chunks)."""
    face = save(face_canvas(4), "PNG")
    ztxt = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9))
    return face[:33] + ztxt + face[33:]


def spider_as_jpeg() -> bytes:
    """JPEG magic bytes on a SPIDER file (a microscopy format Pillow can open): the JPEG decoder refuses it,
    and a Pillow left to try its other decoders would parse it as a SPIDER image instead."""
    header = [0.0] * 27
    header[1], header[4], header[11] = 8, 1, 8  # 8 rows, a 2-D image, 8 columns
    header[12], header[21], header[22] = 1, 1024, 1024  # one 1024-byte header record
    head = b"\xff\xd8\xff\x4b" + struct.pack("<26f", *header[1:])  # read as a whole float, 33534462
    return head.ljust(1024, b"\x00") + struct.pack("<64f", *range(64))


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("a.txt", "hello")
    return buffer.getvalue()


def corrupt_middle(data: bytes, seed: int = 0) -> bytes:
    out = bytearray(data)
    rng = np.random.default_rng(seed)
    start = len(out) // 3
    out[start : start + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    return bytes(out)


def grey_levels(rgb: np.ndarray) -> np.ndarray:
    """8-bit grey levels as uint16 (x 257 gives the same picture at 16 bits)."""
    return rgb.mean(axis=2).round().astype(np.uint16)


@cache
def corpus() -> tuple[Sample, ...]:
    jpeg, png, webp = (save(face_canvas(0), f) for f in ("JPEG", "PNG", "WEBP"))
    rgb = np.asarray(face_canvas(5))
    grey16 = Image.fromarray(grey_levels(rgb) * 257)
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8))
    rgba = face_canvas(6).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    s = Sample
    return (
        # real photos, in every form a phone or a scanner produces: each must be read correctly
        s("face.jpg", jpeg, OK, 0),
        s("face.png", png, OK, 0),
        s("face.webp", webp, OK, 0),
        s("face_lossless.webp", save(face_canvas(0), "WEBP", lossless=True), OK, 0),
        s("face_progressive.jpg", save(face_canvas(1), "JPEG", progressive=True, quality=80), OK, 1),
        s("face_grey.jpg", save(face_canvas(2).convert("L"), "JPEG"), OK, 2),
        s("face_grey.png", save(face_canvas(3).convert("L"), "PNG"), OK, 3),
        s("face_cmyk.jpg", save(face_canvas(4).convert("CMYK"), "JPEG"), OK, 4),
        # read correctly = like its 8-bit version (test_16bit_png_reads_like_its_8bit_version); finding
        # its colour enrolment (face 5) is the model's: test_a_grey_16bit_photo_finds_its_colour_enrolment
        s("face_16bit_grey.png", save(grey16, "PNG"), OK),
        s("face_rgba.png", save(rgba, "PNG"), OK, 6),
        s("face_palette.png", save(face_canvas(6).convert("P", palette=Image.ADAPTIVE), "PNG"), OK, 6),
        s("face_exif_rotated.jpg", exif_rotated(), OK, 1),
        s("face_animated.webp", animated("WEBP"), OK, 2),
        s("face_animated.png", animated("PNG"), OK, 2),
        s("face_2000px.jpg", save(face_canvas(7, size=2000, face=900), "JPEG"), OK, 7),
        s("many_faces.jpg", save(many_faces(), "JPEG"), OK),
        s("face_big_comment.jpg", save(face_canvas(1), "JPEG", comment=b"x" * 60000), OK, 1),
        s("polyglot_jpeg_zip.jpg", jpeg + zip_file(), OK, 0),  # a JPEG with a ZIP appended is a JPEG
        s("polyglot_png_html.png", png + html, OK, 0),
        s("face_ztxt_bomb.png", png_text_bomb(), OK | INVALID, 4),
        # decodable, but no face
        s("grey.jpg", save(Image.new("RGB", (320, 240), (128, 128, 128)), "JPEG"), NO_FACE),
        s("noise.png", save(noise, "PNG"), NO_FACE),
        s("tiny_1x1.png", save(Image.new("RGB", (1, 1)), "PNG"), NO_FACE),
        s("tiny_1x1.jpg", save(Image.new("RGB", (1, 1)), "JPEG"), NO_FACE),
        s("tiny_1x1.webp", save(Image.new("RGB", (1, 1)), "WEBP"), NO_FACE),
        s("strip_1x4000.png", save(Image.new("RGB", (1, 4000)), "PNG"), INVALID),
        s("grey_3400px.jpg", save(Image.new("L", (3400, 3400), 90), "JPEG"), NO_FACE),  # 11.6 Mpx: decoded
        # not an accepted image type, whatever the name says
        s("zero_bytes.jpg", b"", INVALID),
        s("face.gif", save(face_canvas(0), "GIF"), UNSUPPORTED),
        s("animated.gif", animated("GIF"), UNSUPPORTED),
        s("face.bmp", save(face_canvas(0), "BMP"), UNSUPPORTED),
        s("face.tiff", save(face_canvas(0), "TIFF"), UNSUPPORTED),
        s("face.ico", save(face_canvas(0).resize((64, 64)), "ICO"), UNSUPPORTED),
        s("svg_as.jpg", svg, UNSUPPORTED),
        s("html_as.png", html, UNSUPPORTED),
        s("pdf_as.jpg", pdf, UNSUPPORTED),
        s("zip_as.webp", zip_file(), UNSUPPORTED),
        s("heic_as.jpg", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, UNSUPPORTED),
        s("text.jpg", b"hello, I am not an image", UNSUPPORTED),
        s("gif_js_polyglot.jpg", b"GIF89a/*\x01\x00\x01\x00*/=alert(1);", UNSUPPORTED),
        # broken files of an accepted type
        s("truncated_half.jpg", jpeg[: len(jpeg) // 2], INVALID),
        s("truncated_header.jpg", jpeg[:20], INVALID),
        s("truncated.png", png[: len(png) // 2], INVALID),
        s("truncated.webp", webp[: len(webp) // 2], INVALID),
        s("png_bad_crc.png", png[:29] + bytes([png[29] ^ 0xFF]) + png[30:], INVALID),
        s("webp_header_only.webp", b"RIFF\x24\x00\x00\x00WEBPVP8 ", INVALID),
        s("spider_as.jpg", spider_as_jpeg(), INVALID),  # only the decoder the magic bytes name
        s("jpeg_magic_garbage.jpg", b"\xff\xd8\xff" + np.random.default_rng(2).bytes(5000), INVALID),
        s("corrupt_scan.jpg", corrupt_middle(jpeg), OK | NO_FACE | INVALID),
        # sizes that must be refused before decoding
        s("png_bomb_900mpx.png", png_bomb(), TOO_LARGE),
        s("png_header_100000px.png", png_claiming(100000, 100000), TOO_LARGE),
        s("jpeg_header_65000px.jpg", jpeg_huge_header(), TOO_LARGE),
        s("over_10mb.jpg", jpeg + b"\x00" * (10 * 1024 * 1024), TOO_LARGE),
        s("grey_5000px.jpg", save(Image.new("L", (5000, 5000), 90), "JPEG"), TOO_LARGE),  # 25 Mpx > 12 Mpx
    )
