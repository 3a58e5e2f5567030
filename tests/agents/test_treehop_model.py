"""The TreeHop model: its formula, saving and loading, and the checks that keep it with its embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hopmem.agents.treehop_model import TreeHopConfig, TreeHopModel, load_treehop, packaged_model_dir
from hopmem.memory.errors import ConfigError


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_untrained_model_returns_the_question_so_an_untrained_tree_is_plain_retrieval() -> None:
    # q - c + UpdateGate with the gate's output layer at zero and its mix at (0, 1): q - c + c = q, normalised.
    model = TreeHopModel(TreeHopConfig(dim=16, attn_size=8, mlp_size=8))
    model.eval()
    q, c = _unit(4, 16, 0), _unit(4, 16, 1)
    out = model.next_queries(q, c)
    np.testing.assert_allclose(out, q / np.linalg.norm(q, axis=1, keepdims=True), atol=1e-6)
    # One query broadcast over several passages gives the same as the repeated query.
    np.testing.assert_allclose(model.next_queries(q[0], c), model.next_queries(np.repeat(q[:1], 4, 0), c), atol=1e-6)


def test_update_gate_changes_the_output_once_trained_and_round_trips(tmp_path: Path) -> None:
    model = TreeHopModel(TreeHopConfig(dim=16, attn_size=8, mlp_size=8, embedder="e"))
    with torch.no_grad():
        model.out.weight.normal_(0, 0.5)
    model.eval()
    q, c = _unit(3, 16, 2), _unit(3, 16, 3)
    out = model.next_queries(q, c)
    plain = (q - c) / np.linalg.norm(q - c, axis=1, keepdims=True)
    assert np.abs(out - plain).max() > 1e-2
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "m", card="# card\n", metrics={"recall": 0.5})
    loaded = TreeHopModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.next_queries(q, c), out, atol=1e-6)
    assert loaded.config == model.config
    assert (tmp_path / "m" / "README.md").read_text() == "# card\n"


def test_load_refuses_missing_folder_and_other_embedders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No TreeHop model"):
        TreeHopModel.load(tmp_path / "nothing")
    TreeHopModel(TreeHopConfig(dim=16, attn_size=8, mlp_size=8, embedder="e")).save(tmp_path / "m")
    with pytest.raises(ConfigError, match="trained on e embeddings"):
        load_treehop(tmp_path / "m", embedder="other", dim=16)
    with pytest.raises(ConfigError, match="dim 16"):
        load_treehop(tmp_path / "m", embedder="e", dim=384)
    assert load_treehop(tmp_path / "m", embedder="e", dim=16).config.dim == 16


def test_packaged_model_matches_the_packaged_embedder() -> None:
    folder = packaged_model_dir()
    model = load_treehop(None, embedder="all-MiniLM-L6-v2", dim=384)
    assert model.config.dim == 384 and not model.training
    assert (folder / "README.md").is_file() and (folder / "data.json").is_file()
    # It was trained: the update gate is not the zero it starts from.
    assert float(model.out.weight.abs().sum()) > 0


def test_models_check_reports_the_packaged_treehop_and_refuses_other_embeddings() -> None:
    from hopmem.models_check import check_treehop
    from hopmem.settings import get_settings

    settings = get_settings()
    line = check_treehop(settings, "all-MiniLM-L6-v2", 384, _unit(1, 384, 5)[0])
    assert line.startswith("treehop ok:") and "|q_next|=1.000" in line
    assert "the agent runs the trained (" in line or "the agent runs the untrained (" in line
    assert check_treehop(get_settings(treehop_hops=1), "all-MiniLM-L6-v2", 384, _unit(1, 384, 5)[0]).startswith(
        "treehop: off"
    )
    with pytest.raises(ConfigError):
        check_treehop(settings, "other-embedder", 768, _unit(1, 768, 5)[0])


def _figures(recall: float, direct: float) -> dict[str, float]:
    return {"recall": recall, "avg_chunks": 10.0, "direct_k": 10.0, "direct_recall": direct}


def test_measured_choice_uses_the_trained_model_only_when_its_test_figures_beat_untrained_and_direct() -> None:
    from hopmem.agents.treehop_model import measured_choice

    beats = {"test_trained": _figures(0.80, 0.77), "test_untrained": _figures(0.77, 0.77)}
    assert measured_choice(beats)[0] is True
    assert "test recall 0.8000 trained" in measured_choice(beats)[1]
    ties = {"test_trained": _figures(0.77, 0.77), "test_untrained": _figures(0.77, 0.77)}
    assert measured_choice(ties)[0] is False
    below_direct = {"test_trained": _figures(0.78, 0.79), "test_untrained": _figures(0.76, 0.79)}
    assert measured_choice(below_direct)[0] is False
    # The test split wins over validation (early stopping chose the model on validation, which flatters it).
    both = {**ties, "validation_best": _figures(0.95, 0.90), "validation_untrained": _figures(0.90, 0.90)}
    assert measured_choice(both)[0] is False
    # An older card: validation figures decide; no figures at all: the folder is used as given.
    old = {"validation_best": _figures(0.94, 0.92), "validation_untrained": _figures(0.92, 0.92)}
    assert measured_choice(old) == (True, measured_choice(old)[1]) and "validation" in measured_choice(old)[1]
    assert measured_choice(None)[0] is True and measured_choice({"chains": 3})[0] is True


def test_load_selected_treehop_returns_the_untrained_twin_when_the_card_says_so(tmp_path: Path) -> None:
    import json

    from hopmem.agents.treehop_model import load_selected_treehop

    model = TreeHopModel(TreeHopConfig(dim=16, attn_size=8, mlp_size=8, embedder="e"))
    with torch.no_grad():
        model.out.weight.normal_(0, 0.5)
    model.eval()
    losing = {"test_trained": _figures(0.70, 0.77), "test_untrained": _figures(0.77, 0.77)}
    model.save(tmp_path / "m", metrics=losing)
    chosen, note = load_selected_treehop(tmp_path / "m", embedder="e", dim=16)
    q, c = _unit(2, 16, 4), _unit(2, 16, 5)
    np.testing.assert_allclose(chosen.next_queries(q, c), q, atol=1e-6)  # untrained: the question again
    assert note.startswith("untrained") and chosen.config == model.config
    (tmp_path / "m" / "metrics.json").write_text(
        json.dumps({"test_trained": _figures(0.80, 0.77), "test_untrained": _figures(0.77, 0.77)})
    )
    chosen, note = load_selected_treehop(tmp_path / "m", embedder="e", dim=16)
    assert note.startswith("trained")
    np.testing.assert_allclose(chosen.next_queries(q, c), model.next_queries(q, c), atol=1e-6)
