"""Campaign and published Atari 100k results -> a paper's tables and figures (`iris-bench report`), and the plan
of a campaign before it runs (`iris-bench plan`, plan.py).

Sources (each gives `method.Method`s): rundir_source.py (run directories), mlflow_source.py, scorefiles.py,
published.py (the shipped baselines in data/atari100k/). Statistics: normalise.py, bootstrap.py,
aggregates.py, improvement.py, profiles.py, curves.py; costs.py (measured and quoted). Output: tables.py,
figures.py, report.py.
"""
