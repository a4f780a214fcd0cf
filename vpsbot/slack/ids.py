"""Slack identifiers this app registers: the command, action and view ids."""

from __future__ import annotations

COMMAND = "/vps"

SHOW_BUTTON = "vps_show"
POWER_BUTTONS = {"start": "vps_start", "stop": "vps_stop", "reboot": "vps_reboot"}
DELETE_BUTTON = "vps_delete"

DELETE_VIEW = "vps_delete_confirm"
DELETE_NAME_BLOCK = "delete_name"
DELETE_NAME_ACTION = "value"

CREATE_VIEW = "vps_create"
UPDATE_VIEW = "vps_update"
# The create and edit dialogs' inputs: one block per field, named as the field.
FORM_ACTION = "value"

# Approval requests: the buttons on the request message (value: the request's
# public id) and the requester's own Cancel.
APPROVE_BUTTON = "vps_approve"
DENY_BUTTON = "vps_deny"
CANCEL_REQUEST_BUTTON = "vps_approval_cancel"

# Under a /vps audit page (value: the page's filters and where it starts).
AUDIT_NEWER_BUTTON = "vps_audit_newer"
AUDIT_OLDER_BUTTON = "vps_audit_older"
# Under every /vps audit answer (value: the answer's filters, as the page
# buttons carry them).
AUDIT_EXPORT_BUTTON = "vps_audit_export"

# Approve and Deny on a request listed in the App Home (value: the request's
# public id). Apart from the channel message's buttons: a click in the Home
# carries no channel and no response_url.
HOME_APPROVE_BUTTON = "vps_home_approve"
HOME_DENY_BUTTON = "vps_home_deny"
