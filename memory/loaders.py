"""Read files into plain text with llama-index's file readers (imported lazily).

Supported: ``.txt``, ``.md``/``.markdown``, ``.html``/``.htm``, ``.pdf``, ``.docx``. BEIR ``corpus.jsonl`` files are
handled by :mod:`hopmem.memory.datasets.beir`. A file that cannot be read raises :class:`IngestError` with one sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hopmem.memory.errors import IngestError

log = logging.getLogger(__name__)

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".markdown", ".rst"})
HTML_EXTENSIONS = frozenset({".html", ".htm"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | {".pdf", ".docx"}


@dataclass(frozen=True)
class LoadedFile:
    """The text of one file and the title shown in citations."""

    path: Path
    title: str
    text: str


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_EXTENSIONS


def load_file(path: Path, *, max_bytes: int) -> LoadedFile:
    """Read ``path`` into text.

    Raises:
        IngestError: missing, too large, unsupported, unreadable or empty file.
    """
    if not path.exists():
        raise IngestError(f"{path} does not exist; check the path.")
    if not path.is_file():
        raise IngestError(f"{path} is not a file.")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise IngestError(
            f"{path} has an unsupported extension {suffix or '(none)'!r}; "
            f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))} and BEIR corpus.jsonl."
        )
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path} is empty; there is nothing to ingest.")
    if size > max_bytes:
        raise IngestError(f"{path} is {size:,} bytes, above the limit of {max_bytes:,} (HOPMEM_MAX_FILE_BYTES).")
    try:
        if suffix in TEXT_EXTENSIONS:
            text = _read_text(path)
        elif suffix in HTML_EXTENSIONS:
            text = _read_html(path)
        elif suffix == ".pdf":
            text = _read_with_llama_index(path, "PDFReader")
        else:
            text = _read_with_llama_index(path, "DocxReader")
    except IngestError:
        raise
    except Exception as exc:  # every reader has its own exception types; all mean "unreadable"
        kind = suffix.lstrip(".").upper()
        cause = _root_cause(exc)
        detail = " ".join(f"{type(cause).__name__}: {cause}".split())
        raise IngestError(f"{path} could not be read as {kind} ({detail}); is it corrupt?") from exc
    text = text.replace("\x00", "").strip()
    if not text:
        raise IngestError(f"{path} contains no extractable text; nothing was stored.")
    return LoadedFile(path=path, title=_title(path, text), text=text)


def _root_cause(exc: BaseException) -> BaseException:
    """The reader's own error: llama-index's PDF reader retries (tenacity) and wraps it in a RetryError."""
    last_attempt = getattr(exc, "last_attempt", None)
    if last_attempt is not None and getattr(last_attempt, "failed", False):
        inner = last_attempt.exception()
        if isinstance(inner, BaseException):
            return inner
    return exc


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if b"\x00" in data[:4096]:
            raise IngestError(f"{path} looks like a binary file, not text; nothing was stored.") from None
        return data.decode("latin-1")


def _read_html(path: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_text(path), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.get_text("\n", strip=True)
    return f"{title}\n{body}" if title and not body.startswith(title) else body


def _read_with_llama_index(path: Path, reader_name: str) -> str:
    try:
        from llama_index.readers import file as readers
    except ImportError as exc:
        raise IngestError(
            "Reading PDF and DOCX needs llama-index-readers-file; run `make install` or pip install it."
        ) from exc
    reader = getattr(readers, reader_name)()
    documents = reader.load_data(file=path)
    return "\n\n".join(doc.text for doc in documents if doc.text)


def _title(path: Path, text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120] if path.suffix.lower() in {".md", ".markdown", ".html", ".htm"} else path.stem
    return path.stem
