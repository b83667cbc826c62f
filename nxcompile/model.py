"""NxModel: a Keras functional model that also compiles to Loihi."""
from __future__ import annotations

import inspect

import keras

from hwmodel.errors import NetworkError
from nxcompile.keras_ir import model_to_ir
from nxcompile.layers import _layer_input

# Argument names of keras.Model.compile (optimizer, loss, metrics, ...).
_KERAS_COMPILE_ARGS = frozenset(inspect.signature(keras.Model.compile).parameters) - {"self"}
# Keyword arguments of a functional keras.Model (keras.src.models.functional.Functional).
_KERAS_MODEL_ARGS = frozenset({"inputs", "outputs", "name", "trainable"})


@keras.saving.register_keras_serializable(package="nxcompile")
class NxModel(keras.Model):
    """``NxModel(inputs, outputs)``: a keras functional Model (summary, fit,
    predict, get_weights/set_weights, saving work as in Keras) built from Nx or
    supported plain Keras layers (see nxcompile.keras_ir), plus the Loihi
    compiler entry points ``compile(board=...)``, ``to_ir()`` and
    ``partition_report()``.

    ``numCandidatesToCompute`` (NxTF's name): the partitioner's beam width M,
    the partial partitions kept per layer (default None: the partitioner's
    default, 4); ``compile(beam_width=...)`` overrides it.  Inputs may be
    NxInputLayer objects as well as their output tensors.  Any other keyword
    than Keras' inputs, outputs, name and trainable raises NetworkError naming it.
    """

    def __init__(self, *args, numCandidatesToCompute=None, **kwargs):
        unknown = sorted(kwargs.keys() - _KERAS_MODEL_ARGS)
        if unknown:
            raise NetworkError(f"NxModel: unknown keyword argument(s) {unknown}; NxModel takes "
                               f"{sorted(_KERAS_MODEL_ARGS)} and numCandidatesToCompute")
        if numCandidatesToCompute is not None and (
                not isinstance(numCandidatesToCompute, int) or isinstance(numCandidatesToCompute, bool)
                or numCandidatesToCompute < 1):
            raise NetworkError(f"NxModel: numCandidatesToCompute={numCandidatesToCompute!r} must "
                               f"be an integer >= 1 (the beam width M)")
        if args:
            args = (_layer_input(args[0]), *args[1:])
        if "inputs" in kwargs:
            kwargs["inputs"] = _layer_input(kwargs["inputs"])
        super().__init__(*args, **kwargs)
        self.num_candidates = numCandidatesToCompute

    def get_config(self) -> dict:
        return {**super().get_config(), "numCandidatesToCompute": self.num_candidates}

    def compile(self, *args, board=None, **options):
        """Keras training compile or Loihi compile, told apart by the arguments.

        With any keras.Model.compile argument (optimizer, loss, metrics, ...,
        positional or keyword) this is exactly keras.Model.compile and returns
        None.  Otherwise (``compile()``, ``compile(board="loihi1", **options)``)
        it builds the IR and returns
        ``nxcompile.compiler.compile_ir(ir, board=board, **options)``, a
        CompiledModel; board defaults to "loihi1", beam_width to
        numCandidatesToCompute.
        """
        if args or _KERAS_COMPILE_ARGS & options.keys():
            if board is not None:
                raise TypeError(f"NxModel '{self.name}'.compile: board={board!r} cannot be mixed "
                                "with Keras training arguments; compile for training and for "
                                "Loihi in separate calls")
            return super().compile(*args, **options)
        from nxcompile.compiler import compile_ir
        if self.num_candidates is not None:
            options.setdefault("beam_width", self.num_candidates)
        return compile_ir(self.to_ir(), board="loihi1" if board is None else board, **options)

    def compile_from_config(self, config):
        """Restore the Keras training compile of a saved model (Keras skips it for
        models that override compile())."""
        super().compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def to_ir(self):
        """The validated NetworkIR of this model (nxcompile.keras_ir.model_to_ir)."""
        return model_to_ir(self)

    def partition_report(self, board="loihi1", **options):
        """The report of the Loihi compile: ``compile(board=board, **options).report()``."""
        return self.compile(board=board, **options).report()
