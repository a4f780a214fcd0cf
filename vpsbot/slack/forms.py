"""The create and edit dialogs: their views, and the values read back from them.

Each field is an input block named after the field (``name``, ``plan``, …), so
a problem found by vpsbot or by the provider lands next to its input: inline
with ``response_action: errors`` while the submission is being acknowledged,
or as a warning under the input when the form is drawn again after a check
that needed the provider. No I/O here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from vpsbot.catalog import Catalog
from vpsbot.ops import CreateRequest, Edit
from vpsbot.slack import messages
from vpsbot.slack.ids import CREATE_VIEW, FORM_ACTION, UPDATE_VIEW

logger = logging.getLogger(__name__)

LABELS = {
    "name": "Name",
    "plan": "Plan",
    "os": "Operating system",
    "location": "Location",
    "hostname": "Hostname",
    "backups": "Backups",
}
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_METADATA = 3000

_ON_OFF = (("on", "On"), ("off", "Off"))


@dataclass(frozen=True)
class CreateForm:
    """What a create form holds: option values as submitted, text as typed."""

    name: str = ""
    plan: str = ""
    os: str = ""
    location: str = ""
    hostname: str = ""
    backups: bool = False

    def request(self) -> CreateRequest:
        return CreateRequest(
            name=self.name,
            plan=self.plan,
            os=self.os,
            location=self.location,
            hostname=self.hostname or None,
            backups=self.backups,
        )


def create_view(
    catalog: Catalog,
    metadata: Mapping[str, Any],
    *,
    typed: CreateForm | None = None,
    problems: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The create dialog, filled with ``typed`` and marked with ``problems``."""
    typed = typed or CreateForm()
    problems = problems or {}
    plans = [(str(plan.id), plan.label) for plan in catalog.plans]
    systems = [(str(system.id), system.label) for system in catalog.systems]
    locations = [(code, code) for code in catalog.locations]
    blocks = _notice(problems) + [
        _text_input("name", typed.name, problems, placeholder="web-03", limit=63),
        _select("plan", plans, typed.plan, problems),
        _select("os", systems, typed.os, problems),
        _select("location", locations, typed.location, problems),
        _text_input(
            "hostname",
            typed.hostname,
            problems,
            placeholder="web-03.example.com",
            limit=253,
            optional=True,
            hint="Optional: a fully qualified domain name.",
        ),
        _backups(typed.backups, problems),
    ]
    return _modal(
        CREATE_VIEW, "Create server", "Create", metadata, blocks, "create dialog"
    )


