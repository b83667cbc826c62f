"""The README's usage example runs as written."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_usage_block_runs(capsys):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    scope = {}
    exec(compile(block, str(README), "exec"), scope)
    res, compiled = scope["res"], scope["compiled"]
    assert res.spike_counts.shape == (2, 10) and res.predictions.shape == (2,)
    ref = compiled.run(scope["x_test"][:2], num_steps=50, backend="reference")
    assert (ref.spike_counts == res.spike_counts).all()
    assert "total:" in capsys.readouterr().out


def _block_after(marker: str) -> str:
    """The first python block after `marker` in the README."""
    text = README.read_text()
    return re.search(r"```python\n(.*?)```", text[text.index(marker):], re.S).group(1)


def test_readme_nxtf_block_runs(capsys):
    scope = {}
    exec(compile(_block_after("**NxTF code as written.**"), str(README), "exec"), scope)
    compiled, model = scope["compiled"], scope["model"]
    conv, dense = model.layers[1].name, model.layers[-1].name
    assert compiled.quantization[conv].weight_exp == 2
    assert {c.encoding for c in compiled.partition.cores_of(conv)} == {"runlength"}
    assert {c.encoding for c in compiled.partition.cores_of(dense)} == {"dense2"}
    assert list(scope["res"].trains) == [conv]
    assert capsys.readouterr().out.splitlines()[0] == "2"


def test_readme_lava_block_runs(capsys):
    # An installed environment needs no such line (nxcompile_lava.pth, tested in
    # test_lava_compat); here it keeps this test independent of the install.
    import mapper.lava_compat  # noqa: F401
    exec(compile(_block_after("**Lava interop.**"), str(README), "exec"), {})
    assert capsys.readouterr().out.strip() == "True"
