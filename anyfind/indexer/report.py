"""What a sync did, for people (summary line) and machines (to_dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    renamed: int = 0
    copied: int = 0  # new items whose content was already indexed: no model ran
    failed: int = 0
    skipped: int = 0  # content types this index does not handle
    attachments: int = 0  # items written inside others (an e-mail's attachments)
    chunks: int = 0  # chunks embedded in this run
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)  # sources that could not sync
    executor: str = ""  # what ran the models, when not this process (e.g. ray)
    workers: int = 0  # its model workers (actors)
    nodes: int = 0  # the machines of its cluster
    precision: dict[str, str] = field(default_factory=dict)  # space -> how documents ran

    def merge(self, other: SyncReport) -> None:
        for name in ("added", "updated", "unchanged", "removed", "renamed", "copied",
                     "failed", "skipped", "attachments", "chunks", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.failed_sources.extend(other.failed_sources)
        self.executor = self.executor or other.executor
        self.precision.update(other.precision)
        self.workers, self.nodes = max(self.workers, other.workers), max(self.nodes, other.nodes)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged",
                 f"{self.removed} removed", f"{self.failed} failed"]
        if self.renamed:
            parts.append(f"{self.renamed} renamed")
        if self.copied:
            parts.append(f"{self.copied} copied")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.attachments:
            parts.append(f"{self.attachments} attachments")
        how = "".join(f", {n} {p}" for n, p in sorted(self.precision.items()))
        text = ", ".join(parts) + f" ({self.chunks} chunks embedded in {self.seconds:.1f}s{how})"
        if self.executor:
            nodes = f" on {self.nodes} node{'s' * (self.nodes != 1)}" if self.nodes else ""
            text += f"; encoded by {self.executor}: {self.workers} workers{nodes}"
        if self.failed_sources:
            text += f"; source(s) failed: {', '.join(self.failed_sources)}"
        return text


class VectorsPending(Exception):
    """A sync wrote its items (metadata and vectors in the store) but could not bring the
    vector store up to date (a vector service unreachable): nothing is lost, the next
    sync's catch-up fills it. Carries what the sync did."""

    def __init__(self, report: SyncReport, cause: BaseException):
        super().__init__(str(cause))
        self.report = report
        self.cause = cause
