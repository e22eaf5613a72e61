"""catlip_stage: write a catlip stage in Python (docs/stage-protocol.md).

A transform run by the `exec.process` stage type:

    import catlip_stage as cs

    for sample in cs.samples():
        if "dog" in sample.get("txt", ""):
            cs.count("skipped.dog")
            continue                      # dropped
        sample["caption_len"] = [len(sample["txt"])]
        cs.emit(sample)                   # 0..n emits per input

A source run by `exec.source` just calls cs.emit() and returns. An uncaught
exception, or cs.fail("why"), fails the stage with that message.

Sample fields map to Python values: Bytes -> bytes, text -> str, int list
-> list of int, tensor -> Tensor (dtype name, shape, raw little-endian
data; .numpy() if numpy is installed). Assign one of these to set a field.

The program's stdout carries the protocol: on import, this module moves it
to a private descriptor and points fd 1 (and print()) at stderr, which
catlip copies into the run log. Needs only msgpack (Debian python3-msgpack).
"""

import atexit
import os
import struct
import sys
import traceback

import msgpack

PROTOCOL = "catlip-stage"
VERSION = 1
WIRE_MAGIC = "CTLP"
WIRE_VERSION = 1

# Frame kinds (one byte after the 4-byte little-endian payload length).
HELLO, SAMPLE, DONE, END, ERROR, COUNT = b"H", b"S", b"D", b"E", b"X", b"C"
# Wire message kinds and field tags (core/runtime/src/codec.cpp).
MSG_SAMPLE, MSG_BATCH = 1, 2
TAG_BYTES, TAG_TEXT, TAG_INTS, TAG_TENSOR = 0, 1, 2, 3

