"""Conversation memory: the LoCoMo-format reader, Memory.add_conversation, conversation search and the CLI ingest.

The conversation below is written for these tests (no LoCoMo text is copied here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from hopmem.memory.conversation_search import ConversationFusion, boost_named_speakers
from hopmem.memory.conversations import (
    is_conversation_file,
    load_conversations,
    memory_items,
    normalize_evidence,
    parse_conversation,
    parse_session_date,
    resolve_relative,
    windows,
    with_resolved_dates,
)
from hopmem.memory.errors import InputError
from hopmem.memory_api import Memory
from hopmem.settings import get_settings


def sample(sample_id: str = "chat-1", year: int = 2024) -> dict[str, Any]:
    """Two speakers, three sessions; an image turn; two turns with the same words on different days."""
    data: dict[str, Any] = {
        "sample_id": sample_id,
        "conversation": {
            "speaker_a": "Alice",
            "speaker_b": "Bruno",
            "session_1_date_time": "9:15 am on 3 March, 2024",
            "session_1": [
                {"speaker": "Alice", "dia_id": "D1:1", "text": "Morning Bruno! I adopted a grey cat yesterday."},
                {"speaker": "Bruno", "dia_id": "D1:2", "text": "Congratulations! What is the cat called?"},
                {"speaker": "Alice", "dia_id": "D1:3", "text": "She is called Pebble, after the river stones."},
                {
                    "speaker": "Bruno",
                    "dia_id": "D1:4",
                    "text": "Look what I built last week.",
                    "img_url": ["https://example.invalid/boat.jpg"],
                    "blip_caption": "a photo of a small wooden sailing boat",
                },
                {"speaker": "Alice", "dia_id": "D1:5", "text": "See you soon!"},
            ],
            "session_2_date_time": "6:40 pm on 21 April, 2024",
            "session_2": [
                {"speaker": "Bruno", "dia_id": "D2:1", "text": "I started a pottery class two weeks ago."},
                {"speaker": "Alice", "dia_id": "D2:2", "text": "Pottery sounds relaxing. I ran a half marathon."},
                {"speaker": "Alice", "dia_id": "D2:3", "text": "See you soon!"},
            ],
            "session_3_date_time": "12:05 pm on 2 June, 2024",
            "session_3": [
                {"speaker": "Alice", "dia_id": "D3:1", "text": "Pebble knocked my violin off the shelf last month."},
                {"speaker": "Bruno", "dia_id": "D3:2", "text": "Cats! My boat passed its first sea trial."},
            ],
            "session_4_date_time": "1:00 pm on 9 June, 2024",
        },
        "qa": [
            {"question": "When did Alice adopt a cat?", "answer": "2 March 2024", "evidence": ["D1:1"], "category": 2},
            {"question": "What did Bruno build?", "answer": "a sailing boat", "evidence": ["D1:4; D3:2"],
             "category": 1},
            {"question": "What is the name of Bruno's cat?", "adversarial_answer": "Pebble", "evidence": ["D:1:3"],
             "category": 5},
            {"question": "What class did Bruno start?", "answer": "pottery", "evidence": ["D2:1"], "category": 4},
            {"question": "Which instrument does Alice play?", "answer": "violin", "evidence": ["D9:9", "D"],
             "category": 3},
        ],
    }  # fmt: skip
    return json.loads(json.dumps(data).replace("2024", str(year)))


@pytest.fixture()
def memory(tmp_path: Path) -> Memory:
    return Memory(get_settings(data_dir=tmp_path / "data", llm_backend="none"))


def test_reader_parses_sessions_dates_captions_and_questions() -> None:
    conv = parse_conversation(sample())
    assert conv.id == "chat-1" and conv.speakers == ("Alice", "Bruno")
    assert len(conv.turns) == 10 and conv.sessions == 3  # session 4 has a date but no turns
    first, boat = conv.turns[0], conv.turns[3]
    assert (first.session, first.date, first.time, first.date_raw) == (
        1,
        "2024-03-03",
        "09:15",
        "9:15 am on 3 March, 2024",
    )
    assert boat.caption == "a photo of a small wooden sailing boat"
    assert boat.image_urls == ("https://example.invalid/boat.jpg",)
    q = {x.id: x for x in conv.questions}
    assert q["chat-1:q1"].evidence == ("D1:4", "D3:2")
    assert q["chat-1:q2"].evidence == ("D1:3",) and q["chat-1:q2"].answers == ()
    assert q["chat-1:q2"].adversarial_answer == "Pebble" and q["chat-1:q2"].category == 5
    assert q["chat-1:q4"].evidence == ("D9:9",)  # names no turn of this conversation: the evaluation leaves it out


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1:56 pm on 8 May, 2023", ("2023-05-08", "13:56")),
        ("12:09 am on 13 September, 2023", ("2023-09-13", "00:09")),
        ("May 8, 2023", ("2023-05-08", None)),
        ("2023-05-08", ("2023-05-08", None)),
        ("sometime in spring", (None, None)),
    ],
)
def test_session_dates(raw: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_session_date(raw) == expected


def test_relative_dates_resolve_against_the_session_date() -> None:
    assert resolve_relative("yesterday", "2024-03-03") == "2 March 2024"
    assert resolve_relative("last week", "2024-03-03") == "the week before 3 March 2024"
    assert resolve_relative("last month", "2024-01-15") == "December 2023"
    assert resolve_relative("two years ago", "2024-01-15") == "2022"
    assert resolve_relative("last Friday", "2024-03-03") == "1 March 2024"  # 3 March 2024 was a Sunday
    assert resolve_relative("two weeks ago", "2024-04-21") == "the week of 7 April 2024"
    text = with_resolved_dates("I adopted a grey cat yesterday.", "2024-03-03")
    assert text == "I adopted a grey cat yesterday (2 March 2024)."
    assert with_resolved_dates("yesterday", None) == "yesterday"


def test_evidence_ids_are_normalised() -> None:
    assert normalize_evidence(["D:11:26", "D8:6; D9:17", "D", "D8:6"]) == ("D11:26", "D8:6", "D9:17")
    assert normalize_evidence(None) == ()


def test_windows_stay_inside_a_session_and_hold_each_turn_once() -> None:
    conv = parse_conversation(sample())
    groups = windows(conv.turns, 2)
    assert [[t.dia_id for t in g] for g in groups] == [
        ["D1:1", "D1:2"], ["D1:3", "D1:4"], ["D1:5"], ["D2:1", "D2:2"], ["D2:3"], ["D3:1", "D3:2"],
    ]  # fmt: skip
    with pytest.raises(InputError):
        windows(conv.turns, 0)


def test_memory_text_starts_with_the_date_and_embed_context_stays_out_of_it() -> None:
    conv = parse_conversation(sample())
    items = memory_items(conv, window=1, embed_context=1)
    item, embed = items[0]
    assert item["content"] == "[3 March 2024] Alice: Morning Bruno! I adopted a grey cat yesterday (2 March 2024)."
    assert "Pebble" not in item["content"] and "What is the cat called?" in embed  # the next turn, for the vector only
    boat = items[3][0]
    assert boat["content"].endswith("(image: a photo of a small wooden sailing boat)")
    assert boat["metadata"]["speaker"] == "Bruno" and boat["metadata"]["dia_ids"] == ["D1:4"]
    plain = memory_items(conv, resolve_dates=False)[0][0]
    assert "(2 March 2024)" not in plain["content"]


def test_add_conversation_stores_turns_with_metadata_and_nothing_is_held(memory: Memory) -> None:
    report = memory.add_conversation(sample(), progress=False)
    assert (report.turns, report.memories, report.added, report.quarantined) == (10, 10, 10, 0)
    assert memory.quarantine() == []
    stored = list(memory.export())
    assert len(stored) == 10 and {r.source_class for r in stored} == {"conversation"}
    assert not any(r.quarantined for r in stored)
    by_turn = {r.metadata["dia_ids"][0]: r for r in stored}
    adopted = by_turn["D1:1"]
    assert adopted.metadata["date"] == "2024-03-03" and adopted.metadata["session"] == 1
    assert adopted.metadata["speaker"] == "Alice" and "conversation:chat-1" in adopted.tags
    # "See you soon!" is said twice on different days: two memories; the same words the same day would also be kept
    assert by_turn["D1:5"].id != by_turn["D2:3"].id
    assert report.turn_memory["D1:3"] == by_turn["D1:3"].id
    again = memory.add_conversation(sample(), progress=False)
    assert again.added == 0 and again.memory_ids == report.memory_ids


def test_add_conversation_windows_count_turns(memory: Memory) -> None:
    report = memory.add_conversation(sample(), window=3, progress=False)
    assert report.memories == 4  # sessions of 5, 3 and 2 turns: 3 + 2, 3, 2
    assert sorted(len(r.metadata["dia_ids"]) for r in memory.export()) == [2, 2, 3, 3]
    assert set(report.turn_memory) == {t.dia_id for t in parse_conversation(sample()).turns}


def test_add_conversation_refuses_bad_input(memory: Memory, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no session"):
        memory.add_conversation({"sample_id": "x", "conversation": {"speaker_a": "A"}}, progress=False)
    with pytest.raises(InputError, match="window"):
        memory.add_conversation(sample(), window=0, progress=False)
    two = tmp_path / "two.json"
    two.write_text(json.dumps([sample("a"), sample("b")]))
    with pytest.raises(InputError, match="holds 2 conversations"):
        memory.add_conversation(two, progress=False)
    assert memory.stats()["memories"] == 0


def test_search_conversation_finds_the_turn_and_its_date(memory: Memory) -> None:
    memory.add_conversation(sample(), progress=False)
    memory.add_conversation(sample("chat-2", year=2025), progress=False)  # the same words a year later
    for mode in ("lexical", "dense", "hybrid"):
        found = memory.search_conversation("When did Alice adopt a cat?", k=3, mode=mode, conversation="chat-1")
        assert found and all("conversation:chat-1" in r.record.tags for r in found)
        assert found[0].record.metadata["dia_ids"] == ["D1:1"], mode
        assert found[0].record.content.startswith("[3 March 2024]")


def test_speaker_boost_raises_the_named_speakers_turns(memory: Memory) -> None:
    memory.add_conversation(sample(), progress=False)
    plain = memory.search_conversation("Bruno cat", k=10, mode="lexical", fusion=ConversationFusion(speaker_boost=0))
    boosted = boost_named_speakers("What about Bruno's cat?", plain, 5.0)
    speakers = [r.record.metadata["speakers"] for r in boosted]
    first_alice = speakers.index(["Alice"])
    assert all(s == ["Bruno"] for s in speakers[:first_alice])
    assert {r.record.id for r in boosted} == {r.record.id for r in plain}


def test_use_conversation_search_switches_the_handles_searcher(memory: Memory) -> None:
    from hopmem.memory.conversation_search import ConversationSearcher

    memory.add_conversation(sample(), progress=False)
    memory.use_conversation_search()
    assert isinstance(memory.searcher, ConversationSearcher)
    found = memory.searcher.search(memory.tenant, "What class did Bruno start?", k=2)
    assert found[0].record.metadata["dia_ids"] == ["D2:1"]


def test_the_agent_keeps_the_fused_lists_best_turns_first_on_conversations(memory: Memory) -> None:
    from hopmem.agent_api import Agent

    memory.add_conversation(sample(), progress=False)
    memory.use_conversation_search()
    question = "What did Bruno build with wood, and what did he start two weeks ago?"
    best = [r.record.id for r in memory.search_conversation(question, k=3)]
    rankings = {}
    for floor_list in ("fused", "question"):
        changes = {
            "remember_answers": False,
            "conversation_rerank_floor": 3,
            "conversation_rerank_floor_list": floor_list,
            "reranker": "cross-encoder",
        }
        settings = memory.settings.model_copy(update=changes)
        handle = Memory(settings)  # closing an agent closes its memory: one handle each
        handle.use_conversation_search()
        agent = Agent(handle, settings=settings)  # the shipped cross-encoder reranks
        try:
            answer = agent.ask(question)
        finally:
            agent.close()
        rerank = next(s for s in answer.trace if s["step"] == "rerank")
        fused = [p["id"] for p in next(s for s in answer.trace if s["step"] == "fuse")["results"]]
        assert rerank["reranker"] == "cross-encoder"
        expected = {"floor": 3, "floor_list": floor_list, "blend": 0.8, "date": False, "speaker": "mean"}
        assert rerank["conversation"] == expected
        rankings[floor_list] = [p["id"] for p in rerank["ranking"]]
        assert len(rankings[floor_list]) > 3  # reordered, never pushed out; the rest follows
        assert set(rankings[floor_list][:3]) == set(fused[:3] if floor_list == "fused" else best)


def test_conversation_file_detection(tmp_path: Path) -> None:
    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample()]))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"title": "not a chat"}))
    assert is_conversation_file(path) and not is_conversation_file(other)
    assert [c.id for c in load_conversations(path)] == ["chat-1"]
    with pytest.raises(InputError, match="not a conversation file"):
        load_conversations(other)


def test_cli_ingest_detects_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hopmem.app.cli import main

    path = tmp_path / "chats.json"
    path.write_text(json.dumps([sample("chat-1"), sample("chat-2", year=2025)]))
    monkeypatch.setenv("HOPMEM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", ["hopmem", "ingest", "--quiet", "--json", "--window", "2", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert [c["conversation"] for c in report["conversations"]] == ["chat-1", "chat-2"]
    assert [c["memories"] for c in report["conversations"]] == [6, 6]
    assert report["store"]["memories"] == 12
