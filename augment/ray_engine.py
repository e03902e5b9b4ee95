"""Synthesis on a Ray cluster: ``augment generate --engine ray`` (extra ``gan-augment[ray]``).

The chunks still to make (:mod:`augment.generate`: 256 images of one class, each with its
own noise stream) become a Ray Data dataset, one block per chunk. ``map_batches`` runs
them on a fixed pool of actors (:class:`ChunkMaker`), each holding one onnxruntime
session (CUDA provider on a GPU worker with ``device='cuda'``). The model's bytes go
through Ray's object store, so no worker needs the file, and each actor checks their
sha256. An actor returns the chunk's PNG bytes and manifest rows; the driver puts
them in the job's :class:`augment.generate.ChunkStore` as the local engine does, so the
folder is byte-identical to a local run and a restarted job skips the chunks on disk.
The synthesize stage (``synthesize.engine: ray``) hands out whole classes the same way
(:class:`ClassSynthesizer`: rounds, filter and judge on the worker), returned in class
order and written by the driver as a local run writes them.

Fault tolerance is Ray Data's: an actor pool restarts a dead actor and retries its task
(``max_restarts`` and ``max_task_retries`` -1 by default). Before any work every node of
the cluster reports the versions that decide the bytes (:func:`environment`); a node that
differs from the driver is a one-line ConfigError naming it and what differs.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import pickle
import platform
import socket
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from augment.errors import AugmentError, ConfigError, first_line
from augment.generate import Chunk, GenerateJob, MadeChunk, MakeChunks, make_chunk
from augment.latent_codes import CodeChoice
from augment.samples import ArraySink, ClassStats

if TYPE_CHECKING:
    from augment.classifier import Classifier
    from augment.filtering import ClassJob
    from augment.runtime import OnnxGenerator
    from augment.synthesize import SynthesisConfig

log = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection to a cluster's address before calling it unreachable.
CONNECT_TIMEOUT = 5.0
#: Seconds every node gets to report its versions.
CHECK_TIMEOUT = 120.0
INSTALL_HINT = "pip install 'gan-augment[ray]'"
#: Set to "0", Ray binds a Linux node to 127.0.0.1 instead of the machine's address.
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def environment() -> dict[str, str]:
    """The versions that decide a chunk's bytes: the package, onnxruntime (the pixels),
    Pillow and zlib (the PNG encoding), numpy (the noise) and Python."""
    import onnxruntime
    from PIL import features

    return {
        "gan-augment": importlib.metadata.version("gan-augment"),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "Pillow": importlib.metadata.version("pillow"),
        "zlib": str(features.version("zlib")),
        "python": platform.python_version(),
    }


def _node_report() -> dict[str, str]:
    return {"host": socket.gethostname(), **environment()}


def _open_model(model: list[Any], sha256: str, device: str) -> OnnxGenerator:
    """An actor's onnxruntime session (one thread: an actor is one CPU) of the model
    shipped in ``model`` (a reference), checked against the driver's sha256 and kept on
    the worker as ``<temp>/gan-augment-models/<sha256>.onnx`` (one file per model, shared
    by the node's actors and later jobs)."""
    import hashlib

    import ray

    from augment.runtime import OnnxGenerator

    path = Path(tempfile.gettempdir()) / "gan-augment-models" / f"{sha256}.onnx"
    if not path.is_file():
        data = ray.get(model[0])
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ConfigError(f"ray worker {socket.gethostname()}: received a corrupt model")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{sha256}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # complete or absent: actors on one node race safely
    return OnnxGenerator(path, task="synthesize", device=device, threads=1)


class ChunkMaker:
    """A Ray Data actor of ``augment generate``: one session, then a chunk per call."""

    def __init__(
        self,
        model: list[Any],
        sha256: str,
        device: str,
        job: GenerateJob,
        batch_size: int,
        codes: CodeChoice,
    ) -> None:
        self.generator = _open_model(model, sha256, device)
        self.job, self.batch_size, self.codes = job, batch_size, codes

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chunks = zip(batch["label"], batch["start"], batch["count"], strict=True)
        made = [
            make_chunk(self.generator, self.job, Chunk(*map(int, c)), self.batch_size, self.codes)
            for c in chunks
        ]
        return {"result": np.array([pickle.dumps(m) for m in made], dtype=object)}


class ClassSynthesizer:
    """A Ray Data actor of the synthesize stage: one session (and the judge), then one
    class per call, returned as its writes (images, seed) and stats."""

    def __init__(self, model: list[Any], sha256: str, device: str, work: list[Any]) -> None:
        import ray
        import torch

        torch.set_num_threads(1)  # an actor is one CPU
        self.generator = _open_model(model, sha256, device)
        self.jobs, self.config, self.seed, self.judge = ray.get(work[0])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from augment.synthesize import synthesize_class

        results = []
        for index in batch["index"]:
            job = self.jobs[int(index)]
            info = self.generator.info
            sink = ArraySink((info.image_size, info.image_size, info.channels))
            stats = synthesize_class(job, self.generator, sink, self.config, self.seed, self.judge)
            results.append(pickle.dumps((sink, stats)))
        return {"result": np.array(results, dtype=object)}


@dataclass(frozen=True)
class RayEngine:
    """Synthesis on a Ray cluster (``augment generate``'s chunks, the synthesize stage's
    classes) by ``workers`` actors of one CPU each (and one GPU each with
    ``device='cuda'``). ``address``: a running cluster (``host:port`` of its
    head, ``auto``, or ``ray://host:port``); None starts a local one bound to 127.0.0.1
    with ``workers`` CPUs for this job and stops it after."""

    address: str | None = None
    workers: int = 2
    device: str = "auto"

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """Join (or start) the cluster and check it; yields the ``ray`` module."""
        if self.workers < 1:
            raise ConfigError(f"--workers {self.workers}: must be at least 1")
        ray = _import_ray()
        started = self._connect(ray)
        try:
            check_cluster(ray, self.workers, self.device == "cuda", self._where)
            yield ray
        finally:
            if started:
                ray.shutdown()

    @contextlib.contextmanager
    def connect(
        self, generator: OnnxGenerator, job: GenerateJob, batch_size: int, codes: CodeChoice
    ) -> Iterator[MakeChunks]:
        """The :class:`augment.generate.Engine` of ``augment generate``."""
        with self.session() as ray:
            arguments = self._model(ray, generator) | {
                "job": job,
                "batch_size": batch_size,
                "codes": codes,
            }

            def make(chunks: Sequence[Chunk]) -> Iterator[MadeChunk]:
                rows = [asdict(chunk) for chunk in chunks]
                yield from self._map(ray, ChunkMaker, rows, arguments, ordered=False)

            yield make

    def synthesize(
        self,
        generator: OnnxGenerator,
        jobs: Sequence[ClassJob],
        config: SynthesisConfig,
        seed: int,
        judge: Classifier | None,
    ) -> Iterator[tuple[ArraySink, ClassStats]]:
        """The synthesize stage's classes on the cluster, one per task (filtered by the
        judge where there is one): each class's writes and stats, in ``jobs`` order."""
        with self.session() as ray:
            arguments = self._model(ray, generator) | {
                "work": [ray.put((list(jobs), config, seed, judge))],
            }
            rows = [{"index": index} for index in range(len(jobs))]
            yield from self._map(ray, ClassSynthesizer, rows, arguments, ordered=True)

    def _model(self, ray: Any, generator: OnnxGenerator) -> dict[str, Any]:
        """The actors' arguments that open the model: its bytes go through the object
        store once (a reference in a list: each actor fetches it, Ray does not pin it)."""
        return {
            "model": [ray.put(generator.path.read_bytes())],
            "sha256": generator.sha256,
            "device": self.device,
        }

    def _map(
        self,
        ray: Any,
        actor: type,
        rows: list[dict[str, int]],
        arguments: dict[str, Any],
        ordered: bool,
    ) -> Iterator[Any]:
        """``actor`` over ``rows`` (one task each) on a pool of ``workers`` actors; yields
        what each call returns (``ordered``: in ``rows`` order)."""
        if not rows:
            return
        ray.data.DataContext.get_current().execution_options.preserve_order = ordered
        results = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            actor,
            fn_constructor_kwargs=arguments,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=1,
            num_gpus=1 if self.device == "cuda" else 0,
        )
        try:
            for row in results.iter_rows():
                yield pickle.loads(row["result"])
        except ray.exceptions.RayError as exc:
            raise _one_line(exc, self._where) from None

    @property
    def _where(self) -> str:
        return f"ray cluster at {self.address}" if self.address else "local ray cluster"

    def _connect(self, ray: Any) -> bool:
        """Join the cluster (True when this call started a local one)."""
        if ray.is_initialized():
            return False
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is None:
            # Ray's switch that keeps a Linux node on 127.0.0.1 (it otherwise listens on
            # the machine's address): a cluster for one job has no reason to be reachable.
            os.environ.setdefault(LOOPBACK_ONLY, "0")
            try:  # "local": a new cluster even where RAY_ADDRESS or `ray start` name one
                ray.init(address="local", num_cpus=self.workers, include_dashboard=False, **quiet)
            except (OSError, RuntimeError, ValueError) as exc:  # e.g. a TMPDIR too long
                raise ConfigError(f"{self._where}: cannot start ({first_line(exc)})") from None
        else:
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"{self._where}: cannot connect ({_connect_error(exc)})"
                ) from None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver's own bar counts the chunks
        context.print_on_execution_start = False
        return True


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray Data: {INSTALL_HINT}") from None
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on its own bars
    return ray


