"""A structural check of an encoded data set: does every element fit in the bytes we got?

pydicom reads a truncated file without complaint (the last value is just shorter), so a
receiver that only parses the header would index half an object. :func:`check_complete`
walks the elements by their declared lengths, descending into sequences and skipping the
fragments of encapsulated pixel data, and fails unless the walk ends exactly at the last
byte. It never converts a value, so it costs microseconds per element.
"""

from __future__ import annotations

import struct

from medgate_common.errors import InvalidDicomError

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_TAG = struct.Struct("<HH")

# What an element's value holds, as far as walking is concerned.
_OPAQUE, _SEQUENCE, _FRAGMENTS = 0, 1, 2


class _Walker:
    def __init__(self, data: bytes | memoryview, collect: frozenset[int] = frozenset()) -> None:
        self.data = memoryview(data)
        self.end = len(self.data)
        self.collect = collect
        self.found: dict[int, bytes] = {}

    def need(self, pos: int, n: int) -> None:
        if pos + n > self.end:
            raise InvalidDicomError("DICOM data set is truncated", offset=pos, missing=pos + n - self.end)

    def header(self, pos: int, implicit: bool) -> tuple[int, int, int, int, bool]:
        """(tag, length, kind, value offset, implicit encoding of the value) of one element."""
        self.need(pos, 8)
        group, elem = _TAG.unpack_from(self.data, pos)
        tag = (group << 16) | elem
        if group == 0xFFFE or implicit:
            length = _U32.unpack_from(self.data, pos + 4)[0]
            kind = _OPAQUE
            if length == _UNDEFINED and group != 0xFFFE:
                kind = _FRAGMENTS if tag == _PIXEL_DATA else _SEQUENCE
            return tag, length, kind, pos + 8, implicit
        vr = bytes(self.data[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            self.need(pos, 12)
            length = _U32.unpack_from(self.data, pos + 8)[0]
            if vr == b"SQ":
                return tag, length, _SEQUENCE, pos + 12, implicit
            if length == _UNDEFINED:
                if vr == b"UN":  # an undefined-length UN is a sequence in implicit VR
                    return tag, length, _SEQUENCE, pos + 12, True
                return tag, length, _FRAGMENTS, pos + 12, implicit
            return tag, length, _OPAQUE, pos + 12, implicit
        if not (vr[:1].isalpha() and vr[1:].isalpha()):
            raise InvalidDicomError("DICOM data set has an invalid value representation", offset=pos)
        return tag, _U16.unpack_from(self.data, pos + 6)[0], _OPAQUE, pos + 8, implicit

    def dataset(self, pos: int, stop: int, implicit: bool, *, in_item: bool = False, top: bool = False) -> int:
        """Walk elements from ``pos``; stop at ``stop`` or, in an undefined item, at its end."""
        while pos < stop:
            tag, length, kind, value, value_implicit = self.header(pos, implicit)
            if tag == _ITEM_END and in_item:
                return value
            if kind == _OPAQUE:
                self.need(value, length)
                if top and tag in self.collect:
                    self.found[tag] = bytes(self.data[value : value + length])
                pos = value + length
            elif kind == _SEQUENCE:
                pos = self.sequence(value, length, value_implicit)
            else:
                pos = self.fragments(value)
        if in_item:
            raise InvalidDicomError("DICOM data set is truncated inside a sequence item", offset=pos)
        if pos != stop:
            raise InvalidDicomError("DICOM element runs past the end of its container", offset=pos)
        return pos

    def sequence(self, pos: int, length: int, implicit: bool) -> int:
        stop = self.end if length == _UNDEFINED else pos + length
        if length != _UNDEFINED:
            self.need(pos, length)
        while pos < stop:
            tag, item_length, _kind, value, _imp = self.header(pos, implicit)
            if tag == _SEQ_END and length == _UNDEFINED:
                return value
            if tag != _ITEM:
                raise InvalidDicomError("malformed sequence in DICOM data set", offset=pos)
            if item_length == _UNDEFINED:
                pos = self.dataset(value, self.end, implicit, in_item=True)
            else:
                self.need(value, item_length)
                pos = self.dataset(value, value + item_length, implicit)
        if length == _UNDEFINED:
            raise InvalidDicomError("DICOM data set is truncated inside a sequence", offset=pos)
        if pos != stop:
            raise InvalidDicomError("DICOM sequence runs past its declared length", offset=pos)
        return pos

    def fragments(self, pos: int) -> int:
        while True:
            tag, length, _kind, value, _imp = self.header(pos, True)
            if tag == _SEQ_END:
                return value
            if tag != _ITEM or length == _UNDEFINED:
                raise InvalidDicomError("malformed encapsulated pixel data", offset=pos)
            self.need(value, length)
            pos = value + length


def check_complete(
    data: bytes | memoryview, *, implicit_vr: bool, collect: frozenset[int] = frozenset()
) -> dict[int, bytes]:
    """Raise :class:`InvalidDicomError` unless ``data`` is a whole little-endian data set.

    Returns the raw values of the top-level elements whose tags are in ``collect``, so a
    receiver can index an instance in the same pass that checks it.
    """
    walker = _Walker(data, collect)
    try:
        walker.dataset(0, walker.end, implicit_vr, top=True)
    except InvalidDicomError as exc:
        # Some writers label an implicit-VR body as explicit; pydicom reads those, so do we.
        if implicit_vr or exc.details.get("offset") != 0:
            raise
        walker.found.clear()
        walker.dataset(0, walker.end, True, top=True)
    return walker.found
