"""Writes the notebook corpus in this folder (run it after changing a notebook here, and commit
the .ipynb files: the tests read the files, as a lab would).

    python tests/corpus/make_corpus.py

The notebooks are written for this project in the styles found in the wild: typed and untyped
parameters cells (None defaults, lists, dicts, comments, literals over several lines), early exits
(`sys.exit(0)`, `sys.exit(1)`, a bare `raise SystemExit`), a failing line magic, a missing import,
nbformat 4.4 without cell ids, a notebook reading a file beside it, one long enough to cancel,
output on stderr, MLflow runs of the notebook's own, shell commands and magics. What each must
do as a job is in tests/test_notebook_corpus.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
LANGUAGE_INFO = {
    "name": "python", "version": "3.11.7", "mimetype": "text/x-python", "file_extension": ".py",
    "codemirror_mode": {"name": "ipython", "version": 3}, "pygments_lexer": "ipython3", "nbconvert_exporter": "python",
}


def nb(*cells, parameters: str | None = None, metadata: dict | None = None):
    book = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO, **(metadata or {})})
    out = []
    for cell in cells:
        if isinstance(cell, str) and cell.startswith("# ") and "\n" not in cell:
            out.append(new_markdown_cell(cell))
        elif isinstance(cell, str):
            out.append(new_code_cell(cell))
        else:
            out.append(cell)
    if parameters is not None:
        index = 1 if out and out[0].cell_type == "markdown" else 0
        out.insert(index, new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    book.cells = out
    return book


def stale_outputs(cell, text: str, count: int):
    """A cell as saved after an interactive session: outputs and an execution count."""
    cell.execution_count = count
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


NOTEBOOKS = {
    "typed_parameters.ipynb": nb(
        "# Training with typed parameters",
        "import mlflow\nprint('config', learning_rate, epochs, repr(run_label), verbose, layers, optimizer)",
        "loss = 1.0\nfor epoch in range(epochs):\n    loss *= (1 - learning_rate)\n    mlflow.log_metric('loss', loss, step=epoch)\n"
        "mlflow.log_metric('layers', len(layers))\nprint('LABEL', run_label)",
        parameters=(
            "# Hyperparameters (papermill style, with type annotations)\n"
            "learning_rate: float = 0.1  # step size\n"
            "epochs: int = 3\n"
            "run_label: str = 'baseline'\n"
            "verbose: bool = False\n"
            "layers: list = [64, 32]\n"
            "optimizer: dict = {'name': 'sgd', 'momentum': 0.9}\n"
        ),
    ),
    "none_defaults.ipynb": nb(
        "import mlflow\nprint('MSG', repr(msg))\nprint('THRESHOLD', repr(threshold))\nprint('DATA', repr(data_path))",
        "if threshold is not None:\n    mlflow.log_metric('threshold', float(threshold))",
        parameters="msg = None\nthreshold = None\ndata_path = None  # set by the job\n",
    ),
    "multiline_literals.ipynb": nb(
        "import json, mlflow\nmlflow.log_text(json.dumps({'grid': grid, 'columns': columns, 'shape': list(shape)}, sort_keys=True), 'config.json')\n"
        "print('GRID', json.dumps(grid, sort_keys=True))\nprint('COLUMNS', columns)",
        parameters=(
            '"""Parameters of the sweep."""\n'
            "grid = {\n"
            "    'alpha': [0.1, 0.5, 1.0],  # regularisation\n"
            "    'l1_ratio': [0.2, 0.8],\n"
            "}\n"
            "\n"
            "columns = [\n"
            "    'sepal_length',\n"
            "    'sepal_width',   # noisy\n"
            "]\n"
            "shape = (2,\n"
            "         3)\n"
        ),
    ),
    "exit_zero.ipynb": nb(
        "import sys, mlflow\nmlflow.log_metric('before_exit', 1.0)",
        "print('stopping here on purpose')\nsys.exit(0)",
        "raise RuntimeError('never reached')",
    ),
    "exit_one.ipynb": nb(
        "import sys\nprint('checking the data')",
        "sys.exit(1)",
        "print('never reached')",
    ),
    "bare_system_exit.ipynb": nb(
        "import mlflow\nmlflow.log_metric('reached', 1.0)",
        "raise SystemExit",
        "raise RuntimeError('never reached')",
    ),
    "failing_magic.ipynb": nb(
        "x = 1",
        "%this_magic_does_not_exist --fast",
        "print('never reached')",
    ),
    "missing_import.ipynb": nb(
        "# Uses a package the environment does not have",
        "import os\nimport definitely_not_installed_pkg as dnip",
        "print(dnip.__version__)",
    ),
    "stderr_output.ipynb": nb(
        "import sys, logging, warnings\n"
        "print('OUT-LINE-1')\n"
        "print('ERR-LINE-1', file=sys.stderr)\n"
        "logging.getLogger('corpus').warning('LOG-LINE-1')\n"
        "warnings.warn('WARN-' + 'LINE-1')  # the source line shows too: not the message\n"
        "print('ERR-LINE-2', file=sys.stderr, flush=True)",
    ),
    "sklearn_training.ipynb": nb(
        "# Iris classifier",
        "import mlflow\nfrom sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import train_test_split",
        "X, y = load_iris(return_X_y=True)\nX_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)\n"
        "model = LogisticRegression(C=C, max_iter=max_iter).fit(X_train, y_train)",
        "accuracy = float(model.score(X_test, y_test))\nmlflow.log_metric('accuracy', accuracy)\n"
        "mlflow.sklearn.log_model(model, name='model')\nprint('accuracy', accuracy)",
        parameters="# training parameters\nC = 1.0\nmax_iter = 200\nseed = 7\n",
    ),
    "pandas_report.ipynb": nb(
        "# A small report with a table and a figure",
        "%matplotlib inline\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nimport pandas as pd\nimport mlflow",
        "df = pd.DataFrame({'x': range(points), 'y': [v * v for v in range(points)]})\ndisplay(df.describe())",
        "fig, ax = plt.subplots()\nax.plot(df.x, df.y)\nax.set_title(title)\nmlflow.log_figure(fig, 'report/curve.png')\n"
        "mlflow.log_metric('rows', len(df))\nprint('ROWS', len(df))",
        parameters="points = 10\ntitle = 'squares'\n",
    ),
    "own_runs.ipynb": nb(
        "import mlflow",
        "with mlflow.start_run(run_name='notebook-chosen-name'):\n"
        "    mlflow.log_metric('outer', 1.0)\n"
        "    with mlflow.start_run(run_name='inner-run', nested=True):\n"
        "        mlflow.log_metric('inner', 2.0)",
        "with mlflow.start_run(run_name='afterwards-run'):\n    mlflow.log_metric('afterwards', 3.0)",
    ),
    "magics_and_shell.ipynb": nb(
        "%%capture captured\nprint('hidden')",
        "%time total = sum(range(1000))",
        "!echo SHELL-SAYS-hello\nresult = !echo captured-shell\nprint('RESULT', result[0])",
        "import mlflow\nmlflow.log_metric('total', total)",
    ),
    "no_parameters.ipynb": nb(
        "# No parameters cell at all",
        stale_outputs(new_code_cell("import platform\nprint('python', platform.python_version())"), "python 3.11.7\n", 4),
        "import mlflow\nmlflow.log_metric('ok', 1.0)",
    ),
    "long_running.ipynb": nb(
        "import time, mlflow\nmlflow.log_metric('started', 1.0)",
        "for tick in range(ticks):\n    print('TICK', tick, flush=True)\n    time.sleep(0.5)",
        "mlflow.log_metric('finished', 1.0)",
        parameters="ticks = 1200\n",
    ),
}


def write_nbformat_44(path: Path) -> None:
    """nbformat 4.4: no cell ids (as notebooks saved before 2021 are)."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Saved by an older Jupyter\n", "No cell ids here."]},
        {"cell_type": "code", "execution_count": None, "metadata": {"tags": ["parameters"]}, "outputs": [],
         "source": ["n_estimators = 10\n", "depth = None\n"]},
        {"cell_type": "code", "execution_count": 3, "metadata": {}, "outputs": [
            {"name": "stdout", "output_type": "stream", "text": ["an old output\n"]}],
         "source": ["import mlflow\n", "mlflow.log_metric('n_estimators', n_estimators)\n", "print('DEPTH', depth)"]},
    ]
    book = {"cells": cells, "metadata": {"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO}, "nbformat": 4, "nbformat_minor": 4}
    path.write_text(json.dumps(book, indent=1) + "\n", encoding="utf-8")


def write_folder_notebook(folder: Path) -> None:
    """A notebook that reads files beside it (run with include_folder)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "values.csv").write_text("value\n1\n2\n3\n", encoding="utf-8")
    (folder / "data" / "other.csv").write_text("value\n10\n20\n", encoding="utf-8")
    (folder / "helpers.py").write_text("def total(path):\n    with open(path) as f:\n        next(f)\n        return sum(int(l) for l in f)\n")
    book = nb(
        "import mlflow\nfrom helpers import total\nsum_ = total(f'data/{csv_name}')\nmlflow.log_metric('sum', sum_)\nprint('SUM', sum_)",
        parameters="csv_name = 'values.csv'\n",
    )
    nbformat.write(book, folder / "reads_beside.ipynb")


def main() -> None:
    for name, book in NOTEBOOKS.items():
        nbformat.validate(book)
        nbformat.write(book, HERE / name)
    write_nbformat_44(HERE / "nbformat44_no_ids.ipynb")
    write_folder_notebook(HERE / "with_data")


if __name__ == "__main__":
    main()
