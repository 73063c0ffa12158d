"""The Python helper for weir guests.

It mirrors the Rust SDK (``guests/sdk``): a :class:`Batch` whose ``records()``
are views that resolve the columnar spans for you (``offset``, ``timestamp``,
``key``, ``value``, ``headers``), :func:`emit`, :class:`Emits` (many records
in one host call) and :func:`log` wrapping the host
imports, ``record.fail(kind, message)`` building the failure the host acts
on, keyed :data:`state` that commits with the batch, and :class:`Dedupe` for
idempotent processing on it. A guest author never handles spans by hand::

    import weir_guest as weir

    class Upper(weir.Processor):
        def process(self, batch):
            for r in batch.records():
                weir.emit("upper", r.key, r.value.upper())

    WitWorld = weir.export_processor(Upper)

componentize-py looks for the class ``WitWorld`` in the app module; that is
the one line of glue. ``raise record.fail(...)`` returns the WIT failure; any
other exception escaping ``process`` is a bug in the guest: the call traps, the
host does not commit the batch and backs off, as it does for a Rust panic.
"""

import json
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from componentize_py_types import Err
from wit_world.imports import host, types
from wit_world.imports import state as _wit_state
from wit_world.imports.types import FailureKind, Level

__all__ = [
    "Batch",
    "Config",
    "Dedupe",
    "EmitError",
    "Emits",
    "Failure",
    "FailureKind",
    "Level",
    "Processor",
    "Record",
    "State",
    "StateError",
    "emit",
    "export_processor",
    "log",
    "state",
]

Bytes = Union[bytes, str]


class Config:
    """The processor's configuration, as given to ``init``."""

    def __init__(self, pairs: List[Tuple[str, str]]):
        #: Every (key, value) pair, in the order the host gave them.
        self.pairs = pairs

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``key``, or ``default`` if it was not configured."""
        for k, v in self.pairs:
            if k == key:
                return v
        return default


class Failure(Exception):
    """A failure pointing at one record; ``raise`` it from ``process``."""

    def __init__(self, index: int, kind: FailureKind, message: str):
        super().__init__(message)
        self.index = index
        self.kind = kind
        self.message = message


#: The key length that marks a record without a key.
_NO_KEY = 0xFFFFFFFF
#: Integers per record in ``spans``, and per header in ``headers``.
_SPAN_WIDTH = 6
_HEADER_WIDTH = 4


class Batch:
    """A polled batch: consecutive records from one partition of one topic."""

    def __init__(self, raw: types.Batch):
        self.raw = raw
        #: The topic the records came from.
        self.topic = raw.topic
        #: The partition the records came from.
        self.partition = raw.partition
        #: The partition's high watermark when the batch was read.
        self.high_watermark = raw.high_watermark

    def __len__(self) -> int:
        return len(self.raw.offsets)

    def records(self) -> Iterator["Record"]:
        """The records, in offset order, as :class:`Record` views."""
        for index in range(len(self.raw.offsets)):
            yield Record(self, index)

    def bytes(self, start: int, length: int) -> bytes:
        """The bytes ``data[start : start + length]`` of the arena."""
        return self.raw.data[start : start + length]


class Record:
    """A view of one record of a :class:`Batch`."""

    __slots__ = ("batch", "index", "span")

    def __init__(self, batch: Batch, index: int):
        self.batch = batch
        #: The record's position in its batch; a :class:`Failure` names it.
        self.index = index
        # Six integers per record: key start/len, value start/len, first header, count.
        self.span = batch.raw.spans[index * _SPAN_WIDTH : (index + 1) * _SPAN_WIDTH]

    @property
    def offset(self) -> int:
        """The record's offset in its partition."""
        return self.batch.raw.offsets[self.index]

    @property
    def timestamp(self) -> int:
        """Milliseconds since the Unix epoch."""
        return self.batch.raw.timestamps[self.index]

    @property
    def key(self) -> Optional[bytes]:
        """The key, or ``None`` for a record produced without one."""
        start, length = self.span[0], self.span[1]
        return None if length == _NO_KEY else self.batch.bytes(start, length)

    @property
    def value(self) -> bytes:
        """The value."""
        return self.batch.bytes(self.span[2], self.span[3])

    @property
    def headers(self) -> List[Tuple[str, bytes]]:
        """The headers, as (name, value) pairs in the order they were produced."""
        first, count = self.span[4], self.span[5]
        table = self.batch.raw.headers
        out = []
        for i in range(first, first + count):
            h = table[i * _HEADER_WIDTH : (i + 1) * _HEADER_WIDTH]
            name = self.batch.bytes(h[0], h[1]).decode("utf-8", "replace")
            out.append((name, self.batch.bytes(h[2], h[3])))
        return out

    def header(self, name: str) -> Optional[bytes]:
        """The value of the first header called ``name``."""
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def fail(self, kind: FailureKind, message: object) -> Failure:
        """A :class:`Failure` pointing at this record: ``raise record.fail(...)``."""
        return Failure(self.index, kind, str(message))


