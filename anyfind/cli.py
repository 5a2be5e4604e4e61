"""The command line: a thin click layer over anyfind.Index.

Parse, call one library method, print a human table (or --json lines). Heavy modules
are imported inside commands, so `anyfind --help` stays instant.
"""

from __future__ import annotations

import time

_LOADED = time.perf_counter()  # for ANYFIND_PROFILE: when this module started

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import click  # noqa: E402

from . import profile  # noqa: E402
from .config import PRECISIONS  # noqa: E402
from .errors import AnyfindError  # noqa: E402

index_option = click.option(
    "--index", "-i", "index_name", envvar="ANYFIND_INDEX", default=None, metavar="NAME|PATH",
    help="Index name (under ANYFIND_HOME) or path. Env: ANYFIND_INDEX. Default: 'default'.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
config_option = click.option(
    "--config", "config_file", envvar="ANYFIND_CONFIG", default=None, type=click.Path(exists=True),
    help="TOML file declaring sources (besides anyfind.toml in the index). Env: ANYFIND_CONFIG.",
)


class AnyfindGroup(click.Group):
    """Turns domain errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnyfindError as exc:
            from .secrets import mask_uris_in

            raise click.ClickException(mask_uris_in(str(exc))) from exc
        except KeyboardInterrupt:
            click.echo("interrupted: committed work is kept; run the command again to resume",
                       err=True)
            sys.exit(130)


def _open(index_name: str | None, create: bool = False, **kwargs):
    from .index import Index

    return Index.open(index_name, create=create, **kwargs)


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _progress_wanted(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@click.group(cls=AnyfindGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="anyfind")
def cli() -> None:
    """anyfind: index folders, repositories and databases; search text, images and speech."""


precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default=None,
    envvar="ANYFIND_PRECISION",
    help="How documents are encoded, kept in the index config: auto (default: bf16 on a CPU "
         "with native bf16, fp16 on CUDA, else fp32), fp32, bf16, onnx (the fp32 ONNX export, "
         "no torch), int8 (quantised ONNX: faster, less exact). Env: ANYFIND_PRECISION.")


def executor_options(f):
    """--executor and its Ray settings (`index`, `sync`)."""
    for option in reversed([
        click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
                     envvar="ANYFIND_EXECUTOR",
                     help="What reads and encodes the items: this process (local, the "
                          "default) or a Ray cluster. Env: ANYFIND_EXECUTOR."),
        click.option("--ray-address", default=None, envvar="ANYFIND_RAY_ADDRESS",
                     metavar="auto|HOST:PORT|ray://HOST:10001",
                     help="The Ray cluster (implies --executor ray); none: a local Ray for "
                          "the run. Env: ANYFIND_RAY_ADDRESS."),
        click.option("--ray-actors", type=click.IntRange(1), default=None, metavar="N",
                     help="Actors per model (default: one per GPU, or 1 without GPUs)."),
    ]):
        f = option(f)
    return f


def _executor_choice(executor: str | None, address: str | None, actors: int | None):
    """(kind, options) the command line asks for, or None: the index's own choice."""
    if address or actors:
        if executor == "local":
            raise click.UsageError("--ray-address/--ray-actors need --executor ray")
        executor = "ray"
    if executor is None:
        return None
    options: dict[str, Any] = {}
    if address:
        options["address"] = address
    if actors:
        options["actors"] = actors
    return executor, options


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable).")
@click.option("--hidden", is_flag=True, help="Also index hidden files and folders.")
@click.option("--text-model", default=None, help="sentence-transformers model (new index only).")
@click.option("--store-url", envvar="ANYFIND_STORE_URL", default=None, metavar="URL",
              help="SQLAlchemy URL of the metadata store (new index only; default SQLite "
                   "inside the index). Env: ANYFIND_STORE_URL.")
@click.option("--vector-store", envvar="ANYFIND_VECTOR_STORE", default=None, metavar="URI",
              help="Where vectors live (new index only): faiss (default, files in the index), "
                   "milvus-lite:///ABS/PATH.db, milvus://HOST:PORT. Env: ANYFIND_VECTOR_STORE.")
@click.option("--whisper-model", default=None,
              help="faster-whisper model name or folder (new index only; default tiny.en).")
@click.option("--no-audio", is_flag=True, help="Do not transcribe audio (new index only).")
@click.option("--no-tags", is_flag=True, help="No offline image tags (new index only).")
@click.option("--ocr", "ocr", default=None, metavar="auto|off|ENGINE",
              help="Read the text in images and scanned pages (new index only): auto "
                   "(default), off, rapidocr, tesseract.")
