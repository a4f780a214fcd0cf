"""Many workspaces: the OAuth install, /vps connect, each workspace's account.

The app is served over HTTP as ``vpsbot serve`` runs it, with OAuth on, its
Web API pointed at ``LocalSlack`` (which also plays Slack's side of OAuth)
and each workspace's VPS.org token leading to a sandbox of its own.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.slack.conftest import ALICE, ALL_ALLOWED, CHANNEL, SECRET
from vpsbot import audit, payloads
from vpsbot.app import VpsBot, create_app
from vpsbot.config import Secret, Settings
from vpsbot.credentials import TokenCipher
from vpsbot.localslack import LocalSlack
from vpsbot.ops.accounts import NO_ACCOUNT
from vpsbot.ops.tracking import Backoff
from vpsbot.slack import messages
from vpsbot.slack.connect import TOKEN_ACTION, TOKEN_BLOCK
from vpsbot.slack.ids import APPROVE_BUTTON
from vpsbot.slack.installs import rotate_tokens
from vpsbot.store import PolicyRepository, session_scope
from vpsbot.store.models import WorkspaceCredential
from vpsbot.store.slack_oauth import bots, installations
from vpsbot.vps.sandbox import Sandbox, SandboxServer
from vpsbot.web import BackgroundServer, SlackWsgiApp

KEY = Fernet.generate_key().decode()
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "oauth-client-secret"
ALPHA, BRAVO = "T0ALPHA", "T0BRAVO"
ANNA, BERT = "U0ANNA", "U0BERT"  # who installed vpsbot in each workspace
CAROL = "U0CAROL"  # a member of ALPHA who administers nothing
TOKEN_A, TOKEN_B = "vps-token-alpha-0123456789", "vps-token-bravo-9876543210"
UNREACHABLE = "http://127.0.0.1:9/api/v1/"
TRICKLING_TOKEN = "token-of-a-slow-vps-org"


@pytest.fixture
def sandboxes() -> Iterator[dict[str, SandboxServer]]:
    alpha = Sandbox(token=TOKEN_A, seed=False)
    alpha.add_server("alpha-web", server_id=101)
    bravo = Sandbox(token=TOKEN_B, seed=False)
    bravo.add_server("bravo-db", server_id=202)
    bravo.add_server("bravo-cache", server_id=203)
    servers = {TOKEN_A: SandboxServer(alpha), TOKEN_B: SandboxServer(bravo)}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def local_slack() -> Iterator[LocalSlack]:
    with LocalSlack(team_id="T0NOBODY") as fake:
        yield fake


class _TricklingHandler(BaseHTTPRequestHandler):
    """A VPS.org that answers 200 at once, then its body a few bytes at a time."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b'{"count": 0, "next": null, "previous": null, "results": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), 8):
            self.wfile.write(body[start : start + 8])
            self.wfile.flush()
            time.sleep(0.4)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def trickling_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TricklingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def multi_bot(
    session_factory, local_slack, sandboxes, trickling_url
) -> Iterator[VpsBot]:
    settings = Settings(
        slack_signing_secret=Secret(SECRET),
        slack_api_url=local_slack.api_url,
        admins=(ALICE,),
        slack_client_id=CLIENT_ID,
        slack_client_secret=Secret(CLIENT_SECRET),
        secret_keys=(Secret(KEY),),
        worker_threads=4,
    )
    urls = {token: server.url for token, server in sandboxes.items()}
    # A token VPS.org does not know goes to the first sandbox, which refuses it.
    urls["not-a-real-token"] = sandboxes[TOKEN_A].url
    urls[TRICKLING_TOKEN] = trickling_url
    app = create_app(
        settings,
        sessions=session_factory,
        provider_url=lambda token: urls.get(token.value, UNREACHABLE),
    )
    yield app
    app.close()


@pytest.fixture
def server(multi_bot, engine) -> Iterator[BackgroundServer]:
    with BackgroundServer(
        SlackWsgiApp(multi_bot.bolt, engine, signing_secret=SECRET), threads=8
    ) as served:
        yield served