class EmitError(Exception):
    """Raised by :func:`emit` when the host refuses a record."""


def _bytes(x: Bytes) -> bytes:
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


def emit(
    topic: str,
    key: Optional[Bytes],
    value: Bytes,
    headers: Sequence[Tuple[str, Bytes]] = (),
) -> None:
    """Queues a record for ``topic``; it is appended only if the current batch
    succeeds. ``key`` and ``value`` are bytes or str (sent as UTF-8); a key of
    ``None`` means "no key". Raises :class:`EmitError` when the host refuses
    the record (unknown topic, record too large)."""
    try:
        host.emit(
            topic,
            None if key is None else _bytes(key),
            _bytes(value),
            [(name, _bytes(v)) for name, v in headers],
        )
    except Err as e:
        raise EmitError(str(e.value)) from None


class Emits:
    """Records for one topic, queued by one host call (:meth:`send`): what
    :func:`emit` does for each, for the cost of a single crossing of the
    boundary instead of one per record (the WIT ``emit-batch``). The records
    are laid out as the host reads batches: one byte arena and integer spans::

        out = weir.Emits("upper")
        for r in batch.records():
            out.push(r.key, r.value.upper())
        out.send()  # raises EmitError naming the first refused record

    All or nothing: when the topic does not exist or a record is too large,
    nothing is queued. If ``process`` fails at a record after pushing, nothing
    was sent; the host runs the records before it again, which sends theirs."""

    def __init__(self, topic: str):
        self.topic = topic
        self._spans: List[int] = []
        self._headers: List[int] = []
        self._data = bytearray()

    def _arena(self, x: Bytes) -> Tuple[int, int]:
        b = _bytes(x)
        start = len(self._data)
        self._data += b
        return start, len(b)

    def push(
        self,
        key: Optional[Bytes],
        value: Bytes,
        headers: Sequence[Tuple[str, Bytes]] = (),
    ) -> None:
        """Adds a record; nothing reaches the host until :meth:`send`."""
        k = (0, _NO_KEY) if key is None else self._arena(key)
        v = self._arena(value)
        first = len(self._headers) // _HEADER_WIDTH
        for name, hv in headers:
            self._headers.extend(self._arena(name))
            self._headers.extend(self._arena(hv))
        self._spans.extend((k[0], k[1], v[0], v[1], first, len(headers)))

    def __len__(self) -> int:
        return len(self._spans) // _SPAN_WIDTH

    def send(self) -> None:
        """Queues every record, in order, to be appended if the batch
        succeeds, and empties this ``Emits`` for reuse."""
        if not self._spans:
            return
        records = types.Emits(
            topic=self.topic,
            spans=self._spans,
            headers=self._headers,
            data=bytes(self._data),
        )
        self._spans, self._headers, self._data = [], [], bytearray()
        try:
            host.emit_batch(records)
        except Err as e:
            raise EmitError(str(e.value)) from None


def log(level: Level, message: str) -> None:
    """Writes a line to the host's log, tagged with the processor's name."""
    host.log(level, str(message))


class StateError(Exception):
    """Raised by :meth:`State.put` when the host refuses a write (a key or
    value over its limit, a spent budget), and by :class:`Dedupe` on an entry
    it did not write."""


