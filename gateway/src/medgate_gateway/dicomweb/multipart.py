"""multipart/related, both ways: a streaming reader for STOW and a writer for WADO.

The reader never holds more than one part (plus a delimiter's worth of look-ahead) in
memory, so a multi-gigabyte STOW request costs the memory of its largest instance.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from medgate_common.errors import InputError, PayloadTooLargeError


@dataclass(frozen=True)
class MediaType:
    type: str
    params: dict[str, str]


_PARAM = re.compile(r';\s*([A-Za-z0-9_.+-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def parse_media_type(header: str) -> MediaType:
    main, _, rest = header.partition(";")
    params = {}
    for name, value in _PARAM.findall(";" + rest if rest else ""):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1].replace('\\"', '"')
        params[name.lower()] = value
    return MediaType(main.strip().lower(), params)


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return parse_media_type(self.headers.get("content-type", "")).type


class MultipartReader:
    """Feed chunks in, take complete parts out (PS3.18 8.6.1.2 / RFC 2387)."""

    def __init__(self, boundary: str, *, max_part_bytes: int) -> None:
        if not boundary or len(boundary) > 200:
            raise InputError("multipart boundary is missing or too long")
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.max_part_bytes = max_part_bytes
        self.buffer = bytearray(b"\r\n")  # so the first delimiter looks like every other one
        self.scan_from = 0
        self.in_part = False
        self.done = False

    def feed(self, chunk: bytes) -> Iterator[Part]:
        self.buffer += chunk
        while not self.done:
            found = self.buffer.find(self.delimiter, self.scan_from)
            if found < 0:
                self.scan_from = max(0, len(self.buffer) - len(self.delimiter) + 1)
                if self.in_part and len(self.buffer) > self.max_part_bytes + 8192:
                    raise PayloadTooLargeError("a part is larger than the instance limit", limit=self.max_part_bytes)
                return
            after = found + len(self.delimiter)
            if len(self.buffer) < after + 2:
                self.scan_from = found
                return  # need to see whether "--" or CRLF follows
            tail = bytes(self.buffer[after : after + 2])
            if self.in_part:
                yield _split_part(bytes(self.buffer[:found]))
            if tail == b"--":
                self.done = True
                del self.buffer[:]
                return
            # skip transport padding up to the CRLF that ends the delimiter line
            eol = self.buffer.find(b"\r\n", after)
            if eol < 0:
                self.scan_from = found
                return
            del self.buffer[: eol + 2]
            self.scan_from = 0
            self.in_part = True

    def close(self) -> None:
        if not self.done:
            raise InputError("multipart body ended before its closing delimiter")


def _split_part(raw: bytes) -> Part:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        if raw.startswith(b"\r\n"):  # a part with no headers
            return Part({}, raw[2:])
        raise InputError("multipart part has no header/body separator")
    headers = {}
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return Part(headers, body)


async def read_parts(
    chunks: AsyncIterator[bytes], boundary: str, *, max_part_bytes: int, max_total_bytes: int
) -> AsyncIterator[Part]:
    reader = MultipartReader(boundary, max_part_bytes=max_part_bytes)
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_total_bytes:
            raise PayloadTooLargeError("request body is larger than the upload limit", limit=max_total_bytes)
        for part in reader.feed(chunk):
            yield part
    reader.close()


def new_boundary() -> str:
    return "medgate-" + secrets.token_hex(12)


def multipart_chunks(parts: Iterable[tuple[str, bytes]], boundary: str) -> Iterator[bytes]:
    """Encode (content type, body) pairs as a multipart/related body, one chunk per part."""
    for content_type, body in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + body + b"\r\n"
    yield f"--{boundary}--\r\n".encode()
