"""What `anyfind check` found, for people (summary) and machines (to_dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ERROR = "error"  # the index is inconsistent or damaged: results may be wrong or missing
WARNING = "warning"  # harmless or self-healing (a stale vector file, a leftover temp file)


@dataclass
class Finding:
    code: str  # stable identifier, e.g. "orphan-vectors"
    severity: str  # ERROR or WARNING
    message: str
    count: int = 1
    repair: str | None = None  # what --repair does about it (None: it cannot)
    repaired: bool = False


@dataclass
class CheckReport:
    index: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    repaired: bool = False  # --repair ran
    resync: int = 0  # items marked so that the next sync re-embeds them

    def add(self, code: str, severity: str, message: str, count: int = 1,
            repair: str | None = None) -> None:
        self.findings.append(Finding(code, severity, message, count, repair))

    def codes(self) -> set[str]:
        return {f.code for f in self.findings if not f.repaired}

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR and not f.repaired]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING and not f.repaired]

    @property
    def ok(self) -> bool:
        """No unrepaired error (warnings are allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def summary(self) -> str:
        lines = []
        for f in self.findings:
            state = "repaired" if f.repaired else f.severity
            hint = f" [--repair: {f.repair}]" if f.repair and not f.repaired and not self.repaired else ""
            lines.append(f"{state:<8} {f.code}: {f.message}{hint}")
        s = self.stats
        vectors = ", ".join(f"{n} {v.get('store', 0)}" for n, v in s.get("spaces", {}).items())
        head = (f"{'ok' if self.ok else 'DAMAGED'}: {s.get('items', 0)} items, "
                f"{s.get('chunks', 0)} chunks, vectors {vectors or 'none'}; "
                f"{len(self.errors)} errors, {len(self.warnings)} warnings")
        if self.resync:
            head += f"; {self.resync} items will be re-embedded by the next sync"
        return "\n".join([head, *lines])
