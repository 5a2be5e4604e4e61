"""Indexing on a Ray cluster: the items to read stream through a Ray Data pipeline.

The pipeline above (indexer/distributed.py) gives the steps as `Stage`s: reading is a
pool of stateless CPU tasks, each model step (Whisper, the tagger, one encoder per
space) a pool of stateful actors (`map_batches` with a class, `ActorPoolStrategy`),
each holding its model for the whole run, with a GPU share each where the cluster has
GPUs. Ray Data streams with backpressure and retries a task whose worker or actor died
(Ray Data's defaults: tasks retried on system failures, actors restarted and their
batch run again; a failed attempt's rows never come out), so a killed process costs
time, never a row.

`address`: None starts a local Ray for the run (stopped after it); "auto" joins the
cluster this machine runs (RAY_ADDRESS, or the last `ray start`); "HOST:PORT" a head
node's GCS; "ray://HOST:10001" Ray Client. Chunk batches handed to `encode` directly
(not whole items) run in this process, as with the local executor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ExecutorError, one_line, require
from .base import ChunkJob, EncodingExecutor, Progress, Stage
from .local import LocalExecutor

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ONE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps loopback addresses
# What the workers need to resolve models and behave exactly as this process does.
PASSED_ENV = ("ANYFIND_", "HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_", "TOKENIZERS_",
              "OMP_", "MKL_")
READ_CPUS = 0.25  # a read task: mostly I/O and parsing; leaves room beside the actors
READ_BATCH = 8  # items per read task
MODEL_BATCH = 64  # items per actor call (their chunks are sorted by length inside)
PROBE_SECONDS = 3.0
log = logging.getLogger("anyfind.indexer")

_built: dict[str, Callable[[list[Any]], list[Any]]] = {}  # per worker process


def _rows(values: Sequence[Any]) -> dict[str, np.ndarray]:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return {"row": out}


def _run_task(batch: dict[str, np.ndarray], key: str, make) -> dict[str, np.ndarray]:
    """A stateless stage's batch, in a task: its function is built once per worker."""
    fn = _built.get(key)
    if fn is None:
        while len(_built) >= 8:  # earlier runs' views: a long-lived worker keeps few
            _built.pop(next(iter(_built)))
        fn = _built[key] = make()
    return _rows(fn(list(batch["row"])))


class _StageActor:
    """A model stage's actor: builds the stage (loads the model) once, then maps batches."""

    def __init__(self, make, threads: int | None = None):
        if threads:  # Ray caps OMP at the actor's whole CPUs (1 for a fraction)
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:
                pass
        self.fn = make()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _rows(self.fn(list(batch["row"])))


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def passed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}


@contextlib.contextmanager
def _native_stderr():
    """What native code writes to file descriptor 2 meanwhile (Ray's C++ core retries an
    unauthenticated connection with twenty warning lines, and prints an E-line on every
    connect): kept, and handed over in the yielded list once the block is left, instead
    of shown."""
    said: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said.append(sink.read(1 << 20).decode(errors="replace"))


@contextlib.contextmanager
def _native_lines_kept() -> Iterator[None]:
    """As _native_stderr, with Python's sys.stderr still on the terminal: the progress
    bar and anyfind's messages are shown, the core worker's lines ("Actor with class name
    ... has constructor arguments in the object store", on every run) are not; they go to
    the log at DEBUG."""
    terminal = os.fdopen(os.dup(2), "w", buffering=1, errors="replace")
    python_stderr = sys.stderr
    try:
        with _native_stderr() as said:
            sys.stderr = terminal
            try:
                yield
            finally:
                terminal.flush()
                sys.stderr = python_stderr
    finally:
        terminal.close()
    if text := "".join(said).strip():
        log.debug("the cluster's native output during the run: %s", text)