@click.option("--clip", is_flag=True, help="Add the CLIP image-text space (default ViT-B-32).")
@click.option("--clip-model", default=None, metavar="ARCH", help="open_clip architecture.")
@click.option("--clip-weights", default=None, metavar="PATH|TAG",
              help="Local checkpoint file (or an open_clip pretrained tag on a connected machine).")
@click.option("--clip-config", default=None, metavar="JSON",
              help="open_clip model-config JSON for a custom architecture.")
@precision_option
@click.option("--onnx-int8/--no-onnx-int8", "onnx_int8", default=None, envvar="ANYFIND_ONNX_INT8",
              help="Same as --precision int8 (--no-onnx-int8: back to auto). "
                   "Env: ANYFIND_ONNX_INT8.")
@executor_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def index(paths, index_name, include, exclude, hidden, text_model, store_url, vector_store,
          whisper_model, no_audio, no_tags, ocr, clip, clip_model, clip_weights, clip_config,
          precision, onnx_int8, executor, ray_address, ray_actors, quiet, as_json) -> None:
    """Index files and folders (re-running syncs only what changed)."""
    from .config import default_transcriber

    settings: dict[str, Any] = {}
    if whisper_model or no_audio:
        settings["transcriber"] = None if no_audio else default_transcriber(whisper_model)
    if no_tags:
        settings["tagger"] = False
    if ocr:
        from .ocr import resolve

        resolve(ocr)  # an unknown engine is said before anything is created
        settings["ocr"] = ocr
    if vector_store:
        settings["vector_store"] = vector_store
    choice = _executor_choice(executor, ray_address, ray_actors)
    if choice:  # a new index keeps it in its config; an existing one runs on it this time
        settings["executor"], settings["executor_options"] = choice
    if clip_weights and not Path(clip_weights).expanduser().exists():
        settings["clip_pretrained"] = clip_weights  # a hub tag, not a file
        clip_weights = None
    with _open(index_name, create=True, text_model=text_model, store_url=store_url, clip=clip,
               clip_model=clip_model, clip_weights=clip_weights, clip_config=clip_config,
               onnx_int8=onnx_int8, precision=precision, **settings) as idx:
        if choice:
            idx.use_executor(choice[0], **choice[1])
        report = idx.add(paths, include=include, exclude=exclude, hidden=hidden,
                         progress=_progress_wanted(quiet))
        _auto_export(idx)
    _finish_sync(report, as_json)


def _auto_export(idx) -> None:
    """After indexing: the library exports the encoders to ONNX where missing or stale
    (Index.auto_export; off with ANYFIND_ONNX_EXPORT=0); this says how it went."""
    for r in idx.auto_export():
        if r.status == "failed":
            click.echo(f"warning: ONNX export of space '{r.space}' failed: {r.reason}", err=True)
        elif r.status == "skipped":
            click.echo(f"notice: ONNX export of space '{r.space}' skipped: {r.reason}", err=True)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        _emit_json(report.to_dict())
        return
    click.echo(report.summary())
    item_errors = [e for e in report.errors if "source" not in e]  # sources: see _finish_sync
    for err in item_errors[:10]:
        click.echo(f"  {click.style('error', fg='red')} {err['path']}: {err['error']}", err=True)
    if len(item_errors) > 10:
        click.echo(f"  ... and {len(item_errors) - 10} more (anyfind status --errors)", err=True)


def _weights(ctx, param, value: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (value or "").split(","))):
        name, sep, number = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(number)
        except ValueError:
            raise click.BadParameter(f"{part!r}: use NAME=NUMBER, e.g. lexical=0.5,dense=1"
                                     ) from None
    return out


def search_options(f):
    """Options shared by `search` and `eval`."""
    for option in reversed([
        click.option("--fusion", type=click.Choice(["auto", "relevance", "rrf", "score"]),
                     default="auto", show_default=True,
                     help="auto: rrf when the query reaches written text only, else "
                          "relevance; relevance: the calibrated scores' union; rrf: reciprocal "
                          "rank fusion; score: mean of min-max normalised scores."),
        click.option("--weights", callback=_weights, default=None, metavar="NAME=W,...",
                     help="Signal weights: lexical, dense (every space) or a space name."),
        click.option("--rerank", default=None, metavar="MODEL",
                     help="Re-order the top results with this cross-encoder (path or hub name)."),
        click.option("--prf", is_flag=True,
                     help="Pseudo-relevance feedback: search again with the query moved "
                          "towards its first results (Rocchio dense, RM3 lexical)."),
    ]):
        f = option(f)
    return f


@cli.command()
@click.argument("query", required=False)
@index_option
@click.option("-k", "k", default=10, show_default=True, help="Number of results.")
@click.option("--offset", default=0, show_default=True, help="Skip this many results (paging).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid",
              show_default=True, help="Dense and lexical fused, or either alone.")
