"""ConnectionKind: everything the stages ask about one kind of connection.

One object per kind (nxcompile.ir.kinds), so what a kind means is written once:
how a Keras layer maps to it (front end), its float synapse matrix (quantizer
and validator; the backends run the quantized matrix), what the partitioner
counts analytically and its kernel and netx layout (WindowKind).  A kind never
imports Keras: it reads a Keras layer's attributes only.  A connection's data
is its ConnectionSpec (nxcompile.ir.network); every method takes the spec.
"""
from __future__ import annotations


class ConnectionKind:
    """The interface of a connection kind; subclasses set the attributes.

    name           the IR name (ConnectionSpec.kind, LayerSpec.kind of its target)
    keras_class    the keras.layers class it maps from ('Conv2D')
    keras_neurons  a plain `keras_class` layer owns neurons (False: only its Nx
                   class does, the plain layer is folded, as Add)
    keras_args     the arguments of that class that fix the connection (what a
                   converted layer copies from the trained one)
    netx_type      the netx block type it exports as ('dense', 'conv'; '' none)
    weighted       it has a kernel, bias and activation of its own (pooling: no)
    source_ndim    rank of the source as it sees it: 1 (n,) or 3 (H, W, C)
    source_hint    what to do when the source has another rank (error text)
    output_channel_axes  trailing kernel axes that index the target channel
    window         True for WindowKind (the partitioner counts it analytically)
    rate           a synaptic sum, what the rate code computes (False: max
                   pooling, which only a single-spike network maps: nxcompile.ttfs)
    """

    name = ""
    keras_class = ""
    keras_neurons = True
    keras_args = ()
    netx_type = ""
    weighted = True
    source_ndim = 3
    source_hint = "a spatial layer needs (height, width, channels)"
    output_channel_axes = 1
    window = False
    rate = True

    def __repr__(self) -> str:
        return f"<connection kind {self.name!r}>"

    def check_keras(self, layer, who: str) -> None:
        """Raise NetworkError for Keras options of `layer` that have no Loihi
        mapping (besides the activation, which the front end checks); `who`
        names the layer in the message."""

    def from_keras(self, layer, source_shape: tuple) -> dict:
        """The ConnectionSpec fields (besides source_shape, placement and the
        kind) of Keras layer `layer` fed by a source of `source_shape`."""
        raise NotImplementedError

    def keras_config(self, layer) -> dict:
        """The keras_args of Keras layer `layer`, from its config."""
        config = layer.get_config()
        return {key: config[key] for key in self.keras_args}

    def matrix(self, spec, target_shape: tuple):
        """Float synapse matrix (n_target, n_source), csr, flat HWC order."""
        raise NotImplementedError
