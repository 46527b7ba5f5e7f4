"""Read float32 tensors from a TensorFlow checkpoint bundle without TensorFlow.

A bundle `PREFIX.index` + `PREFIX.data-00000-of-00001` is what `tf.train.Saver` writes. The `.index` file
is a LevelDB-format table (an SSTable) mapping each variable name to a `BundleEntryProto`
(dtype, shape, shard, offset, size, crc32c); the `.data` shards hold the raw little-endian tensors.
Format references: leveldb `doc/table_format.md` and tensorflow `core/protobuf/tensor_bundle.proto`.

Only what the musicnn checkpoints use is supported (uncompressed blocks, one shard, float32); anything
else raises `CheckpointError` naming the file and the tensor.
"""
import struct
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TABLE_MAGIC = 0xdb4775248b80fb57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32
_DT_FLOAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, malformed, or lacks a tensor of the expected shape."""


@dataclass
class BundleEntry:
    """Where a tensor lives in the data shards (a decoded `BundleEntryProto`)."""
    dtype: int
    shape: tp.Tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int) -> tp.Tuple[int, int]:
    result, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7f) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> tp.Iterator[tp.Tuple[int, tp.Union[int, bytes]]]:
    """(field number, value) of a serialized protobuf message: varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from('<I', buf, pos)[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack_from('<Q', buf, pos)[0], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def _decode_entry(buf: bytes) -> BundleEntry:
    fields: tp.Dict[int, tp.Any] = {}
    dims: tp.List[int] = []
    for field, value in _proto_fields(buf):
        if field == 2:  # TensorShapeProto: repeated Dim (field 2) with size (field 1)
            for sub, dim in _proto_fields(tp.cast(bytes, value)):
                if sub == 2:
                    dims.append(dict(_proto_fields(tp.cast(bytes, dim))).get(1, 0))
        elif field == 7:
            raise ValueError("sliced (partitioned) variables are not supported")
        else:
            fields[field] = value
    return BundleEntry(dtype=fields.get(1, 0), shape=tuple(dims), shard_id=fields.get(3, 0),
                       offset=fields.get(4, 0), size=fields.get(5, 0))


def _block_entries(table: bytes, offset: int, size: int) -> tp.Iterator[tp.Tuple[bytes, bytes]]:
    """Key/value pairs of one table block (prefix-compressed keys, restart array at the end)."""
    if table[offset + size] != 0:
        raise ValueError(f"compressed table block (type {table[offset + size]}) is not supported")
    block = table[offset:offset + size]
    num_restarts = struct.unpack_from('<I', block, len(block) - 4)[0]
    end = len(block) - 4 * (num_restarts + 1)
    pos, key = 0, b''
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + value_len]
        pos += value_len


def read_index(index_path: tp.Union[str, Path]) -> tp.Tuple[int, tp.Dict[str, BundleEntry]]:
    """Number of data shards, and variable name -> `BundleEntry` for every tensor in a bundle's `.index` file."""
    index_path = Path(index_path)
    if not index_path.is_file():
        raise CheckpointError(f"checkpoint index file not found: {index_path}")
    table = index_path.read_bytes()
    try:
        if len(table) < _FOOTER_SIZE or struct.unpack_from('<Q', table, len(table) - 8)[0] != _TABLE_MAGIC:
            raise ValueError("not an SSTable (bad footer magic)")
        footer = table[-_FOOTER_SIZE:]
        _, pos = _varint(footer, 0)  # metaindex offset
        _, pos = _varint(footer, pos)  # metaindex size
        index_offset, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
        entries, num_shards = {}, 1
        for _, handle in _block_entries(table, index_offset, index_size):
            offset, pos = _varint(handle, 0)
            size, _ = _varint(handle, pos)
            for key, value in _block_entries(table, offset, size):
                if key:
                    entries[key.decode()] = _decode_entry(value)
                else:  # the empty key holds the BundleHeaderProto, num_shards is its field 1
                    num_shards = dict(_proto_fields(value)).get(1, 1)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot parse checkpoint index {index_path}: {exc}") from exc
    return num_shards, entries


class CheckpointReader:
    """Reads named float32 tensors of a TF bundle `PREFIX` (files `PREFIX.index`, `PREFIX.data-*`).

    musicnn's prefix is the checkpoint folder itself with an empty file stem, i.e. files `.index`
    and `.data-00000-of-00001` inside it.
    """
    def __init__(self, prefix: tp.Union[str, Path]):
        self.prefix = str(prefix)
        self.num_shards, self.entries = read_index(self.prefix + '.index')
        self._shards: tp.Dict[int, bytes] = {}

    def _shard(self, shard_id: int) -> bytes:
        if shard_id not in self._shards:
            path = Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")
            if not path.is_file():
                raise CheckpointError(f"checkpoint data shard not found: {path}")
            self._shards[shard_id] = path.read_bytes()
        return self._shards[shard_id]

    def read(self, name: str, shape: tp.Optional[tp.Sequence[int]] = None) -> np.ndarray:
        """The tensor `name` as float32, checking its stored shape against `shape` when given."""
        entry = self.entries.get(name)
        where = f"tensor '{name}' of checkpoint {self.prefix}"
        if entry is None:
            raise CheckpointError(f"{where} is missing")
        if entry.dtype != _DT_FLOAT:
            raise CheckpointError(f"{where} has dtype enum {entry.dtype}, only float32 (1) is supported")
        if shape is not None and tuple(shape) != entry.shape:
            raise CheckpointError(f"{where} has shape {entry.shape}, expected {tuple(shape)}")
        count = int(np.prod(entry.shape, dtype=np.int64))
        data = self._shard(entry.shard_id)
        if entry.size != 4 * count or entry.offset + entry.size > len(data):
            raise CheckpointError(f"{where}: {entry.size} bytes at offset {entry.offset} do not hold "
                                  f"{count} float32 values in a shard of {len(data)} bytes")
        values = np.frombuffer(data, dtype='<f4', count=count, offset=entry.offset)
        return values.reshape(entry.shape).astype(np.float32)