@search_options
@click.option("--filter", "filters", default=None, metavar="EXPR",
              help='More filters, e.g. "ext:pdf after:2024-01-01" (also allowed in QUERY).')
@click.option("--chunks", is_flag=True, help="One result per matching passage, not per item.")
@click.option("--min-score", type=float, default=None,
              help="Drop results below this relevance score (0-1, calibrated per index).")
@click.option("--all", "show_all", is_flag=True,
              help="Also show the weak matches the relevance floor hides.")
@click.option("--image", "image", default=None, metavar="PATH|URL",
              help="Search by example image (a file or an http(s) URL).")
@click.option("--audio", "audio", default=None, type=click.Path(exists=True),
              help="Search with a spoken clip.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only results from this source (repeatable).")
@click.option("--server", "server", envvar="ANYFIND_SERVER", default=None, metavar="URL",
              help="Ask a running `anyfind serve` for this index (warm: no model to load). "
                   "Env: ANYFIND_SERVER; default: [search] server in the index's anyfind.toml.")
@click.option("--local", is_flag=True, help="Search in this process, even if a server is set.")
@click.option("--group", is_flag=True,
              help="One card per note: its matching passages and the matching screenshots, "
                   "recordings and videos it embeds or links (notes vaults).")
@json_option
def search(query, index_name, k, offset, mode, fusion, weights, rerank, prf, filters, chunks,
           min_score, show_all, image, audio, sources, server, local, group, as_json) -> None:
    """Search the index: text, --image or --audio.

    QUERY may hold filters: modality: source: ext: path: lang: media: after: before:
    date: size:, e.g. `anyfind search 'budget ext:pdf after:2024-01-01'` (see README)."""
    if query is None and image is None and audio is None:
        raise click.UsageError("give a QUERY, --image PATH or --audio PATH")
    if "numpy" not in sys.modules:  # a fresh process: one query needs no BLAS thread pool,
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # and starting one slows import
    from .config import resolve_index_path

    if not local and not server:
        from .client import configured_server

        server = configured_server(resolve_index_path(index_name))
    wanted = k
    if group:
        from .search.context import GROUP_DEPTH

        k = k * GROUP_DEPTH  # results looked at for k cards
    if server and not local:
        results = _server_search(server, index_name, query, k=k, offset=offset, mode=mode,
                                 fusion=fusion, weights=weights, rerank=rerank, prf=prf,
                                 filters=filters, chunks=chunks, min_score=min_score,
                                 image=image, audio=audio, sources=sources,
                                 floor=not show_all)
    else:
        with profile.stage("open"):
            idx = _open(index_name, one_query=True)  # one query, then exit
        with idx:
            results = idx.search(query, k=k, offset=offset, mode=mode, chunks=chunks,
                                 min_score=min_score, image=image, audio=audio, fusion=fusion,
                                 weights=weights, filters=filters, rerank=rerank, prf=prf,
                                 sources=list(sources) or None, floor=not show_all)
    with profile.stage("output"):
        if group:
            _print_groups(results, wanted, as_json)
        else:
            _print_results(results, as_json)
        _say_hidden(getattr(results, "hidden", 0))


def _print_groups(results, k: int, as_json: bool) -> None:
    from .search.context import grouped

    cards = grouped(results, k)
    if as_json:
        for card in cards:
            _emit_json(card.to_dict())
        return
    if not cards:
        click.echo("no results", err=True)
        return
    for n, card in enumerate(cards, start=1):
        head = card.note["path"] if card.note else card.results[0].path
        click.echo(f"{n:>3}. {click.style(f'{card.score:.3f}', fg='green')}  "
                   f"{click.style(head, bold=True)}")
        for r in card.results:
            click.echo("    " + _format_result(r).replace("\n", "\n    "))


def _server_search(server: str, index_name, query, *, fusion, weights, rerank, prf,
                   min_score, sources, filters, **kwargs):
    """The same search, answered by a running server (anyfind/client.py)."""
    from .client import Client
    from .config import resolve_index_path
    from .search.results import Results

    unsupported = [name for name, on in (("--fusion", fusion != "auto"), ("--weights", weights),
                                         ("--rerank", rerank), ("--prf", prf)) if on]
    if unsupported:
        raise click.UsageError(f"{', '.join(unsupported)} cannot go to a server (it searches "
                               "with its own settings): add --local")
    if sources:  # the same push-down as --source, written as filters
        filters = " ".join([filters or ""] + [f'source:"{n}"' for n in sources]).strip()
    results = Client(server).search(resolve_index_path(index_name), query, filters=filters,
                                    **kwargs)
    if min_score is not None:
        results = Results([r for r in results if r.score >= min_score], hidden=results.hidden)
    return results


