"""Campaign and published Atari 100k results -> a paper's tables and figures (`iris-bench report`).

Sources (each gives `method.Method`s): campaign.py (run directories), mlflow_source.py, scorefiles.py,
published.py (the shipped baselines in data/atari100k/). Statistics: normalise.py, bootstrap.py,
aggregates.py, improvement.py, profiles.py, curves.py. Output: tables.py, figures.py, report.py.
"""
