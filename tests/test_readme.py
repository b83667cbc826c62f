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