def _say_hidden(hidden: int) -> None:
    """On stderr, so that --json output stays one result per line."""
    if hidden:
        click.echo(f"{hidden} weaker match{'es' if hidden != 1 else ''} hidden under the "
                   "relevance floor (--all shows them)", err=True)


def _print_results(results, as_json: bool) -> None:
    if as_json:
        for r in results:
            _emit_json(r.to_dict())
        return
    if not results:
        click.echo("no results", err=True)
        return
    for r in results:
        click.echo(_format_result(r))


def _clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 60:02d}:{s % 60:02d}"


def _marked(text: str, spans) -> str:
    out, pos = [], 0
    for a, b in spans:
        out += [text[pos:a], click.style(text[a:b], fg="yellow", bold=True)]
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _format_result(r) -> str:
    from .search.results import snippet

    where = r.path
    if r.page is not None:
        where += f"  p.{r.page}"
    if r.start is not None:
        where += f"  {_clock(r.start)}–{_clock(r.end)}"
    head = (f"{r.rank:>3}. {click.style(f'{r.score:.3f}', fg='green')}  [{r.modality}] "
            f"{click.style(where, bold=True)}  {click.style(f'#{r.item_id}', dim=True)}")
    text, spans = snippet(r.text or "", r.highlights)
    lines = [head]
    if r.parent:
        lines.append(f"      attachment of {r.parent['path']}  "
                     + click.style(f"#{r.parent['id']}", dim=True))
    for region in r.regions[:3]:  # the words read in the image that match
        lines.append(f"      read: {_marked(region['text'], region['highlights'])}")
    if r.tags:
        lines.append(f"      tags: {', '.join(r.tags[:5])}")
    if r.width and r.height:
        lines.append(f"      {r.width}x{r.height} px")
    for note in r.linked_from[:3]:  # the notes that embed or link it (vaults)
        inside = f" > {note['heading']}" if note["heading"] else ""
        lines.append(f"      in: {note['path']}{inside}"
                     + ("" if note["kind"] == "embed" else "  (linked)"))
    matching = [e for e in r.embeds if e["matches"]]
    if matching:
        lines.append("      embeds: " + ", ".join(Path(e["path"]).name for e in matching[:4]))
    for m in r.moments:  # where in the recording or video, and what shows it
        line = f"      {_clock(m['start'])}-{_clock(m['end'])}"
        if m["shown"]:
            line += f'  slide: "{_shortened(m["shown"])}"'
        if m["said"]:
            line += f'  said: "{_shortened(m["said"])}"'
        lines.append(line)
    if text and r.modality != "image" and not r.moments:
        lines.append(f"      {_marked(text, spans)}")
    return "\n".join(lines)