class RayExecutor(EncodingExecutor):
    name = "ray"
    distributed = True

    def __init__(self, *, spaces: dict[str, Any], tagger: Callable[[], Any], tag_vectors: Any,
                 address: str | None = None, actors: int | None = None,
                 actor_cpus: float | None = None, actor_gpus: float | None = None,
                 num_cpus: int | None = None, num_gpus: int | None = None,
                 read_cpus: float = READ_CPUS,
                 read_batch: int = READ_BATCH, model_batch: int = MODEL_BATCH,
                 shared_files: bool | None = None, actor_threads: int | None = None,
                 **options: Any):
        self._local = LocalExecutor(spaces=spaces, tagger=tagger, tag_vectors=tag_vectors)
        self.address = address or None
        self.actors = actors
        self.actor_cpus = actor_cpus
        self.actor_gpus = actor_gpus
        self.num_cpus = num_cpus  # a local Ray's size (None: Ray counts this machine's)
        self.num_gpus = num_gpus
        self.read_cpus = read_cpus
        self.read_batch = max(1, int(read_batch))
        self.model_batch = max(1, int(model_batch))
        self.shared_files = shared_files  # None: true when every node is this machine
        self.actor_threads = actor_threads  # None: a node's CPUs shared by its model pools
        self.workers = 0  # actors of the last run
        self.nodes = 0
        self.connected = False
        self._started = False  # a local Ray this executor started (and stops)

    # -- chunk batches handed over directly: this process ---------------------------------
    @property
    def tags_images(self) -> bool:
        return self._local.tags_images

    def tag(self, images: Sequence[Any]) -> list[list[tuple[str, float]]]:
        return self._local.tag(images)

    def encode(self, jobs: Sequence[ChunkJob], progress: Progress | None = None
               ) -> list[dict[str, np.ndarray]]:
        return self._local.encode(jobs, progress)

    # -- the cluster ----------------------------------------------------------------------
    def where(self) -> str:
        return self.address or "a local Ray"

    def connect(self) -> None:
        """Join (or start) Ray; a cluster that cannot be reached is one ExecutorError."""
        if self.connected:
            return
        host_port = _host_port(self.address) if self.address not in (None, "auto") else None
        if self.address is None or (host_port and host_port[0] in LOOPBACK):
            # Ray swaps a loopback address for this machine's external one (read when ray
            # is imported) and then waits for ever: a cluster on loopback is what was asked.
            if "ray" in sys.modules and os.environ.get(ONE_MACHINE) != "0" and host_port:
                raise ExecutorError(f"cannot join the Ray cluster at {self.address} from this "
                                    f"process: ray was imported without {ONE_MACHINE}=0, so "
                                    "it would not use the loopback address (set it first)")
            os.environ.setdefault(ONE_MACHINE, "0")
        ray = require("ray", "ray")
        require("ray.data", "ray")
        if not ray.is_initialized():
            if host_port is not None:
                self._probe(*host_port)
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False,
                                      "runtime_env": {"env_vars": passed_env()}}
            with _native_stderr() as said:  # Ray's core logs to fd 2 itself
                try:
                    if self.address is None:
                        ray.init(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                                 include_dashboard=False, **kwargs)
                        self._started = True
                    else:
                        ray.init(address=self.address, **kwargs)
                except Exception as exc:
                    failure: Exception | None = exc
                else:
                    failure = None
            if failure is not None:
                raise ExecutorError(self._refused("".join(said), failure)) from None
            if "".join(said).strip():
                log.debug("ray.init said: %s", "".join(said))
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # Warnings about choices made on purpose: its bars are off (one bar: the sync's),
        # rows are Python objects (pickled by Ray, not Arrow columns).
        for name in ("ray.data._internal.progress", "ray.data._internal.tensor_extensions.arrow"):
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the sync's own bar is the one progress bar
        self.connected = True

    def native_output_kept(self):
        return _native_lines_kept()

    def _refused(self, said: str, exc: Exception) -> str:
        """One sentence for a failed ray.init: a refused token says so (Ray's own words are
        twenty 'InvalidAuthToken' lines, then a ConnectionError that reads as a network
        fault), anything else names the cluster and the error."""
        if "InvalidAuthToken" in said or "Unauthenticated" in said:
            given = "a wrong token" if os.environ.get("RAY_AUTH_TOKEN") else "no token"
            return (f"the Ray cluster at {self.where()} refused this process ({given}): set "
                    "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token in the "
                    "environment of anyfind (docs/SCALE.md, 'Indexing on Ray')")
        return f"cannot reach the Ray cluster at {self.where()}: {one_line(exc)}"

    def _probe(self, host: str, port: int) -> None:
        """Fail in seconds where ray.init would retry for minutes."""
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ExecutorError(f"cannot reach the Ray cluster at {self.address}: "
                                f"{reason}") from None

    def _alive_nodes(self) -> list[dict[str, Any]]:
        import ray

        return [n for n in ray.nodes() if n.get("Alive")]

    def shares_files(self) -> bool:
        """Whether the workers see this machine's files: `shared_files` when set (a shared
        mount, or False to have the driver ship every item's bytes), else whether every
        node of the cluster is this machine."""
        self.connect()
        if self.shared_files is not None:
            return bool(self.shared_files)
        import ray

        here = {ray.util.get_node_ip_address(), *LOOPBACK}
        return all(n.get("NodeManagerAddress") in here for n in self._alive_nodes())

    def run_items(self, rows: Sequence[Any], stages: Sequence[Stage]) -> Iterator[Any]:
        self.connect()
        import ray
        import ray.data

        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        cpus = float(resources.get("CPU", 1))
        models = [s for s in stages if s.model]
        gpu_stages = [s for s in models if s.gpu] if gpus else []
        pool = self.actors or (max(1, int(gpus)) if gpus else 1)
        # Fractional CPUs: whole-CPU actors on a small machine leave the read tasks no
        # room, and Ray Data then waits forever without an error.
        per_actor = self.actor_cpus or (1.0 if gpus else max(
            0.05, min(0.5, round(0.75 * cpus / max(1, len(models) * pool), 2))))
        self.workers = pool * len(models)
        if self.actor_gpus and not gpus:
            raise ExecutorError(f"actor_gpus={self.actor_gpus} but the Ray cluster at "
                                f"{self.where()} has no GPU: its actors would never start")
        need = per_actor * self.workers + self.read_cpus
        if need > cpus:  # Ray Data would wait for CPUs without a word (unless it autoscales)
            log.warning("the model pools and a read task ask for %.2f CPUs, the Ray cluster "
                        "has %.2f: the run waits until nodes join", need, cpus)
        nodes = self._alive_nodes()
        self.nodes = len(nodes)
        node_cpus = max((float(n.get("Resources", {}).get("CPU", 1)) for n in nodes), default=1)
        # Torch threads per actor: without GPUs the model pools share a node's cores (as
        # the local executor's one model uses them all); a fraction of a CPU is only what
        # Ray schedules by, not what the model may use.
        threads = self.actor_threads or max(1, int(node_cpus // max(1, len(models))))
        blocks = max(1, min(len(rows) // self.read_batch or 1, 1000))
        ds = ray.data.from_items([{"row": r} for r in rows], override_num_blocks=blocks)
        run = uuid.uuid4().hex
        for stage in stages:
            if stage.model:
                share = self.actor_gpus if self.actor_gpus is not None else (
                    1.0 / len(gpu_stages) if stage in gpu_stages else 0)
                extra = {"num_gpus": share} if share else {}
                ds = ds.map_batches(_StageActor, fn_constructor_args=(stage.make, threads),
                                    batch_size=self.model_batch, batch_format="numpy",
                                    compute=ray.data.ActorPoolStrategy(size=pool),
                                    num_cpus=per_actor, **extra)
            else:
                ds = ds.map_batches(_run_task, fn_kwargs={"key": f"{run}:{stage.name}",
                                                          "make": stage.make},
                                    batch_size=self.read_batch, batch_format="numpy",
                                    num_cpus=self.read_cpus)
        try:
            for row in ds.iter_rows():
                yield row["row"]
        except ExecutorError:
            raise
        except Exception as exc:
            raise ExecutorError(f"the Ray run failed on {self.where()}: {one_line(exc)}"
                                ) from exc

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
        self.connected = False
