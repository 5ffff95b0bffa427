"""`pressflow automations install`: every automation of automations/*.yaml, created or updated by name.

Prefect's own `prefect automation create --from-file` creates a new automation each time, so a
second run doubles every notice. Here an automation's name is its identity: one of that name
is updated in place, a second one of the same name (left by such a double create) is deleted,
and a missing one is created. Installing twice changes nothing.

The files name their Webhook block as WEBHOOK_BLOCK_ID (Prefect refers to blocks by id); the
command fills in the block given by name or id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import yaml

from ..core.errors import ConfigError, printable

WEBHOOK_PLACEHOLDER = "WEBHOOK_BLOCK_ID"


@dataclass
class Installed:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed_duplicates: int = 0


def load_automations(folder: Path, webhook_block_id: str | None) -> list:
    """Every automation of the folder's *.yaml files, validated, the webhook placeholder filled."""
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{printable(folder)}: no automation files (*.yaml); run from the checkout or give --dir")
    found, names = [], set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        if WEBHOOK_PLACEHOLDER in text:
            if webhook_block_id is None:
                raise ConfigError(f"{printable(path)}: its actions call a Webhook block; name one with "
                                  "--webhook BLOCK (create it with `prefect block create webhook`)")
            text = text.replace(WEBHOOK_PLACEHOLDER, webhook_block_id)
        data = yaml.safe_load(text) or {}
        for index, entry in enumerate(data.get("automations") or []):
            try:
                automation = AutomationCore.model_validate(entry)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ConfigError(f"{printable(path)}: automation {index + 1}: {where}: {first['msg']}") from None
            if automation.name in names:
                raise ConfigError(f"{printable(path)}: a second automation named {automation.name!r}")
            names.add(automation.name)
            found.append(automation)
    return found


def webhook_id(client, block: str) -> str:
    """The id of a Webhook block given by id or by name."""
    from prefect.exceptions import ObjectNotFound

    try:
        return str(UUID(block))
    except ValueError:
        pass
    try:
        return str(client.read_block_document_by_name(block, block_type_slug="webhook").id)
    except ObjectNotFound:
        raise ConfigError(f"no Webhook block named {block!r} on the Prefect server; create it with "
                          "`prefect block create webhook`") from None


def install(folder: Path, webhook_block: str | None) -> Installed:
    """Create or update every automation of `folder` by name, on the configured Prefect server."""
    from prefect.client.orchestration import get_client

    done = Installed()
    with get_client(sync_client=True) as client:
        block_id = webhook_id(client, webhook_block) if webhook_block else None
        for automation in load_automations(folder, block_id):
            existing = sorted(client.read_automations_by_name(automation.name), key=lambda a: str(a.id))
            if not existing:
                client.create_automation(automation)
                done.created.append(automation.name)
                continue
            keep, *extra = existing
            client.update_automation(keep.id, automation)
            for duplicate in extra:
                client.delete_automation(duplicate.id)
            done.removed_duplicates += len(extra)
            done.updated.append(automation.name)
    return done
