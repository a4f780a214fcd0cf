"""The tables of Slack's OAuth install, as slack_sdk's SQLAlchemy stores use them.

slack_sdk defines them (``slack_installations``, ``slack_bots`` and
``slack_oauth_states``); they are attached to vpsbot's metadata here so that
Alembic owns them like every other table (migration 0006) and nothing calls
``create_all`` at run time.
"""

from __future__ import annotations

import logging

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from vpsbot.store.base import Base

logger = logging.getLogger(__name__)

INSTALLATIONS_TABLE = SQLAlchemyInstallationStore.default_installations_table_name
BOTS_TABLE = SQLAlchemyInstallationStore.default_bots_table_name
STATES_TABLE = SQLAlchemyOAuthStateStore.default_table_name

installations = SQLAlchemyInstallationStore.build_installations_table(
    Base.metadata, INSTALLATIONS_TABLE
)
bots = SQLAlchemyInstallationStore.build_bots_table(Base.metadata, BOTS_TABLE)
oauth_states = SQLAlchemyOAuthStateStore.build_oauth_states_table(
    Base.metadata, STATES_TABLE
)