class Workspaces:
    """Installs vpsbot in workspaces and talks to it as their users."""

    def __init__(self, served: BackgroundServer, bot: VpsBot, slack: LocalSlack):
        self.url = served.url
        self.bot = bot
        self.slack = slack
        self.http = requests.Session()
        self._names = 0

    def install(self, team_id: str, user_id: str) -> requests.Response:
        """The browser's trip: /slack/install, Slack, /slack/oauth_redirect."""
        started = self.http.get(self.url + "/slack/install", allow_redirects=False)
        assert started.status_code == 302
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        code = f"code-{team_id}"
        self.slack.grant_install(code, team_id=team_id, user_id=user_id)
        return self.http.get(
            self.url + "/slack/oauth_redirect",
            params={"code": code, "state": state},
            headers={"Cookie": _state_cookie(started)},
            allow_redirects=False,
        )

    def post(self, body: str, *, json_body: bool = False) -> requests.Response:
        headers = payloads.signed_headers(SECRET, body)
        if json_body:
            headers["content-type"] = "application/json"
        response = self.http.post(
            self.url + "/slack/events", data=body.encode(), headers=headers, timeout=10
        )
        assert self.bot.background.wait_idle(timeout=30)
        return response

    def command(self, team_id: str, user_id: str, text: str) -> tuple[str, int]:
        self._names += 1
        name = f"resp{self._names}"
        body = payloads.slash_command(
            text,
            team_id=team_id,
            channel_id=CHANNEL,
            user_id=user_id,
            response_url=self.slack.response_url(name),
        )
        return name, self.post(body).status_code

    def answer(self, name: str) -> str:
        return "\n".join(
            json.dumps(call.body, ensure_ascii=False)
            for call in self.slack.responses(name)
        )

    def submit_token(self, team_id: str, user_id: str, token: str) -> dict:
        [opened] = self.slack.api_calls("views.open")[-1:]
        view = {**opened.body["view"], "id": "V0CONNECT", "hash": "h-1"}
        body = payloads.view_submission(
            view, {TOKEN_BLOCK: {TOKEN_ACTION: token}}, team_id=team_id, user_id=user_id
        )
        response = self.post(body)
        assert response.status_code == 200
        return response.json() if response.text else {}

    def event(
        self, team_id: str, event: dict, *, event_time: int | None = None
    ) -> requests.Response:
        body = json.dumps(
            {
                "token": "local-verification-token",
                "team_id": team_id,
                "api_app_id": payloads.APP_ID,
                "type": "event_callback",
                "event_id": f"Ev{time.time_ns()}",
                "event_time": event_time or int(time.time()),
                "event": event,
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": team_id,
                        "user_id": "U0VPSBOT",
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
            }
        )
        return self.post(body, json_body=True)


def _state_cookie(started: requests.Response) -> str:
    """The browser's copy of the state cookie (marked Secure: sent by hand)."""
    return started.headers["Set-Cookie"].split(";")[0]


@pytest.fixture
def workspaces(server, multi_bot, local_slack) -> Workspaces:
    return Workspaces(server, multi_bot, local_slack)


def _allow_everything(session_factory, *teams: str) -> None:
    with session_scope(session_factory) as session:
        for team in teams:
            PolicyRepository(session).set_rules(
                team_id=team, channel_id=CHANNEL, rules=ALL_ALLOWED, updated_by=ALICE
            )


def _audit(session_factory) -> list[dict]:
    out = io.StringIO()
    with session_scope(session_factory) as session:
        audit.export(session, out, fmt="jsonl")
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _rows(session_factory, table) -> list[dict]:
    with session_scope(session_factory) as session:
        return [dict(row._mapping) for row in session.execute(select(table)).all()]


def _credentials(session_factory) -> dict[str, str]:
    with session_scope(session_factory) as session:
        rows = session.execute(
            select(WorkspaceCredential.team_id, WorkspaceCredential.ciphertext)
        ).all()
    return dict(rows)


