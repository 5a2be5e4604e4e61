"""Which encoder turns a query into a vector: the space's ONNX export, or torch.

An export (written by `anyfind index` / `anyfind export` under <index>/onnx/<space>/)
needs only onnxruntime and tokenizers, so a cold search starts in well under a second;
the torch encoder it stands for takes seconds to import. The export is used only when
anyfind.encoders.onnx vouches for it (same model identity, intact checksum); otherwise
the query goes to the torch encoder, with one line on stderr saying why: slower, never
a different answer. No line when torch was asked for (ANYFIND_NO_ONNX=1) or exports are
turned off (ANYFIND_ONNX_EXPORT=off) and the index has none.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Encoder

NO_ONNX_ENV = "ANYFIND_NO_ONNX"  # set (non-empty, not "0"): always the torch encoder
EXPORT_ENV = "ANYFIND_ONNX_EXPORT"  # off: `anyfind index` writes no export (cli.py)
_OFF = ("0", "off", "false", "no")

_noticed: set[str] = set()


def onnx_disabled() -> bool:
    return os.environ.get(NO_ONNX_ENV, "") not in ("", "0")


def exports_off() -> bool:
    return os.environ.get(EXPORT_ENV, "auto").lower() in _OFF


CLI_ENV = "ANYFIND_CLI"  # set by the command line, which writes exports when it indexes


def worth_a_notice(index_dir: Path, space: str) -> bool:
    """Whether falling back to torch is news worth a line on stderr: an export that is
    there but stale, corrupt or unloadable always is; a missing one only where exports
    are expected (the CLI, exports on). Elsewhere nothing is wrong: the query is only
    slower to start, which the log says at INFO."""
    if onnx_disabled():
        return False
    if (index_dir / "onnx" / space).exists():
        return True
    return os.environ.get(CLI_ENV) == "1" and not exports_off()


def load_export(index_dir: Path, space: str, identity: dict[str, Any], dim: int | None,
                *, one_shot: bool = False) -> tuple[Encoder | None, str | None]:
    """The export's query encoder for this space, or (None, why not)."""
    if onnx_disabled():
        return None, f"{NO_ONNX_ENV} is set"
    try:
        from .onnx import load_query_encoder
    except ImportError as exc:  # the onnx module or onnxruntime is not installed
        return None, f"no ONNX runtime ({exc})"
    encoder, reason = load_query_encoder(index_dir, space, identity, one_shot=one_shot)
    if encoder is None:
        return None, reason or "no export"
    if dim is not None and encoder.dim != dim:  # belt and braces: never a wrong space
        return None, f"the export gives {encoder.dim}-d vectors, the space holds {dim}-d"
    return encoder, None


def notice_fallbacks(index_dir: Path, spaces: dict[str, Any]) -> None:
    """One stderr line per process (and index) naming the spaces whose queries went to
    torch because their export could not be used."""
    torch = {name: space for name, space in spaces.items() if space.queries_use_torch}
    problems = [f"'{name}' ({space.export_problem})" for name, space in torch.items()
                if worth_a_notice(index_dir, name)]
    if torch and not problems:
        logging.getLogger("anyfind.query").info(
            "no ONNX export for space %s: queries are encoded with torch (`anyfind export` "
            "writes one)", ", ".join(torch))
    if not problems:
        return
    line = (f"anyfind: no usable ONNX export for space {', '.join(problems)}; the query is "
            "encoded with torch (slow start; `anyfind export` or `anyfind index` writes one)")
    key = f"{index_dir}\0{line}"
    if key not in _noticed:
        _noticed.add(key)
        print(line, file=sys.stderr, flush=True)
