"""Fork server of the crash tests (run by crashkit.Zygote, not by pytest).

    python tests/reliability/zygote.py WORKDIR CORPUS SETTINGS_JSON

Loads every model once by indexing CORPUS into a scratch index, builds an empty index
template (WORKDIR/template) with SETTINGS, then answers one JSON request a line on stdin:

    {"argv": ["index", ...], "log": FILE, "kill_after": SECONDS|null, "env": {...}}

by forking a child that runs `anyfind ARGV` exactly as the command line does (output to
FILE), SIGKILLing it after kill_after seconds if it is still running, and replying
{"rc", "killed", "seconds"} on stdout. The child is a real process killed with a real
SIGKILL; forking only spares it the model loading.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ("*.wav", "*.flac", "*.mp3", "*.ogg", "*.opus", "*.m4a", "*.mp4", "*.mkv", "*.webm")


def reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def prepare(workdir: Path, corpus: Path, settings: dict) -> dict:
    from anyfind import Index

    settings = dict(settings)
    clip = {}
    if settings.pop("clip", False):
        sys.path.insert(0, str(ROOT / "tests" / "support"))
        from clip_fixtures import make_tiny_clip_checkpoint

        arch, checkpoint = make_tiny_clip_checkpoint(workdir / "clip")
        clip = {"clip_model": arch, "clip_weights": str(checkpoint),
                "clip_config": str(workdir / "clip" / "configs" / f"{arch}.json")}
    template = workdir / "template"
    shutil.rmtree(template, ignore_errors=True)
    Index.open(template, **clip, **settings).close()
    warm = workdir / "warm"
    shutil.rmtree(warm, ignore_errors=True)
    shutil.copytree(template, warm)
    # Whisper (CTranslate2) runs on worker threads that a fork does not copy: a child
    # would wait for them forever. So recordings are left out here and each child loads
    # Whisper itself (a second or so); torch, FAISS and SQLite are fork-safe.
    sample = workdir / "warm-corpus"
    shutil.rmtree(sample, ignore_errors=True)
    shutil.copytree(corpus, sample, ignore=shutil.ignore_patterns(*AUDIO))
    started = time.perf_counter()
    with Index.open(warm) as idx:  # loads and warms every other model
        report = idx.add([sample])
    shutil.rmtree(warm, ignore_errors=True)
    return {"template": str(template), "warm_seconds": time.perf_counter() - started,
            "warm_report": report.to_dict()}


def child(request: dict) -> None:
    code = 1
    try:
        os.environ.update(request.get("env") or {})
        out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        protocol = sys.stdout.fileno()
        sys.stdout = sys.__stdout__  # fd 1: the log now
        os.close(protocol)
        import faulthandler

        faulthandler.enable()  # a crash of the child itself leaves a traceback in its log
        from anyfind.cli import cli

        cli.main(args=request["argv"], prog_name="anyfind", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run(request: dict) -> dict:
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child(request)
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], request.get("kill_after"))
        killed = not ready
        if killed:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
    return {"rc": os.waitstatus_to_exitcode(status), "killed": killed,
            "seconds": time.monotonic() - started}


def main() -> None:
    if os.environ.get("OMP_NUM_THREADS") != "1":
        # An OpenMP pool started here is garbage in a forked child: it aborts in its
        # first tensor op. So torch must run on one thread, set before it is imported.
        sys.exit("zygote: run with OMP_NUM_THREADS=1")
    workdir, corpus, settings = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    workdir.mkdir(parents=True, exist_ok=True)
    protocol = os.fdopen(os.dup(1), "w")  # replies go here; stray prints go to stderr
    os.dup2(2, 1)
    sys.stdout = protocol
    reply(prepare(workdir, corpus, settings))
    for line in sys.stdin:
        if line.strip():
            reply(run(json.loads(line)))


if __name__ == "__main__":
    main()
