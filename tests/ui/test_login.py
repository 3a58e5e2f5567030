"""The UI beyond loopback: a login by API key (each sees its key's tenant and agent) or by password, refused
without either; run on loopback with ``--require-login`` (the same login a non-loopback host gets)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hopmem.keys import KeyStore
from tests.app.server_helpers import server_env
from tests.conftest import HOPMEM
from tests.ui.ui_helpers import LiveUI, start_ui

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[tuple[LiveUI, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("ui-login")
    keys = KeyStore(root / "data" / "keys.sqlite")
    user, user_key = keys.create("acme")
    bot, bot_key = keys.create("acme", "bot")
    app = start_ui(root, sample_dir, "--require-login", seed=False, extra_env={"HOPMEM_UI_PASSWORD": PASSWORD})
    yield app, {"user": (user.id, user_key), "bot": (bot.id, bot_key), "keys": keys}
    app.stop()


def _client(app: LiveUI, auth: tuple[str, str] | None) -> Any:
    from gradio_client import Client

    return Client(app.url, auth=auth, verbose=False, download_files=False, analytics_enabled=False)


def test_a_key_logs_in_as_its_tenant_and_agent(guarded: tuple[LiveUI, dict[str, Any]]) -> None:
    app, keys = guarded
    assert "tenant 'acme' as the user" in _client(app, keys["user"]).predict(api_name="/whoami")
    bot = _client(app, keys["bot"])
    assert "tenant 'acme' as agent 'bot'" in bot.predict(api_name="/whoami")
    # The engine's rule, not the UI's: only the user reviews quarantine.
    assert bot.predict(1, api_name="/approve").startswith("⚠ Only the user can approve")


def test_the_password_logs_in_as_the_configured_tenants_user(guarded: tuple[LiveUI, dict[str, Any]]) -> None:
    app, _keys = guarded
    assert "tenant 'default' as the user" in _client(app, ("alice", PASSWORD)).predict(api_name="/whoami")


@pytest.mark.parametrize(
    "auth",
    [None, ("alice", "wrong"), ("user-key-id", PASSWORD), ("bot-key-id", "user-key")],
    ids=["no-login", "wrong-password", "key-id-with-password", "key-of-another-id"],
)
def test_bad_logins_are_refused(guarded: tuple[LiveUI, dict[str, Any]], auth: Any) -> None:
    app, keys = guarded
    names = {"user-key-id": keys["user"][0], "bot-key-id": keys["bot"][0], "user-key": keys["user"][1]}
    if auth is not None:
        auth = (names.get(auth[0], auth[0]), names.get(auth[1], auth[1]))
    # gradio_client refuses to open the app: "credentials were not provided" or "Could not login".
    with pytest.raises(Exception, match=r"credentials were not provided|Could not login"):
        _client(app, auth).predict(api_name="/whoami")


def test_a_revoked_key_stops_working_at_the_next_action(guarded: tuple[LiveUI, dict[str, Any]]) -> None:
    app, keys = guarded
    fresh, secret = keys["keys"].create("acme", "temp")
    session = _client(app, (fresh.id, secret))
    assert "agent 'temp'" in session.predict(api_name="/whoami")
    keys["keys"].revoke(fresh.id)
    assert "not signed in (or its key was revoked)" in session.predict(api_name="/whoami")
    assert session.predict("", "", "any", 0, 0, api_name="/find_memories")[1].startswith("⚠ This session is not")


def test_a_public_host_without_keys_or_password_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [HOPMEM, "ui", "--host", "0.0.0.0", "--port", "1"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Refusing to serve the UI on 0.0.0.0 without a login" in lines[0], done.stderr