def edit_view(
    name: str,
    metadata: Mapping[str, Any],
    *,
    values: Edit,
    problems: Mapping[str, str] | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The edit dialog for server ``name``, prefilled with ``values``."""
    problems = problems or {}
    top: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"Editing *{messages.escape(name)}*. Name, hostname and "
                f"backups are saved together."
            )
        )
    ]
    if notice:
        top.append(ContextBlock(elements=[MarkdownTextObject(text=notice)]))
    blocks = (
        top
        + _notice(problems)
        + [
            _text_input("name", values.name, problems, placeholder=name, limit=63),
            _text_input(
                "hostname",
                values.hostname,
                problems,
                placeholder="web-03.example.com",
                limit=253,
                hint=None
                if values.hostname
                else "This server has no hostname; VPS.org needs one to save.",
            ),
            _backups(values.backups, problems),
        ]
    )
    return _modal(UPDATE_VIEW, "Edit server", "Save", metadata, blocks, "edit dialog")


def read_create(view: Mapping[str, Any]) -> CreateForm:
    """The create form's values as submitted."""
    values = _values(view)
    return CreateForm(
        name=_text(values, "name"),
        plan=_selected(values, "plan"),
        os=_selected(values, "os"),
        location=_selected(values, "location"),
        hostname=_text(values, "hostname"),
        backups=_selected(values, "backups") == "on",
    )


def read_edit(view: Mapping[str, Any]) -> Edit:
    """The edit form's values as submitted."""
    values = _values(view)
    return Edit(
        name=_text(values, "name"),
        hostname=_text(values, "hostname"),
        backups=_selected(values, "backups") == "on",
    )


def choice_problems(view: Mapping[str, Any]) -> dict[str, str]:
    """A Backups answer that is neither On nor Off (only a forged payload)."""
    if _selected(_values(view), "backups") not in ("on", "off"):
        return {"backups": "choose On or Off"}
    return {}


def metadata_of(view: Mapping[str, Any]) -> dict[str, Any]:
    """The dialog's private metadata, or ``{}`` when it is not an object.

    Raises:
        ValueError: it is not JSON.
    """
    data = json.loads(view.get("private_metadata") or "{}")
    return data if isinstance(data, dict) else {}


def _modal(
    callback_id: str,
    title: str,
    submit: str,
    metadata: Mapping[str, Any],
    blocks: list[Block],
    what: str,
) -> dict[str, Any]:
    # Slack counts characters, so a reason in any script is kept as typed
    # rather than as \u escapes six times its length.
    private_metadata = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    if len(private_metadata) > MAX_METADATA:
        raise ValueError(f"{what} metadata exceeds Slack's {MAX_METADATA} characters")
    return View(
        type="modal",
        callback_id=callback_id,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=blocks,
    ).to_dict()


def _notice(problems: Mapping[str, str]) -> list[Block]:
    if not problems:
        return []
    lines = [":warning: Nothing was sent. Please check:"]
    lines += [
        f"• *{LABELS.get(field, 'Overall')}*: {messages.escape(text)}"
        for field, text in problems.items()
    ]
    return [SectionBlock(text=MarkdownTextObject(text="\n".join(lines)[:3000]))]


def _hint(field: str, problems: Mapping[str, str], default: str | None) -> str | None:
    problem = problems.get(field)
    if problem:
        return f"⚠ {problem}"[:2000]
    return default


def _text_input(
    field: str,
    value: str,
    problems: Mapping[str, str],
    *,
    placeholder: str,
    limit: int,
    optional: bool = False,
    hint: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=field,
        label=LABELS[field],
        optional=optional,
        hint=_hint(field, problems, hint),
        element=PlainTextInputElement(
            action_id=FORM_ACTION,
            initial_value=value[:limit] or None,
            placeholder=placeholder[:150],
            max_length=limit,
        ),
    )


def _select(
    field: str,
    choices: list[tuple[str, str]],
    chosen: str,
    problems: Mapping[str, str],
) -> InputBlock:
    if len(choices) > MAX_OPTIONS:
        logger.warning(
            "%d choices for %s; the dialog shows the first %d",
            len(choices),
            field,
            MAX_OPTIONS,
        )
    options = [
        Option(value=value, label=_clip(label))
        for value, label in choices[:MAX_OPTIONS]
    ]
    initial = next((option for option in options if option.value == chosen), None)
    return InputBlock(
        block_id=field,
        label=LABELS[field],
        hint=_hint(field, problems, None),
        element=StaticSelectElement(
            action_id=FORM_ACTION,
            placeholder=f"Choose a {LABELS[field].lower()}",
            options=options or [Option(value="", label="(none offered)")],
            initial_option=initial,
        ),
    )


def _backups(enabled: bool, problems: Mapping[str, str]) -> InputBlock:
    options = [Option(value=value, label=label) for value, label in _ON_OFF]
    return InputBlock(
        block_id="backups",
        label=LABELS["backups"],
        hint=_hint("backups", problems, None),
        element=RadioButtonsElement(
            action_id=FORM_ACTION,
            options=options,
            initial_option=options[0 if enabled else 1],
        ),
    )


def _values(view: Mapping[str, Any]) -> Mapping[str, Any]:
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    return values if isinstance(values, Mapping) else {}


def _element(values: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    block = values.get(field)
    element = block.get(FORM_ACTION) if isinstance(block, Mapping) else None
    return element if isinstance(element, Mapping) else {}


def _text(values: Mapping[str, Any], field: str) -> str:
    value = _element(values, field).get("value")
    return value.strip() if isinstance(value, str) else ""


def _selected(values: Mapping[str, Any], field: str) -> str:
    option = _element(values, field).get("selected_option")
    value = option.get("value") if isinstance(option, Mapping) else None
    return value if isinstance(value, str) else ""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_OPTION_TEXT else text[: MAX_OPTION_TEXT - 1] + "…"
