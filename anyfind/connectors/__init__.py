"""Connectors by name; third-party packages add theirs through the
`anyfind.connectors` entry-point group."""

from __future__ import annotations

from ..registry import Registry
from .base import Blob, Connector, ItemRef, ScanError

connectors: Registry[type[Connector]] = Registry("connector", "anyfind.connectors")
connectors.register("filesystem", "anyfind.connectors.filesystem:FilesystemConnector")
connectors.register("git", "anyfind.connectors.git:GitConnector")
connectors.register("sql", "anyfind.connectors.sql:SQLConnector")
connectors.register("objectstore", "anyfind.connectors.remote:ObjectStoreConnector")
connectors.register("web", "anyfind.connectors.web:WebConnector")
connectors.register("archive", "anyfind.connectors.archive:ArchiveConnector")
connectors.register("records", "anyfind.connectors.records:RecordsConnector")


def connector_for(kind: str, uri: str, options: dict | None = None) -> Connector:
    return connectors.get(kind)(uri, **(options or {}))


__all__ = ["Blob", "Connector", "ItemRef", "ScanError", "connector_for", "connectors"]