def _shortened(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


@cli.command()
@click.argument("item")
@index_option
@click.option("-k", "k", default=10, show_default=True, help="Number of results.")
@click.option("--offset", default=0, show_default=True, help="Skip this many results (paging).")
@click.option("--filter", "filters", default=None, metavar="EXPR",
              help='Only items matching, e.g. "modality:image".')
@json_option
def similar(item, index_name, k, offset, filters, as_json) -> None:
    """Items like ITEM (an item id, as shown by search, or an indexed file's path)."""
    with _open(index_name) as idx:
        item_id = _item_id(idx, item)
        results = idx.similar(item_id, k=k, offset=offset, filters=filters)
    _print_results(results, as_json)


@cli.command()
@click.argument("item")
@index_option
@click.option("-k", "k", default=10, show_default=True, help="Similar items to list.")
@click.option("--unlinked", is_flag=True,
              help="Only the similar items it does not link or embed already.")
@json_option
def related(item, index_name, k, unlinked, as_json) -> None:
    """What relates to ITEM (an id or an indexed file's path): what it links or embeds,
    what links or embeds it, and the most similar items, each with its reason."""
    with _open(index_name) as idx:
        found = idx.related(_item_id(idx, item), k=k, unlinked=unlinked)
    if as_json:
        for row in found:
            _emit_json(row)
        return
    if not found:
        click.echo("nothing related", err=True)
    for row in found:
        where = f" > {row['heading']}" if row["heading"] else ""
        click.echo(f"{row['reason']:<14} {row['path']}{where}  "
                   + click.style(f"#{row['id']}", dim=True))


def _item_id(idx, item: str) -> int:
    if item.isdigit():
        return int(item)
    ids = idx.item_ids_at([item])
    from .fsutil import display_path

    shown = display_path(item)
    if len(ids) != 1:
        raise click.ClickException(f"no indexed item at {shown}" if not ids else
                                   f"{shown} holds {len(ids)} items: give one file or an item id")
    return ids[0]


@cli.command(name="eval")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False))
@click.option("--index", "-i", "index_name", default=None, metavar="NAME|PATH",
              help="Index to add the corpus to and keep (default: a temporary one).")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["hybrid", "dense", "lexical"]),
              help="Modes to run (repeatable; default: dense, lexical, hybrid).")
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to use.")
@search_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def eval_(dataset, index_name, modes, split, fusion, weights, rerank, prf, quiet,
          as_json) -> None:
    """Relevance of each mode on a BEIR-format DATASET (corpus.jsonl, queries.jsonl,
    qrels/test.tsv): nDCG@10, Recall@100, MRR@10 and the median query time."""
    import tempfile
    from pathlib import Path

    from .evaluate import evaluate, load_beir

    data = load_beir(dataset, split)
    modes = modes or ("dense", "lexical", "hybrid")
    with tempfile.TemporaryDirectory(prefix="anyfind-eval-") as tmp:
        target = index_name or str(Path(tmp) / "index")
        with _open(target, create=True) as idx:
            rows = evaluate(idx, data, modes, progress=_progress_wanted(quiet), fusion=fusion,
                            weights=weights, rerank=rerank, prf=prf)
    if as_json:
        _emit_json({"dataset": data.name, "documents": len(data.corpus),
                    "queries": len(data.queries), "split": split, "fusion": fusion,
                    "weights": weights, "rerank": rerank, "prf": prf,
                    "modes": {r.mode: r.to_dict() for r in rows}})
        return
    click.echo(f"{data.name}: {len(data.corpus)} documents, {len(data.queries)} judged queries "
               f"({split})")
    click.echo(f"{'mode':<8}{'nDCG@10':>9}{'Recall@100':>12}{'MRR@10':>9}{'p50 ms':>9}")
    for r in rows:
        click.echo(f"{r.mode:<8}{r.ndcg_at_10:>9.3f}{r.recall_at_100:>12.3f}{r.mrr_at_10:>9.3f}"
                   f"{r.p50_ms:>9.1f}")