def _check_reachable(address: str) -> None:
    """ConfigError naming ``address`` unless a TCP connection to it opens quickly (Ray's
    own connect retries for minutes before it gives up)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except ValueError:
        raise ConfigError(
            f"--address {address!r}: expected host:port, e.g. 10.0.0.5:6379"
        ) from None
    except OSError as exc:
        reason = exc.strerror or first_line(exc)
        raise ConfigError(f"ray cluster at {address}: cannot be reached ({reason})") from None


def check_cluster(ray: Any, workers: int, gpu: bool, where: str) -> None:
    """ConfigError unless the cluster can hold ``workers`` actors and every live node runs
    the driver's versions (:func:`environment`), naming the first node that differs."""
    resources = ray.cluster_resources()
    for name, needed in (("CPU", workers), ("GPU", workers if gpu else 0)):
        if resources.get(name, 0) < needed:
            raise ConfigError(
                f"{where}: has {resources.get(name, 0):g} {name}s, {workers} workers need "
                f"{needed} (one each); pass --workers {int(resources.get(name, 0)) or 1} or "
                "add nodes"
            )
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    report = ray.remote(num_cpus=0)(_node_report)
    nodes = [node for node in ray.nodes() if node["Alive"]]
    pending = [
        report.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote()
        for node in nodes
    ]
    here = environment()
    for node, reference in zip(nodes, pending, strict=True):
        name = f"ray worker {node['NodeManagerAddress']}"
        try:
            there = ray.get(reference, timeout=CHECK_TIMEOUT)
        except ray.exceptions.RayError as exc:
            raise ConfigError(f"{name}: cannot run gan-augment ({_cause(exc)})") from None
        differs = [
            f"{key} {there.get(key, 'missing')} there, {value} here"
            for key, value in here.items()
            if there.get(key) != value
        ]
        if differs:
            raise ConfigError(
                f"{name} ({there['host']}): {'; '.join(differs)}; every worker must run "
                "the driver's versions (they decide the images' bytes)"
            )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it wraps, outermost first (Ray keeps a worker's exception
    in ``cause``; Python's own chain is ``__cause__``)."""
    inner: BaseException | None = exc
    while inner is not None:
        yield inner
        inner = getattr(inner, "cause", None) or inner.__cause__


def _connect_error(exc: BaseException) -> str:
    """Why ``ray.init`` could not join: a token the cluster refused gets Ray's remedy. Ray
    reports it inside the text of the error it chains (a formatted traceback), not as
    an exception object in the chain."""
    if any("AuthenticationError" in f"{type(e).__name__}: {e}" for e in _chain(exc)):
        return (
            "the cluster uses token authentication: set RAY_AUTH_MODE=token and give "
            "its token in ~/.ray/auth_token or RAY_AUTH_TOKEN"
        )
    return first_line(exc)


def _cause(exc: BaseException) -> str:
    """The innermost error's first line: Ray wraps a worker's exception in its own."""
    *_, innermost = _chain(exc)
    return first_line(innermost)


def _one_line(exc: BaseException, where: str) -> AugmentError:
    """A worker's AugmentError as itself, anything else named by where it happened."""
    for inner in _chain(exc):
        if isinstance(inner, AugmentError):
            return type(inner)(str(inner))
    return AugmentError(f"{where}: a chunk failed ({_cause(exc)})")
