from __future__ import annotations

from vpsbot.cli import main

main()
