"""Where an index's services are, and changing them: the metadata database's URL, the
vector store's URI, the Ray cluster's address. Each is kept in config.json (credentials
masked) and secrets.json (the literals); `${ENV}` references stay references.

A URL given again on the command line for an existing index is compared with the one
kept: the same is nothing; another one is adopted only while the index has nothing
there yet (its first run failed on a wrong password, a missing database, a refused
token), else refused with the command that changes it. `anyfind config set` changes it
on purpose: the new service is checked first (it answers, it holds *this* index, it
takes the credentials), and what changed is said, masked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..secrets import SecretFile, expand_env, mask_uri, restore_uri_secrets, split_uri_secrets

if TYPE_CHECKING:
    from .open_index import OpenIndex

KEYS = ("store-url", "vector-store", "executor", "ray-address")


@dataclass(frozen=True)
class Change:
    key: str
    before: str
    after: str

    def said(self) -> str:
        if self.before == self.after:
            return f"{self.key}: {self.after} (credentials changed)"
        return f"{self.key}: {self.before} -> {self.after}"


def _same(kept_masked: str | None, kept_secrets: dict[str, str], given: str) -> bool:
    """Whether a URL given again is the one kept (credentials compared too)."""
    if kept_masked is None:
        return False
    return restore_uri_secrets(kept_masked, kept_secrets) == given or kept_masked == given


def given_again(opened: OpenIndex, store_url: str | None, vector_store: str | None) -> None:
    """An existing index opened with service URLs: the kept ones, adopted while nothing is
    there yet, or refused in one sentence."""
    secrets = SecretFile(opened.path)
    cfg = opened.config
    if store_url and not _same(cfg.store_url, secrets.get("store_url"), store_url):
        if cfg.store_claimed:
            raise ConfigError(
                f"this index keeps its metadata in {mask_uri(cfg.store_url or 'meta.db')}; "
                f"to move it or change its credentials: `anyfind config set store-url URL "
                f"--index {opened.path}`")
        _put(opened, "store_url", store_url)
    if vector_store and not _same(cfg.vector_store, secrets.get("vector_store"), vector_store):
        if _holds_items(opened):
            raise ConfigError(
                f"this index keeps its vectors in {mask_uri(cfg.vector_store)}; to change "
                f"that or its credentials: `anyfind config set vector-store URI --index "
                f"{opened.path}`")
        _put(opened, "vector_store", vector_store)


def _holds_items(opened: OpenIndex) -> bool:
    try:
        return bool(opened.store.counts()["items"])
    except Exception:  # noqa: BLE001 (a store that cannot be opened holds nothing of use yet)
        return False


def _put(opened: OpenIndex, key: str, value: str) -> Change:
    masked, literal = split_uri_secrets(value)
    before = getattr(opened.config, key) or ""
    setattr(opened.config, key, masked)
    SecretFile(opened.path).put(key, literal)
    opened.save_config()
    opened.forget_services()
    return Change(key.replace("_", "-"), mask_uri(before), masked)


def change(opened: OpenIndex, key: str, value: str) -> Change:
    """Change a service of the index after checking the new one (ConfigError, IndexDamaged
    or ServiceUnreachable: nothing changed)."""
    if key not in KEYS:
        raise ConfigError(f"unknown setting '{key}' (one of {', '.join(KEYS)})")
    # The folder's lock only: the store's would need the URL being replaced to work (a
    # changed password is the reason to be here), and each folder keeps its own config.
    with opened.lock.folder_only():
        if key == "store-url":
            _check_store(opened, value)
            return _put(opened, "store_url", value)
        if key == "vector-store":
            return _change_vector_store(opened, value)
        before = opened.config.executor if key == "executor" else \
            str(opened.config.executor_options.get("address") or "")
        if key == "executor":
            if value not in ("local", "ray"):
                raise ConfigError("executor: local or ray")
            opened.config.executor = value
        else:
            opened.config.executor_options = {**opened.config.executor_options,
                                              "address": value}
        opened.save_config()
        return Change(key, before or "(none)", value)


def _check_store(opened: OpenIndex, url: str) -> None:
    """The new database answers and holds this index (or nothing, for an index that never
    wrote): a moved database, a new password."""
    from ..store.db_errors import unreachable
    from ..store.metadata import MetadataStore
    from ..store.ownership import read_owner

    try:
        store = MetadataStore(expand_env(url))
    except Exception as exc:  # noqa: BLE001 (said in one line, nothing changed)
        said = unreachable(exc, expand_env(url))
        raise (said or ConfigError(f"cannot open {mask_uri(url)}: {exc}")) from None
    try:
        with store.engine.connect() as conn:
            owner = read_owner(conn)
    finally:
        store.close()
    mine = opened.config.index_id
    if owner.index_id and owner.index_id != mine:
        raise ConfigError(f"{mask_uri(url)} holds another index (at {owner.path}): nothing "
                          "changed")
    if not owner.index_id and opened.config.store_claimed:
        raise ConfigError(f"{mask_uri(url)} holds no anyfind index, and this one has data in "
                          f"{mask_uri(opened.config.store_url or 'meta.db')}: restore its "
                          "database there first; nothing changed")


def _change_vector_store(opened: OpenIndex, uri: str) -> Change:
    """The new vector store takes the credentials and holds this index's collections
    (check_vector_services on the new URI); else the old one stays."""
    from ..store.vector_store import backend_of

    if backend_of(expand_env(uri)) != backend_of(opened.config.vector_store or "faiss") \
            and _holds_items(opened):
        raise ConfigError("vector-store: another kind of vector store would start empty; "
                          "to move the vectors, index again into a new index: nothing changed")
    kept = (opened.config.vector_store, SecretFile(opened.path).get("vector_store"))
    change = _put(opened, "vector_store", uri)
    try:
        opened.check_vector_services(strict=True)
    except BaseException:
        opened.config.vector_store = kept[0]
        SecretFile(opened.path).put("vector_store", kept[1])
        opened.save_config()
        opened.forget_services()
        raise
    return change
