"""Builds the Bolt app and registers every listener."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient

from vpsbot.ops import Actor, ChangeResult, Operations
from vpsbot.ops.connecting import AccountConnection
from vpsbot.ops.tracking import Follower
from vpsbot.slack import (
    actions,
    audit_export,
    audit_pages,
    commands,
    connect,
    editing,
    installs,
    middleware,
    views,
)
from vpsbot.slack.approvals import ApprovalDesk, ApprovalNotices
from vpsbot.slack.connect import ConnectDialogs
from vpsbot.slack.context import SlackContext
from vpsbot.slack.editing import ServerDialogs
from vpsbot.slack.home import ChannelMemberships, HomeTab
from vpsbot.slack.replies import Replies
from vpsbot.slack.usergroups import GroupMembersCache
from vpsbot.slack.views import DeleteDialogs
from vpsbot.slack.worker import Background

logger = logging.getLogger(__name__)

# Bolt's listeners only parse, hand work to our pools and acknowledge, so a
# modest pool keeps up; Bolt's default of five is raised for bursts.
LISTENER_THREADS = 16

BOLT_LOGGER = "vpsbot.bolt"


class _IgnoreTokenFromEnvironment(logging.Filter):
    """Drop Bolt's notice that ``SLACK_BOT_TOKEN`` loses to our own client.

    Bolt reads the variable by itself and warns at every start that the
    client we pass wins; that is intended here, so the notice is noise.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger(BOLT_LOGGER).addFilter(_IgnoreTokenFromEnvironment())


def build_bolt_app(
    *,
    signing_secret: str,
    client: WebClient,
    ops: Operations,
    background: Background,
    follower: Follower | None = None,
    notices: ApprovalNotices | None = None,
    connection: AccountConnection | None = None,
    oauth: OAuthSettings | None = None,
    on_removed: installs.OnRemoved | None = None,
) -> App:
    """The Bolt app, for one workspace or (with ``oauth``) for many.

    Args:
        signing_secret: verifies every HTTP request from Slack.
        client: the Web API client (its base URL honours ``SLACK_API_URL``).
        ops: the use cases.
        background: the pools that run work after acknowledgement.
        follower: follows announced long operations (none: not followed).
        notices: redraws approval requests (default: one on ``client``).
        connection: stores workspaces' VPS.org tokens (``/vps connect``);
            none in single-workspace mode.
        oauth: the multi-workspace install; ``client`` then holds no token,
            and each request gets one with its workspace's bot token.
        on_removed: called with a team id after an uninstall or a revoked
            bot token deleted its installation (multi-workspace mode).
    """
    app = App(
        client=client,
        signing_secret=signing_secret,
        oauth_settings=oauth,
        authorize=installs.authorize(oauth, client) if oauth is not None else None,
        token_verification_enabled=False,
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener"
        ),
        logger=logging.getLogger(BOLT_LOGGER),
    )

    def announce(
        actor: Actor, replies: Replies, result: ChangeResult, reason: str | None
    ) -> None:
        commands.announce_change(actor, replies, result, reason, follow=slack.follow)

    notices = notices or ApprovalNotices(client)
    desk = ApprovalDesk(
        ops=ops, background=background, notices=notices, announce=announce
    )
    slack = SlackContext(
        ops=ops,
        background=background,
        dialogs=DeleteDialogs(ops=ops, background=background, ask=desk.ask),
        server_dialogs=ServerDialogs(
            ops=ops, background=background, announce=announce, ask=desk.ask
        ),
        approvals=desk,
        follower=follower,
        connect=ConnectDialogs(connection=connection, background=background)
        if connection is not None
        else None,
    )
    middleware.register(app)
    commands.register(app, slack)
    actions.register(app, slack)
    audit_pages.register(app, slack)
    audit_export.register(app, slack)
    views.register(app, slack.dialogs)
    editing.register(app, slack.server_dialogs)
    desk.register(app)
    HomeTab(
        ops=ops,
        background=background,
        desk=desk,
        groups=GroupMembersCache(notices.members_of),
        memberships=ChannelMemberships(client),
    ).register(app)
    if slack.connect is not None:
        connect.register(app, slack.connect)
    if oauth is not None:
        installs.register(app, oauth, on_removed or (lambda team_id: None))
    else:
        installs.register_single_workspace(app)
    return app
