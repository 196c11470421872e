"""An MkDocs hook: pages that other tools generate are linked only when they exist.

``docs/benchmarks.md`` is written by ``python -m benchmarks``. On a checkout that does not
have it (yet), the strict build would fail on its nav entry and on the links to it; this hook
drops the nav entry and turns such links into plain text instead. Every other missing page
or anchor still fails the strict build.

Loaded by ``mkdocs.yml`` (``hooks: [docs/scripts/optional_pages.py]``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

GENERATED = ("benchmarks.md",)
log = logging.getLogger("mkdocs.hooks.optional_pages")


def _missing(config: Any) -> list[str]:
    return [p for p in GENERATED if not os.path.exists(os.path.join(config["docs_dir"], p))]


def _without(nav: Any, missing: list[str]) -> Any:
    if isinstance(nav, list):
        return [item for item in (_without(i, missing) for i in nav) if item is not None]
    if isinstance(nav, dict):
        kept = {k: _without(v, missing) for k, v in nav.items()}
        return {k: v for k, v in kept.items() if v is not None} or None
    return None if nav in missing else nav


def on_config(config: Any) -> Any:
    missing = _missing(config)
    if missing and config.get("nav"):
        log.info("not generated yet, left out of the nav: %s", ", ".join(missing))
        config["nav"] = _without(config["nav"], missing)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    for name in _missing(config):
        markdown = re.sub(r"\[([^\]]+)\]\(" + re.escape(name) + r"(#[^)]*)?\)",
                          lambda m: f"{m.group(1)} (`docs/{name}`, not generated yet)",
                          markdown)
    return markdown
