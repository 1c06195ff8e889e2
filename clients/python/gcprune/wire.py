"""NumPy forms of the wire encodings of gcprune.v1: TensorChunk values (float32, bfloat16, float16 as
little-endian bytes), chunk planning under a per-message element limit, and LSB-first keep bitmasks."""

from typing import Iterable, List, Sequence, Tuple

import numpy as np

# ValueEncoding numbers of common.proto (kept here so this module needs no generated code).
FLOAT32 = 1
BFLOAT16 = 2
FLOAT16 = 3

_ENCODING_NAMES = {
    "float32": FLOAT32,
    "f32": FLOAT32,
    "fp32": FLOAT32,
    "bfloat16": BFLOAT16,
    "bf16": BFLOAT16,
    "float16": FLOAT16,
    "f16": FLOAT16,
    "fp16": FLOAT16,
}
_WIDTH = {FLOAT32: 4, BFLOAT16: 2, FLOAT16: 2}
_DTYPE = {FLOAT32: np.dtype("<f4"), BFLOAT16: np.dtype("<u2"), FLOAT16: np.dtype("<f2")}


def parse_encoding(encoding) -> int:
    """The ValueEncoding number of "float32" / "bfloat16" / "float16" (or of a number 1..3).

    Raises ValueError naming the value for anything else.
    """
    if isinstance(encoding, str):
        value = _ENCODING_NAMES.get(encoding.strip().lower())
        if value is None:
            raise ValueError("encoding: expected float32, bfloat16 or float16, got %r" % encoding)
        return value
    if isinstance(encoding, (int, np.integer)) and int(encoding) in _WIDTH:
        return int(encoding)
    raise ValueError("encoding: expected float32, bfloat16 or float16, got %r" % (encoding,))


def encoding_width(encoding: int) -> int:
    """Bytes per element of a ValueEncoding number (4 or 2)."""
    return _WIDTH[encoding]


def to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounded to nearest even; NaN stays a quiet NaN."""
    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4")
    rounded = ((bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)).astype("<u2")
    nan = np.isnan(values)
    if nan.any():
        rounded[nan] = np.uint16(0x7FC0)
    return rounded


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32, exactly."""
    return (np.asarray(bits, dtype="<u2").astype("<u4") << np.uint32(16)).view("<f4")


def encode(values: np.ndarray, encoding: int) -> np.ndarray:
    """Encodes a 1-D array of numbers as the element type of `encoding` (float32, uint16 bfloat16
    patterns or float16); `.tobytes()` of the result is a TensorChunk's `data`."""
    if encoding == FLOAT32:
        return np.ascontiguousarray(values, dtype="<f4")
    if encoding == BFLOAT16:
        return to_bfloat16_bits(np.asarray(values, dtype=np.float32))
    if encoding == FLOAT16:
        return np.ascontiguousarray(values, dtype="<f2")
    raise ValueError("encoding: unknown value %r" % (encoding,))


def decode(encoded: np.ndarray, encoding: int) -> np.ndarray:
    """The float32 values that the server reads from `encode(values, encoding)`."""
    if encoding == BFLOAT16:
        return from_bfloat16_bits(encoded)
    return np.asarray(encoded, dtype=np.float32)


def decode_bytes(data: bytes, encoding: int) -> np.ndarray:
    """float32 values of a TensorChunk's `data` bytes. Raises ValueError if the length is not a positive
    multiple of the encoding's width."""
    width = _WIDTH[encoding]
    if not data or len(data) % width:
        raise ValueError("data: %d bytes is not a positive multiple of %d" % (len(data), width))
    return decode(np.frombuffer(data, dtype=_DTYPE[encoding]), encoding)


def plan_chunks(
    sizes: Sequence[Tuple[int, int]], max_elements: int
) -> List[List[Tuple[int, int, int]]]:
    """Splits tensors into messages of at most `max_elements` elements in total.

    Args:
        sizes: (tensor_index, numel) per tensor, in sending order.
        max_elements: elements per message, >= 1.
    Returns:
        One list per message of (tensor_index, offset, count) runs; every element of every tensor appears
        in exactly one run.
    """
    if max_elements < 1:
        raise ValueError("max_elements: expected >= 1, got %d" % max_elements)
    messages: List[List[Tuple[int, int, int]]] = []
    current: List[Tuple[int, int, int]] = []
    room = max_elements
    for tensor_index, numel in sizes:
        offset = 0
        while offset < numel:
            count = min(numel - offset, room)
            current.append((tensor_index, offset, count))
            offset += count
            room -= count
            if room == 0:
                messages.append(current)
                current, room = [], max_elements
    if current:
        messages.append(current)
    return messages


def unpack_mask(bits: bytes, num_elements: int) -> np.ndarray:
    """Keep flags (uint8 0/1, length num_elements) of a TensorMask run: bit i is bit i % 8 of byte i / 8.

    Raises ValueError if `bits` is not ceil(num_elements / 8) bytes or a padding bit is set.
    """
    expected = (num_elements + 7) // 8
    if num_elements < 1 or len(bits) != expected:
        raise ValueError("bits: %d bytes for %d elements, expected %d" % (len(bits), num_elements, expected))
    flags = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), bitorder="little")
    if flags[num_elements:].any():
        raise ValueError("bits: padding bits after element %d are set" % num_elements)
    return flags[:num_elements]


def pack_mask(keep: np.ndarray) -> bytes:
    """The TensorMask bytes of keep flags (any array; non-zero = kept), LSB first, zero padding."""
    return np.packbits(np.asarray(keep, dtype=bool).reshape(-1), bitorder="little").tobytes()


def flatten_all(arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Concatenates flattened arrays (the feature order of a layout's prunable tensors)."""
    return np.concatenate([np.asarray(a).reshape(-1) for a in arrays])
