"""Slack wiring: parse, render and answer; the work itself lives in ``ops``."""

from __future__ import annotations

from vpsbot.slack.app import build_bolt_app

__all__ = ["build_bolt_app"]
