"""Minimal safetensors reader/writer using numpy only.

File layout:
    8 bytes       little-endian u64 N = length of the JSON header
    N bytes       UTF-8 JSON: {"<name>": {"dtype": "F64", "shape": [..],
                               "data_offsets": [begin, end]}, ...,
                               "__metadata__": {"key": "value", ...}}
                  (offsets are relative to the start of the data section; the
                  header is space-padded so the data section is 8-byte aligned)
    rest          raw little-endian tensor bytes, C order.
Scalars are stored with shape [].
"""

import json
import struct

import numpy as np

_DTYPES = {
    'F64': np.dtype('<f8'),
    'F32': np.dtype('<f4'),
    'F16': np.dtype('<f2'),
    'I64': np.dtype('<i8'),
    'I32': np.dtype('<i4'),
    'I16': np.dtype('<i2'),
    'I8': np.dtype('i1'),
    'U64': np.dtype('<u8'),
    'U32': np.dtype('<u4'),
    'U16': np.dtype('<u2'),
    'U8': np.dtype('u1'),
    'BOOL': np.dtype('?'),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read(path):
    """Return (tensors: dict name -> np.ndarray, metadata: dict)."""
    with open(path, 'rb') as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError('%s: too short for a safetensors file' % path)
    (n,) = struct.unpack('<Q', blob[:8])
    if 8 + n > len(blob):
        raise ValueError('%s: header length %d exceeds file size' % (path, n))
    header = json.loads(blob[8:8 + n].decode('utf-8'))
    data = memoryview(blob)[8 + n:]
    meta = header.pop('__metadata__', {}) or {}
    out = {}
    for name, info in header.items():
        dt = info['dtype']
        shape = tuple(int(s) for s in info['shape'])
        b, e = (int(o) for o in info['data_offsets'])
        if not (0 <= b <= e <= len(data)):
            raise ValueError('%s: tensor %r has bad offsets' % (path, name))
        raw = bytes(data[b:e])
        if dt == 'BF16':
            # numpy has no bfloat16: widen to f32 by putting the bits on top.
            bits = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dt in _DTYPES:
            arr = np.frombuffer(raw, dtype=_DTYPES[dt])
        else:
            raise ValueError('%s: unsupported dtype %s' % (path, dt))
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError('%s: tensor %r: %d elements for shape %s'
                             % (path, name, arr.size, list(shape)))
        out[name] = arr.reshape(shape).copy()
    return out, meta


def write(path, tensors, metadata=None):
    """tensors: dict name -> array-like (numpy, or anything np.asarray takes).
    metadata: optional dict of str -> str."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        dt = arr.dtype.newbyteorder('<') if arr.dtype.byteorder == '>' else arr.dtype
        key = _NAMES.get(np.dtype(dt))
        if key is None:
            raise ValueError('tensor %r: unsupported dtype %s' % (name, arr.dtype))
        raw = np.ascontiguousarray(arr, dtype=_DTYPES[key]).tobytes()
        header[name] = {'dtype': key, 'shape': list(arr.shape),
                        'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hb += b' ' * ((-(8 + len(hb))) % 8)          # align the data section to 8 bytes
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)


# ---------------------------------------------------------------------------
# Parameter files hold PyTorch's layout (docs/training.md, Checkpoints): the
# layer's projections and gate weights, used here as x @ W with W (in, out),
# are stored (out, in) like nn.Linear.weight; its depthwise convolutions, held
# (d, K), are stored (d, 1, K) like nn.Conv1d(d, d, K, groups=d).weight. The
# file says so in its metadata: {"layout": "pytorch"}. The rest (A0*, biases,
# out_norm_w) is stored as held.
# ---------------------------------------------------------------------------

LAYOUT_META = {'layout': 'pytorch'}
_LINEAR = ('W_Q', 'W_K', 'W_V', 'W_G', 'W_O')
_CONV = ('conv_q', 'conv_k', 'conv_v')


def _layout(name):
    base = name[len('grad.'):] if name.startswith('grad.') else name
    if base in _LINEAR or (base.startswith('gate_') and base.endswith('_w')):
        return 'linear'
    if base in _CONV:
        return 'depthwise'
    return 'same'


def to_pytorch(tensors):
    """Held layout -> stored layout, for parameters and their "grad." tensors."""
    out = {}
    for n, t in tensors.items():
        a = np.asarray(t)
        kind = _layout(n)
        out[n] = (np.ascontiguousarray(a.T) if kind == 'linear' else
                  a.reshape(a.shape[0], 1, a.shape[1]) if kind == 'depthwise' else a)
    return out


def from_pytorch(path, tensors, meta):
    """Stored layout -> held layout; refuses a file that does not declare it."""
    if meta.get('layout') != 'pytorch' and meta.get('format') != 'pt':
        raise ValueError('%s: the file does not say it holds the PyTorch layout '
                         '(__metadata__ "layout": "pytorch")' % path)
    out = {}
    for n, t in tensors.items():
        a = np.asarray(t)
        kind = _layout(n)
        if kind == 'linear' and a.ndim == 2:
            out[n] = np.ascontiguousarray(a.T)
        elif kind == 'depthwise' and a.ndim == 3 and a.shape[1] == 1:
            out[n] = a.reshape(a.shape[0], a.shape[2])
        elif kind == 'same':
            out[n] = a
        else:
            raise ValueError('%s: tensor %r has shape %s, not a stored %s shape'
                             % (path, n, list(a.shape), kind))
    return out
