"""NxModel: a Keras functional model that also compiles to Loihi."""
from __future__ import annotations

import inspect

import keras

from nxcompile.keras_ir import model_to_ir

# Argument names of keras.Model.compile (optimizer, loss, metrics, ...).
_KERAS_COMPILE_ARGS = frozenset(inspect.signature(keras.Model.compile).parameters) - {"self"}


@keras.saving.register_keras_serializable(package="nxcompile")
class NxModel(keras.Model):
    """``NxModel(inputs, outputs)``: a keras functional Model (summary, fit,
    predict, get_weights/set_weights, saving work as in Keras) built from Nx or
    supported plain Keras layers (see nxcompile.keras_ir), plus the Loihi
    compiler entry points ``compile(board=...)``, ``to_ir()`` and
    ``partition_report()``.
    """

    def compile(self, *args, board=None, **options):
        """Keras training compile or Loihi compile, told apart by the arguments.

        With any keras.Model.compile argument (optimizer, loss, metrics, ...,
        positional or keyword) this is exactly keras.Model.compile and returns
        None.  Otherwise (``compile()``, ``compile(board="loihi1", **options)``)
        it builds the IR and returns
        ``nxcompile.compiler.compile_ir(ir, board=board, **options)``, a
        CompiledModel; board defaults to "loihi1".
        """
        if args or _KERAS_COMPILE_ARGS & options.keys():
            if board is not None:
                raise TypeError(f"NxModel '{self.name}'.compile: board={board!r} cannot be mixed "
                                "with Keras training arguments; compile for training and for "
                                "Loihi in separate calls")
            return super().compile(*args, **options)
        from nxcompile.compiler import compile_ir
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