def _eventually(check, timeout: float = 10.0) -> None:
    """Wait for ``check()``: Bolt runs event listeners after answering Slack."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _connect(workspaces: Workspaces, team: str, user: str, token: str) -> dict:
    name, status = workspaces.command(team, user, "connect")
    assert status == 200
    assert workspaces.answer(name) == ""
    return workspaces.submit_token(team, user, token)


# The OAuth install


def test_install_redirects_to_slack_with_a_state_then_stores_the_install(
    workspaces, session_factory, local_slack
):
    started = requests.get(workspaces.url + "/slack/install", allow_redirects=False)

    assert started.status_code == 302
    location = urlsplit(started.headers["Location"])
    query = parse_qs(location.query)
    assert (location.netloc, location.path) == ("slack.com", "/oauth/v2/authorize")
    assert query["client_id"] == [CLIENT_ID]
    assert query["scope"] == [
        "commands,chat:write,usergroups:read,users:read,files:write,channels:read,"
        "groups:read"
    ]
    assert len(query["state"][0]) >= 32
    assert "slack-app-oauth-state=" in started.headers["Set-Cookie"]

    finished = workspaces.install(ALPHA, ANNA)

    assert finished.status_code == 200
    [exchange] = local_slack.api_calls("oauth.v2.access")
    assert exchange.body["code"] == f"code-{ALPHA}"
    [row] = _rows(session_factory, installations)
    assert (row["team_id"], row["user_id"], row["client_id"]) == (
        ALPHA,
        ANNA,
        CLIENT_ID,
    )
    [bot] = _rows(session_factory, bots)
    assert bot["team_id"] == ALPHA
    # Slack's token is kept encrypted with VPSBOT_SECRET_KEY, in both tables.
    [issued] = local_slack.bot_tokens
    for stored in (row["bot_token"], bot["bot_token"]):
        assert issued not in stored
        assert Fernet(KEY.encode()).decrypt(stored.encode()).decode() == issued


def test_key_rotation_reencrypts_slacks_tokens_too(
    workspaces, session_factory, engine, local_slack
):
    workspaces.install(ALPHA, ANNA)
    new_key = Fernet.generate_key().decode()

    rotated = rotate_tokens(engine, TokenCipher((Secret(new_key), Secret(KEY))))

    assert rotated == 2  # the installation row and the bot row
    [issued] = local_slack.bot_tokens
    for table in (installations, bots):
        [row] = _rows(session_factory, table)
        assert Fernet(new_key.encode()).decrypt(row["bot_token"].encode()) == (
            issued.encode()
        )


def test_a_redirect_is_accepted_once(workspaces, session_factory, local_slack):
    started = workspaces.http.get(
        workspaces.url + "/slack/install", allow_redirects=False
    )
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    local_slack.grant_install("code-1", team_id=ALPHA, user_id=ANNA)
    local_slack.grant_install("code-2", team_id=BRAVO, user_id=BERT)
    redirect = workspaces.url + "/slack/oauth_redirect"

    cookie = {"Cookie": _state_cookie(started)}
    first = workspaces.http.get(
        redirect, params={"code": "code-1", "state": state}, headers=cookie
    )
    again = workspaces.http.get(
        redirect, params={"code": "code-2", "state": state}, headers=cookie
    )

    assert first.status_code == 200
    assert again.status_code == 401
    assert [row["team_id"] for row in _rows(session_factory, installations)] == [ALPHA]
    assert len(local_slack.api_calls("oauth.v2.access")) == 1


def test_a_command_from_an_installed_workspace_uses_its_bot_token(
    workspaces, local_slack
):
    workspaces.install(ALPHA, ANNA)
    workspaces.install(BRAVO, BERT)
    token_of = {team: token for token, team in local_slack.bot_tokens.items()}

    workspaces.command(BRAVO, BERT, "connect")
    workspaces.command(ALPHA, ANNA, "connect")

    opened = local_slack.api_calls("views.open")
    assert [call.token for call in opened] == [token_of[BRAVO], token_of[ALPHA]]


# A workspace with no VPS.org account


def test_every_server_command_says_no_account_is_connected(
    workspaces, session_factory, sandboxes, local_slack
):
    workspaces.install(ALPHA, ANNA)
    texts = (
        "list",
        "show alpha-web",
        "reboot alpha-web",
        "rename 101 x-1",
        "backups 101 on",
        "create x-1 plan=1 os=5 location=us-west",
    )

    # In a channel with no policy yet, and in one that allows everything.
    answers = []
    for channel_allows in (False, True):
        if channel_allows:
            _allow_everything(session_factory, ALPHA)
        for text in texts:
            name, _ = workspaces.command(ALPHA, ANNA, text)
            answers.append([call.body["text"] for call in local_slack.responses(name)])
    workspaces.command(ALPHA, ANNA, "delete alpha-web")

    assert answers == [[NO_ACCOUNT]] * (2 * len(texts))
    [dialog] = local_slack.api_calls("views.update")
    assert dialog.body["view"]["blocks"][0]["text"]["text"] == NO_ACCOUNT
    assert [entry["action"] for entry in _audit(session_factory)] == []
    assert all(server.sandbox.calls == [] for server in sandboxes.values())


# /vps connect


def test_installer_connects_with_a_good_token_stored_encrypted_and_audited(
    workspaces, session_factory, local_slack, caplog
):
    caplog.set_level(logging.DEBUG)
    workspaces.install(ALPHA, ANNA)

    name, _ = workspaces.command(ALPHA, ANNA, "connect")
    [opened] = local_slack.api_calls("views.open")
    labels = [b["label"]["text"] for b in opened.body["view"]["blocks"]]
    assert labels == ["VPS.org API token"]
    answer = workspaces.submit_token(ALPHA, ANNA, TOKEN_A)

    assert answer["response_action"] == "update"
    [update] = local_slack.api_calls("views.update")
    assert update.body["view_id"] == "V0CONNECT"
    assert update.body["view"]["blocks"][0]["text"]["text"] == (
        "Connected. vpsbot now uses this workspace's VPS.org account (1 server on it)."
    )
    stored = _credentials(session_factory)
    assert list(stored) == [ALPHA]
    assert TOKEN_A not in stored[ALPHA]
    assert Fernet(KEY.encode()).decrypt(stored[ALPHA].encode()).decode() == TOKEN_A
    [entry] = _audit(session_factory)
    assert (entry["team"], entry["user"], entry["action"], entry["outcome"]) == (
        ALPHA,
        ANNA,
        "policy",
        "succeeded",
    )
    assert entry["detail"] == (
        "connected the workspace's VPS.org account (1 server on it)"
    )
    # The token went to VPS.org and nowhere else.
    assert all(TOKEN_A not in json.dumps(call.body) for call in local_slack.calls)
    assert TOKEN_A not in caplog.text
    assert TOKEN_A not in json.dumps(_audit(session_factory))


def test_a_refused_token_is_an_inline_error_and_nothing_is_stored(
    workspaces, session_factory
):
    workspaces.install(ALPHA, ANNA)

    answer = _connect(workspaces, ALPHA, ANNA, "not-a-real-token")

    assert answer == {
        "response_action": "errors",
        "errors": {TOKEN_BLOCK: "VPS.org did not accept this token"},
    }
    assert _credentials(session_factory) == {}
    [entry] = _audit(session_factory)
    assert (entry["action"], entry["outcome"]) == ("policy", "failed")
    assert entry["detail"] == "VPS.org did not accept the token offered; nothing stored"


def test_an_unreachable_vps_org_is_an_inline_error_and_nothing_is_stored(
    workspaces, session_factory
):
    workspaces.install(ALPHA, ANNA)

    answer = _connect(workspaces, ALPHA, ANNA, "token-for-nowhere")

    assert answer == {
        "response_action": "errors",
        "errors": {TOKEN_BLOCK: "could not reach VPS.org; nothing was stored"},
    }
    assert _credentials(session_factory) == {}
    [entry] = _audit(session_factory)
    assert entry["outcome"] == "failed"


def test_a_token_that_is_not_one_line_is_refused_before_anything_is_tried(
    workspaces, session_factory, caplog
):
    caplog.set_level(logging.DEBUG)
    workspaces.install(ALPHA, ANNA)
    secret_part = "def-vps-token-ALPHA-secret-000111"

    answers = [
        _connect(workspaces, ALPHA, ANNA, token)
        for token in (f"abc\n{secret_part}", f"abc {secret_part}", "€" + secret_part)
    ]

    malformed = (
        "A VPS.org API token is one line of letters, digits and punctuation (at "
        "most 500 characters); paste it again."
    )
    refusal = {"response_action": "errors", "errors": {TOKEN_BLOCK: malformed}}
    assert answers == [refusal, refusal, refusal]
    assert _credentials(session_factory) == {}
    assert secret_part not in caplog.text


def test_a_vps_org_that_trickles_its_answer_is_given_up_in_time(
    workspaces, session_factory
):
    workspaces.install(ALPHA, ANNA)

    answer = _connect(workspaces, ALPHA, ANNA, TRICKLING_TOKEN)
    time.sleep(3.5)  # the whole answer has arrived by now, and is ignored

    assert answer == {
        "response_action": "errors",
        "errors": {TOKEN_BLOCK: "could not reach VPS.org; nothing was stored"},
    }
    assert _credentials(session_factory) == {}


def test_someone_who_administers_nothing_cannot_connect(
    workspaces, session_factory, local_slack
):
    workspaces.install(ALPHA, ANNA)

    name, _ = workspaces.command(ALPHA, CAROL, "connect")

    assert local_slack.api_calls("views.open") == []
    assert "Only an admin (VPSBOT_ADMINS, or whoever installed vpsbot in this " in (
        workspaces.answer(name)
    )
    assert _audit(session_factory) == []


def test_a_submission_by_a_non_admin_is_refused_and_audited(
    workspaces, session_factory, local_slack
):
    workspaces.install(ALPHA, ANNA)
    workspaces.command(ALPHA, ANNA, "connect")

    answer = workspaces.submit_token(ALPHA, CAROL, TOKEN_A)

    assert answer["response_action"] == "errors"
    assert answer["errors"][TOKEN_BLOCK].startswith("Only an admin")
    assert _credentials(session_factory) == {}
    [entry] = _audit(session_factory)
    assert (entry["user"], entry["action"], entry["outcome"]) == (
        CAROL,
        "policy",
        "denied",
    )


def test_an_admin_of_vpsbot_may_connect_any_workspace(workspaces, session_factory):
    workspaces.install(ALPHA, ANNA)

    answer = _connect(workspaces, ALPHA, ALICE, TOKEN_A)

    assert answer["response_action"] == "update"
    assert list(_credentials(session_factory)) == [ALPHA]


# Two workspaces, one database


def test_each_workspace_sees_only_its_own_account(workspaces, session_factory):
    workspaces.install(ALPHA, ANNA)
    workspaces.install(BRAVO, BERT)
    _allow_everything(session_factory, ALPHA, BRAVO)
    _connect(workspaces, ALPHA, ANNA, TOKEN_A)
    _connect(workspaces, BRAVO, BERT, TOKEN_B)

    alpha, _ = workspaces.command(ALPHA, ANNA, "list")
    bravo, _ = workspaces.command(BRAVO, BERT, "list")
    missing, _ = workspaces.command(BRAVO, BERT, "show alpha-web")

    assert "alpha-web" in workspaces.answer(alpha)
    assert "bravo" not in workspaces.answer(alpha)
    assert "bravo-db" in workspaces.answer(bravo)
    assert "bravo-cache" in workspaces.answer(bravo)
    assert "alpha-web" not in workspaces.answer(bravo)
    assert "There is no server called alpha-web." in workspaces.answer(missing)
    lists = [
        (entry["team"], entry["detail"])
        for entry in _audit(session_factory)
        if entry["action"] == "list"
    ]
    assert lists == [(ALPHA, "1 server"), (BRAVO, "2 servers")]


def test_a_changed_token_is_used_at_the_next_request(
    workspaces, session_factory, sandboxes
):
    workspaces.install(ALPHA, ANNA)
    _allow_everything(session_factory, ALPHA)
    _connect(workspaces, ALPHA, ANNA, TOKEN_A)
    first, _ = workspaces.command(ALPHA, ANNA, "list")

    _connect(workspaces, ALPHA, ANNA, TOKEN_B)
    second, _ = workspaces.command(ALPHA, ANNA, "list")

    assert "alpha-web" in workspaces.answer(first)
    assert "bravo-db" in workspaces.answer(second)
    assert "alpha-web" not in workspaces.answer(second)


# Uninstall and revoked tokens


def test_uninstall_deletes_tokens_and_credential_and_keeps_the_audit_log(
    workspaces, session_factory
):
    workspaces.install(ALPHA, ANNA)
    workspaces.install(BRAVO, BERT)
    _connect(workspaces, ALPHA, ANNA, TOKEN_A)
    _connect(workspaces, BRAVO, BERT, TOKEN_B)
    before = _audit(session_factory)

    response = workspaces.event(ALPHA, {"type": "app_uninstalled"})

    assert response.status_code == 200
    _eventually(lambda: list(_credentials(session_factory)) == [BRAVO])
    assert [row["team_id"] for row in _rows(session_factory, installations)] == [BRAVO]
    assert [row["team_id"] for row in _rows(session_factory, bots)] == [BRAVO]
    assert list(_credentials(session_factory)) == [BRAVO]
    assert _audit(session_factory) == before
    assert len(before) == 2


def test_a_removal_older_than_the_installation_is_ignored(
    workspaces, session_factory, caplog
):
    caplog.set_level(logging.INFO)
    workspaces.install(ALPHA, ANNA)
    _connect(workspaces, ALPHA, ANNA, TOKEN_A)
    # Slack retrying the revocation of the installation before this one.
    before_install = int(time.time()) - 120

    for event in (
        {"type": "tokens_revoked", "tokens": {"bot": ["U0VPSBOT"]}},
        {"type": "app_uninstalled"},
    ):
        response = workspaces.event(ALPHA, event, event_time=before_install)
        assert response.status_code == 200

    _eventually(lambda: caplog.text.count("predates the current installation") == 2)
    assert list(_credentials(session_factory)) == [ALPHA]
    assert [row["team_id"] for row in _rows(session_factory, bots)] == [ALPHA]


def test_a_revoked_bot_token_deletes_the_workspace_tokens_and_credential(
    workspaces, session_factory, local_slack, sandboxes
):
    workspaces.install(ALPHA, ANNA)
    _connect(workspaces, ALPHA, ANNA, TOKEN_A)

    response = workspaces.event(
        ALPHA, {"type": "tokens_revoked", "tokens": {"bot": ["U0VPSBOT"]}}
    )

    assert response.status_code == 200
    _eventually(lambda: _credentials(session_factory) == {})
    assert _rows(session_factory, installations) == []
    assert _rows(session_factory, bots) == []
    assert _credentials(session_factory) == {}
    assert [entry["outcome"] for entry in _audit(session_factory)] == ["succeeded"]
    # Slack would no longer send this workspace's commands; if one came, Bolt
    # finds no installation and nothing reaches VPS.org.
    calls = list(sandboxes[TOKEN_A].sandbox.calls)
    name, status = workspaces.command(ALPHA, ANNA, "list")
    assert status == 200
    assert "your installation with this app is no longer available" in (
        workspaces.answer(name)
    )
    assert sandboxes[TOKEN_A].sandbox.calls == calls


# Single-workspace mode


def test_connect_in_single_workspace_mode_says_where_the_token_comes_from(
    slack, local_slack
):
    _, name = slack.command("connect")

    assert slack.answer_text(name) == messages.connect_single_workspace()
    assert "VPS_API_TOKEN" in messages.connect_single_workspace()
    assert local_slack.api_calls("views.open") == []


# Work done later, from the database, uses the row's workspace


def test_a_followed_reboot_polls_and_updates_with_the_workspaces_own_tokens(
    workspaces, multi_bot, session_factory, local_slack, sandboxes
):
    workspaces.install(ALPHA, ANNA)
    workspaces.install(BRAVO, BERT)
    _allow_everything(session_factory, BRAVO)
    _connect(workspaces, ALPHA, ANNA, TOKEN_A)
    _connect(workspaces, BRAVO, BERT, TOKEN_B)
    sandboxes[TOKEN_B].sandbox.transition_delay = 1.0
    follower = multi_bot.follower
    follower.backoff = Backoff(first=0.2, factor=1.5, cap=0.4, jitter=0.0)
    follower._tick_interval = 0.05
    follower.start()
    alpha_calls = list(sandboxes[TOKEN_A].sandbox.calls)
    bravo_token = next(t for t, team in local_slack.bot_tokens.items() if team == BRAVO)

    workspaces.command(BRAVO, BERT, "reboot bravo-db")

    assert local_slack.wait_for(
        lambda calls: any(
            call.name == "chat.update"
            and "bravo-db is `active` after" in call.body.get("text", "")
            for call in calls
        ),
        30,
    )
    [post] = local_slack.api_calls("chat.postMessage")
    updates = local_slack.api_calls("chat.update")
    assert post.token == bravo_token
    assert {update.token for update in updates} == {bravo_token}
    polls = [
        path
        for method, path in sandboxes[TOKEN_B].sandbox.calls
        if method == "GET" and path.startswith("/api/v1/servers/202")
    ]
    assert len(polls) >= 2
    assert sandboxes[TOKEN_A].sandbox.calls == alpha_calls


def test_an_approval_runs_on_the_workspaces_account_and_redraws_with_its_token(
    workspaces, session_factory, local_slack, sandboxes
):
    beth = "U0BETH"
    workspaces.install(BRAVO, BERT)
    _connect(workspaces, BRAVO, BERT, TOKEN_B)
    with session_scope(session_factory) as session:
        policies = PolicyRepository(session)
        policies.set_rules(
            team_id=BRAVO,
            channel_id=CHANNEL,
            rules={**ALL_ALLOWED, "power": "approve"},
            updated_by=ALICE,
        )
        policies.set_approvers(
            team_id=BRAVO, channel_id=CHANNEL, approvers=[beth], updated_by=ALICE
        )
    bravo_token = next(t for t, team in local_slack.bot_tokens.items() if team == BRAVO)

    workspaces.command(BRAVO, BERT, "reboot bravo-cache")
    [request] = local_slack.api_calls("chat.postMessage")
    approve = next(
        element
        for block in request.body["blocks"]
        for element in block.get("elements") or []
        if element.get("action_id") == APPROVE_BUTTON
    )
    body = payloads.block_action(
        {"action_id": APPROVE_BUTTON, "value": approve["value"]},
        team_id=BRAVO,
        channel_id=CHANNEL,
        user_id=beth,
        response_url=local_slack.response_url("approve"),
    )
    workspaces.post(body)

    reboots = [
        path
        for method, path in sandboxes[TOKEN_B].sandbox.calls
        if method == "POST" and path.endswith("/reboot/")
    ]
    assert reboots == ["/api/v1/servers/203/reboot/"]
    [redrawn] = local_slack.api_calls("chat.update")
    assert redrawn.token == bravo_token
    outcomes = [
        (entry["team"], entry["action"], entry["outcome"])
        for entry in _audit(session_factory)
        if entry["action"] == "reboot"
    ]
    assert outcomes == [
        (BRAVO, "reboot", "requested"),
        (BRAVO, "reboot", "approved"),
        (BRAVO, "reboot", "succeeded"),
    ]


# Who administers a workspace


def test_the_installer_administers_their_workspace_and_no_other(
    workspaces, session_factory, local_slack
):
    workspaces.install(ALPHA, ANNA)
    workspaces.install(BRAVO, BERT)

    own, _ = workspaces.command(ALPHA, ANNA, "policy read=allow")
    other, _ = workspaces.command(BRAVO, ANNA, "policy read=allow")
    member, _ = workspaces.command(ALPHA, CAROL, "policy read=allow")

    [announced] = local_slack.api_calls("chat.postMessage")
    assert announced.body["text"] == (
        f"<@{ANNA}> changed this channel's vpsbot policy: `read=allow`"
    )
    assert workspaces.answer(own) == ""
    assert f"Admins: <@{ALICE}>, <@{BERT}>." in workspaces.answer(other)
    assert f"Admins: <@{ALICE}>, <@{ANNA}>." in workspaces.answer(member)
    outcomes = [
        (entry["team"], entry["user"], entry["outcome"])
        for entry in _audit(session_factory)
    ]
    assert outcomes == [
        (ALPHA, ANNA, "succeeded"),
        (BRAVO, ANNA, "denied"),
        (ALPHA, CAROL, "denied"),
    ]


def test_an_uninstall_in_single_workspace_mode_is_answered_and_logged(
    slack, caplog, session_factory
):
    caplog.set_level(logging.WARNING)
    body = json.dumps(
        {
            "team_id": "T0TEST",
            "api_app_id": payloads.APP_ID,
            "type": "event_callback",
            "event_id": "Ev0UNINSTALL",
            "event_time": int(time.time()),
            "event": {"type": "app_uninstalled"},
        }
    )
    headers = {
        **payloads.signed_headers(SECRET, body),
        "content-type": "application/json",
    }

    response = slack.post(body, headers=headers)

    assert response.status_code == 200
    _eventually(lambda: "SLACK_BOT_TOKEN no longer works" in caplog.text)
    assert _audit(session_factory) == []
