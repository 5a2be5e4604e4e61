"""Milvus as the vector store of a space: one collection per space, chunk id as primary key.

The URI picks the engine: `milvus-lite:///ABS/PATH.db` (Milvus Lite, in this process, one
file), `milvus://HOST:PORT` (a server: standalone or a cluster's proxy), `milvus+https://`
for TLS; `?prefix=NAME_` names the collections (default `anyfind_`: one index per server
unless each gets its own prefix), `?token=` authenticates. The same `MilvusClient` API
serves all three (pymilvus 3 talks to the 2.3 standalone server: tested).

Consistency: the writer's own reads (what `remove` and `count` check) are `Strong`.
Searches read `Session` by default (`?consistency=strong` to change it): the process that
wrote sees its own writes (pymilvus keeps its last write timestamp; a just-deleted id is
not returned, measured), and a search costs no wait for the server's time tick, which a
Strong read pays whatever the size (~400 ms on a 2.3 standalone against 14 ms at 100k:
docs/BENCHMARKS.md). Another process (a serving replica) sees a sync's vectors once the
server has applied them, normally within a time tick; a vector of a chunk deleted since
can never surface, because a search keeps only the chunks the metadata store still has.
The store generation the collection reflects is kept as a collection property, so a
process that opens it later knows whether it must catch up.

The index type follows the collection's size, as the FAISS side's does (`?index=auto`,
the default): exact FLAT under `exact_below` vectors (100,000: an exact search there is
~14 ms on one core), HNSW (M=16) up to 5 million (all in memory, best latency), IVF_SQ8
to 100 million (a quarter of the memory), IVF_PQ beyond (48 one-byte codes for 384-d:
1/32 of fp32) whose top k x `rerank` (4) candidates are re-scored exactly on their stored
vectors; `?index=flat|hnsw|ivf_flat|ivf_sq8|ivf_pq` fixes one, `?rerank=1` turns the
re-rank off. A sync that moves the collection across a threshold rebuilds its index
(flushed, released, re-indexed, loaded: searches from other processes wait for it).

Writes: a collection is kept in step by the writers only, from the metadata store's
outbox (store/outbox.py): the rows after its mark, in order, a chunk's last op winning,
its row read whole from the store (no full scan, at any size). A collection with no mark
(new, dropped by a reindex, or made by an older anyfind) is reconciled once by comparing
id sets, as `check --repair` does. Searching processes never write to it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..crashpoints import crash_point
from ..errors import ConfigError, ServiceUnreachable, require
from ..secrets import mask_uri
from .filter_fields import DEFAULTS, FIELDS
from .vector_store import VectorSource, VectorStore

GENERATION = "anyfind.generation"  # collection property: the store generation held
MARK = "anyfind.outbox"  # collection property: the last outbox sequence applied
OUTBOX_BATCH = 10_000  # outbox rows applied at a time (then the mark is saved)
MODEL = "anyfind.model"  # collection property: the model (and its identity) that made them
OWNER = "anyfind.index"  # collection property: the id of the index that writes it
BATCH = 1_000  # rows per upsert / ids per delete
MAX_LIMIT = 16_384  # Milvus's cap on a search's topk
EXACT_BELOW = 100_000  # vectors: FLAT under this
HNSW_BELOW = 5_000_000  # HNSW under this, IVF_SQ8 from it
PQ_FROM = 100_000_000  # IVF_PQ (with a re-rank) from this: 1/32 of the memory of fp32
INDEX_TYPES = ("auto", "flat", "hnsw", "ivf_flat", "ivf_sq8", "ivf_pq")
RERANK = 4  # IVF_PQ: k x this candidates, re-scored on their stored vectors


def index_for(kind: str, n: int, exact_below: int = EXACT_BELOW, dim: int = 384
              ) -> tuple[str, dict[str, int]]:
    """(Milvus index type, build params) for `n` vectors; `kind` auto or a fixed type."""
    if kind == "auto":
        kind = ("flat" if n < exact_below else "hnsw" if n < HNSW_BELOW else
                "ivf_sq8" if n < PQ_FROM else "ivf_pq")
    if kind == "hnsw":
        return "HNSW", {"M": 16, "efConstruction": 200}
    if kind == "ivf_pq":
        return "IVF_PQ", {"nlist": nlist_for(n), "m": pq_parts(dim), "nbits": 8}
    if kind.startswith("ivf"):
        return kind.upper(), {"nlist": nlist_for(n)}
    return "FLAT", {}


def pq_parts(dim: int) -> int:
    """Sub-quantisers of IVF_PQ: 8 dimensions each where `dim` allows (384-d: 48, one
    byte each: 48 bytes a vector), else the largest divisor of dim at most dim / 8."""
    return max(m for m in range(1, max(dim // 8, 1) + 1) if dim % m == 0)


def nlist_for(n: int) -> int:
    """IVF lists: ~4 sqrt(n) (the usual rule; FAISS's side uses the same), 16 to 65,536."""
    return int(min(65_536, max(16, 4 * int(np.sqrt(max(n, 1))))))


FILTERED_EF = 4  # HNSW under a filter: a wider beam (the graph walks past rejected nodes)


def search_params_for(index_type: str, params: dict[str, Any], k: int,
                      filtered: bool = False) -> dict[str, int]:
    if index_type == "HNSW":
        ef = max(64, 2 * k) * (FILTERED_EF if filtered else 1)
        return {"ef": min(32_768, ef)}
    if index_type.startswith("IVF"):
        nlist = int(params.get("nlist", 1024))
        return {"nprobe": min(nlist, max(16, nlist // 32))}
    return {}


def split_query(uri: str) -> tuple[str, dict[str, str]]:
    """A vector-store URI without its query, and the query's parameters: `prefix` (the
    collections' name prefix, so several indexes share one server) and `token`."""
    from ..secrets import query_params

    # Not a split at the first "?": a password may hold one (secrets.py reads logins).
    return query_params(uri)


def client_uri(uri: str) -> str:
    """What MilvusClient takes for an anyfind vector-store URI."""
    uri = split_query(uri)[0]
    if uri.startswith("milvus-lite://"):
        from ..secrets import without_login

        # A local file has no login: a user-info written anyway is dropped, never sent.
        path = without_login(uri)[len("milvus-lite://"):]
        if not path.startswith("/"):
            raise ConfigError(f"{mask_uri(uri)}: Milvus Lite needs an absolute path "
                              "(milvus-lite:///ABS/PATH.db)")
        return path
    for scheme, http in (("milvus+https://", "https://"), ("milvus://", "http://")):
        if uri.startswith(scheme):
            return http + uri[len(scheme):]
    raise ConfigError(f"not a Milvus URI: {mask_uri(uri)} (milvus://HOST:PORT, milvus+https://HOST:PORT "
                      "or milvus-lite:///ABS/PATH.db)")


def _listening(url: str) -> bool:
    """Whether a TCP connection to the URL's host and port opens (within 2 s)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1",
                                       parts.port or (443 if parts.scheme == "https" else 19530)),
                                      timeout=2):
            return True
    except OSError:
        return False


def lite_holder(path: Path) -> str | None:
    """Who holds a Milvus Lite data folder's lock ("process 4242 (anyfind serve ...)"), or
    None when nobody else does (this process may: pymilvus shares one server per file in a
    process). Milvus Lite takes an flock on <path>/LOCK; trying it ourselves (and letting
    go at once) says whether it is held, /proc says by whom."""
    import fcntl
    import os

    lock = path / "LOCK"
    if not lock.exists():
        return None
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except OSError:
        pass
    finally:
        os.close(fd)
    mine = {str(os.getpid())}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if not any(os.readlink(link) == str(lock) for link in (proc / "fd").iterdir()):
                continue
            parent = next((line.split()[1] for line in (proc / "status").read_text()
                           .splitlines() if line.startswith("PPid:")), "")
            if proc.name in mine or parent in mine:
                return None  # this process (or its Lite server): its client is shared
            command = " ".join((proc / "cmdline").read_bytes().replace(b"\0", b" ")
                               .decode(errors="replace").split())
            return f"process {proc.name} ({command[:120]})"
        except OSError:
            continue
    return None  # let go meanwhile, or not ours to see: pymilvus says what it finds


def connect(uri: str, token: str | None = None):
    """A MilvusClient for an anyfind Milvus URI; ConfigError (one line naming the masked
    URI) when it cannot connect."""
    pymilvus = require("pymilvus", "milvus")
    # pymilvus logs each failed call itself, traceback included ("[ERROR] ... collection
    # not loaded" after a server restart, which load_if_released recovers): anyfind says
    # what went wrong once, in its own words, so its logger keeps only the critical.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    target = client_uri(uri)
    if target.startswith("/"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        held_by = lite_holder(Path(target))
        if held_by is not None:
            raise ConfigError(
                f"the Milvus Lite file {target} is in use by {held_by}: Milvus Lite serves one "
                "process at a time (stop that one, or keep the vectors in a Milvus server for "
                "several processes, docs/SCALE.md)")
    try:
        return pymilvus.MilvusClient(target, token=token or "")
    except Exception as exc:  # noqa: BLE001 (one line naming the URI)
        # pymilvus's exceptions print as "<MilvusException: (code=.., message=..)>": its
        # message alone reads as a sentence.
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if not target.startswith("/") and _listening(target):
            # Something answers there: pymilvus says the same "illegal connection params
            # or server unavailable" for wrong credentials.
            raise ConfigError(
                f"Milvus at {mask_uri(uri)} refused the connection: check the credentials "
                "(?token=USER:PASSWORD or ${ENV}), and milvus+https:// for a TLS server "
                f"({reason})") from None
        raise ServiceUnreachable(f"cannot reach Milvus at {mask_uri(uri)}: {reason}") from None


def add_filter_fields(schema) -> None:
    """The item fields filters compare (store/filter_fields.py), as collection fields:
    a query's filters then run inside the engine (search/filter_milvus.py)."""
    from pymilvus import DataType

    kinds = {"int64": DataType.INT64, "double": DataType.DOUBLE, "varchar": DataType.VARCHAR}
    for name, (kind, length) in FIELDS.items():
        schema.add_field(name, kinds[kind], **({"max_length": length} if length else {}))


def load_if_released(client, collection: str) -> None:
    """Load a collection a server restart (or a crash) left released."""
    state = str((client.get_load_state(collection) or {}).get("state", ""))
    if "NotLoad" in state:
        client.load_collection(collection)


def check_owner(client, collection: str, info: dict[str, Any], owner: str, uri: str) -> None:
    """A collection another index writes is refused (ids are per store: two indexes in
    one collection overwrite each other's rows); one made before owners is claimed."""
    if not owner:
        return
    found = (info.get("properties") or {}).get(OWNER)
    if found and found != owner:
        from ..errors import IndexDamaged

        raise IndexDamaged(f"the Milvus collection {collection} at {mask_uri(uri)} belongs "
                           "to another index: give this index its own ?prefix=")
    if not found:
        client.alter_collection_properties(collection, properties={OWNER: owner})


UNEXPLAINED_SHARE = 0.5  # of a collection's rows: more unknown to the store is refused
UNEXPLAINED_MIN = 20


def refuse_unexplained(have: int, extra: int, where: str) -> None:
    """A reconcile deletes what the store does not know. When that is most of what the
    service holds, the two disagree wholesale (another index's collection, another or a
    restored store): nothing is deleted, and the sentence says what was found."""
    if extra >= UNEXPLAINED_MIN and extra > UNEXPLAINED_SHARE * have:
        from ..errors import IndexDamaged

        raise IndexDamaged(
            f"{where} holds {have} rows of which {extra} are unknown to this index's "
            "metadata store: it looks like another index's collection, or the store was "
            "replaced. Nothing was deleted. Give this index its own collection prefix "
            "(?prefix=), or drop the collection if it is really this index's and stale")


def delete_ids(client, collection: str, ids) -> None:
    """Delete by primary key, in batches."""
    ids = [int(i) for i in ids]
    for start in range(0, len(ids), BATCH):
        client.delete(collection, ids=ids[start:start + BATCH])


def all_ids(client, collection: str) -> np.ndarray:
    """Every primary key of a collection, listed in batches (the one full scan: a
    collection without a mark, `check --repair`)."""
    quiet = logging.getLogger("pymilvus")  # Milvus Lite has no mvccTs: a warning per call
    level = quiet.level
    quiet.setLevel(max(level, logging.ERROR))
    out: list[int] = []
    try:
        it = client.query_iterator(collection, batch_size=BATCH, filter="id >= 0",
                                   output_fields=["id"])
        try:
            while batch := it.next():
                out += [int(r["id"]) for r in batch]
        finally:
            it.close()
    finally:
        quiet.setLevel(level)
    return np.asarray(out, dtype=np.int64)


class MilvusVectorStore(VectorStore):
    shared = True
    schemes = ("milvus", "milvus+https", "milvus-lite")

    def __init__(self, directory: Path, space: str, dim: int, factory: str = "auto",
                 uri: str | None = None, token: str | None = None, model: str = "",
                 owner: str = "", **options: Any):
        self.directory = Path(directory)
        self.model = model
        self.owner = owner  # the index id (store/ownership.py): one writer per collection
        self.space = space
        self.dim = dim
        self.factory = factory
        # Default: a Milvus Lite file beside the index's other vector files.
        self.uri = uri or f"milvus-lite://{self.directory / 'milvus.db'}"
        params = split_query(self.uri)[1]
        self.token = token or params.get("token")
        prefix = params.get("prefix", "anyfind_")
        if not prefix.replace("_", "").isalnum():
            raise ConfigError(f"{mask_uri(self.uri)}: a collection prefix is letters, digits and _")
        self.collection = f"{prefix}{space}"
        self.consistency = params.get("consistency", "session").capitalize()
        if self.consistency not in ("Session", "Strong", "Bounded", "Eventually"):
            raise ConfigError(f"{mask_uri(self.uri)}: consistency is session, strong, bounded "
                              "or eventually")
        wanted = params.get("index") or ("auto" if factory in ("auto", "Flat") else factory)
        self.index_kind = wanted.lower()
        if self.index_kind not in INDEX_TYPES:
            raise ConfigError(f"{mask_uri(self.uri)}: index is one of {', '.join(INDEX_TYPES)}")
        try:
            self.exact_below = int(params.get("exact_below", EXACT_BELOW))
            self.rerank = int(params.get("rerank", RERANK))
        except ValueError:
            raise ConfigError(f"{mask_uri(self.uri)}: exact_below and rerank are numbers"
                              ) from None
        self.generation = -1
        self.mark: int | None = None  # the last outbox sequence applied (None: unknown)
        self.lost = 0  # vectors found missing that only this collection held (`_lost`)
        self._client: Any = None
        self._loaded = False
        self._fields: set[str] | None = None  # the filter fields the collection has
        self._index: tuple[str, dict[str, Any]] | None = None  # (type, params) built

    # -- connection ---------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.uri, self.token)
        return self._client

    def _exists(self) -> bool:
        if not self.client.has_collection(self.collection):
            return False
        if not self._loaded:  # once per process: a collection released by a crash, reloaded
            load_if_released(self.client, self.collection)
            self._loaded = True
        return True

    def _ensure(self) -> None:
        if self._exists():
            self._check_dim()
            return
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        add_filter_fields(schema)
        kind, params = index_for(self.index_kind, 0, self.exact_below, self.dim)
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=kind, metric_type="IP", params=params)
        self.client.create_collection(self.collection, schema=schema, index_params=index,
                                      consistency_level="Strong")
        self._index, self._fields = (kind, params), set(FIELDS)
        props = {k: v for k, v in ((MODEL, self.model), (OWNER, self.owner)) if v}
        if props:
            self.client.alter_collection_properties(self.collection, properties=props)

    def index_in_use(self) -> tuple[str, dict[str, Any]]:
        """(index type, its build params) of the collection's vector field."""
        if self._index is None:
            info = self.client.describe_index(self.collection, "vector") or {}
            keys = ("M", "efConstruction", "nlist", "m", "nbits")
            params = info.get("params") or {k: v for k, v in info.items() if k in keys}
            self._index = (str(info.get("index_type", "FLAT")).upper(),
                           {k: int(v) for k, v in params.items() if k in keys})
        return self._index

    def fit_index(self) -> bool:
        """Rebuild the index when the collection's size calls for another type (or an IVF
        whose lists are 4x off); True when it did."""
        if not self._exists():
            return False
        n = self.count()
        kind, params = index_for(self.index_kind, n, self.exact_below, self.dim)
        have, have_params = self.index_in_use()
        if have == kind and not (kind.startswith("IVF") and not (
                params["nlist"] / 4 <= have_params.get("nlist", 0) <= params["nlist"] * 4)):
            return False
        self.client.flush(self.collection)  # sealed segments: what an index is built on
        self.client.release_collection(self.collection)
        self.client.drop_index(self.collection, "vector")
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=kind, metric_type="IP", params=params)
        self.client.create_index(self.collection, index)
        self.client.load_collection(self.collection)
        self._index = (kind, params)
        return True

    @property
    def filter_fields(self) -> set[str]:
        """The item fields the collection keeps (empty: made before it kept any, so its
        searches are restricted by allowed ids)."""
        if self._fields is None:
            if not self._exists():
                return set(FIELDS)  # what a collection made now will have
            info = self.client.describe_collection(self.collection)
            self._fields = {f.get("name") for f in info.get("fields", [])} & set(FIELDS)
        return self._fields

    def _reading(self, call, *args, **kwargs):
        """A read; a collection the server released (it restarted) is loaded again and
        the read retried once."""
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (pymilvus's MilvusException, by message)
            if "not loaded" not in str(getattr(exc, "message", exc)):
                raise
            self.client.load_collection(self.collection)
            return call(*args, **kwargs)

    def _check_dim(self) -> None:
        info = self.client.describe_collection(self.collection)
        check_owner(self.client, self.collection, info, self.owner, self.uri)
        made_by = (info.get("properties") or {}).get(MODEL)
        if made_by and self.model and made_by != self.model:
            raise ConfigError(f"the Milvus collection {self.collection} at {mask_uri(self.uri)} "
                              f"holds vectors of {made_by.split('#')[0]}, this space encodes "
                              f"with {self.model.split('#')[0]} (or another revision): run "
                              "`anyfind reindex`, or give this index its own ?prefix=")
        for field in info.get("fields", []):
            dim = (field.get("params") or {}).get("dim")
            if dim is not None and int(dim) != self.dim:
                raise ConfigError(f"the Milvus collection {self.collection} at {mask_uri(self.uri)} holds "
                                  f"{dim}-d vectors, this space {self.dim}-d: run "
                                  "`anyfind reindex`")

    # -- the contract -------------------------------------------------------------------------
    def upsert(self, ids: np.ndarray, vectors: np.ndarray,
               fields: dict[int, dict[str, Any]] | None = None) -> None:
        """`fields`: chunk id -> its item's filter fields (store/filter_fields.py); a chunk
        without gets the defaults (matched by no filter on them)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        self._ensure()
        keep = self.filter_fields
        defaults = {k: v for k, v in DEFAULTS.items() if k in keep}
        fields = fields or {}
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), BATCH):
            rows = []
            for i, v in zip(ids[start:start + BATCH], vectors[start:start + BATCH], strict=True):
                known = fields.get(int(i))
                rows.append({"id": int(i), "vector": v.tolist(), **defaults,
                             **({k: known[k] for k in keep} if known else {})})
            self.client.upsert(self.collection, rows)

    def _upsert_from(self, source: VectorSource, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Vectors read from the store, written with their items' fields."""
        fields = source.chunk_fields(ids.tolist()) if hasattr(source, "chunk_fields") else None
        self.upsert(ids, vectors, fields)

    def remove(self, ids: np.ndarray) -> int:
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64)]
        if not ids or not self._exists():
            return 0
        present = self.present(ids)
        self._delete(ids)
        return len(present)

    def present(self, ids) -> list[int]:
        """Which of these ids the collection holds (Strong: after the writer's writes)."""
        ids = [int(i) for i in ids]
        if not ids or not self._exists():
            return []
        found: list[int] = []
        for start in range(0, len(ids), BATCH):
            part = ids[start:start + BATCH]
            rows = self._reading(self.client.query, self.collection, filter=f"id in {part}",
                                 output_fields=["id"], consistency_level="Strong")
            found += [int(r["id"]) for r in rows]
        return found

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               where: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`where`: a Milvus boolean expression over the filter fields (filters evaluated
        in the engine, search/filter_milvus.py), besides or instead of `allowed`."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        empty = (np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64))
        if k <= 0 or not self._exists() or (allowed is not None and not len(allowed)):
            return empty
        kwargs: dict[str, Any] = {}
        conditions = [f"({where})"] if where else []
        if allowed is not None:
            conditions.append(f"id in {[int(i) for i in np.asarray(allowed)]}")
        if conditions:
            kwargs["filter"] = " and ".join(conditions)
        kind, params = self.index_in_use()
        rerank = kind == "IVF_PQ" and self.rerank > 1  # PQ codes rank coarsely
        limit = min(k * self.rerank if rerank else k, MAX_LIMIT)
        search_params = {"metric_type": "IP",
                         "params": search_params_for(kind, params, limit, bool(conditions))}
        hits = self._reading(self.client.search, self.collection, data=queries.tolist(),
                             limit=limit, output_fields=["id", "vector"] if rerank else ["id"],
                             search_params=search_params, consistency_level=self.consistency,
                             **kwargs)
        if rerank:  # exact inner products on the candidates' stored vectors, best k kept
            hits = [sorted(({"id": h["id"], "distance": float(
                        np.dot(q, np.asarray(h["entity"]["vector"], np.float32)))}
                        for h in found), key=lambda h: -h["distance"])[:k]
                    for q, found in zip(queries, hits, strict=True)]
        width = max((len(h) for h in hits), default=0)
        scores = np.full((len(queries), width), -np.inf, np.float32)
        ids = np.full((len(queries), width), -1, np.int64)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found):
                scores[row, col] = float(hit["distance"])
                ids[row, col] = int(hit["id"])
        return scores, ids

    def ids(self) -> np.ndarray:
        if not self._exists():
            return np.zeros(0, np.int64)
        return all_ids(self.client, self.collection)

    def count(self) -> int:
        if not self._exists():
            return 0
        rows = self._reading(self.client.query, self.collection, filter="",
                             output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"]) if rows else 0

    def __len__(self) -> int:
        return self.count()

    def catch_up(self, source: VectorSource) -> bool:
        """Apply the store's outbox after the mark; reconcile when there is no mark (or
        the source keeps no outbox: a snapshot)."""
        gen = source.generation(self.space)
        if gen == self.generation and self._exists():
            return False
        self._ensure()
        if self.mark is None or not getattr(source, "outbox", False):
            return self.reconcile(source)
        while rows := source.outbox_since(self.space, self.mark, OUTBOX_BATCH):
            self._apply(source, rows)
            crash_point("milvus.applied")  # written, mark not saved: applied again, harmlessly
            self.mark = rows[-1][0]
            self._save_marks()
        self.fit_index()
        self.generation = gen
        self._save_marks()
        if hasattr(source, "prune_outbox"):
            source.prune_outbox(self.space, self.mark)
        return True

    def _apply(self, source: VectorSource, rows: list[tuple[int, int, str, int | None]]
               ) -> None:
        """One batch of outbox rows. A chunk's vector comes from the store while it keeps
        it, else from the collection itself (a moved item's chunks are written again with
        new fields; a copy's under its origin). Writes go before deletes: a copy whose
        origin is deleted later in the batch is written first, so a crash in between and
        the batch applied again still finds it (under the copy's own id by then)."""
        from .outbox import last_ops

        write, gone, origins = last_ops(rows)
        ids, vecs = source.vectors(self.space, write, dim=self.dim) if write else (
            np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32))
        rest = sorted(set(write) - set(ids.tolist()))
        held = source.held_vectors(self.space, rest) if rest else []
        gone += sorted(set(rest) - set(held))  # deleted since: no vector to write
        if held:
            # Strong: vectors another writer applied are seen too
            have = self.fetch(set(held) | {origins.get(c, c) for c in held}, "Strong")
            # a copy's vector under its origin, or under its own id once applied before
            vec_of = {c: have.get(origins.get(c, c), have.get(c)) for c in held}
            found = [c for c in held if vec_of[c] is not None]
            self._upsert_from(source, np.asarray(found, np.int64), np.asarray(
                [vec_of[c] for c in found], np.float32).reshape(-1, self.dim))
            self._lost(source, [c for c in held if vec_of[c] is None])
        if len(ids):
            self._upsert_from(source, ids, vecs)
            # acknowledged, so durable in the service: the store lets go of its copies
            crash_point("milvus.upserted")
            source.hold_vectors(self.space, ids.tolist())
        self._delete(gone)

    def fetch(self, ids, consistency: str | None = None) -> dict[int, np.ndarray]:
        """chunk id -> vector, for those of these ids the collection holds."""
        ids = sorted(int(i) for i in ids)
        out: dict[int, np.ndarray] = {}
        if not ids or not self._exists():
            return out
        for start in range(0, len(ids), BATCH):
            part = ids[start:start + BATCH]
            rows = self._reading(self.client.query, self.collection, filter=f"id in {part}",
                                 output_fields=["id", "vector"],
                                 consistency_level=consistency or self.consistency)
            out.update((int(r["id"]), np.asarray(r["vector"], np.float32)) for r in rows)
        return out

    def _lost(self, source: VectorSource, ids: list[int]) -> None:
        """Held vectors the collection no longer has (a service that lost data, or was
        emptied by hand): their items are read and encoded again by the next sync."""
        if ids:
            import logging

            self.lost += len(ids)
            items = source.vectors_lost(self.space, ids)
            logging.getLogger("anyfind").warning(
                "Milvus collection %s lacks %d vectors the store no longer keeps: %d items "
                "are re-encoded by the next sync", self.collection, len(ids), items)

    def reconcile(self, source: VectorSource) -> bool:
        """Id sets compared whole: what the store lacks goes, what it has is written. The
        outbox head is read first, so nothing committed meanwhile is skipped later."""
        gen = source.generation(self.space)
        head = source.outbox_head(self.space) if getattr(source, "outbox", False) else None
        self._ensure()
        want = np.asarray(source.vector_ids(self.space), dtype=np.int64)
        have = self.ids()
        extra = np.setdiff1d(have, want, assume_unique=True)
        missing = np.setdiff1d(want, have, assume_unique=True)
        refuse_unexplained(len(have), len(extra), self.describe())
        self._delete(extra.tolist())
        for start in range(0, len(missing), BATCH * 10):
            part = missing[start:start + BATCH * 10]
            ids, vecs = source.vectors(self.space, part.tolist(), dim=self.dim)
            self._upsert_from(source, ids, vecs)
            if getattr(source, "outbox", False):  # a store that lets go of applied vectors
                source.hold_vectors(self.space, ids.tolist())
                self._lost(source, np.setdiff1d(part, ids).tolist())
        self.fit_index()
        self.generation = gen
        self.mark = head  # None: the source keeps no outbox, so the next catch-up compares too
        self._save_marks()
        if head is not None and hasattr(source, "prune_outbox"):
            source.prune_outbox(self.space, head)
        return bool(len(extra) or len(missing))

    def _delete(self, ids: list[int]) -> None:
        """Delete by id in batches, without counting what went (`remove` counts)."""
        if ids and self._exists():
            delete_ids(self.client, self.collection, ids)

    def _save_marks(self) -> None:
        props = {GENERATION: str(self.generation),
                 MARK: "" if self.mark is None else str(self.mark)}
        self.client.alter_collection_properties(self.collection, properties=props)

    def persist(self) -> None:
        self._ensure()
        self._save_marks()
        self.client.flush(self.collection)

    def persisted(self) -> bool:
        return self._exists()

    def load(self, mmap: bool = False) -> bool:
        if not self._exists():
            return False
        self._check_dim()
        props = self.client.describe_collection(self.collection).get("properties") or {}
        try:
            self.generation = int(props.get(GENERATION, -1))
        except (TypeError, ValueError):
            self.generation = -1
        try:
            self.mark = int(props[MARK]) if props.get(MARK) else None
        except (TypeError, ValueError):
            self.mark = None
        return True

    def drop(self) -> None:
        if self._exists():
            self.client.drop_collection(self.collection)
        self._index, self.generation, self.mark, self._loaded = None, -1, None, False
        self._fields = None

    def describe(self) -> str:
        where = mask_uri(self.uri)
        if self._client is not None and self._exists():
            return f"milvus ({where}, {self.index_in_use()[0]})"
        return f"milvus ({where})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
