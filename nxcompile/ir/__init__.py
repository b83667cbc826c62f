"""The intermediate representation: what every front end produces and every
stage reads.  numpy, scipy and networkx, and hwmodel's error base: it imports
no front end (Keras), partitioner or mapper.

network     NetworkIR (a networkx DAG), LayerSpec, NeuronSpec, ConnectionSpec
kind        ConnectionKind, the interface every connection kind implements
window      WindowKind: what all 2-D window operations share (geometry)
kinds/      one module per connection kind (dense, conv2d, depthwise_conv2d,
            avg_pool2d), each defining KIND; KINDS maps names to them
"""
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from nxcompile.ir.kind import ConnectionKind
from nxcompile.ir.kinds import KINDS, get_kind
from nxcompile.ir.network import INPUT, ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec
from nxcompile.ir.window import WindowKind, output_size


def connection_matrix(spec: ConnectionSpec, target_shape: tuple):
    """Float synapse matrix (n_target, n_source) of a connection, HWC flat order
    (its kind's ConnectionKind.matrix)."""
    return spec.op.matrix(spec, tuple(target_shape))


def delay_matrix(spec: ConnectionSpec, target_shape: tuple):
    """Per-synapse delays (time steps) of a connection as csr (n_target,
    n_source) int64, aligned with connection_matrix and non-zero only on its
    synapses; None for a connection without delays."""
    if spec.delays is None:
        return None
    as_kernel = replace(spec, kernel=np.asarray(spec.delays, np.float64), delays=None)
    d = connection_matrix(as_kernel, target_shape)       # the kind's own layout of its kernel
    m = connection_matrix(spec, target_shape)
    return sp.csr_matrix(d.multiply(m != 0), dtype=np.int64)


__all__ = ["INPUT", "KINDS", "ConnectionKind", "ConnectionSpec", "LayerSpec", "NetworkIR",
           "NeuronSpec", "WindowKind", "connection_matrix", "delay_matrix", "get_kind",
           "output_size"]
