"""Ray, the optional engine for work past one machine: start or join a cluster, run one task per item.

Ray is the ``scale`` extra (``pip install -e '.[scale]'``; exact versions in
``requirements-scale-lock.txt``). It is imported only inside these functions, so ``import fer_lib``
and every command but ``batch`` and ``ablate --ray`` work without it.

:func:`ray_session` starts a local Ray on this machine (no address) or joins a running cluster
(``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the others; every
machine holds the project installed at the same path). :func:`run_tasks` runs a module-level
function once per item as Ray tasks and yields each result as it arrives: a task whose worker
process dies is retried by Ray (:data:`TASK_RETRIES`); an exception raised by the function is not
retried and comes back as a one-line :class:`TaskFailure`, so one bad item never stops the others.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fer_lib.console import native_stderr_muted
from fer_lib.errors import ClusterError, FerError

TASK_RETRIES: int = 3
"""Times Ray re-runs a task whose worker process died (killed, out of memory, node lost)."""

CONNECT_TIMEOUT_S: float = 5.0
"""Seconds to wait for a cluster's address to accept a connection before giving up."""

AUTH_HINT: str = (
    "a cluster started by `ray start --head` checks a token by default: join with env RAY_AUTH_MODE=token and "
    "the head's ~/.ray/auth_token on this machine (or env RAY_AUTH_TOKEN)"
)
"""What a failed join says when ``RAY_AUTH_MODE`` is not set (Ray 2.5x clusters require a token by default)."""

INSTALL_HINT: str = "pip install -e '.[scale]' (exact versions: pip install -r requirements-scale-lock.txt)"
"""How to install Ray, as error messages say it."""


@dataclass(frozen=True)
class TaskFailure:
    """A task that raised: ``message`` is one line (a :class:`FerError`'s own message, else the type and first line)."""

    message: str


def import_ray(what: str) -> ModuleType:
    """Return the ``ray`` module.

    Args:
        what: the command or option that needs Ray, named in the error (e.g. ``"batch"``).

    Raises:
        ClusterError: if Ray is not installed, saying how to install it.
    """
    logging.getLogger("ray.widgets.util").setLevel(logging.WARNING)  # no "install ipywidgets" in notebooks
    try:
        with warnings.catch_warnings():  # nor tqdm's IProgress warning, which importing Ray triggers there
            warnings.simplefilter("ignore")
            import ray
    except ImportError:
        raise ClusterError(f"{what} needs Ray, an optional extra: {INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_session(address: str | None, *, workers: int | None = None, what: str) -> Iterator[ModuleType]:
    """Start a local Ray or join a cluster for the ``with`` block; yield the ``ray`` module.

    A session already open in this process (e.g. a test's) is used as it is and left open.
    Workers' output stays in Ray's logs (``/tmp/ray/session_latest/logs``); results and errors
    come back through :func:`run_tasks`.

    Args:
        address: None starts a local Ray on this machine (stopped at the end of the block); else a
            running cluster's address (``HOST:6379``, or ``auto`` for the one started on this machine).
        workers: CPUs of the local Ray (None: all of this machine's); ignored when joining a cluster.
        what: the command, named in errors.

    Raises:
        ClusterError: if Ray is not installed or the cluster at ``address`` cannot be joined.
    """
    ray = import_ray(what)
    if ray.is_initialized():
        yield ray
        return
    if address is not None:
        check_reachable(address, what=what)
    options: dict[str, Any] = {"address": "local", "num_cpus": workers} if address is None else {"address": address}
    try:
        with native_stderr_muted():  # a failed join repeats C++ warnings for seconds; the error below says it once
            ray.init(**options, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = "a local Ray" if address is None else f"the Ray cluster at {address}"
        hint = "" if address is None or os.environ.get("RAY_AUTH_MODE") else f"; {AUTH_HINT}"
        raise ClusterError(f"{what}: cannot start or join {where} ({first}){hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, *, what: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Check that something listens at a ``HOST:PORT`` address (``ray://HOST:PORT`` too) before Ray
    tries it (Ray itself retries an address where no cluster runs for minutes). ``auto`` passes.

    Raises:
        ClusterError: if the address has no port, or no connection opens within ``timeout_s`` seconds.
    """
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"{what}: --address {address}: expected HOST:PORT, e.g. 10.0.0.1:6379 (ray start --head)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ClusterError(
            f"{what}: no Ray cluster answers at {address} ({error.strerror or error}); start one there with "
            "`ray start --head`, or leave out --address for a local Ray"
        ) from None


def run_tasks(
    function: Callable[..., Any],
    items: Sequence[Any],
    *common: Any,
    max_in_flight: int | None = None,
    num_cpus: float = 1,
) -> Iterator[tuple[int, Any]]:
    """Run ``function(item, *common)`` as one Ray task per item; yield ``(index, result)`` as tasks finish.

    Call it inside :func:`ray_session`. ``function`` must be defined at module level in an
    importable module (workers import it by name). ``common`` is put into Ray's object store once.

    Args:
        items: one task each; ``index`` is the item's position.
        max_in_flight: tasks submitted at a time (None: all at once, Ray queues them for free CPUs).
        num_cpus: CPUs each task reserves on a worker.

    Yields:
        ``(index, result)`` in the order tasks finish; ``result`` is ``function``'s return value,
        or a :class:`TaskFailure` if it raised or its worker died more than :data:`TASK_RETRIES` times.
    """
    import ray

    remote = ray.remote(num_cpus=num_cpus, max_retries=TASK_RETRIES)(function)
    shared = [ray.put(value) for value in common]
    waiting = list(enumerate(items))[::-1]
    running: dict[Any, int] = {}
    while waiting or running:
        while waiting and (max_in_flight is None or len(running) < max_in_flight):
            index, item = waiting.pop()
            running[remote.remote(item, *shared)] = index
        [ready], _ = ray.wait(list(running), num_returns=1)
        index = running.pop(ready)
        try:
            result = ray.get(ready)
        except ray.exceptions.RayError as error:
            result = TaskFailure(failure_message(error))
        yield index, result


def failure_message(error: Exception) -> str:
    """One line for a failed task: the :class:`FerError` it raised as it is, else ``Type: first line``."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, FerError):
        return " ".join(str(cause).split())
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")
