"""Read the ``ecgedge`` metadata embedded in exported model files; numpy-free, torch-free.

Where it lives
    * ONNX: ``ModelProto.metadata_props``, key ``"ecgedge"`` (a JSON object); a few flat keys
      (``classes``, ``ecgedge_version``, ``source_checkpoint_sha256``, ``run_dir``) repeat the
      essentials for tools that show metadata_props (Netron).
    * TFLite: the flatbuffer's ``Model.metadata`` list, entry named ``"ecgedge"`` whose buffer holds
      the same JSON (UTF-8). Read here with a small bounds-checked flatbuffer walker, so a gateway
      with only ``tflite_runtime`` (no schema module) can read it too.
    * Fallback for both: a sidecar ``<model file>.json`` next to the model (used only when the
      file itself has no ``ecgedge`` entry).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ecgedge.errors import EcgEdgeError
from ecgedge.model_files import METADATA_KEY, sidecar_path

__all__ = ["METADATA_KEY", "read_onnx_metadata_props", "read_tflite_metadata", "read_sidecar", "sidecar_path", "tflite_metadata_entries"]
TFLITE_IDENTIFIER = b"TFL3"


class _Truncated(Exception):
    pass


class _FlatBuffer:
    """Just enough of the flatbuffers wire format to walk a TFLite ``Model`` table."""

    def __init__(self, buf: bytes):
        self.buf = buf

    def _unpack(self, fmt: str, pos: int):
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.buf):
            raise _Truncated(pos)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def u16(self, pos: int) -> int:
        return self._unpack("<H", pos)

    def u32(self, pos: int) -> int:
        return self._unpack("<I", pos)

    def i32(self, pos: int) -> int:
        return self._unpack("<i", pos)

    def u64(self, pos: int) -> int:
        return self._unpack("<Q", pos)

    def field(self, table: int, slot: int) -> int | None:
        """Absolute position of field ``slot`` of the table at ``table``, or None when absent."""
        vtable = table - self.i32(table)
        vt_len = self.u16(vtable)
        entry = 4 + 2 * slot
        if entry + 2 > vt_len:
            return None
        off = self.u16(vtable + entry)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def vector(self, pos: int) -> tuple[int, int]:
        """(start, length) of the vector referenced from field position ``pos``."""
        vec = self.deref(pos)
        return vec + 4, self.u32(vec)  # elements are bounds-checked as they are read

    def string(self, pos: int) -> bytes:
        start, n = self.vector(pos)
        if start + n > len(self.buf):
            raise _Truncated(start)
        return self.buf[start : start + n]


def tflite_metadata_entries(buf: bytes) -> dict[str, bytes]:
    """``{name: bytes}`` of every entry of a TFLite flatbuffer's ``Model.metadata``.

    Raises ``ValueError`` for a buffer that is not a (complete) TFLite model.
    """
    if len(buf) < 8 or buf[4:8] != TFLITE_IDENTIFIER:
        raise ValueError("no TFLite file identifier 'TFL3' at byte 4")
    fb = _FlatBuffer(buf)
    try:
        root = fb.u32(0)
        # Model fields: 0 version, 1 operator_codes, 2 subgraphs, 3 description, 4 buffers,
        # 5 metadata_buffer, 6 metadata, 7 signature_defs.
        if fb.field(root, 2) is None:
            raise ValueError("the model has no subgraphs")
        buffers_pos, meta_pos = fb.field(root, 4), fb.field(root, 6)
        if meta_pos is None or buffers_pos is None:
            return {}
        b_start, b_n = fb.vector(buffers_pos)
        m_start, m_n = fb.vector(meta_pos)
        out: dict[str, bytes] = {}
        for i in range(m_n):
            entry = fb.deref(m_start + 4 * i)
            name_pos, buf_pos = fb.field(entry, 0), fb.field(entry, 1)
            if name_pos is None:
                continue
            name = fb.string(name_pos).decode("utf-8", "replace")
            index = fb.u32(buf_pos) if buf_pos is not None else 0
            if index >= b_n:
                raise ValueError(f"metadata {name!r} points at buffer {index} of {b_n}")
            buffer = fb.deref(b_start + 4 * index)
            # Buffer fields: 0 data ([ubyte]), 1 offset (ulong), 2 size (ulong); models over
            # 2 GB keep the bytes after the flatbuffer and use offset/size.
            data_pos, off_pos, size_pos = fb.field(buffer, 0), fb.field(buffer, 1), fb.field(buffer, 2)
            if off_pos is not None and fb.u64(off_pos) > 1:
                start, size = fb.u64(off_pos), fb.u64(size_pos) if size_pos is not None else 0
                if start + size > len(buf):
                    raise _Truncated(start)
                out[name] = buf[start : start + size]
            elif data_pos is not None:
                out[name] = fb.string(data_pos)
            else:
                out[name] = b""
        return out
    except _Truncated:
        raise ValueError("the flatbuffer ends early (truncated file?)") from None


def read_tflite_metadata(path: Path, buf: bytes | None = None) -> dict:
    """The ``ecgedge`` metadata of a .tflite file ({} if it has none); EcgEdgeError if unreadable."""
    path = Path(path)
    if buf is None:
        buf = path.read_bytes()
    try:
        entries = tflite_metadata_entries(buf)
    except ValueError as exc:
        raise EcgEdgeError(f"{path} is not a valid TFLite model ({exc}); export it again with `ecgedge export`.") from None
    blob = entries.get(METADATA_KEY)
    if blob is None:
        return read_sidecar(path)
    return _parse_json(blob, f"{path} (flatbuffer metadata {METADATA_KEY!r})")


def read_onnx_metadata_props(props: dict[str, str], path: Path) -> dict:
    blob = props.get(METADATA_KEY)
    if blob is None:
        return read_sidecar(path)
    return _parse_json(blob.encode(), f"{path} (metadata_props {METADATA_KEY!r})")


def read_sidecar(path: Path) -> dict:
    side = sidecar_path(Path(path))
    if not side.is_file():
        return {}
    return _parse_json(side.read_bytes(), str(side))


def _parse_json(blob: bytes, where: str) -> dict:
    try:
        meta = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EcgEdgeError(f"metadata in {where} is not valid JSON ({exc}); the file is damaged.") from None
    if not isinstance(meta, dict):
        raise EcgEdgeError(f"metadata in {where} is not a JSON object; the file is damaged.")
    return meta
