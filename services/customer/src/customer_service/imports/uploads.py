"""Receiving an upload: the multipart body streamed to a temporary file, never past the limit.

Starlette's parser spools a file part to disk beyond 1 MB; the body is counted as it arrives and
refused (413) the moment it passes the limit, so an oversized upload is neither held in memory
nor written to disk whole.
"""

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import IO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from crm_libs.problems import InvalidField, ProblemError
from customer_service.imports.sheets import MAX_BYTES, ImportRefused, megabytes

# The multipart framing and the small fields around the file.
_FRAMING_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    file: IO[bytes]
    filename: str | None
    size: int
    fields: dict[str, str]


def _too_large(max_bytes: int) -> ImportRefused:
    return ImportRefused(
        "too_large",
        f"The file is larger than {megabytes(max_bytes)} MB; files up to "
        f"{megabytes(max_bytes)} MB are imported. Split it into smaller files.",
    )


async def receive(request: Request, *, max_bytes: int = MAX_BYTES) -> Upload:
    """The ``file`` part and the other fields of a ``multipart/form-data`` body.

    Raises ImportRefused (413) for a body past the limit, and 415 or 422 for a body that is not
    a multipart form with a file.
    """
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ProblemError(
            "Upload the file as multipart/form-data, in a part named file",
            status=415,
            title="Unsupported media type",
        )
    limit = max_bytes + _FRAMING_BYTES
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(max_bytes)

    async def counted() -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(max_bytes)
            yield chunk

    parser = MultiPartParser(request.headers, counted(), max_files=1, max_fields=10)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ProblemError(f"The upload cannot be read: {exc}", status=400) from exc
    part = form.get("file")
    if not isinstance(part, UploadFile):
        await form.close()
        raise InvalidField("file", "attach the spreadsheet as a file part named file")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    file = part.file
    size = file.seek(0, 2)
    file.seek(0)
    if size > max_bytes:
        await form.close()
        raise _too_large(max_bytes)
    return Upload(file=file, filename=part.filename, size=size, fields=fields)
