"""Where visitor uploads are kept, and the check that a file is what it claims to be."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def looks_like(content_type: str, data: bytes) -> bool:
    """Whether ``data`` starts the way files of ``content_type`` do (no trusting the browser)."""
    if content_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if content_type.startswith("text/"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return b"\x00" not in data
    signatures = _SIGNATURES.get(content_type)
    return signatures is None or any(data.startswith(sig) for sig in signatures)


def safe_filename(name: str | None) -> str:
    cleaned = _SAFE_NAME.sub("_", (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip(" .")
    return cleaned[:120] or "file"


@dataclass(frozen=True)
class StoredUpload:
    upload_id: str
    visitor_id: str
    content_type: str
    filename: str
    size: int


class UploadStore:
    """Keeps uploads in memory, or in a directory when given one (one file + one JSON each)."""

    def __init__(self, directory: str | None = None) -> None:
        self._directory = Path(directory) if directory else None
        self._memory: dict[str, tuple[StoredUpload, bytes]] = {}

    async def put(self, upload: StoredUpload, data: bytes) -> None:
        if self._directory is None:
            self._memory[upload.upload_id] = (upload, data)
            return
        folder = anyio.Path(self._directory)
        await folder.mkdir(parents=True, exist_ok=True)
        await (folder / f"{upload.upload_id}.bin").write_bytes(data)
        await (folder / f"{upload.upload_id}.json").write_text(json.dumps(asdict(upload)))

    async def get(self, upload_id: str) -> tuple[StoredUpload, bytes] | None:
        if self._directory is None:
            return self._memory.get(upload_id)
        folder = anyio.Path(self._directory)
        try:
            meta = json.loads(await (folder / f"{upload_id}.json").read_text())
            data = await (folder / f"{upload_id}.bin").read_bytes()
        except FileNotFoundError:
            return None
        return StoredUpload(**meta), data
