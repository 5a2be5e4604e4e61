"""The command line: a thin click layer over anyfind.Index.

Parse, call one library method, print a human table (or --json lines). Heavy modules
are imported inside commands, so `anyfind --help` stays instant.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .errors import AnyfindError

index_option = click.option(
    "--index", "-i", "index_name", envvar="ANYFIND_INDEX", default=None, metavar="NAME|PATH",
    help="Index name (under ANYFIND_HOME) or path. Env: ANYFIND_INDEX. Default: 'default'.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")


class AnyfindGroup(click.Group):
    """Turns domain errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnyfindError as exc:
            raise click.ClickException(str(exc)) from exc
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


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@index_option
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching (repeatable).")
@click.option("--hidden", is_flag=True, help="Also index hidden files and folders.")
@click.option("--text-model", default=None, help="sentence-transformers model (new index only).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def index(paths, index_name, include, exclude, hidden, text_model, quiet, as_json) -> None:
    """Index files and folders (re-running syncs only what changed)."""
    with _open(index_name, create=True, text_model=text_model) as idx:
        report = idx.add(paths, include=include, exclude=exclude, hidden=hidden,
                         progress=_progress_wanted(quiet))
    _print_report(report, as_json)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        _emit_json(report.to_dict())
        return
    click.echo(report.summary())
    for err in report.errors[:10]:
        click.echo(f"  {click.style('error', fg='red')} {err['path']}: {err['error']}", err=True)
    if len(report.errors) > 10:
        click.echo(f"  ... and {len(report.errors) - 10} more (anyfind status --errors)", err=True)


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
        click.option("--fusion", type=click.Choice(["rrf", "score"]), default="rrf",
                     show_default=True,
                     help="rrf: reciprocal rank fusion; score: mean of min-max normalised scores."),
        click.option("--weights", callback=_weights, default=None, metavar="NAME=W,...",
                     help="Signal weights: lexical, dense (every space) or a space name."),
        click.option("--rerank", default=None, metavar="MODEL",
                     help="Re-order the top results with this cross-encoder (path or hub name)."),
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
              help="Drop results below this score (hybrid 0-1, dense cosine, lexical BM25).")
@click.option("--image", "image", default=None, type=click.Path(exists=True),
              help="Search by example image.")
@click.option("--audio", "audio", default=None, type=click.Path(exists=True),
              help="Search with a spoken clip.")
@json_option
def search(query, index_name, k, offset, mode, fusion, weights, rerank, filters, chunks,
           min_score, image, audio, as_json) -> None:
    """Search the index: text, --image or --audio.

    QUERY may hold filters: modality: source: ext: path: lang: media: after: before:
    date: size:, e.g. `anyfind search 'budget ext:pdf after:2024-01-01'` (see README)."""
    if query is None and image is None and audio is None:
        raise click.UsageError("give a QUERY, --image PATH or --audio PATH")
    with _open(index_name) as idx:
        results = idx.search(query, k=k, offset=offset, mode=mode, chunks=chunks,
                             min_score=min_score, image=image, audio=audio, fusion=fusion,
                             weights=weights, filters=filters, rerank=rerank)
    _print_results(results, as_json)


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
    if r.tags:
        lines.append(f"      tags: {', '.join(r.tags[:5])}")
    if text:
        lines.append(f"      {_marked(text, spans)}")
    return "\n".join(lines)


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


def _item_id(idx, item: str) -> int:
    if item.isdigit():
        return int(item)
    from pathlib import Path

    ids = idx.store.item_ids_by_path([str(Path(item).expanduser().absolute())])
    if len(ids) != 1:
        raise click.ClickException(f"no indexed item at {item}" if not ids else
                                   f"{item} holds {len(ids)} items: give one file or an item id")
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
def eval_(dataset, index_name, modes, split, fusion, weights, rerank, quiet, as_json) -> None:
    """Relevance of each mode on a BEIR-format DATASET (corpus.jsonl, queries.jsonl,
    qrels/test.tsv): nDCG@10, Recall@100, MRR@10 and the median query time."""
    import tempfile
    from pathlib import Path

    from .search.evaluate import evaluate, load_beir

    data = load_beir(dataset, split)
    modes = modes or ("dense", "lexical", "hybrid")
    with tempfile.TemporaryDirectory(prefix="anyfind-eval-") as tmp:
        target = index_name or str(Path(tmp) / "index")
        with _open(target, create=True) as idx:
            rows = evaluate(idx, data, modes, progress=_progress_wanted(quiet), fusion=fusion,
                            weights=weights, rerank=rerank)
    if as_json:
        _emit_json({"dataset": data.name, "documents": len(data.corpus),
                    "queries": len(data.queries), "split": split, "fusion": fusion,
                    "weights": weights, "rerank": rerank,
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
@json_option
def status(index_name, show_errors, as_json) -> None:
    """What the index holds: items, chunks, vectors, sources, errors."""
    with _open(index_name) as idx:
        st = idx.status()
        errs = idx.errors() if show_errors else []
    if as_json:
        if show_errors:
            st["error_items"] = errs
        _emit_json(st)
        return
    click.echo(f"index    {st['index']}")
    click.echo(f"items    {st['items']} ({st['ok']} ok, {st['errors']} errors)"
               + "".join(f", {n} {m}" for m, n in sorted(st["by_modality"].items())))
    click.echo(f"chunks   {st['chunks']}")
    for name, sp in st["spaces"].items():
        click.echo(f"space    {name}: {sp['encoder']} {sp['model']} ({sp['dim']}-d), "
                   f"{sp['vectors']} vectors")
    for s in st["sources"]:
        click.echo(f"source   {s['name']} ({s['kind']}) {s['uri']}: {s['items']} items")
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
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def reindex(index_name, text_model, quiet, as_json) -> None:
    """Rebuild every vector (after a model change), re-reading all sources."""
    with _open(index_name) as idx:
        report = idx.reindex(text_model=text_model, progress=_progress_wanted(quiet))
    _print_report(report, as_json)


@cli.command()
@click.argument("item_id", type=int)
@index_option
@json_option
def show(item_id, index_name, as_json) -> None:
    """One item: metadata and its passages (or transcript)."""
    with _open(index_name) as idx:
        item = idx.item(item_id)
    if item is None:
        raise click.ClickException(f"no item {item_id}")
    if as_json:
        _emit_json(item)
        return
    for key in ("id", "path", "source", "modality", "media_type", "size", "status", "error",
                "title"):
        if item.get(key) is not None:
            click.echo(f"{key:<11}{item[key]}")
    for c in item["chunks"]:
        where = f"p.{c['page']}" if c["page"] is not None else (
            f"{_clock(c['start_s'])}–{_clock(c['end_s'])}" if c["start_s"] is not None else "")
        click.echo(f"\n[{c['ordinal']}] {where}\n{c['text']}")


def main() -> None:
    cli(prog_name="anyfind")


if __name__ == "__main__":
    main()
