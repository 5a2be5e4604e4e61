"""The command line: a thin click layer over anyfind.Index.

Parse, call one library method, print a human table (or --json lines). Heavy modules
are imported inside commands, so `anyfind --help` stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
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
@click.option("--whisper-model", default=None,
              help="faster-whisper model name or folder (new index only; default tiny.en).")
@click.option("--no-audio", is_flag=True, help="Do not transcribe audio (new index only).")
@click.option("--no-tags", is_flag=True, help="No offline image tags (new index only).")
@click.option("--clip", is_flag=True, help="Add the CLIP image-text space (default ViT-B-32).")
@click.option("--clip-model", default=None, metavar="ARCH", help="open_clip architecture.")
@click.option("--clip-weights", default=None, metavar="PATH|TAG",
              help="Local checkpoint file (or an open_clip pretrained tag on a connected machine).")
@click.option("--clip-config", default=None, metavar="JSON",
              help="open_clip model-config JSON for a custom architecture.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def index(paths, index_name, include, exclude, hidden, text_model, whisper_model, no_audio,
          no_tags, clip, clip_model, clip_weights, clip_config, quiet, as_json) -> None:
    """Index files and folders (re-running syncs only what changed)."""
    from .config import default_transcriber

    settings: dict[str, Any] = {}
    if whisper_model or no_audio:
        settings["transcriber"] = None if no_audio else default_transcriber(whisper_model)
    if no_tags:
        settings["tagger"] = False
    if clip_weights and not Path(clip_weights).expanduser().exists():
        settings["clip_pretrained"] = clip_weights  # a hub tag, not a file
        clip_weights = None
    with _open(index_name, create=True, text_model=text_model, clip=clip, clip_model=clip_model,
               clip_weights=clip_weights, clip_config=clip_config, **settings) as idx:
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


@cli.command()
@click.argument("query", required=False)
@index_option
@click.option("-k", "k", default=10, show_default=True, help="Number of results.")
@click.option("--offset", default=0, show_default=True, help="Skip this many results (paging).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid",
              show_default=True)
@click.option("--chunks", is_flag=True, help="One result per matching passage, not per item.")
@click.option("--min-score", type=float, default=None, help="Drop results scoring below this.")
@click.option("--image", "image", default=None, metavar="PATH|URL",
              help="Search by example image (a file or an http(s) URL).")
@click.option("--audio", "audio", default=None, type=click.Path(exists=True),
              help="Search with a spoken clip.")
@json_option
def search(query, index_name, k, offset, mode, chunks, min_score, image, audio, as_json) -> None:
    """Search the index: text, --image or --audio."""
    if query is None and image is None and audio is None:
        raise click.UsageError("give a QUERY, --image PATH or --audio PATH")
    with _open(index_name) as idx:
        results = idx.search(query, k=k, offset=offset, mode=mode, chunks=chunks,
                             min_score=min_score, image=image, audio=audio)
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


def _format_result(r) -> str:
    where = r.path
    if r.page is not None:
        where += f"  p.{r.page}"
    if r.start is not None:
        where += f"  {_clock(r.start)}–{_clock(r.end)}"
    head = f"{r.rank:>3}. {click.style(f'{r.score:.3f}', fg='green')}  [{r.modality}] {click.style(where, bold=True)}"
    snippet = " ".join((r.text or "").split())
    if len(snippet) > 240:
        snippet = snippet[:237] + "..."
    lines = [head]
    if r.tags:
        lines.append(f"      tags: {', '.join(r.tags[:5])}")
    if r.width and r.height:
        lines.append(f"      {r.width}x{r.height} px")
    if snippet and r.modality != "image":
        lines.append(f"      {snippet}")
    return "\n".join(lines)


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
    for c in item["chunks"]:
        where = f"p.{c['page']}" if c["page"] is not None else (
            f"{_clock(c['start_s'])}–{_clock(c['end_s'])}" if c["start_s"] is not None else "")
        click.echo(f"\n[{c['ordinal']}] {where}\n{c['text']}")


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
    cli(prog_name="anyfind")


if __name__ == "__main__":
    main()