DTYPES = ["uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
DTYPE_SIZES = [1, 1, 2, 4, 8, 2, 2, 4, 8]


class ProtocolError(Exception):
    pass


class Tensor:
    """A dense row-major tensor: dtype name, shape, raw little-endian bytes."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        if dtype not in DTYPES:
            raise ValueError("unknown dtype %r (one of %s)" % (dtype, ", ".join(DTYPES)))
        self.dtype, self.shape, self.data = dtype, tuple(int(d) for d in shape), bytes(data)
        n = DTYPE_SIZES[DTYPES.index(dtype)]
        for d in self.shape:
            n *= d
        if n != len(self.data):
            raise ValueError("tensor data of %d bytes does not match %s %s" % (len(self.data), dtype, self.shape))

    @classmethod
    def from_numpy(cls, a):
        import numpy as np
        a = np.ascontiguousarray(a)
        return cls(str(a.dtype), a.shape, a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())

    def numpy(self):
        import numpy as np
        if self.dtype == "bfloat16":
            raise TypeError("numpy has no bfloat16")
        return np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<")).reshape(self.shape)

    def __eq__(self, o):
        return isinstance(o, Tensor) and (self.dtype, self.shape, self.data) == (o.dtype, o.shape, o.data)

    def __repr__(self):
        return "Tensor(%s, %s)" % (self.dtype, list(self.shape))


class Sample:
    """key, origin (url, shard, index, epoch) and fields; indexable by field name."""

    __slots__ = ("key", "url", "shard", "index", "epoch", "fields")

    def __init__(self, key="", fields=None, url="", shard=-1, index=-1, epoch=0):
        self.key, self.url, self.shard, self.index, self.epoch = key, url, shard, index, epoch
        self.fields = dict(fields or {})

    def __getitem__(self, name):
        return self.fields[name]

    def __setitem__(self, name, value):
        self.fields[name] = value

    def __delitem__(self, name):
        del self.fields[name]

    def __contains__(self, name):
        return name in self.fields

    def get(self, name, default=None):
        return self.fields.get(name, default)

    def copy(self, **changes):
        s = Sample(self.key, self.fields, self.url, self.shard, self.index, self.epoch)
        for k, v in changes.items():
            setattr(s, k, v)
        return s

    def __eq__(self, o):
        return isinstance(o, Sample) and all(getattr(self, a) == getattr(o, a) for a in Sample.__slots__)

    def __repr__(self):
        return "Sample(%r, %s)" % (self.key, sorted(self.fields))


# ---- the sample encoding: catlip's wire message (docs/stage-protocol.md) ----

def _unpack_field(name, v):
    if not isinstance(v, list) or len(v) < 2:
        raise ProtocolError("field %r: expected [tag, value...]" % name)
    tag = v[0]
    if tag == TAG_BYTES:
        return bytes(v[1])
    if tag == TAG_TEXT:
        return v[1]
    if tag == TAG_INTS:
        return list(v[1])
    if tag == TAG_TENSOR:
        return Tensor(DTYPES[v[1]], v[2], v[3])
    raise ProtocolError("field %r: unsupported field tag %r" % (name, tag))


def _unpack_sample(body):
    key, origin, fields = body[0], body[1], body[2]
    s = Sample(key, None, origin[0], origin[1], origin[2], origin[3])
    s.fields = {k: _unpack_field(k, v) for k, v in fields.items()}
    return s


def _pack_field(name, v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return [TAG_BYTES, bytes(v)]
    if isinstance(v, str):
        return [TAG_TEXT, v]
    if isinstance(v, Tensor):
        return [TAG_TENSOR, DTYPES.index(v.dtype), list(v.shape), v.data]
    if isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return [TAG_INTS, [int(x) for x in v]]
    if type(v).__module__ == "numpy":
        return _pack_field(name, Tensor.from_numpy(v))
    raise TypeError("field %r: %s is not bytes, str, a list of int or a Tensor" % (name, type(v).__name__))


def _sample_body(s):
    if not isinstance(s, Sample):
        raise TypeError("emit() takes a Sample, got %s" % type(s).__name__)
    return [str(s.key), [str(s.url), int(s.shard), int(s.index), int(s.epoch)],
            {str(k): _pack_field(k, v) for k, v in s.fields.items()}]


def encode_sample(s):
    """A catlip wire message (kind sample) holding `s`."""
    return msgpack.packb([WIRE_MAGIC, WIRE_VERSION, MSG_SAMPLE, [int(s.epoch), int(s.shard), int(s.index)],
                          _sample_body(s)], use_bin_type=True)


def encode_batch(samples):
    samples = list(samples)
    first = samples[0] if samples else Sample()
    return msgpack.packb([WIRE_MAGIC, WIRE_VERSION, MSG_BATCH, [int(first.epoch), int(first.shard), int(first.index)],
                          [_sample_body(s) for s in samples]], use_bin_type=True)


def decode_message(data):
    """A Sample, or a list of Samples for a batch."""
    m = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if not isinstance(m, list) or len(m) != 5 or m[0] != WIRE_MAGIC:
        raise ProtocolError("not a catlip message")
    if m[1] != WIRE_VERSION:
        raise ProtocolError("wire version %r is not supported (expected %d)" % (m[1], WIRE_VERSION))
    if m[2] == MSG_SAMPLE:
        return _unpack_sample(m[4])
    if m[2] == MSG_BATCH:
        return [_unpack_sample(b) for b in m[4]]
    raise ProtocolError("unexpected message kind %r" % m[2])


# ---- the connection to catlip ----

class _Conn:
    def __init__(self):
        # Protocol on private descriptors; fd 0 <- /dev/null, fd 1 -> stderr,
        # so stray reads and prints cannot corrupt the stream.
        sys.stdout.flush()
        self.rfd = os.dup(0)
        self.rbuf = bytearray()
        self.rpos = 0
        self.wfile = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self.hello = None
        self.pending_done = False
        self.input_ended = False
        self.ended = False
        self.failed = False

    def write(self, kind, payload=b""):
        self.wfile.write(struct.pack("<I", len(payload)) + kind)
        self.wfile.write(payload)

    def _fill(self, n):
        """At least n unread bytes in the buffer; False at end of input.
        Output is flushed before every read that may block, so catlip has
        all answers before this program waits for more input."""
        while len(self.rbuf) - self.rpos < n:
            self.wfile.flush()
            chunk = os.read(self.rfd, max(1 << 16, n))
            if not chunk:
                return False
            if self.rpos:
                del self.rbuf[:self.rpos]
                self.rpos = 0
            self.rbuf += chunk
        return True

    def read(self):
        if not self._fill(5):
            if len(self.rbuf) > self.rpos:
                raise ProtocolError("truncated frame header from catlip")
            return None, None
        n, kind = struct.unpack_from("<IB", self.rbuf, self.rpos)
        if not self._fill(5 + n):
            raise ProtocolError("truncated frame from catlip")
        start = self.rpos + 5
        payload = bytes(self.rbuf[start:start + n])
        self.rpos = start + n
        return bytes((kind,)), payload

    def start(self):
        if self.hello is not None:
            return
        kind, payload = self.read()
        if kind != HELLO:
            raise ProtocolError("expected catlip's hello, got %r" % kind)
        self.hello = msgpack.unpackb(payload, raw=False)
        if self.hello.get("protocol") != PROTOCOL:
            raise ProtocolError("not the catlip stage protocol: %r" % self.hello.get("protocol"))
        self.write(HELLO, msgpack.packb({"protocol": PROTOCOL, "version": VERSION, "client": "python"}))
        self.wfile.flush()

    def done(self):
        if self.pending_done:
            self.pending_done = False
            self.write(DONE)

    def next_message(self):
        """The next input (Sample or list of Samples), or None at end of stream."""
        self.start()
        self.done()
        while True:
            kind, payload = self.read()
            if kind is None or kind == END:
                self.input_ended = True
                return None
            if kind == SAMPLE:
                self.pending_done = True
                return decode_message(payload)
            raise ProtocolError("unexpected frame %r from catlip" % kind)

    def end(self):
        if self.ended or self.failed:
            return
        self.ended = True
        self.start()
        self.done()
        if self.hello.get("mode") == "transform" and not self.input_ended:
            # The program stopped reading early: answer what is left unread.
            while self.next_message() is not None:
                self.done()
            self.done()
        self.write(END)
        self.wfile.flush()

    def error(self, message):
        if self.failed:
            return
        self.failed = True
        try:
            self.write(ERROR, str(message).encode("utf-8", "replace"))
            self.wfile.flush()
        except OSError:
            # the runtime has closed the pipe: there is nobody left to tell
            pass


_conn = None


def _c():
    global _conn
    if _conn is None:
        _conn = _Conn()
        atexit.register(_at_exit)
        previous = sys.excepthook

        def hook(t, v, tb):
            previous(t, v, tb)  # the traceback, on stderr (the run log)
            sys.stderr.flush()
            if not issubclass(t, KeyboardInterrupt):
                _conn.error("".join(traceback.format_exception_only(t, v)).strip())

        sys.excepthook = hook
    return _conn


def _at_exit():
    try:
        _conn.end()
    except (BrokenPipeError, OSError):
        # the runtime has closed the pipe (it is gone or stopping the run): nothing to end
        pass


def info():
    """catlip's hello: mode, stage, type, replica, replicas, window, ..."""
    c = _c()
    c.start()
    return dict(c.hello)


def samples():
    """The input samples, one at a time (batches are split into samples).

    Asking for the next sample tells catlip that everything emitted for the
    previous one has been emitted.
    """
    c = _c()
    while True:
        m = c.next_message()
        if m is None:
            return
        if isinstance(m, list):
            for s in m:
                yield s
        else:
            yield m


def emit(sample):
    """Sends one sample (or a list of samples, as one batch) downstream."""
    c = _c()
    c.start()
    if c.ended:
        raise ProtocolError("emit() after the end of the stream")
    if isinstance(sample, (list, tuple)):
        c.write(SAMPLE, encode_batch(sample))
    else:
        c.write(SAMPLE, encode_sample(sample))
    if c.hello.get("mode") != "transform":
        c.wfile.flush()  # a source's items go out as they are made


def count(name, n=1):
    """Adds n to the stage counter `name` (names starting with "error" or
    "skipped" show as errors in the progress output)."""
    c = _c()
    c.start()
    c.write(COUNT, msgpack.packb({str(name): int(n)}))


def fail(message):
    """Fails the stage (and the run) with `message`; does not return."""
    _c().error(message)
    os._exit(1)


def run(fn):
    """Calls fn(sample) for each input; emits what it returns: None (drop),
    a Sample, or a list of Samples."""
    for s in samples():
        r = fn(s)
        if r is None:
            continue
        if isinstance(r, Sample):
            emit(r)
        else:
            for x in r:
                emit(x)


# Under catlip, take over stdout at once: nothing the program prints can
# reach the protocol stream, and an early exception is reported.
if os.environ.get("CATLIP_STAGE"):
    _c()
