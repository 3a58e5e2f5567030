"""``hopmem serve``'s OpenAI-compatible chat, with the official ``openai`` client, against real server processes.

The agent answers extractively (``llm_backend = "none"``) except where the LLM path itself is tested: a stand-in
OpenAI-compatible LLM server in this process (slow on purpose, to disconnect during the answer; or absent, to be
down), and the real llama.cpp backend in one slow test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.app.server_helpers import LiveServer, free_port, one_sentence_error, start_server

QUESTION = "When is the staff meeting?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Without write-back, so that each answer comes from the seeded memory (the disconnect test turns it on).
    live = start_server(tmp_path_factory.mktemp("chat"), remember_answers="false")
    yield live
    live.stop()


def _seed(live: LiveServer, key: str) -> int:
    with live.client(key) as c:
        reply = c.post(
            "/v1/memories", json={"content": "The staff meeting is on Thursdays at 10.", "title": "Meetings"}
        )
        return int(reply.json()["id"])


def _answers(live: LiveServer, key: str) -> list[dict[str, Any]]:
    """The memories the agent remembered (its answers), read back through the API."""
    with live.client(key) as c:
        hits = c.post("/v1/memories/search", json={"query": QUESTION, "k": 50, "source_class": ["agent"]})
        return [h for h in hits.json()["results"] if h["title"].startswith("Answer:")]


def test_openai_client_non_streaming_and_streaming(server: LiveServer) -> None:
    key = server.key("chat")
    mid = _seed(server, key)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["hopmem-agent"]
    reply = client.chat.completions.create(
        model="hopmem-agent",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": QUESTION}],
    )
    text = reply.choices[0].message.content or ""
    assert "Thursdays" in text and "Sources:" in text and f"(memory {mid})" in text
    extra = reply.model_extra or {}
    assert extra["trace_id"] and reply.id == f"chatcmpl-{extra['trace_id']}"
    assert any(c["id"] == mid and c["cited"] for c in extra["citations"])
    chunks = list(
        client.chat.completions.create(model="any-name", messages=[{"role": "user", "content": QUESTION}], stream=True)
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Thursdays" in streamed and "Sources:" in streamed
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["citations"] and (last.model_extra or {})["trace_id"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="hm_bad", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError, match="question is empty"):
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "   "}], stream=True)
    with server.client(key) as c:
        one_sentence_error(c.post("/v1/chat/completions", json={"model": "x", "messages": []}), 422)
        one_sentence_error(
            c.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "only me"}]}), 400
        )


def test_tenant_isolation_in_chat(server: LiveServer) -> None:
    _seed(server, server.key("owner"))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=server.key("stranger"), max_retries=0)
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}])
    assert "Thursdays" not in (reply.choices[0].message.content or "")
    assert (reply.model_extra or {})["citations"] == []


class _SlowLLM(BaseHTTPRequestHandler):
    """A stand-in OpenAI-compatible LLM server that takes ``delay`` seconds per completion."""

    delay = 3.0

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._json({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.delay)
        message = {"role": "assistant", "content": "The staff meeting is on Thursdays at 10 [1]."}
        self._json({"model": "stub", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})


@pytest.fixture()
def slow_llm() -> Iterator[str]:
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _SlowLLM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1"
    httpd.shutdown()


def test_disconnect_mid_stream_remembers_nothing(tmp_path: Path, slow_llm: str) -> None:
    live = start_server(
        tmp_path / "dc", llm_backend="openai", llm_base_url=slow_llm, planner="rules", decompose="false"
    )
    try:
        key = live.key("dc")
        _seed(live, key)
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
        with live.client(key) as c, c.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith(": step rerank"):
                    break  # the answer step is now waiting on the LLM: leave
        time.sleep(_SlowLLM.delay + 2.0)  # the answer step finishes on the server after the client left
        assert _answers(live, key) == []
        with live.client(key) as c:  # a completed answer is remembered as usual
            done = c.post("/v1/chat/completions", json={**body, "stream": False})
            assert "Thursdays" in done.json()["choices"][0]["message"]["content"]
        remembered = _answers(live, key)
        assert len(remembered) == 1 and remembered[0]["text"].endswith("Thursdays at 10 [1].")
    finally:
        live.stop()


def test_llm_down_gives_503_while_memories_work(tmp_path: Path) -> None:
    live = start_server(
        tmp_path / "down", llm_backend="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_timeout_s=2
    )
    try:
        key = live.key("down")
        client = openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}])
        assert caught.value.status_code == 503
        with live.client(key) as c:
            message = one_sentence_error(
                c.post("/v1/chat/completions", json={"stream": True, "messages": [{"role": "user", "content": "hi"}]}),
                503,
            )
            assert "memory API still works" in message
            mid = _seed(live, key)
            assert c.post("/v1/memories/search", json={"query": "staff meeting"}).json()["results"][0]["id"] == mid
            assert "does not answer" in httpx.get(live.url + "/ready", timeout=60).json()["llm"]
    finally:
        live.stop()


@pytest.mark.slow
def test_real_llamacpp_chat_streams_with_the_openai_client(tmp_path: Path) -> None:
    live = start_server(tmp_path / "llama", llm_backend="llamacpp", llm_threads=2)
    try:
        key = live.key("llama")
        _seed(live, key)
        client = openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0, timeout=300)
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}])
        assert reply.choices[0].message.content
        chunks = list(
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": QUESTION}], stream=True)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip() and (chunks[-1].model_extra or {})["citations"]
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    finally:
        live.stop()
