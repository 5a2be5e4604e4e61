"""The store's own full-text queries, per database dialect (the MetadataStore's `lexical`; the
lexical backends over them are in store/fulltext.py).

SQLite: the FTS5 table `chunks_fts` ranked by BM25. PostgreSQL: the generated `tsv`
column ranked by ts_rank_cd. Filters are SQLAlchemy selects, taken as they are. Both are created by migration v2 and maintained by the
database in the same transaction as the chunks. Terms arrive already tokenised
(search/terms.py) and are passed quoted (FTS5) or as bound parameters (PostgreSQL), so no
user text is ever parsed as query syntax.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, Select, column, func, literal_column, select, table

from .fts import fts5_match, fts5_reference

TS_CONFIG = "english"  # PostgreSQL text search configuration (matches migration v2)

_fts = table("chunks_fts", column("rowid"))
_chunks = table("chunks", column("id"), column("tsv"))


class FullTextSQL:
    """The full-text queries of a MetadataStore's database (SQLAlchemy)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name

    @property
    def available(self) -> bool:
        return self.dialect in ("sqlite", "postgresql")

    def search(self, terms: Sequence[str], depth: int, allowed: Select | None = None
               ) -> list[tuple[int, float]]:
        """Top `depth` (chunk id, score) for chunks holding any of the terms, best first.

        `allowed` is a select of chunk ids the hits must belong to (filters)."""
        if not terms or depth <= 0 or not self.available:
            return []
        q = self._sqlite(terms) if self.dialect == "sqlite" else self._postgres(terms)
        if allowed is not None:
            # SQLite: `+rowid`, so that the filter is applied to MATCH's rows. A bare rowid
            # IN (...) is handed to FTS5 as rowid lookups, one full-text query per allowed
            # id: 3 s for 1,000 ids, 78 s for 20,000 at 100k chunks with long questions.
            key = literal_column("+rowid") if self.dialect == "sqlite" else _chunks.c.id
            q = q.where(key.in_(allowed.scalar_subquery()))
        with self.engine.connect() as conn:
            return [(int(cid), float(score)) for cid, score in conn.execute(q.limit(depth))]

    def reference(self, terms: Sequence[str]) -> float | None:
        """What a chunk holding each term once scores (search/relevance.py): FTS5's idf
        sum on SQLite; on PostgreSQL the rank of the query's own words as a chunk."""
        if not terms or not self.available:
            return None
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                return fts5_reference(lambda sql, p: conn.exec_driver_sql(sql, p).all(), terms)
            query = func.plainto_tsquery(TS_CONFIG, terms[0])
            for t in terms[1:]:
                query = query.op("||")(func.plainto_tsquery(TS_CONFIG, t))
            own = func.to_tsvector(TS_CONFIG, " ".join(terms))
            return float(conn.execute(select(func.ts_rank_cd(own, query, 1))).scalar() or 0.0)

    @staticmethod
    def _sqlite(terms: Sequence[str]) -> Select:
        # bm25() is lower-is-better; negate it so that every signal is higher-is-better.
        score = (-func.bm25(literal_column("chunks_fts"))).label("score")
        return (select(_fts.c.rowid, score)
                .where(literal_column("chunks_fts").op("MATCH")(fts5_match(terms)))
                .order_by(score.desc(), _fts.c.rowid))

    @staticmethod
    def _postgres(terms: Sequence[str]) -> Select:
        query = func.plainto_tsquery(TS_CONFIG, terms[0])
        for t in terms[1:]:
            query = query.op("||")(func.plainto_tsquery(TS_CONFIG, t))
        # Normalisation 1: divide by 1 + log(length), so long chunks do not win by size.
        score = func.ts_rank_cd(_chunks.c.tsv, query, 1).label("score")
        return (select(_chunks.c.id, score)
                .where(_chunks.c.tsv.op("@@")(query))
                .order_by(score.desc(), _chunks.c.id))

