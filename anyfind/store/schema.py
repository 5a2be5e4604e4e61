"""SQLAlchemy 2 models of the metadata store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Source(Base):
    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    uri: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    synced_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. last git commit


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("source_id", "uri", name="uq_items_source_uri"),
        Index("ix_items_content_hash", "content_hash"),
        Index("ix_items_parent", "parent_id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    # An item found inside another (an e-mail's attachment): None for a source's own items.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), nullable=True)
    uri: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    modality: Mapped[str | None] = mapped_column(String(16), nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(128), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # > 2 GiB on PostgreSQL
    mtime: Mapped[float | None] = mapped_column(Float, nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(256), default="")
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # ok | error
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    indexed_at: Mapped[float] = mapped_column(Float)


class Relation(Base):
    """A note's link or embed (extract/links.py): from the note to the item its target
    names once resolved (indexer/relations.py); None while nothing matches it (a
    deleted target leaves its links unresolved, kept with their text)."""

    __tablename__ = "relations"
    __table_args__ = (Index("ix_relations_from", "from_item"), Index("ix_relations_to", "to_item"),
                      Index("ix_relations_source", "source_id", "to_item"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    from_item: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    to_item: Mapped[int | None] = mapped_column(ForeignKey("items.id", ondelete="SET NULL"),
                                                nullable=True)
    target: Mapped[str] = mapped_column(Text)  # as written, decoded
    kind: Mapped[str] = mapped_column(String(16))  # link | embed
    wiki: Mapped[bool] = mapped_column(Boolean, default=False)  # [[name]], not a path
    position: Mapped[int] = mapped_column(Integer, default=0)  # character offset in the note
    heading: Mapped[str] = mapped_column(Text, default="")  # the heading it sits under


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_item", "item_id", "ordinal"),
        {"sqlite_autoincrement": True},  # ids are FAISS ids: never reuse one
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    modality: Mapped[str] = mapped_column(String(16))  # text | image | audio
    text: Mapped[str] = mapped_column(Text, default="")
    char_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    char_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    start_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class Embedding(Base):
    """The vectors themselves. The store is their source of truth; FAISS files are a
    derived, rebuildable cache (see store/faiss_store.py). An index whose vectors live in a
    service (Milvus) keeps each only until the service has it: then the blob is empty
    (store/outbox.py)."""

    __tablename__ = "embeddings"
    __table_args__ = (Index("ix_embeddings_space", "space", "chunk_id"),)
    chunk_id: Mapped[int] = mapped_column(
        ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
    )
    space: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Space(Base):
    __tablename__ = "spaces"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped on every change


class VectorOutbox(Base):
    """Vector changes a vector service has still to apply (store/outbox.py), written in
    the transaction that makes them, in commit order; only indexes whose vectors live in
    a service keep one."""

    __tablename__ = "vector_outbox"
    __table_args__ = (Index("ix_vector_outbox_space", "space", "seq"),
                      {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    space: Mapped[str] = mapped_column(String(64))
    chunk_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(1))  # u: (re)write its row, d: delete it
    # u of a copy whose vector the service holds: the chunk it holds it under
    origin: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class IndexFile(Base):
    """A file of the index kept in a server metadata store (the score calibration,
    thumbnails), so that any machine with the index config has it; the index folder holds
    copies as a cache (store/index_files.py)."""

    __tablename__ = "index_files"
    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[float] = mapped_column(Float)
