"""identity: each source neuron to the target neuron at the same position, with
a gain per channel (the shortcut of a residual block: nxcompile.NxAdd).

kernel (1, 1, c_in, 1), c_in of the whole (concatenated) input: a 1x1 depthwise
convolution with multiplier 1, stride 1, no padding, so it shares the depthwise
kind's geometry, counts and netx layout.  The gain is what folds the branch
scales of ANN-to-SNN conversion into a sum: lambda_source / lambda_target
(times any BatchNormalization scale after the Add).
"""
from __future__ import annotations

from nxcompile.ir.kinds.depthwise_conv2d import DepthwiseConv2D


class Identity(DepthwiseConv2D):
    name = "identity"
    keras_class = "Add"
    keras_neurons = False       # a plain Add is folded; only NxAdd owns neurons
    keras_args = ()
    source_hint = ("an identity (shortcut) connection needs (height, width, channels); "
                   "flat summands get a diagonal dense connection")

    def check_keras(self, layer, who: str) -> None:
        """NxAdd has no options without a Loihi mapping."""

    def from_keras(self, layer, source_shape: tuple) -> dict:
        raise NotImplementedError("an NxAdd summand's kernel is its gain (nxcompile.keras_ir)")


KIND = Identity()
