"""Real notebooks used by the project and job tests."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook(*cells, parameters: str | None = None):
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    if parameters is not None:
        nb.cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(new_code_cell(c) if isinstance(c, str) else c for c in cells)
    return nb


def sklearn_training_notebook():
    return notebook(
        new_markdown_cell("# Iris classifier"),
        "import mlflow\nimport numpy as np\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_iris(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)\n"
        "model = LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)",
        "accuracy = float(model.score(X_test, y_test))\n"
        "mlflow.log_metric('accuracy', accuracy)\n"
        "for step, loss in enumerate([1.0, 0.5, 0.25]):\n"
        "    mlflow.log_metric('loss', loss, step=step)\n"
        "mlflow.sklearn.log_model(model, name='model')\n"
        "print('accuracy', accuracy, 'label', label)",
        parameters="# training parameters\nC = 1.0\nmax_iter = 200\nseed = 7\nlabel = 'baseline'\nverbose: bool = False",
    )


def failing_notebook():
    return notebook("x = 1", "y = x + 1", "raise RuntimeError('boom in the third cell')", "z = 3")


def long_notebook(seconds: int = 600):
    return notebook("import time", f"for _ in range({seconds} * 10):\n    time.sleep(0.1)")


def write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