@cli.command()
@index_option
@click.option("--errors", "show_errors", is_flag=True, help="List items that failed.")
@config_option
@json_option
def status(index_name, show_errors, config_file, as_json) -> None:
    """What the index holds: items, chunks, vectors, sources, errors."""
    with _open(index_name) as idx:
        if config_file:
            idx.use_config(config_file)
        st = idx.status()
        errs = idx.errors() if show_errors else []
    if as_json:
        if show_errors:
            st["error_items"] = errs
        _emit_json(st)
        return
    click.echo(f"index    {st['index']}")
    skipped = f", {st['skipped']} skipped" if st.get("skipped") else ""
    click.echo(f"items    {st['items']} ({st['ok']} ok, {st['errors']} errors{skipped})"
               + "".join(f", {n} {m}" for m, n in sorted(st["by_modality"].items())))
    click.echo(f"chunks   {st['chunks']}")
    for name, sp in st["spaces"].items():
        click.echo(f"space    {name}: {sp['encoder']} {sp['model']} ({sp['dim']}-d), "
                   f"{sp['vectors']} vectors; ONNX export: {sp['onnx_export']}")
    click.echo(f"lexical  {st['lexical']}")
    click.echo(f"vectors  {st['vector_store']} (encoding: {st['executor']} executor)")
    click.echo(f"precision {st['document_precision']} (documents)")
    click.echo(f"ocr       {st['ocr']}")
    if st.get("ocr_change"):
        click.echo(f"          note: {st['ocr_change']}")
    for s in st["sources"]:
        error = (s.get("state") or {}).get("last_error")
        click.echo(f"source   {s['name']} ({s['kind']}) {s['uri']}: {s['items']} items"
                   + (f"  [last sync failed: {error}]" if error else ""))
    click.echo(f"disk     {st['disk_bytes'] / 1e6:.1f} MB")
    for e in errs:
        click.echo(f"error    {e['path']}: {e['error']}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
def remove(paths, index_name) -> None:
    """Forget files, or everything under folders."""
    with _open(index_name) as idx:
        n = idx.remove(paths)
    click.echo(f"removed {n} items")


@cli.command()
@index_option
@click.option("--text-model", default=None, help="Switch the text space to this model.")
@click.option("--ocr", "ocr", default=None, is_flag=False, flag_value="", metavar="[ENGINE]",
              help="Only read the text in images and PDFs again (with ENGINE: switch the "
                   "OCR engine first: rapidocr, tesseract, auto, off).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def reindex(index_name, text_model, ocr, quiet, as_json) -> None:
    """Rebuild every vector (after a model change), re-reading all sources."""
    with _open(index_name) as idx:
        if ocr is not None:
            report = idx.reread_pixels(ocr or None, progress=_progress_wanted(quiet))
        else:
            report = idx.reindex(text_model=text_model, progress=_progress_wanted(quiet))
    _print_report(report, as_json)


@cli.command()
@click.argument("item_id", type=int)
@index_option
@click.option("--srt", "fmt", flag_value="srt", help="Print the transcript as SRT subtitles.")
@click.option("--vtt", "fmt", flag_value="vtt", help="Print the transcript as WebVTT.")
@json_option
def show(item_id, index_name, fmt, as_json) -> None:
    """One item: metadata and its passages (or transcript)."""
    with _open(index_name) as idx:
        item = idx.item(item_id)
    if item is None:
        raise click.ClickException(f"no item {item_id}")
    if fmt:
        from .audio.subtitles import to_srt, to_vtt
        from .extract.base import TimedSegment

        segments = [TimedSegment(a, b, t) for a, b, t in (item.get("meta") or {}).get(
            "transcript", [])]
        if not segments:
            raise click.ClickException(f"item {item_id} has no transcript")
        click.echo((to_srt if fmt == "srt" else to_vtt)(segments), nl=False)
        return
    if as_json:
        _emit_json(item)
        return
    for key in ("id", "path", "source", "modality", "media_type", "size", "status", "error",
                "title"):
        if item.get(key) is not None:
            click.echo(f"{key:<11}{item[key]}")
    if item.get("parent"):
        click.echo(f"{'inside':<11}#{item['parent']['id']} {item['parent']['path']}")
    for child in item.get("children") or []:
        state = "" if child["status"] == "ok" else f"  [{child['status']}: {child['error']}]"
        click.echo(f"{'attachment':<11}#{child['id']} {child['name'] or child['path']} "
                   f"({child['media_type'] or 'unknown type'}){state}")
    read = (item.get("meta") or {}).get("ocr") or {}
    if read.get("lines") or read.get("error"):
        click.echo(f"\nread by {read.get('engine')} ({len(read.get('lines') or [])} lines)"
                   + (f": {read['error']}" if read.get("error") else ""))
        for line in read.get("lines") or []:
            box = " ".join(f"{v:.2f}" for v in line["box"])
            click.echo(f"  [{box}] {line['text']}")
    meta = item.get("meta") or {}
    if meta.get("frames"):  # a video's kept frames: when each is shown, what it says
        click.echo(f"\nframes ({len(meta['frames'])})"
                   + (f"  [{meta['frames_error']}]" if meta.get("frames_error") else ""))
        for f in meta["frames"]:
            words = " · ".join(line["text"] for line in (f.get("ocr") or {}).get("lines", []))
            click.echo(f"  {_clock(f['start'])}–{_clock(f['end'])}  {f['why']:<6} "
                       + (f'"{_shortened(words, 90)}"' if words else ""))
    if meta.get("transcript"):
        click.echo(f"\ntranscript ({meta.get('transcript_from', 'speech')})")
        for start, end, text in meta["transcript"]:
            click.echo(f"  {_clock(start)}–{_clock(end)}  {text}")
    for c in item["chunks"]:
        where = f"p.{c['page']}" if c["page"] is not None else (
            f"{_clock(c['start_s'])}–{_clock(c['end_s'])}" if c["start_s"] is not None else "")
        click.echo(f"\n[{c['ordinal']}] {where}\n{c['text']}")


# -- persistent sources ------------------------------------------------------------------
@cli.group()
def sources() -> None:
    """Persistent sources: folders, git repositories, databases, buckets, web sites, archives."""


def _parse_option(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"expected KEY=VALUE, got {text!r}", param_hint="--option")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip().split("."), value


def _extra_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in pairs:
        path, value = _parse_option(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


@sources.command("add")
@click.argument("name")
@click.argument("uri")
@index_option
@click.option("--kind", default=None, help="Connector kind (default: inferred from the URI).")
@click.option("--ref", default=None, help="git: branch, tag or commit (default HEAD).")
@click.option("--commits", is_flag=True, default=None, help="git: also index commit messages.")
@click.option("--table", default=None, help="sql: table to read.")
@click.option("--schema", default=None, help="sql: schema of the table.")
@click.option("--query", default=None, help="sql: a SELECT to read instead of a table.")
@click.option("--id-column", default=None, help="sql: the row id (default: primary key).")
@click.option("--text-column", "text_columns", multiple=True,
              help="sql: a column whose text is indexed (repeatable; default: string columns).")
@click.option("--title-column", default=None, help="sql: a column holding a title.")
@click.option("--blob-column", default=None, help="sql: a column of bytes (image, audio, PDF...).")
@click.option("--url-column", default=None, help="sql: a column holding a path or URL to fetch.")
@click.option("--updated-column", default=None,
              help="sql: an updated-at column (cheap change detection).")
@click.option("--include", multiple=True, metavar="GLOB", help="Only paths matching (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip paths matching (repeatable).")
@click.option("--endpoint-url", default=None, help="objectstore: an S3-compatible endpoint.")
@click.option("--option", "-o", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any other connector option; VALUE is JSON when it parses (-o max_pages=50, "
                   "-o storage_options.anon=true). Write secrets as ${ENV_VAR}.")
@click.option("--replace", is_flag=True, help="Replace a source of the same name.")
@click.option("--sync", "sync_now", is_flag=True, help="Sync it right away.")
@json_option
def sources_add(name, uri, index_name, kind, extra, replace, sync_now, as_json,
                **options) -> None:
    """Add a source NAME reading URI (a path, git URL, database URL, s3://, https://, archive)."""
    options["text_columns"] = list(options["text_columns"]) or None
    options.update(_extra_options(extra))
    with _open(index_name, create=True) as idx:
        info = idx.add_source(name, uri, kind, replace=replace, **options)
        report = idx.sync([name], progress=_progress_wanted(False)) if sync_now else None
    if as_json:
        _emit_json({"source": info, "report": report.to_dict() if report else None})
    else:
        click.echo(f"added source {info['name']} ({info['kind']}) {info['uri']}")
        if report is None:
            click.echo(f"run `anyfind sync {name}` to index it", err=True)
    if report is not None:
        _finish_sync(report, as_json=False if not as_json else None)


@sources.command("list")
@index_option
@config_option
@json_option
def sources_list(index_name, config_file, as_json) -> None:
    """Every source (stored or declared in a config file), credentials masked."""
    with _open(index_name, create=True) as idx:
        if config_file:
            idx.use_config(config_file)
        rows = idx.sources()
    if as_json:
        for row in rows:
            _emit_json(row)
        return
    if not rows:
        click.echo("no sources (add one with `anyfind sources add NAME URI`)", err=True)
    for row in rows:
        state = row.get("state") or {}
        when = _ago(row["synced_at"]) if row.get("synced_at") else "never synced"
        line = f"{row['name']:<16} {row['kind']:<12} {row['items']:>7} items  {when:<16} {row['uri']}"
        if row["origin"] != "store":
            line += f"  (from {row['origin']})"
        click.echo(line)
        if state.get("last_error"):
            click.echo(f"{'':<16} {click.style('last sync failed', fg='red')}: "
                       f"{state['last_error']}", err=True)


def _ago(ts: float) -> str:
    import time

    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"synced {seconds // size}{unit} ago"
    return f"synced {seconds}s ago"


@sources.command("remove")
@click.argument("name")
@index_option
@config_option
def sources_remove(name, index_name, config_file) -> None:
    """Remove a source with its items and vectors."""
    with _open(index_name) as idx:
        if config_file:
            idx.use_config(config_file)
        n = idx.remove_source(name)
    click.echo(f"removed source {name} ({n} items)")


SERVICE_KEYS = ("store-url", "vector-store", "executor", "ray-address")  # core/services.py


@cli.group(name="config")
def config_group() -> None:
    """Where an index's services are: show them, change a URL or its credentials."""


@config_group.command("show")
@index_option
@json_option
def config_show(index_name, as_json) -> None:
    """The metadata database, the vector store and the executor, credentials masked."""
    from .secrets import mask_uri

    with _open(index_name) as idx:
        cfg = idx.config
        shown = {"store-url": mask_uri(cfg.store_url) if cfg.store_url else
                 f"sqlite (meta.db in {idx.path})",
                 "vector-store": mask_uri(cfg.vector_store or "faiss"),
                 "executor": cfg.executor,
                 "ray-address": str(cfg.executor_options.get("address") or "")}
    if as_json:
        _emit_json(shown)
        return
    for key, value in shown.items():
        click.echo(f"{key}: {value}")


@config_group.command("set")
@click.argument("key", type=click.Choice(SERVICE_KEYS))
@click.argument("value")
@index_option
@json_option
def config_set(key, value, index_name, as_json) -> None:
    """Change where a service is or its credentials. The new one is checked first (it
    answers, holds this index, takes the credentials); what changed is said, masked.
    `${ENV}` references stay references; literals go to secrets.json."""
    from .core.services import change

    with _open(index_name) as idx:
        done = change(idx.opened, key, value)
    if as_json:
        _emit_json({"key": done.key, "before": done.before, "after": done.after})
    else:
        click.echo(done.said())


@cli.command()
@click.argument("names", nargs=-1)
@index_option
@config_option
@click.option("--retry-errors", is_flag=True, help="Also retry items that failed before.")
@precision_option
@executor_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def sync(names, index_name, config_file, retry_errors, precision, executor, ray_address,
         ray_actors, quiet, as_json) -> None:
    """Re-sync sources incrementally (all of them, or the NAMES given).

    Exits with status 1 when a source could not be synced (the others still are)."""
    choice = _executor_choice(executor, ray_address, ray_actors)
    with _open(index_name, create=bool(config_file), precision=precision) as idx:
        if choice:
            idx.use_executor(choice[0], **choice[1])
        if config_file:
            idx.use_config(config_file)
        report = idx.sync(list(names) or None, progress=_progress_wanted(quiet),
                          retry_errors=retry_errors)
        _auto_export(idx)
    _finish_sync(report, as_json)


def _finish_sync(report, as_json: bool | None) -> None:
    if as_json is not None:
        _print_report(report, as_json)
    if report.failed_sources:
        for err in report.errors:
            if "source" in err:
                click.echo(f"  {click.style('source failed', fg='red')} {err['source']} "
                           f"({err['path']}): {err['error']}", err=True)
        sys.exit(1)


@cli.command()
@index_option
@click.option("--force", is_flag=True, help="Export again even when the export is current.")
@click.option("--int8/--no-int8", "int8", default=None,
              help="Also make the int8 text model used by --onnx-int8 document encoding "
                   "(default: as the index's onnx_int8 setting).")
@click.option("--space", "spaces", multiple=True, metavar="NAME",
              help="Only this embedding space (repeatable).")
@json_option
def export(index_name, force, int8, spaces, as_json) -> None:
    """Export the index's encoders to ONNX, so searches run without torch.

    Writes <index>/onnx/<space>/ (model files, tokenizer, export.json with the model identity
    and checksums). `anyfind index` does this by itself when an export is missing or stale.
    Exits with status 1 when a space failed."""
    with _open(index_name) as idx:
        unknown = [s for s in spaces if s not in idx.spaces]
        if unknown:
            raise click.BadParameter(f"no space named {unknown[0]!r} (spaces: "
                                     f"{', '.join(idx.spaces)})", param_hint="--space")
        results = idx.export_onnx(force=force, int8=int8, spaces=list(spaces) or None)
    for r in results:
        if as_json:
            _emit_json(r.to_dict())
            continue
        size = f" ({sum((r.files or {}).values()) / 2**20:.1f} MiB)" if r.files else ""
        detail = f": {r.reason}" if r.reason else ""
        click.echo(f"{r.space}: {r.status}{size}{detail}")
    if any(r.status == "failed" for r in results):
        sys.exit(1)


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Other than loopback needs a token (or --insecure).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="ANYFIND_TOKEN", default=None, metavar="TOKEN",
              help="Require `Authorization: Bearer TOKEN` on the API. Env: ANYFIND_TOKEN "
                   "(better: a command line is visible to other users).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback host without a token.")
@click.option("--cors", multiple=True, metavar="ORIGIN",
              help="Let pages from this origin call the API (repeatable; off by default).")
def serve(index_name, host, port, token, insecure, cors) -> None:
    """Serve the HTTP API (docs at /docs) and the web page at /."""
    from .server.run import serve as run_server

    run_server(index_name, host=host, port=port, token=token, insecure=insecure, cors=cors)


@cli.command()
@index_option
@click.option("--repair", is_flag=True,
              help="Fix what can be fixed without re-embedding (rebuild vector files from the "
                   "store, drop orphans, delete temp files); items missing vectors are marked "
                   "for the next sync.")
@json_option
def check(index_name, repair, as_json) -> None:
    """Verify the index is consistent; exit status 1 if it is damaged."""
    with _open(index_name) as idx:
        report = idx.check(repair=repair)
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(report.summary())
        if not report.ok and not repair and any(f.repair for f in report.errors):
            click.echo("run `anyfind check --repair` to fix what can be fixed", err=True)
        elif report.resync:
            click.echo("sync again (e.g. `anyfind index PATH`) to re-embed them", err=True)
    if not report.ok:
        sys.exit(1)


def main() -> None:
    # `anyfind index` writes ONNX exports: a missing one is worth a notice here, not in a
    # library process (encoders/query.py: CLI_ENV)
    os.environ["ANYFIND_CLI"] = "1"
    profile.begin(_LOADED)
    try:
        cli(prog_name="anyfind")
    finally:
        profile.report()


if __name__ == "__main__":
    main()