class State:
    """Keyed state, scoped to the processor and the input partition of the
    batch being processed (the WIT ``state`` interface); use the module's
    :data:`state`. Reads see the batch's own writes; the writes commit with
    the batch's offset, and a failed batch's are dropped. State survives
    restarts and moves with its partition, and a rewind of the group puts it
    back as it was at the rewind point. Keys and values are bytes or str
    (stored as UTF-8); what comes back is bytes."""

    def get(self, key: Bytes) -> Optional[bytes]:
        """The value stored under ``key``, or ``None``."""
        return _wit_state.get(_bytes(key))

    def put(self, key: Bytes, value: Bytes) -> None:
        """Stores ``value`` under ``key``; raises :class:`StateError`, changing
        nothing, when the host refuses it."""
        try:
            _wit_state.put(_bytes(key), _bytes(value))
        except Err as e:
            raise StateError(str(e.value)) from None

    def delete(self, key: Bytes) -> None:
        """Removes ``key`` (a no-op when it is absent)."""
        _wit_state.delete(_bytes(key))

    def scan(
        self, prefix: Bytes, after: Optional[Bytes] = None, limit: int = 1000
    ) -> List[Tuple[bytes, bytes]]:
        """Up to ``limit`` (key, value) entries whose keys start with
        ``prefix`` and sort after ``after`` (when given), in key order."""
        return _wit_state.scan(_bytes(prefix), None if after is None else _bytes(after), limit)

    def get_json(self, key: Bytes) -> Any:
        """The value under ``key`` parsed as JSON, or ``None`` when it is
        absent or not UTF-8 JSON."""
        value = self.get(key)
        if value is None:
            return None
        try:
            return json.loads(value.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError too
            return None

    def put_json(self, key: Bytes, value: Any) -> None:
        """Stores ``value`` as compact JSON (``{"a":1}``, as serde_json writes
        it) under ``key``; raises :class:`StateError` as :meth:`put` does."""
        self.put(key, json.dumps(value, separators=(",", ":"), ensure_ascii=False))


#: The guest's keyed state: ``weir.state.get(key)``, ``weir.state.put_json(key, value)``.
state = State()

_SIGN_BIT = 1 << 63
_U64 = (1 << 64) - 1


def _flip(at: int) -> bytes:
    """``at`` as an s64 with its sign bit flipped, big-endian: keys sort like times."""
    return ((at & _U64) ^ _SIGN_BIT).to_bytes(8, "big")


def _unflip(raw: bytes) -> int:
    """The time :func:`_flip` made ``raw`` from."""
    at = int.from_bytes(raw, "big") ^ _SIGN_BIT
    return at - (1 << 64) if at & _SIGN_BIT else at


class Dedupe:
    """Idempotent processing: remembers the ids it has seen for ``ttl_ms``
    (measured in the records' own timestamps, so a replay decides the same
    way), and forgets them after. The same keys and semantics as the Rust
    SDK's ``Dedupe``, so a guest may move between languages with its state:
    ``dedupe/<name>/id/<id>`` holds the time the id was first seen (8
    big-endian bytes), and ``dedupe/<name>/t/<time><id>`` (the time with its
    sign bit flipped, big-endian) indexes them for :meth:`expire`."""

    def __init__(self, name: str, ttl_ms: int):
        """A dedupe set called ``name`` (a processor may keep several)."""
        self._ids = f"dedupe/{name}/id/".encode("utf-8")
        self._times = f"dedupe/{name}/t/".encode("utf-8")
        self._ttl_ms = ttl_ms

    def first_seen(self, id: Bytes, now_ms: int) -> bool:
        """``True`` the first time ``id`` is seen at ``now_ms`` (or once its
        last sighting is older than the TTL), and remembers it; ``False`` for a
        duplicate within the TTL. Raises :class:`StateError` when the host
        refuses the write."""
        id = _bytes(id)
        key = self._ids + id
        seen = state.get(key)
        if seen is not None:
            if len(seen) != 8:
                raise StateError("corrupt dedupe entry")
            at = int.from_bytes(seen, "big", signed=True)
            if now_ms - at < self._ttl_ms:
                return False
            state.delete(self._times + _flip(at) + id)
        state.put(key, now_ms.to_bytes(8, "big", signed=True))
        state.put(self._times + _flip(now_ms) + id, b"")
        return True

    def expire(self, now_ms: int, limit: int) -> int:
        """Forgets up to ``limit`` ids whose TTL ran out by ``now_ms``, oldest
        first; returns how many. Call it once per batch to keep state bounded."""
        forgotten = 0
        for key, _ in state.scan(self._times, None, limit):
            rest = key[len(self._times) :]
            if len(rest) < 8:
                state.delete(key)
                continue
            at = _unflip(rest[:8])
            if now_ms - at < self._ttl_ms:
                break
            state.delete(key)
            state.delete(self._ids + rest[8:])
            forgotten += 1
        return forgotten


class Processor:
    """What a guest implements. ``init`` runs once per fresh instance, and the
    host creates a fresh instance for every batch, so keep no state between
    batches beyond what ``init`` sets up: what must last goes in :data:`state`."""

    def init(self, config: Config) -> None:
        """Receives the configuration; raise any exception to reject it."""

    def process(self, batch: Batch) -> None:
        """Processes one batch: return to commit all of it, or raise
        ``record.fail(kind, message)`` to name the failing record."""
        raise NotImplementedError


def export_processor(cls: type) -> type:
    """Wraps a :class:`Processor` subclass into the ``WitWorld`` class that
    componentize-py exports as the component's ``init`` and ``process``.

    componentize-py makes a new ``WitWorld`` for every call, so the one guest
    object lives here, where ``init`` and ``process`` of an instance share it."""
    guest = cls()

    class WitWorld:
        def init(self, config: List[Tuple[str, str]]) -> None:
            try:
                guest.init(Config(config))
            except Exception as e:  # the WIT error of `init` is a string
                raise Err(str(e)) from None

        def process(self, batch: types.Batch) -> None:
            try:
                guest.process(Batch(batch))
            except Failure as f:
                raise Err(types.Failure(f.index, f.kind, f.message)) from None

    return WitWorld
