"""Model names resolve to files on disk offline; unknown names fail with one actionable sentence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hopmem.memory.embeddings import SentenceTransformerEmbedder, load_embedder
from hopmem.memory.errors import ModelNotAvailableError
from hopmem.memory.model_paths import resolve_embedder_path, resolve_gguf_path

EMBEDDER_ALIASES = [
    "all-MiniLM-L6-v2",
    "all-minilm-l6-v2",
    "minilm",
    "sentence-transformers/all-MiniLM-L6-v2",
]
LLM_ALIASES = [
    "smollm2",
    "SmolLM2-135M-Instruct",
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "smollm2-135m-instruct-gguf",
]
UNKNOWN = "no-such-org/no-such-model-xyz"


@pytest.mark.parametrize("name", EMBEDDER_ALIASES)
def test_packaged_embedder_aliases_resolve_to_the_model_folder(name: str) -> None:
    path = resolve_embedder_path(name)
    assert path.is_dir()
    assert (path / "config.json").is_file()
    assert path == resolve_embedder_path(EMBEDDER_ALIASES[0])


@pytest.mark.parametrize("name", LLM_ALIASES)
def test_packaged_llm_aliases_resolve_to_a_gguf_file(name: str) -> None:
    path = resolve_gguf_path(name)
    assert path.is_file()
    assert path.suffix == ".gguf"
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"


def test_local_paths_are_used_as_they_are(tmp_path: Path) -> None:
    assert resolve_embedder_path(str(tmp_path)) == tmp_path
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    assert resolve_gguf_path(str(model)) == model
    assert resolve_gguf_path(str(tmp_path)) == model  # a folder: its .gguf file


def test_a_folder_without_gguf_is_refused(tmp_path: Path, one_sentence: Callable[[str], None]) -> None:
    with pytest.raises(ModelNotAvailableError) as caught:
        resolve_gguf_path(str(tmp_path))
    one_sentence(str(caught.value))
    assert "GGUF" in str(caught.value)


@pytest.mark.parametrize(
    "resolve",
    [resolve_embedder_path, resolve_gguf_path, load_embedder],
    ids=["embedder", "gguf", "load_embedder"],
)
def test_an_unknown_model_says_what_to_do(
    resolve: Callable[[str], object], one_sentence: Callable[[str], None]
) -> None:
    with pytest.raises(ModelNotAvailableError) as caught:
        resolve(UNKNOWN)
    message = str(caught.value)
    one_sentence(message)
    assert UNKNOWN in message
    assert "download it once" in message and "pass the path" in message


def test_the_packaged_embedder_makes_unit_vectors(embedder: SentenceTransformerEmbedder) -> None:
    assert (embedder.name, embedder.dim) == ("all-MiniLM-L6-v2", 384)
    assert load_embedder("all-MiniLM-L6-v2") is embedder  # loaded once per process
    vectors = embedder.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Quarterly tax filing deadlines."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    np.testing.assert_allclose(embedder.embed(["A cat sits on the mat."])[0], vectors[0], atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_display_path_drops_this_machines_prefixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hopmem.memory.model_paths import display_path

    home, work = tmp_path / "home", tmp_path / "home" / "proj"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    venv_model = work / ".venv" / "lib" / "python3.11" / "site-packages" / "gt_pkg" / "model"
    assert display_path(venv_model) == "<site-packages>/gt_pkg/model"
    assert display_path(work / "runs" / "ce") == "runs/ce"  # under the working directory: relative
    assert display_path(home / ".cache" / "hopmem" / "m") == "~/.cache/hopmem/m"
    assert display_path(tmp_path / "shared" / "data") == "../../shared/data"  # shorter than the absolute path
    assert display_path("/nowhere/else") == "/nowhere/else"
