"""Named partitioning errors."""
from hwmodel.errors import NxCompileError


class PartitionError(NxCompileError, ValueError):
    """No valid partition exists."""


class CoreLimitError(PartitionError):
    """A layer cannot be split so that its cores respect a hard core limit: names
    the layer, the resource, what the best candidate needed and the limit."""

    def __init__(self, layer: str, resource: str, needed: int, limit: int, detail: str = ""):
        self.layer, self.resource, self.needed, self.limit = layer, resource, needed, limit
        msg = f"layer {layer}: {needed} {resource} needed on one core, limit {limit}"
        super().__init__(msg + (f" ({detail})" if detail else ""))
